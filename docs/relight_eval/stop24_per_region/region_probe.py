"""Light given, the cases of the named texture kinds: PER_REGION off vs on (or on only, with a 4th argument `on`).
python region_probe.py SEED KIND[,KIND...] OUT [on]"""
import json, sys, time
import numpy as np
import relight.generate.delight.homogenize as H
import relight.generate.pipeline as P
from relight.evaluate.suite import view_camera, suite_input, score, SuiteConfig
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
seed, kind, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
settings = (True,) if sys.argv[4:] == ["on"] else (False, True)
cfg = SuiteConfig(); cam = view_camera(cfg.size)
orig = H.prepare
for case in suite_cases(seed):
    if case.texture.kind not in kind.split(","): continue
    mesh = suite_mesh(case.shape)
    raw_a = render_object(case, case.light_a, cam, cfg.samples); ref_b = render_object(case, case.light_b, cam, cfg.samples)
    env_a, env_b = light_environment(case.light_a).prefilter(), light_environment(case.light_b).prefilter()
    inp, exposure = suite_input(raw_a, case.form, cfg.photo_percentile, cfg.photo_level)
    given = env_a.with_transform(env_a.rotation_z, env_a.strength * exposure)
    row = {"case": case.name, "true": (case.surface.roughness, case.surface.metallic)}
    for on in settings:
        P.prepare = lambda *a, **k: orig(*a, **{**k, "per_region": on})
        asset = generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint="world", delight=True,
                                        n_gaussians=cfg.n_gaussians, mesh=mesh, camera=cam, world=given))
        res = render(asset, cam, env_b)
        row[f"psnr_{on}"] = score(res.hdr, res.alpha, ref_b, cam, env_b)[0]["psnr"]
        row[f"readings_{on}"] = asset.meta.get("material_readings")
        row[f"metal_share_{on}"] = float(asset.gaussians.metallic.mean())
    print(json.dumps(row), flush=True)
    with open(out, "a") as f: f.write(json.dumps(row) + "\n")
