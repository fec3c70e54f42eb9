"""True uniform material, product FINAL render under A and under B vs Cycles (suite scoring), for named cases.
python fwd_a.py SEED NAMES(prefixes, comma)"""
import sys
import numpy as np
from relight.core.input_image import InputImage
from relight.evaluate.suite import SuiteConfig, score, view_camera
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
seed, names = int(sys.argv[1]), sys.argv[2].split(",")
cfg = SuiteConfig(); cam = view_camera(cfg.size)
for c in suite_cases(seed):
    if not any(c.name.startswith(n) for n in names): continue
    uni = (tuple(c.texture.colour_a), float(c.surface.roughness), float(c.surface.metallic if c.surface.kind != "mixed" else 0.0))
    out = []
    asset = None
    for L in (c.light_a, c.light_b):
        ref = render_object(c, L, cam, cfg.samples, uniform=uni)
        if asset is None:
            a = ref[..., 3:4]
            rgb = np.where(a > 1e-4, ref[..., :3] / np.maximum(a, 1e-4), 0)
            inp = InputImage.from_pixels(np.concatenate([rgb, a], -1).astype(np.float32), "linear")
            asset = generate(GenerateInputs(image=inp, name=c.name, provider="scene", light_hint="unknown", delight=False,
                                            n_gaussians=cfg.n_gaussians, mesh=suite_mesh(c.shape), camera=cam))
            g = asset.gaussians
            g.albedo[:] = np.asarray(uni[0], np.float32); g.roughness[:] = uni[1]; g.metallic[:] = uni[2]
        env = light_environment(L).prefilter()
        r = render(asset, cam, env)
        out.append(score(r.hdr, r.alpha, ref, cam, env)[0]["psnr"])
        np.save(f"/work/probe/s25/fwd_{c.name}_{'AB'[len(out)-1]}.npy", np.concatenate([r.hdr, r.alpha], -1))
    print(f"{c.name:36s} r {uni[1]:.2f} m {uni[2]:.0f} A {c.light_a.label():24s} {out[0]:.2f} | B {c.light_b.label():24s} {out[1]:.2f}", flush=True)
