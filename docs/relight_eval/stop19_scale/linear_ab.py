"""Unknown light on float linear inputs: the world-level prior (new) against the albedo prior (old), same run.
python linear_ab.py SEED START N OUT.jsonl"""
import json, sys, time
import numpy as np
from relight.evaluate.suite import view_camera, suite_input, score, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.generate.delight import homogenize, light_fit
from relight.render.frame import render

seed, start, n, out = map(str, sys.argv[1:5]); seed, start, n = int(seed), int(start), int(n)
cfg = SuiteConfig()
cam = view_camera(cfg.size)
new_scale = light_fit.albedo_scale
old_scale = lambda y, env, floor, scene_referred: new_scale(y, env, floor, False)
for case in suite_cases(seed)[start:start + n]:
    if case.form != "linear":
        continue
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
        row[method + "_repro"] = asset.meta["reproduction_psnr"]
    row["true"] = (case.surface.roughness, case.surface.metallic)
    print(json.dumps(row), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
