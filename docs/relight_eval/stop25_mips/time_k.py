"""FINAL render time at 128 and 256 lobe samples, side by side, alternating (case 61's asset, 80k Gaussians)."""
import sys, time
from dataclasses import replace
import numpy as np
from relight.core.input_image import InputImage
from relight.evaluate.suite import SuiteConfig, view_camera
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
from relight.render.settings import FINAL
cfg = SuiteConfig(); cam = view_camera(cfg.size)
c = next(c for c in suite_cases(0) if c.name.startswith("61_"))
ref = render_object(c, c.light_a, cam, cfg.samples)
a = ref[..., 3:4]; rgb = np.where(a > 1e-4, ref[..., :3] / np.maximum(a, 1e-4), 0)
inp = InputImage.from_pixels(np.concatenate([rgb, a], -1).astype(np.float32), "linear")
asset = generate(GenerateInputs(image=inp, name=c.name, provider="scene", light_hint="unknown", delight=False,
                                n_gaussians=cfg.n_gaussians, mesh=suite_mesh(c.shape), camera=cam))
g = asset.gaussians; g.metallic[:] = 1.0; g.roughness[:] = 0.5
env = light_environment(c.light_a).prefilter()
for size in (256, 512):
    cm = cam.resized(size, size)
    for k in (128, 256): render(asset, cm, env, replace(FINAL, specular_samples=k))  # warm
    t = {128: [], 256: []}
    for rep in range(3):
        for k in (128, 256):
            t0 = time.perf_counter(); render(asset, cm, env, replace(FINAL, specular_samples=k)); t[k].append(time.perf_counter() - t0)
    print(size, {k: round(min(v), 3) for k, v in t.items()}, "ratio %.2f" % (min(t[256]) / min(t[128])), flush=True)
