"""Light given: for named cases, every (roughness, metallic) forced: the search's residual score, the self-check's
reproduction, and the relit PSNR at v under B. python rough_probe.py SEED NAMES OUT"""
import json, sys
from dataclasses import replace
import numpy as np
import relight.generate.pipeline as P
from relight.generate.delight.homogenize import Hypothesis, solve
from relight.generate.self_check import reproduction_psnr, with_materials
from relight.evaluate.suite import view_camera, suite_input, score, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
seed, names, out = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
cfg = SuiteConfig(); cam = view_camera(cfg.size)
cap = {}
orig_solve = P.solve
def spy(p, hyp, scores, step):
    cap["p"], cap["hyp"], cap["scores"] = p, hyp, dict(scores)
    raise StopIteration
P.solve = spy
for case in suite_cases(seed):
    if not any(case.name.startswith(n) for n in names): continue
    raw_a = render_object(case, case.light_a, cam, cfg.samples); ref_b = render_object(case, case.light_b, cam, cfg.samples)
    env_a, env_b = light_environment(case.light_a).prefilter(), light_environment(case.light_b).prefilter()
    inp, exposure = suite_input(raw_a, case.form, cfg.photo_percentile, cfg.photo_level)
    given = env_a.with_transform(env_a.rotation_z, env_a.strength * exposure)
    try:
        generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint="world", delight=True,
                                n_gaussians=cfg.n_gaussians, mesh=suite_mesh(case.shape), camera=cam, world=given))
    except StopIteration:
        pass
    p, hyp, scores = cap["p"], cap["hyp"], cap["scores"]
    mask = p.valid  # close enough for the check
    print(case.name, "true", case.surface.roughness, case.surface.metallic, "read", hyp.roughness, hyp.metallic, "slope", scores.get("metal_slope"), flush=True)
    rows = []
    for m in (0.0, 1.0):
        for r in (0.1, 0.2, 0.3, 0.45, 0.65, 0.85):
            mats = orig_solve(p, Hypothesis(r, m, hyp.env, "forced"), {}, lambda *a, **k: None)
            asset = with_materials(p.asset, mats)
            rep = reproduction_psnr(asset, p.camera_world, mats.light, p.image, mask, p.ceiling)
            res = render(asset, cam, env_b)
            relit = score(res.hdr, res.alpha, ref_b, cam, env_b)[0]["psnr"]
            key = f"({r:.3f}, {m})"
            rows.append({"r": r, "m": m, "search": scores.get(key), "repro": rep, "relit": relit})
            print(f"   r {r:.2f} m {m:.0f} search {scores.get(key, float('nan')):.4f} repro {rep:.2f} relit {relit:.2f}", flush=True)
    with open(out, "a") as f:
        f.write(json.dumps({"case": case.name, "true": (case.surface.roughness, case.surface.metallic),
                            "read": (hyp.roughness, hyp.metallic), "slope": scores.get("metal_slope"), "rows": rows}) + "\n")
