"""Unknown light: the metal test's numbers per suite case, with the metal light fitted at several roughness priors.
python metal_scores.py SEED FIRST LAST OUT"""
import json, sys, time
import numpy as np
from relight.evaluate.suite import view_camera, suite_input, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate import pipeline
from relight.generate.pipeline import GenerateInputs, generate
from relight.generate.delight import homogenize as H
from relight.generate.delight.light_fit import albedo_contrast, estimate_light, estimate_metal_light
from relight.generate.delight.forward import affine_response
from relight.generate.delight.homogenize import unsaturated

class Stop(Exception):
    pass

seed, first, last, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
PRIORS = (0.3, 0.15, 0.5)
row = {}
orig = H.first_hypothesis
def probe(p, scores, step):
    t = time.perf_counter()
    fit_valid = p.small_valid & unsaturated(p.small_img, p.ceiling)
    env = estimate_light(p.asset, p.small_cam, p.small_img, fit_valid)
    c0d, c1d, alpha_s, _ = affine_response(p.asset, p.small_cam, env, 0.6, 0.0, H.LIGHT_FIT_RENDER)
    ok = p.small_valid & (alpha_s > 0.99)
    row["contrast"] = albedo_contrast(p.small_img, c0d, c1d, ok)
    for r in PRIORS:
        metal_env = estimate_metal_light(p.asset, p.small_cam, p.small_img, fit_valid, r)
        c0m, c1m, alpha_m, _ = affine_response(p.asset, p.small_cam, metal_env, r, 1.0, H.METAL_FIT_RENDER)
        row[f"cm_{r}"] = albedo_contrast(p.small_img, c0m, c1m, ok & (alpha_m > 0.99))
    hyp = orig(p, {}, lambda *a: None)
    row["decided"] = (hyp.roughness, hyp.metallic, hyp.how)
    row["probe_s"] = round(time.perf_counter() - t, 1)
    raise Stop
pipeline.first_hypothesis = probe
cfg = SuiteConfig()
cam = view_camera(cfg.size)
for case in suite_cases(seed)[first:last]:
    row.clear()
    mesh = suite_mesh(case.shape)
    raw_a = render_object(case, case.light_a, cam, cfg.samples)
    inp, exposure = suite_input(raw_a, case.form)
    try:
        generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint="unknown", delight=True,
                                n_gaussians=cfg.n_gaussians, mesh=mesh, camera=cam))
    except Stop:
        pass
    rec = {"seed": seed, "case": case.name, **case.categories(), "true": (case.surface.roughness, case.surface.metallic), **row}
    print(json.dumps(rec), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")
