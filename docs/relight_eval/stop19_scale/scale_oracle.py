"""Unknown-light oracle (kept as run: imports `relight` from the installed checkout): how much of the unknown method's loss is the albedo's global scale (and colour)?
python scale_oracle.py START N OUT.jsonl"""
import json, sys, time
from dataclasses import replace
import numpy as np

from relight.evaluate.suite import view_camera, suite_input, score, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
from relight.core.prefilter import SH_Y00 as Y00  # the constant SH basis function

start, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
cfg = SuiteConfig()
cam = view_camera(cfg.size)
for case in suite_cases(0)[start:start + n]:
    mesh = suite_mesh(case.shape)
    raw_a = render_object(case, case.light_a, cam, cfg.samples)
    ref_b = render_object(case, case.light_b, cam, cfg.samples)
    env_a, env_b = light_environment(case.light_a).prefilter(), light_environment(case.light_b).prefilter()
    inp, exposure = suite_input(raw_a, case.form)
    row = {"case": case.name, "form": case.form, "exposure": exposure, **case.categories()}
    for method, delight in (("baseline", False), ("unknown", True)):
        t = time.perf_counter()
        asset = generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint="unknown",
                                        delight=delight, n_gaussians=cfg.n_gaussians, mesh=mesh, camera=cam))
        row[method + "_s"] = time.perf_counter() - t
        alb = asset.gaussians.albedo.copy()
        def psnr_at(mult):
            g = replace(asset.gaussians, albedo=(alb * np.asarray(mult, np.float32)).astype(np.float32))
            r = render(replace(asset, gaussians=g), cam, env_b)
            return score(r.hdr, r.alpha, ref_b, cam, env_b)[0]["psnr"]
        row[method] = psnr_at(1.0)
        grid = np.exp(np.linspace(np.log(0.125), np.log(8), 13))
        ps = [psnr_at(s) for s in grid]
        k = int(np.argmax(ps)); s = grid[k]
        row[method + "_best_s"], row[method + "_best"] = float(s), float(ps[k])
        m = np.array([s, s, s])
        for _ in range(1):
            for c in range(3):
                cands = m[c] * np.exp(np.linspace(-0.45, 0.45, 7))
                vals = []
                for v in cands:
                    mm = m.copy(); mm[c] = v; vals.append(psnr_at(mm))
                m[c] = cands[int(np.argmax(vals))]
        row[method + "_best_rgb"] = m.tolist(); row[method + "_best_colour"] = float(psnr_at(m))
        if delight:
            sh = np.array(asset.meta["estimated_light_sh9"])
            row["light_mean_est"] = float(sh[0].mean() * Y00)
            row["albedo_p95"] = float(np.percentile(alb @ np.array([0.2126, 0.7152, 0.0722]), 95))
            row["est"] = (asset.meta["roughness"], asset.meta["metallic"])
    row["true_rm"] = (case.surface.roughness, case.surface.metallic)
    row["light_a_mean_true"] = float(np.mean(env_a.equirect @ np.array([0.2126, 0.7152, 0.0722]) *
                                             np.cos(np.linspace(np.pi/2, -np.pi/2, env_a.equirect.shape[0]))[:, None])
                                     / np.mean(np.cos(np.linspace(np.pi/2, -np.pi/2, env_a.equirect.shape[0]))) * env_a.strength)
    print(json.dumps(row), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
