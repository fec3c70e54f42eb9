"""FINAL render time, specular visibility off vs on, interleaved, a new view each time (one process)."""
import time, numpy as np
from dataclasses import replace
from relight.evaluate.suite import view_camera, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import render_object, light_environment
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
from relight.render.settings import FINAL
from relight.core.input_image import InputImage
from relight.core.camera import Camera
cfg = SuiteConfig(); cam = view_camera(cfg.size)
c = suite_cases(0)[30]
ref_a = render_object(c, c.light_a, cam, cfg.samples)
a = ref_a[..., 3:4]; rgb = np.where(a > 1e-4, ref_a[..., :3] / np.maximum(a, 1e-4), 0)
inp = InputImage.from_pixels(np.concatenate([rgb, a], -1).astype(np.float32), "linear")
asset = generate(GenerateInputs(image=inp, name=c.name, provider="scene", light_hint="unknown", delight=False, n_gaussians=100000, mesh=suite_mesh(c.shape), camera=cam))
env = light_environment(c.light_b).prefilter()
t = {False: [], True: []}
for i in range(12):
    on = bool(i % 2)
    ang = np.radians(10 * i)
    view = Camera.look_at((4 * np.sin(ang), -4 * np.cos(ang), 1.0), (0, 0, 0), 40.0, 512, 512)
    t0 = time.perf_counter(); render(asset, view, env, replace(FINAL, specular_visibility=on)); t[on].append(time.perf_counter() - t0)
print("gaussians", len(asset.gaussians.means))
for on in (False, True): print("specular_visibility", on, "median s", round(float(np.median(t[on][1:])), 3), [round(x, 2) for x in t[on]])
print("ratio on/off", round(float(np.median(t[True][1:]) / np.median(t[False][1:])), 3))
