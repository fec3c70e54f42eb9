"""Unknown light on metals: METAL_MEDIAN (new) vs the floor-only scale (old). python metal_ab.py SEED NAMES OUT"""
import json, sys, time
import numpy as np
from relight.evaluate.suite import view_camera, suite_input, score, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.generate.delight import homogenize, light_fit
from relight.generate.delight.light_fit import ALBEDO_P95, WORLD_MEAN_RADIANCE, ALBEDO_MAX, Y00, LUM
from relight.render.frame import render

def old_scale(albedo_lum, env, metal_floor, scene_referred):
    scale = ALBEDO_P95 / max(float(np.percentile(albedo_lum, 95)), 1e-6)
    if scene_referred:
        level = float(env.sh9[0] @ LUM) * Y00
        if level > 0:
            scale = min(level / WORLD_MEAN_RADIANCE, ALBEDO_MAX / max(float(np.percentile(albedo_lum, 99)), 1e-6))
    if metal_floor > 0:
        scale = max(scale, metal_floor / max(float(np.percentile(albedo_lum, 5)), 1e-6))
    return scale

seed, names, out = int(sys.argv[1]), tuple(sys.argv[2].split(",")), sys.argv[3]
cfg = SuiteConfig()
cam = view_camera(cfg.size)
new_scale = light_fit.albedo_scale
for case in [c for c in suite_cases(seed) if c.name.startswith(names)]:
    mesh = suite_mesh(case.shape)
    raw_a = render_object(case, case.light_a, cam, cfg.samples)
    ref_b = render_object(case, case.light_b, cam, cfg.samples)
    env_b = light_environment(case.light_b).prefilter()
    inp, exposure = suite_input(raw_a, case.form)
    row = {"seed": seed, "case": case.name, **case.categories()}
    for method, delight, fn in (("baseline", False, new_scale), ("old", True, old_scale), ("new", True, new_scale)):
        homogenize.albedo_scale = fn
        t = time.perf_counter()
        asset = generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint="unknown",
                                        delight=delight, n_gaussians=cfg.n_gaussians, mesh=mesh, camera=cam))
        row[method + "_s"] = round(time.perf_counter() - t, 1)
        r = render(asset, cam, env_b)
        row[method] = score(r.hdr, r.alpha, ref_b, cam, env_b)[0]["psnr"]
        row[method + "_est"] = (round(asset.meta["roughness"], 2), round(asset.meta["metallic"], 2))
    row["true"] = (case.surface.roughness, case.surface.metallic)
    print(json.dumps(row), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
