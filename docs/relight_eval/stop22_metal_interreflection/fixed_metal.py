"""relight eval relight's metal objects (vase, bevel_box) on its main and held-out pairs: scene unknown / world at v.
python fixed_metal.py TAG"""
import sys, json
from relight.evaluate.relight import run_case, RelightConfig, LIGHT_PAIRS, HELD_OUT_PAIRS
cfg = RelightConfig()
tag = sys.argv[1]
for obj in ("vase", "bevel_box"):
    for pairs, which in ((LIGHT_PAIRS, "main"), (HELD_OUT_PAIRS, "held")):
        for a, b in pairs:
            row, _ = run_case(obj, a, b, cfg, log=lambda *x: None)
            print(json.dumps({"tag": tag, "set": which, "obj": obj, "a": a, "b": b, **{k: round(row[k], 2) for k in ("scene_baseline_v", "scene_unknown_v", "scene_world_v", "inflate_unknown_v")}}), flush=True)
