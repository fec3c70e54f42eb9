import numpy as np
from relight.evaluate import forward as F
from relight.evaluate.cycles_scenes import shape_mesh
from relight.evaluate.reference_assets import asset_from_mesh
from relight.render import shadows
from relight.evaluate.suite_cases import Light, Sky
from relight.evaluate.suite_scenes import light_environment
from relight.render.bounce_links import bounce_links
from relight.core.visibility_rays import unpack_bits
from relight.render.strong_lights import asset_light_directions
obj='bowl'; hdri='sky_high'
colour, rough, metal, _, ground = F.OBJECTS[obj]
cam = F.case_camera(obj, 256)
v, f, n = shape_mesh(obj)
asset = asset_from_mesh(v, f, n, colour, rough, metal, 200000, obj, cam)
env = light_environment(Light("sky", 1.0, sky=Sky(*F.SKIES[hdri]))).prefilter()
g = asset.gaussians; R = asset.rotation
nw = g.normals @ R.T
bits, dirs, radiance = asset_light_directions(asset, env, True)
D = 256
sun = dirs[D:]; print("strong dirs", sun, "radiance", radiance[D:])
vb = unpack_bits(bits, len(dirs))
direct = shadows.light_visibility(bits, nw, dirs, radiance)
s8 = shadows.gaussian_shadows(asset, env)
s1 = shadows.gaussian_shadows(asset, env, bounces=1, linked=False)
rep, hit, reps = bounce_links(asset)
# shadowed by the sun but facing it: inside the bowl
facing = (nw @ sun[0]) > 0.3
shad = facing & ~vb[:, D]
print("facing sun", facing.sum(), "of which sun-shadowed", shad.sum())
idx = np.nonzero(shad)[0][::max(1, shad.sum()//6)][:6]
reflect = g.albedo * env.irradiance(nw)
for i in idx:
    c = dirs[:D] @ nw[i]; above = c > 0
    blk = above & ~vb[i, :D]
    h = hit[rep[i]]
    lk = blk & (h >= 0)
    print(f"i {i} direct {direct[i].round(3)} s1 {s1[i].round(3)} s8 {s8[i].round(3)} blocked {blk.sum()} linked {lk.sum()} targets lit frac {vb[h[lk], D].mean() if lk.any() else -1:.2f} target diffuse {(reflect[h[lk]]*direct[h[lk]]).mean(0).round(3) if lk.any() else None}")
print("env E sum (den) example", (radiance[:, 0] * np.maximum(dirs @ nw[idx[0]], 0)).sum(), "sun part", radiance[D:,0] * max(0, dirs[D] @ nw[idx[0]]))
from relight.render.frame import render
res = render(asset, cam, env, background=False)
d = np.load('/tmp/bowl_sky_high.npz'); cyc = d['cyc']
m = (cyc[...,3] > .99) & (res.alpha[...,0] > .99)
ratio = res.hdr[...,:3].sum(-1) / np.maximum(cyc[...,:3].sum(-1), 1e-6)
bad = m & (ratio < 0.7)
print("bad px", bad.sum(), "shadow pass there", np.percentile(res.passes['shadow'][bad].mean(-1), [10,50,90]), "normals", np.median(res.passes['normal'][bad],0))
print("ours lin", res.hdr[...,:3][bad].mean(0), "cyc", cyc[...,:3][bad].mean(0))
# the gaussians in that region: by normal and position? use normal similarity
nb = np.median(res.passes['normal'][bad],0)
sel = (nw @ nb) > 0.97
print("gaussians with that normal", sel.sum(), "sun bit set frac", vb[sel, D].mean(), "s8 median", np.median(s8[sel],0), "direct median", np.median(direct[sel],0))
