"""Is the light's absolute scale in the photo (dielectric specular = F0 x light)? For each case the unknown path reads
as a dielectric: residual_score vs a light multiplier s (raw fit x s), against the oracle multiplier from curve_s0.
python scale_evidence.py SEED CURVES.jsonl OUT"""
import json, sys
import numpy as np
import relight.generate.pipeline as P
import relight.generate.delight.homogenize as H
from relight.generate.delight.forward import affine_response
from relight.generate.delight.materials import residual_score, LOCAL_SIGMA, regularised_inverse
from relight.generate.delight.light_fit import albedo_scale
from relight.core.colour import LUMINANCE as LUM
from relight.evaluate.suite import view_camera, suite_input, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.generate.delight.materials import SEARCH_RENDER
seed, curves, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
best = {}
for l in open(curves):
    r = json.loads(l); best[r["case"]] = (r["grid"][int(np.argmax(r["psnr"]))], r["est"][1])
cfg = SuiteConfig(); cam = view_camera(cfg.size)
cap = {}
orig_solve = P.solve
def spy(p, hyp, scores, step):
    cap["p"], cap["hyp"] = p, hyp
    raise StopIteration
P.solve = spy
mults = np.exp(np.linspace(np.log(1/16), np.log(16), 17))
for case in suite_cases(seed):
    if case.name not in best or best[case.name][1] != 0: continue
    raw_a = render_object(case, case.light_a, cam, cfg.samples)
    inp, exposure = suite_input(raw_a, case.form, cfg.photo_percentile, cfg.photo_level)
    try:
        generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint="unknown", delight=True,
                                n_gaussians=cfg.n_gaussians, mesh=suite_mesh(case.shape), camera=cam))
    except StopIteration:
        pass
    p, hyp = cap["p"], cap["hyp"]
    if hyp.metallic: continue
    # the prior's scale P, as solve computes it
    c0, c1, _, _ = affine_response(p.asset, p.camera_world, hyp.env, hyp.roughness, 0.0)
    a = regularised_inverse(p.image, c0, c1, p.valid, 2.0 * LOCAL_SIGMA * p.k, 0.0, p.ceiling)
    Ps = albedo_scale(a[p.valid] @ LUM, hyp.env, 0.0, bool(np.isinf(p.ceiling)))
    oracle_light = 1.0 / (Ps * best[case.name][0])
    res = {}
    for r in (0.1, 0.3, hyp.roughness, 0.65):
        vals = []
        for s in mults:
            env = hyp.env.with_transform(hyp.env.rotation_z, hyp.env.strength * s)
            c0, c1, al, _ = affine_response(p.asset, p.small_cam, env, r, 0.0, SEARCH_RENDER)
            ok = p.small_valid & (al > 0.99)
            vals.append(residual_score(p.small_img, c0, c1, ok, LOCAL_SIGMA, 0.0, 1.0, p.ceiling))
        res[str(r)] = vals
    k = int(np.argmin(res[str(hyp.roughness)]))
    row = {"case": case.name, "rough": hyp.roughness, "true_r": case.surface.roughness, "P": Ps,
           "oracle_light": oracle_light, "mults": mults.tolist(), "res": res}
    print(f"{case.name:34s} r {hyp.roughness:.2f} (true {case.surface.roughness:.2f}) prior light x{1/Ps:6.3f} oracle x{oracle_light:6.3f} argmin x{mults[k]:6.3f}  "
          + " ".join(f"{v:.4f}" for v in res[str(hyp.roughness)]), flush=True)
    with open(out, "a") as f: f.write(json.dumps(row) + "\n")
