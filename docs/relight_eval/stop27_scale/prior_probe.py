"""The unknown light's scale under other priors, relit under B against Cycles, per case of a suite seed.

    python prior_probe.py SEED FORMS VARIANTS REPORT OUT [CASES]

FORMS: photo,linear. VARIANTS, comma-separated:
  p95=X       a photo's dielectric puts its 95th-percentile albedo luminance at X (the code's ALBEDO_P95 is 0.8)
  span        ... at the geometric centre of what the albedo's span allows, both ends log-uniform between the
              ColorChecker's black and white (0.031, 0.90): sqrt(0.031 x 0.90 x min(p95 / p5, 0.90 / 0.031))
  metal-level a float render's metal keeps the world's level (as its dielectric does) instead of METAL_MEDIAN
  metal-mix   ... the geometric mean of the two
REPORT: a suite report.json of the same seed, for the baseline's PSNR (the baseline does not depend on the prior).
CASES: only these case names (comma-separated)."""

import json
import sys

import numpy as np

import relight.generate.delight.homogenize as hz
import relight.generate.delight.light_fit as lf
from relight.evaluate.suite import SuiteConfig, score, selected_cases
from relight.render.frame import render
from suite_case import CAM, generate_unknown, suite_case

DARKEST, BRIGHTEST = 0.031, 0.90
ORIGINAL = lf.albedo_scale


def variant(name: str):
    """An albedo_scale (same arguments) for one variant."""

    def scale(y, env, floor, scene_referred):
        s0 = ORIGINAL(y, env, floor, scene_referred)
        top = float(np.percentile(y, 95))
        if floor <= 0 and not scene_referred and name.startswith("p95="):
            return float(name[4:]) / max(top, 1e-6)
        if floor <= 0 and not scene_referred and name == "span":
            span = min(max(top / max(float(np.percentile(y, 5)), 1e-6), 1.0), BRIGHTEST / DARKEST)
            return float(np.sqrt(DARKEST * BRIGHTEST * span)) / max(top, 1e-6)
        if floor > 0 and scene_referred and name.startswith("metal-"):
            level = float(env.sh9[0] @ lf.LUM) * lf.SH_Y00 / lf.WORLD_MEAN_RADIANCE
            lo = floor / max(float(np.percentile(y, 5)), 1e-6)
            hi = 1.0 / max(float(np.percentile(y, 99)), 1e-6)
            s = level if name == "metal-level" else float(np.sqrt(level * s0))
            return float(min(max(s, lo), max(hi, lo)))
        return s0

    return scale


def main():
    seed, forms, names, report, out = sys.argv[1:6]
    forms, names = forms.split(","), names.split(",")
    only = set(sys.argv[6].split(",")) if len(sys.argv) > 6 else set()
    base = {r["case"]: r for r in json.load(open(report))["cases"]}
    rows = []
    for case in selected_cases(SuiteConfig(seed=int(seed))):
        if case.form not in forms or (only and case.name not in only):
            continue
        sc = suite_case(case)
        row = dict(case=case.name, **case.categories(), baseline=base[case.name]["baseline_psnr"],
                   before=base[case.name]["unknown_psnr"])
        for name in names:
            hz.albedo_scale = variant(name)
            r = render(generate_unknown(sc), CAM, sc.env_b)
            row[name] = score(r.hdr, r.alpha, sc.ref_b, CAM, sc.env_b)[0]["psnr"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    json.dump(rows, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
