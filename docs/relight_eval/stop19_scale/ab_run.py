"""The A/B loop of linear_ab.py and metal_ab.py: per suite case, generate with the light unknown under the baseline
(no delighting), the old albedo_scale and the new one, in one process, and score each as `relight eval relight
--suite random` does (PSNR at view v under light B against Cycles)."""
import json, time
from relight.evaluate.suite import view_camera, suite_input, score, SuiteConfig
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.generate.delight import homogenize, light_fit
from relight.render.frame import render


def run(seed, cases, old_scale, out, repro=False):
    """Append one JSON row per case in `cases` to `out` (and print it). old_scale stands in for
    light_fit.albedo_scale in the "old" arm; repro also records each asset's reproduction PSNR."""
    cfg = SuiteConfig()
    cam = view_camera(cfg.size)
    new_scale = light_fit.albedo_scale
    for case in cases:
        mesh = suite_mesh(case.shape)
        raw_a = render_object(case, case.light_a, cam, cfg.samples)
        ref_b = render_object(case, case.light_b, cam, cfg.samples)
        env_b = light_environment(case.light_b).prefilter()
        inp, _ = suite_input(raw_a, case.form)
        row = {"seed": seed, "case": case.name, **case.categories()}
        for method, delight, fn in (("baseline", False, new_scale), ("old", True, old_scale), ("new", True, new_scale)):
            homogenize.albedo_scale = fn
            t = time.perf_counter()
            asset = generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint="unknown",
                                            delight=delight, n_gaussians=cfg.n_gaussians, mesh=mesh, camera=cam))
            row[method + "_s"] = round(time.perf_counter() - t, 1)
            r = render(asset, cam, env_b)
            row[method] = score(r.hdr, r.alpha, ref_b, cam, env_b)[0]["psnr"]
            row[method + "_est"] = (round(asset.meta["roughness"], 2), round(asset.meta["metallic"], 2))
            if repro:
                row[method + "_repro"] = asset.meta["reproduction_psnr"]
        homogenize.albedo_scale = new_scale
        row["true"] = (case.surface.roughness, case.surface.metallic)
        print(json.dumps(row), flush=True)
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")
