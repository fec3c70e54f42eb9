"""Can a dielectric's highlight (its fixed specular reflectance) fix the unknown light's scale? Regression per albedo
region: photo = k c0 + b_R c1 (luminance), c0/c1 the affine response under a light of unit scale. Checked with the
given light (k should come out 1) and the fitted one (k against the oracle factor of scale_oracle)."""
import json, sys
import numpy as np
import relight.generate.delight.homogenize as hz
from relight.generate.delight.forward import affine_response, SEARCH_RENDER
from relight.generate.delight.regions import albedo_regions
from relight.generate.delight.materials import unsaturated
from relight.core.colour import LUMINANCE as LUM
from relight.evaluate.suite import SuiteConfig, selected_cases
from suite_case import generate_unknown, suite_case

def regress(p, env, rough, nreg):
    c0, c1, alpha, _ = affine_response(p.asset, p.small_cam, env, rough, 0.0, SEARCH_RENDER)
    ok = p.small_valid & unsaturated(p.small_img, p.ceiling) & (alpha > 0.99)
    lab = albedo_regions(p.small_img, c0, c1, ok, nreg)
    y, u, v = p.small_img[ok] @ LUM, c0[ok] @ LUM, c1[ok] @ LUM
    L = lab[ok]
    A = np.zeros((len(y), 1 + nreg)); A[:, 0] = u
    A[np.arange(len(y)), 1 + L] = v
    w = 1.0 / np.maximum(y, 1e-3) ** 0.5
    sol = np.linalg.lstsq(A * w[:, None], y * w, rcond=None)[0]
    return float(sol[0]), float(np.std(u / np.maximum(v, 1e-6)))

oracle = {json.loads(l)["case"]: json.loads(l) for l in open(sys.argv[2])}
cfg = SuiteConfig(seed=0)
only = set(sys.argv[1].split(","))
state = {}
orig_first, orig_scale = hz.first_hypothesis, hz.albedo_scale
def first(p, scores, step):
    h = orig_first(p, scores, step)
    state["p"], state["h"] = p, h
    return h
def scale(*a, **k):
    s = orig_scale(*a, **k); state["prior"] = s; return s
import relight.generate.pipeline as pl
hz.first_hypothesis, hz.albedo_scale, pl.first_hypothesis = first, scale, first
for case in selected_cases(cfg):
    if case.name not in only:
        continue
    sc = suite_case(case)
    given = sc.given
    state.clear()
    generate_unknown(sc)
    p, h = state["p"], state["h"]
    if h.metallic:
        print(case.name, "read as metal"); continue
    row = dict(case=case.name, material=case.surface.kind, rough_true=case.surface.roughness, rough=h.roughness,
               oracle=oracle[case.name]["scale"], prior=state["prior"])
    for nreg in (3, 8):
        kg, _ = regress(p, given, case.surface.roughness, nreg)
        ku, spread = regress(p, h.env, h.roughness, nreg)
        row[f"k_given{nreg}"] = kg; row[f"pred{nreg}"] = (1.0 / ku) / state["prior"] if ku > 0 else None
        row["spread"] = spread
    print(json.dumps(row), flush=True)
