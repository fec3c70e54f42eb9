"""True uniform material, product FINAL render under A and under B vs Cycles (suite scoring), for named cases; each
render saved for show.py. python fwd_a.py SEED NAMES(prefixes, comma)"""
import sys
import numpy as np
from relight.evaluate.suite import score
from relight.evaluate.suite_scenes import light_environment
from relight.render.frame import render
from true_material import CAM, cycles_uniform, named_cases, true_material_asset, uniform_material

seed, names = int(sys.argv[1]), sys.argv[2].split(",")
for c in named_cases(seed, names):
    out = []
    asset = None
    for which, L in (("A", c.light_a), ("B", c.light_b)):
        ref = cycles_uniform(c, L)
        asset = asset or true_material_asset(c, ref)
        env = light_environment(L).prefilter()
        r = render(asset, CAM, env)
        out.append(score(r.hdr, r.alpha, ref, CAM, env)[0]["psnr"])
        np.save(f"/work/probe/s25/fwd_{c.name}_{which}.npy", np.concatenate([r.hdr, r.alpha], -1))
    _, rough, metal = uniform_material(c)
    print(f"{c.name:36s} r {rough:.2f} m {metal:.0f} A {c.light_a.label():24s} {out[0]:.2f} | "
          f"B {c.light_b.label():24s} {out[1]:.2f}", flush=True)  # fmt: skip
