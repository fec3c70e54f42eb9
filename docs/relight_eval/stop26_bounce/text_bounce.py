"""Forward cases against Cycles at several bounce settings, one case at a time. Usage:
CONFIGS=D1,L8 text_bounce.py text/sky_low/0 bowl/sky_high/0 ... (D: the mean of the occluded surfaces facing back
along each direction, L: linked landing points; the number: bounces)."""
import os
import sys
import time
from dataclasses import replace

from forward_case import forward_case, score
from relight.render.frame import render
from relight.render.settings import FINAL

CONFIGS = [(c[0] == "L", int(c[1:])) for c in os.environ.get("CONFIGS", "D1,L8").split(",")]
for spec in sys.argv[1:]:
    asset, cam, env, ground, cyc = forward_case(spec)
    out = []
    for linked, bounces in CONFIGS:
        t = time.perf_counter()
        res = render(asset, cam, env, replace(FINAL, bounces=bounces, linked_bounces=linked), ground=ground)
        out.append((score(res, cyc, cam, env)["psnr"], time.perf_counter() - t))
    print(f"{spec:24s} " + "  ".join(f"{p:.2f} ({t:.1f}s)" for p, t in out), flush=True)
