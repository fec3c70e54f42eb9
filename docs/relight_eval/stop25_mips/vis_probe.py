"""07: where the metal text's forward render loses light. Variants of specular occlusion."""
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
    r = render(asset, cam, env)
    print("final", score(r.hdr, r.alpha, ref, cam, env)[0]["psnr"], (r.hdr[..., :3][m].mean(0) / ref[..., :3][m].mean(0)).round(3))
    print("  visibility pass mean", r.passes["visibility"][m].mean(), "shadow", r.passes["shadow"][m].mean(0))
    for lab, st in [("novis", replace(FINAL, specular_visibility=False)), ("noshadow", replace(FINAL, shadows=False))]:
        r = render(asset, cam, env, st)
        print(lab, score(r.hdr, r.alpha, ref, cam, env)[0]["psnr"], (r.hdr[..., :3][m].mean(0) / ref[..., :3][m].mean(0)).round(3), r.passes["visibility"][m].mean())
    # no occlusion at all
    vb = g.vis_bits.copy(); g.vis_bits[:] = 255
    r = render(asset, cam, env, replace(FINAL, exact_lights=False))
    print("all-open", score(r.hdr, r.alpha, ref, cam, env)[0]["psnr"], (r.hdr[..., :3][m].mean(0) / ref[..., :3][m].mean(0)).round(3), r.passes["visibility"][m].mean())
    g.vis_bits[:] = vb
    import cv2
    r = render(asset, cam, env)
    ratio = r.hdr[..., :3].mean(-1) / np.maximum(ref[..., :3].mean(-1), 1e-6)
    ratio = np.where(m, ratio, 1.0)
    col = np.zeros(ratio.shape + (3,), np.uint8)
    col[..., 2] = (np.clip(ratio - 1, 0, 1) * 255).astype(np.uint8)  # red: ours brighter
    col[..., 0] = (np.clip(1 - ratio, 0, 1) * 255).astype(np.uint8)  # blue: ours darker
    def s(x):
        x = np.clip(x[..., :3], 0, None); x = x / (1 + x); return (np.clip(x, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)[..., ::-1]
    cv2.imwrite(f"/work/probe/s25/ratio_{c.name[:3]}{which}.png", cv2.resize(np.concatenate([s(ref), s(r.hdr), col], 1), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
