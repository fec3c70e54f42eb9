"""Forward renders with the true material, specular occlusion from AO vs from the lobe visibility (both in one run).

Each `relight eval relight --suite random` case's shape, exact mesh and camera, with its true uniform material
(colour A, roughness, metallic; a painted metal's paint reading), rendered by the product at FINAL quality under the
case's light B with RenderSettings.specular_visibility off and on, each against Cycles under B (the suite's scoring:
AgX sRGB over the environment). No delighting is involved.

    python forward_ab.py SEED [KIND ...]      KIND: text, lathe, primitive, blob (default: all)
"""

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

seed, kinds = int(sys.argv[1]), set(sys.argv[2:])
cfg = SuiteConfig()
cam = view_camera(cfg.size)
for c in suite_cases(seed):
    if kinds and c.shape.kind not in kinds:
        continue
    uni = (tuple(c.texture.colour_a), float(c.surface.roughness),
           float(c.surface.metallic if c.surface.kind != "mixed" else 0.0))  # fmt: skip
    ref_a = render_object(c, c.light_a, cam, cfg.samples, uniform=uni)
    ref_b = render_object(c, c.light_b, cam, cfg.samples, uniform=uni)
    a = ref_a[..., 3:4]
    rgb = np.where(a > 1e-4, ref_a[..., :3] / np.maximum(a, 1e-4), 0)
    inp = InputImage.from_pixels(np.concatenate([rgb, a], -1).astype(np.float32), "linear")
    asset = generate(GenerateInputs(image=inp, name=c.name, provider="scene", light_hint="unknown", delight=False,
                                    n_gaussians=cfg.n_gaussians, mesh=suite_mesh(c.shape), camera=cam))  # fmt: skip
    g = asset.gaussians
    g.albedo[:] = np.asarray(uni[0], np.float32)
    g.roughness[:] = uni[1]
    g.metallic[:] = uni[2]
    env_b = light_environment(c.light_b).prefilter()
    out = []
    for on in (False, True):
        r = render(asset, cam, env_b, replace(FINAL, specular_visibility=on))
        out.append(score(r.hdr, r.alpha, ref_b, cam, env_b)[0]["psnr"])
    print(f"{c.name:36s} r {uni[1]:.2f} m {uni[2]:.0f} {c.light_b.label():24s} ao {out[0]:.2f} | lobe {out[1]:.2f}",
          flush=True)  # fmt: skip
