"""Forward render of named cases with their true uniform material under A (or B), at FINAL with 64 to 1024 lobe
samples, against Cycles: PSNR (suite scoring), render time, and the mean radiance ours / Cycles over the object.
    python samples_probe.py SEED NAME[,NAME] [A|B]"""
import sys
import time
from dataclasses import replace
from relight.evaluate.suite import score
from relight.evaluate.suite_scenes import light_environment
from relight.render.frame import render
from relight.render.settings import FINAL
from true_material import CAM, cycles_uniform, inside_ratio, named_cases, true_material_asset

seed, names = int(sys.argv[1]), sys.argv[2].split(",")
which = sys.argv[3] if len(sys.argv) > 3 else "A"
for c in named_cases(seed, names):
    L = c.light_a if which == "A" else c.light_b
    ref = cycles_uniform(c, L)
    asset = true_material_asset(c, ref)
    env = light_environment(L).prefilter()
    for k in (64, 128, 256, 512, 1024):
        t0 = time.time()
        r = render(asset, CAM, env, replace(FINAL, specular_samples=k))
        dt = time.time() - t0
        p = score(r.hdr, r.alpha, ref, CAM, env)[0]["psnr"]
        print(f"{c.name:30s} ss{k:<7d} {p:.2f} {dt:.2f}s ours/ref inside {inside_ratio(r.hdr, ref).round(3)}",
              flush=True)  # fmt: skip
