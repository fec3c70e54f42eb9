"""Forward render of named cases with their true uniform material under A (or B), at FINAL with 64 to 1024 lobe
samples, against Cycles: PSNR (suite scoring), render time, and the mean radiance ours / Cycles over the object.
    python samples_probe.py SEED NAME[,NAME] [A|B]"""
import sys
from dataclasses import replace
import numpy as np
from relight.core.input_image import InputImage
from relight.evaluate.suite import SuiteConfig, score, view_camera
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
from relight.render.settings import FINAL
seed, names = int(sys.argv[1]), sys.argv[2].split(",")
which = sys.argv[3] if len(sys.argv) > 3 else "A"
cfg = SuiteConfig(); cam = view_camera(cfg.size)
for c in suite_cases(seed):
    if not any(c.name.startswith(n) for n in names): continue
    uni = (tuple(c.texture.colour_a), float(c.surface.roughness), float(c.surface.metallic if c.surface.kind != "mixed" else 0.0))
    L = c.light_a if which == "A" else c.light_b
    ref = render_object(c, L, cam, cfg.samples, uniform=uni)
    a = ref[..., 3:4]
    rgb = np.where(a > 1e-4, ref[..., :3] / np.maximum(a, 1e-4), 0)
    inp = InputImage.from_pixels(np.concatenate([rgb, a], -1).astype(np.float32), "linear")
    asset = generate(GenerateInputs(image=inp, name=c.name, provider="scene", light_hint="unknown", delight=False,
                                    n_gaussians=cfg.n_gaussians, mesh=suite_mesh(c.shape), camera=cam))
    g = asset.gaussians
    g.albedo[:] = np.asarray(uni[0], np.float32); g.roughness[:] = uni[1]; g.metallic[:] = uni[2]
    env = light_environment(L).prefilter()
    m = ref[..., 3] > 0.5
    import time
    for lab, st in [(f"ss{k}", replace(FINAL, specular_samples=k)) for k in (64, 128, 256, 512, 1024)]:
        t0 = time.time(); r = render(asset, cam, env, st); dt = time.time() - t0
        p = score(r.hdr, r.alpha, ref, cam, env)[0]["psnr"]
        ratio = (r.hdr[..., :3][m].mean(0) / ref[..., :3][m].mean(0))
        print(f"{c.name:30s} {lab:9s} {p:.2f} {dt:.2f}s ours/ref inside {ratio.round(3)}", flush=True)
