"""One forward case against Cycles with all its bounces and with none (max_bounces 0): PSNR both ways and the mean
linear radiance of the three over the pixels both cover; writes /tmp/<object>_<world>.png (ours, Cycles, Cycles
direct, error heat map) and the renders to /tmp/<object>_<world>.npz. Usage: text_sky.py text/sky_low/0."""
import sys

import cv2
import numpy as np
from forward_case import forward_case, score
from relight.evaluate import forward as F
from relight.evaluate.cycles_scenes import CyclesSettings
from relight.render.frame import render

spec = sys.argv[1]
asset, cam, env, ground, cyc = forward_case(spec)
cyc0 = forward_case(spec, CyclesSettings(samples=64, max_bounces=0))[4]
res = render(asset, cam, env, ground=ground)
print("ours vs full", score(res, cyc, cam, env))
print("ours vs direct", score(res, cyc0, cam, env))
m = (cyc[..., 3] > 0.99) & (res.alpha[..., 0] > 0.99)
print("mean linear ours / Cycles / Cycles direct", res.hdr[..., :3][m].mean(0), cyc[..., :3][m].mean(0),
      cyc0[..., :3][m].mean(0))  # fmt: skip
name = "_".join(spec.split("/")[:2])
np.savez(f"/tmp/{name}.npz", ours=res.hdr, oa=res.alpha, cyc=cyc, cyc0=cyc0)
ref = F.display_over_env(cyc[..., :3], cyc[..., 3:], cam, env)
ours = F.display_over_env(res.hdr, res.alpha, cam, env)
err = np.abs(ours - ref).mean(-1) * ((cyc[..., 3] > 0.01) | (res.alpha[..., 0] > 0.01))
img = np.concatenate([ours, ref, F.display_over_env(cyc0[..., :3], cyc0[..., 3:], cam, env), F._heat(err) / 255.0], 1)
cv2.imwrite(f"/tmp/{name}.png", (img * 255).astype(np.uint8)[..., ::-1])
