"""Light given: per case, the search's scores and slope, and both metallic readings (each at its best roughness)
forced: reproduction and relit PSNR at v under B. python metal_probe.py SEED OUT [KINDS]"""
import json, sys
import numpy as np
import relight.generate.pipeline as P
from relight.generate.delight.homogenize import Hypothesis
from relight.generate.self_check import reproduction_psnr, with_materials
from relight.evaluate.suite import view_camera, suite_input, score, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
seed, out = int(sys.argv[1]), sys.argv[2]
skip = set(sys.argv[3].split(",")) if len(sys.argv) > 3 else {"metal_paint"}
cfg = SuiteConfig(); cam = view_camera(cfg.size)
cap = {}
orig_solve = P.solve
def spy(p, hyp, scores, step):
    cap["p"], cap["hyp"], cap["scores"] = p, hyp, dict(scores)
    raise StopIteration
P.solve = spy
done = set()
try:
    done = {json.loads(l)["case"] for l in open(out)}
except FileNotFoundError:
    pass
for case in suite_cases(seed):
    if any(k in case.name for k in skip) or case.name in done: continue
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
    cands = {}
    for k, v in scores.items():
        if k.startswith("("):
            r, m = (float(x) for x in k.strip("()").split(","))
            if m not in cands or v < cands[m][1]:
                cands[m] = (r, v)
    rows = {}
    for m, (r, s) in cands.items():
        mats = orig_solve(p, Hypothesis(r, m, hyp.env, "forced"), {}, lambda *a, **k: None)
        asset = with_materials(p.asset, mats)
        rep = reproduction_psnr(asset, p.camera_world, mats.light, p.image, p.valid, p.ceiling)
        res = render(asset, cam, env_b)
        relit = score(res.hdr, res.alpha, ref_b, cam, env_b)[0]["psnr"]
        rows[str(m)] = {"r": r, "search": s, "repro": rep, "relit": relit}
    rec = {"case": case.name, "true": (case.surface.roughness, case.surface.metallic), "read": (hyp.roughness, hyp.metallic),
           "slope": scores.get("metal_slope"), "scores": {k: v for k, v in scores.items()}, "rows": rows}
    print(case.name, rec["true"], rec["read"], "slope", rec["slope"], {m: (round(x["repro"], 2), round(x["relit"], 2)) for m, x in rows.items()}, flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(rec, default=float) + "\n")
