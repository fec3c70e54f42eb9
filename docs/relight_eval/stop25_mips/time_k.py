"""FINAL render time at 128 and 256 lobe samples, side by side, alternating (case 61's asset, 80k Gaussians, all
metal at roughness 0.5)."""
import time
from dataclasses import replace
from relight.evaluate.suite_scenes import light_environment
from relight.render.frame import render
from relight.render.settings import FINAL
from true_material import CAM, cycles_uniform, named_cases, true_material_asset

c = named_cases(0, ["61_"])[0]
asset = true_material_asset(c, cycles_uniform(c, c.light_a))
g = asset.gaussians
g.metallic[:] = 1.0
g.roughness[:] = 0.5
env = light_environment(c.light_a).prefilter()
for size in (256, 512):
    cm = CAM.resized(size, size)
    for k in (128, 256):  # warm
        render(asset, cm, env, replace(FINAL, specular_samples=k))
    t = {128: [], 256: []}
    for rep in range(3):
        for k in (128, 256):
            t0 = time.perf_counter()
            render(asset, cm, env, replace(FINAL, specular_samples=k))
            t[k].append(time.perf_counter() - t0)
    print(size, {k: round(min(v), 3) for k, v in t.items()}, "ratio %.2f" % (min(t[256]) / min(t[128])), flush=True)
