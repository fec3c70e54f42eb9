"""True uniform material, product FINAL render under A and under B vs Cycles (suite scoring), for named cases, at 128
and at 256 lobe samples in one run. python fwd_k.py SEED NAMES(prefixes, comma; 'all')"""
import sys
from dataclasses import replace
from relight.evaluate.suite import score
from relight.evaluate.suite_scenes import light_environment
from relight.render.frame import render
from relight.render.settings import FINAL
from true_material import CAM, cycles_uniform, named_cases, true_material_asset, uniform_material

seed, names = int(sys.argv[1]), sys.argv[2].split(",")
for c in named_cases(seed, names):
    out = []
    asset = None
    for L in (c.light_a, c.light_b):
        ref = cycles_uniform(c, L)
        asset = asset or true_material_asset(c, ref)
        env = light_environment(L).prefilter()
        for k in (128, 256):
            r = render(asset, CAM, env, replace(FINAL, specular_samples=k))
            out.append(score(r.hdr, r.alpha, ref, CAM, env)[0]["psnr"])
    _, rough, metal = uniform_material(c)
    print(f"{c.name:36s} r {rough:.2f} m {metal:.0f} A {c.light_a.label():24s} {out[0]:.2f} {out[1]:.2f} | "
          f"B {c.light_b.label():24s} {out[2]:.2f} {out[3]:.2f}", flush=True)  # fmt: skip
