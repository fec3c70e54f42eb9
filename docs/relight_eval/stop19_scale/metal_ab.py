"""Unknown light on metals: METAL_MEDIAN (new) vs the floor-only scale (old). python metal_ab.py SEED NAMES OUT"""
import sys
import numpy as np
from relight.core.prefilter import SH_Y00
from relight.evaluate.suite_cases import suite_cases
from relight.generate.delight.light_fit import ALBEDO_P95, WORLD_MEAN_RADIANCE, ALBEDO_MAX, LUM
from ab_run import run

def old_scale(albedo_lum, env, metal_floor, scene_referred):
    scale = ALBEDO_P95 / max(float(np.percentile(albedo_lum, 95)), 1e-6)
    if scene_referred:
        level = float(env.sh9[0] @ LUM) * SH_Y00
        if level > 0:
            scale = min(level / WORLD_MEAN_RADIANCE, ALBEDO_MAX / max(float(np.percentile(albedo_lum, 99)), 1e-6))
    if metal_floor > 0:
        scale = max(scale, metal_floor / max(float(np.percentile(albedo_lum, 5)), 1e-6))
    return scale

seed, names, out = int(sys.argv[1]), tuple(sys.argv[2].split(",")), sys.argv[3]
run(seed, [c for c in suite_cases(seed) if c.name.startswith(names)], old_scale, out)
