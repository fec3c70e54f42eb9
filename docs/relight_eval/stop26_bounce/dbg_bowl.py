"""The bowl under the sky_high sun: the Gaussians whose faces turn from the sun, where the render fell short of
Cycles (below 0.7 of it), and their shadow ratio per Gaussian and in the shaded pixels."""
import numpy as np
from forward_case import forward_case
from relight.core.visibility_rays import unpack_bits
from relight.render import shadows
from relight.render.frame import render
from relight.render.strong_lights import asset_light_directions

asset, cam, env, ground, cyc = forward_case("bowl/sky_high/0")
g = asset.gaussians
nw = g.normals @ asset.rotation.T
bits, dirs, radiance = asset_light_directions(asset, env, True)
D = 256  # the stored directions; the strong lights' own follow
vb = unpack_bits(bits, len(dirs))
direct = shadows.light_visibility(bits, nw, dirs, radiance)
s8 = shadows.gaussian_shadows(asset, env)
res = render(asset, cam, env)
m = (cyc[..., 3] > 0.99) & (res.alpha[..., 0] > 0.99)
bad = m & (res.hdr[..., :3].sum(-1) < 0.7 * cyc[..., :3].sum(-1))
print("pixels below 0.7 of Cycles", bad.sum())
if bad.any():
    nb = np.median(res.passes["normal"][bad], 0)
    sel = (nw @ nb) > 0.97
    print("their shadow pass", np.percentile(res.passes["shadow"][bad].mean(-1), [10, 50, 90]), "normal", nb)
    print("Gaussians with that normal", sel.sum(), "sun visible", vb[sel, D].mean(), "ratio median", np.median(s8[sel], 0),
          "direct only", np.median(direct[sel], 0))  # fmt: skip
