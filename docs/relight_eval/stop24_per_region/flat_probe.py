"""Light given, seed's cases read as a dielectric: how flat is the search's residual across roughness, and how does
the reading relight against a middle roughness (0.45, 0.65) solved instead? python flat_probe.py SEED OUT"""
import json, sys
import numpy as np
import relight.generate.pipeline as P
from relight.generate.delight.homogenize import Hypothesis, solve
from relight.generate.self_check import with_materials
from relight.generate.delight.materials import ROUGHNESS_CANDIDATES
from relight.evaluate.suite import view_camera, suite_input, score, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
seed, out = int(sys.argv[1]), sys.argv[2]
cfg = SuiteConfig(); cam = view_camera(cfg.size)
cap = {}
orig_solve = P.solve
def spy(p, hyp, scores, step):
    cap["p"], cap["hyp"], cap["scores"] = p, hyp, dict(scores)
    raise StopIteration
P.solve = spy
for case in suite_cases(seed):
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
    diel = {r: scores[f"({r:.3f}, 0.0)"] for r in ROUGHNESS_CANDIDATES if f"({r:.3f}, 0.0)" in scores}
    row = {"case": case.name, "true": (case.surface.roughness, case.surface.metallic), "read": (hyp.roughness, hyp.metallic),
           "diel_scores": diel, "spread": (max(diel.values()) - min(diel.values())) / min(diel.values()) if diel else None}
    if hyp.metallic == 0.0:
        for r in (hyp.roughness, 0.45, 0.65):
            mats = orig_solve(p, Hypothesis(r, 0.0, hyp.env, "forced"), {}, lambda *a, **k: None)
            res = render(with_materials(p.asset, mats), cam, env_b)
            row[f"relit_{r}"] = score(res.hdr, res.alpha, ref_b, cam, env_b)[0]["psnr"]
    print(json.dumps(row), flush=True)
    with open(out, "a") as f: f.write(json.dumps(row) + "\n")
