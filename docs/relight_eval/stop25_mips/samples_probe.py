"""Forward render of named cases with their true uniform material under A (or B), at FINAL with 64 to 1024 lobe
samples, against Cycles: PSNR (suite scoring), render time, and the mean radiance ours / Cycles over the object.
    python samples_probe.py SEED NAME[,NAME] [A|B]"""
import sys
import time
from dataclasses import replace
from relight.evaluate.suite import score
from relight.render.frame import render
from relight.render.settings import FINAL
from true_material import CAM, inside_ratio, probe_cases

for c, ref, asset, env in probe_cases(sys.argv[1:]):
    for k in (64, 128, 256, 512, 1024):
        t0 = time.time()
        r = render(asset, CAM, env, replace(FINAL, specular_samples=k))
        dt = time.time() - t0
        p = score(r.hdr, r.alpha, ref, CAM, env)[0]["psnr"]
        print(f"{c.name:30s} ss{k:<7d} {p:.2f} {dt:.2f}s ours/ref inside {inside_ratio(r.hdr, ref).round(3)}",
              flush=True)  # fmt: skip
