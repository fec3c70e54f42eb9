import json, sys, numpy as np
from relight.evaluate.suite import view_camera, suite_input, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import render_object
seed, out = int(sys.argv[1]), sys.argv[2]
cfg = SuiteConfig(); cam = view_camera(cfg.size)
LUM = np.array([0.2126, 0.7152, 0.0722])
with open(out, "w") as f:
    for case in suite_cases(seed):
        raw = render_object(case, case.light_a, cam, cfg.samples)
        inp, e = suite_input(raw, case.form, cfg.photo_percentile, cfg.photo_level)
        lin = inp.linear; m = lin[..., 3] > 0.99
        y = lin[..., :3][m] @ LUM
        f.write(json.dumps({"case": case.name, "mean": float(y.mean()), "p50": float(np.median(y)), "p95": float(np.percentile(y, 95))}) + "\n")
