"""Unknown light: how much of the error is the albedo's global scale / colour? For each case of a suite seed,
generate with the light unknown, relight under B, and also with the asset's albedo times the best global scale
(luminance) and the best per-channel scale. The factors are searched on the relit frame scaled (a close guide: a
dielectric's highlight does not scale with its albedo); the figures reported re-render the asset so scaled."""
import json, sys
from dataclasses import replace
import numpy as np
from relight.evaluate.suite import SuiteConfig, selected_cases, score
from relight.render.frame import render
from suite_case import CAM as cam, generate_unknown, suite_case

seed, start, n, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = []
for case in selected_cases(SuiteConfig(seed=seed, start=start, cases=n)):
    sc = suite_case(case)
    ref_b, env_b = sc.ref_b, sc.env_b
    asset = generate_unknown(sc)
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
