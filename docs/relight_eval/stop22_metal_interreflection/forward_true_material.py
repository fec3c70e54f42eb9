"""Forward rendering on suite shapes: the case's shape with one uniform true material (colour A, roughness, metallic),
exact mesh, scene provider without delighting, materials overwritten with the truth; ours vs Cycles under light B.
python forward_true_material.py SEED KIND [N] [OUTDIR]   (KIND: primitive, lathe, text, blob or all; METAL_ONLY=1 for metal cases)
import sys, numpy as np, cv2
from pathlib import Path
from relight.evaluate.suite import view_camera, SuiteConfig, score
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import render_object, light_environment
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
from relight.render.settings import FINAL
from relight.core.colour import agx
seed, kind = int(sys.argv[1]), sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 99
out = Path(sys.argv[4]) if len(sys.argv) > 4 else None
cfg = SuiteConfig(); cam = view_camera(cfg.size)
import os
cases = [c for c in suite_cases(seed) if (kind == "all" or c.shape.kind == kind) and (not os.environ.get("METAL_ONLY") or c.surface.kind == "metal")][:n]
res_all = []
for c in cases:
    uni = (tuple(c.texture.colour_a), float(c.surface.roughness), float(c.surface.metallic if c.surface.kind != "mixed" else 0.0))
    ref_a = render_object(c, c.light_a, cam, cfg.samples, uniform=uni)
    ref_b = render_object(c, c.light_b, cam, cfg.samples, uniform=uni)
    from relight.core.input_image import InputImage
    a = ref_a[..., 3:4]; rgb = np.where(a > 1e-4, ref_a[..., :3] / np.maximum(a, 1e-4), 0)
    inp = InputImage.from_pixels(np.concatenate([rgb, a], -1).astype(np.float32), "linear")
    asset = generate(GenerateInputs(image=inp, name=c.name, provider="scene", light_hint="unknown", delight=False,
                                    n_gaussians=cfg.n_gaussians, mesh=suite_mesh(c.shape), camera=cam))
    g = asset.gaussians
    g.albedo[:] = np.asarray(uni[0], np.float32); g.roughness[:] = uni[1]; g.metallic[:] = uni[2]
    env_b = light_environment(c.light_b).prefilter()
    r = render(asset, cam, env_b)
    s, ours, theirs = score(r.hdr, r.alpha, ref_b, cam, env_b)
    res_all.append(s["psnr"])
    print(f"{c.name:40s} {c.light_b.label():28s} rough {uni[1]:.2f} metal {uni[2]:.0f}: forward {s['psnr']:.2f} dB", flush=True)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        d = np.abs(ours - theirs).mean(-1, keepdims=True).repeat(3, -1) * 4
        cv2.imwrite(str(out / f"{c.name}.png"), (np.clip(np.concatenate([ours, theirs, d], 1), 0, 1) * 255).astype(np.uint8)[..., ::-1])
print("mean", np.mean(res_all), "min", np.min(res_all))
