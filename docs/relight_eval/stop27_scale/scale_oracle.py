"""Unknown light: how much of the error is the albedo's global scale / colour? For each case of a suite seed,
generate with the light unknown, relight under B, and also with the asset's albedo times the best global scale
(luminance) and the best per-channel scale, found by a search of re-renders."""
import json, sys, time
from dataclasses import replace
import numpy as np
from relight.evaluate.suite import SuiteConfig, selected_cases, view_camera, suite_input, score
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render

seed, start, n, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = SuiteConfig(seed=seed, start=start, cases=n)
cam = view_camera(cfg.size)
rows = []
for case in selected_cases(cfg):
    mesh = suite_mesh(case.shape)
    raw_a = render_object(case, case.light_a, cam, cfg.samples)
    ref_b = render_object(case, case.light_b, cam, cfg.samples)
    env_b = light_environment(case.light_b).prefilter()
    inp, exposure = suite_input(raw_a, case.form)
    asset = generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint="unknown",
                                    n_gaussians=cfg.n_gaussians, mesh=mesh, camera=cam))
    g = asset.gaussians
    def psnr_at(s):
        a2 = replace(asset, gaussians=replace(g, albedo=np.clip(g.albedo * np.asarray(s, np.float32), 0, 1)))
        r = render(a2, cam, env_b)
        return score(r.hdr, r.alpha, ref_b, cam, env_b)[0]["psnr"]
    r1 = render(asset, cam, env_b)
    p0 = score(r1.hdr, r1.alpha, ref_b, cam, env_b)[0]["psnr"]
    def approx(s3):
        return score(r1.hdr * np.asarray(s3, np.float32), r1.alpha, ref_b, cam, env_b)[0]["psnr"]
    grid = 2.0 ** np.arange(-3, 3.01, 0.125)
    ps = [approx(np.full(3, s)) for s in grid]
    best_s = float(grid[int(np.argmax(ps))])
    s3 = np.full(3, best_s); b3 = max(ps)
    for d in (0.5, 0.25, 0.125, 0.0625):
        for c in range(3):
            for sgn in (-1, 1):
                t = s3.copy(); t[c] *= 2 ** (sgn * d)
                v = approx(t)
                if v > b3: b3, s3 = v, t
    pg = psnr_at(best_s); best3 = psnr_at(s3)
    row = dict(case=case.name, **case.categories(), unknown=p0, scale=float(best_s), scaled=pg,
               scale3=[float(x) for x in s3], scaled3=best3, est=(asset.meta["roughness"], asset.meta["metallic"]),
               true=(case.surface.roughness, case.surface.metallic))
    print(json.dumps(row), flush=True)
    rows.append(row)
json.dump(rows, open(out, "w"), indent=1)
