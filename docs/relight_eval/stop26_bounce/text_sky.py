import sys, numpy as np, cv2, time
from dataclasses import replace
from relight.evaluate import forward as F
from relight.evaluate.cycles_scenes import CyclesSettings, Material, render_cycles, shape_mesh
from relight.evaluate.reference_assets import asset_from_mesh
from relight.render.frame import render
from relight.render.settings import FINAL
from relight.evaluate.suite_cases import Light, Sky
from relight.evaluate.suite_scenes import light_environment, set_light, sky_scale
obj = sys.argv[1]; hdri = sys.argv[2]
cfg = F.EvalConfig()
colour, rough, metal, _, ground = F.OBJECTS[obj]
cam = F.case_camera(obj, cfg.size)
v, f, n = shape_mesh(obj)
asset = asset_from_mesh(v, f, n, colour, rough, metal, cfg.n_gaussians, obj, cam)
light = Light("sky", 1.0, sky=Sky(*F.SKIES[hdri]))
env = light_environment(light).prefilter()
sky_scale(light.sky)
world = (repr(light), lambda bpy, scene: set_light(bpy, scene, light))
mat = Material(colour, rough, metal)
cyc = render_cycles(obj, mat, hdri, 0.0, cam, ground, settings=CyclesSettings(samples=64), world=world)
cyc0 = render_cycles(obj, mat, hdri, 0.0, cam, ground, settings=CyclesSettings(samples=64, max_bounces=0), world=world)
res = render(asset, cam, env, background=False, ground=ground)
ref = F.display_over_env(cyc[..., :3], cyc[..., 3:], cam, env)
refd = F.display_over_env(cyc0[..., :3], cyc0[..., 3:], cam, env)
ours = F.display_over_env(res.hdr, res.alpha, cam, env)
mask = (cyc[..., 3] > .01) | (res.alpha[..., 0] > .01)
print("ours vs full", F._scores(ours, ref, mask))
print("ours vs direct", F._scores(ours, refd, mask))
print("direct vs full", F._scores(refd, ref, mask))
m = mask & (cyc[...,3] > .99) & (res.alpha[...,0] > .99)
lin_o = res.hdr[...,:3][m]; lin_c = cyc[...,:3][m]; lin_d = cyc0[...,:3][m]
print("mean linear ours/cyc/direct", lin_o.mean(0), lin_c.mean(0), lin_d.mean(0))
np.savez(f"/tmp/{obj}_{hdri}.npz", ours=res.hdr, oa=res.alpha, cyc=cyc, cyc0=cyc0)
err = np.abs(ours-ref).mean(-1)*mask
img = np.concatenate([ours, ref, refd, F._heat(err)/255.], 1)
cv2.imwrite(f"/tmp/{obj}_{hdri}.png", (img*255).astype(np.uint8)[..., ::-1])
