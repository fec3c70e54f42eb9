"""Unknown light on float linear inputs: the world-level prior (new) against the albedo prior (old), same run.
python linear_ab.py SEED START N OUT.jsonl"""
import sys
from relight.evaluate.suite_cases import suite_cases
from relight.generate.delight import light_fit
from ab_run import run

seed, start, n, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
new_scale = light_fit.albedo_scale
old_scale = lambda y, env, floor, scene_referred: new_scale(y, env, floor, False)
run(seed, [c for c in suite_cases(seed)[start:start + n] if c.form == "linear"], old_scale, out, repro=True)
