"""Per case, unknown method: PSNR at view v under B as a function of a global albedo factor (25 factors 1/8..8),
plus the delivered albedo's statistics and the true texture's colours. python scale_curve.py SEED START N OUT"""
import json, sys, time
from dataclasses import replace
import numpy as np
from relight.evaluate.suite import view_camera, suite_input, score, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
LUM = np.array([0.2126, 0.7152, 0.0722])
seed, start, n, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = SuiteConfig()
cam = view_camera(cfg.size)
grid = np.exp(np.linspace(np.log(0.125), np.log(8), 25))
for case in suite_cases(seed)[start:start + n]:
    mesh = suite_mesh(case.shape)
    raw_a = render_object(case, case.light_a, cam, cfg.samples)
    ref_b = render_object(case, case.light_b, cam, cfg.samples)
    env_b = light_environment(case.light_b).prefilter()
    inp, exposure = suite_input(raw_a, case.form, cfg.photo_percentile, cfg.photo_level)
    row = {"case": case.name, "form": case.form, "exposure": exposure, **case.categories(),
           "true_rm": (case.surface.roughness, case.surface.metallic),
           "colour_a": case.texture.colour_a, "colour_b": case.texture.colour_b}
    t = time.perf_counter()
    asset = generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint="unknown",
                                    delight=True, n_gaussians=cfg.n_gaussians, mesh=mesh, camera=cam))
    row["seconds"] = time.perf_counter() - t
    alb = asset.gaussians.albedo.copy()
    ps = []
    for s in grid:
        g = replace(asset.gaussians, albedo=(alb * np.float32(s)).astype(np.float32))
        r = render(replace(asset, gaussians=g), cam, env_b)
        ps.append(score(r.hdr, r.alpha, ref_b, cam, env_b)[0]["psnr"])
    row["grid"] = grid.tolist(); row["psnr"] = ps
    y = alb @ LUM
    row["alb"] = {k: float(v) for k, v in (("p5", np.percentile(y, 5)), ("p50", np.median(y)), ("p95", np.percentile(y, 95)),
                                           ("p99", np.percentile(y, 99)), ("mean", y.mean()))}
    row["est"] = (asset.meta["roughness"], asset.meta["metallic"])
    row["meta_keys"] = sorted(asset.meta.keys())
    print(case.name, "delivered %.2f best %.2f at %.2f" % (ps[12], max(ps), grid[int(np.argmax(ps))]), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
