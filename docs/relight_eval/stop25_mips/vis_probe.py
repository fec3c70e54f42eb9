"""Where a forward render loses light (07, a metal text under a studio): the true material at FINAL, without
specular visibility, without shadows, and with every occlusion open (all visibility bits set, no exact shadow rays),
against Cycles; and an image of ours / Cycles (red: ours brighter, blue: darker). python vis_probe.py SEED NAME [A|B]"""
import sys
from dataclasses import replace
import cv2
import numpy as np
from relight.evaluate.suite import score
from relight.render.frame import render
from relight.render.settings import FINAL
from true_material import CAM, display_8bit, inside_ratio, probe_cases

which = sys.argv[3] if len(sys.argv) > 3 else "A"
for c, ref, asset, env in probe_cases(sys.argv[1:]):
    g = asset.gaussians
    m = ref[..., 3] > 0.5
    report = lambda lab, r: print(lab, score(r.hdr, r.alpha, ref, CAM, env)[0]["psnr"],  # noqa: E731
                                  inside_ratio(r.hdr, ref).round(3), r.passes["visibility"][m].mean())
    final = render(asset, CAM, env)
    report("final", final)
    print("  shadow pass mean", final.passes["shadow"][m].mean(0))
    report("novis", render(asset, CAM, env, replace(FINAL, specular_visibility=False)))
    report("noshadow", render(asset, CAM, env, replace(FINAL, shadows=False)))
    vb = g.vis_bits.copy()
    g.vis_bits[:] = 255
    report("all-open", render(asset, CAM, env, replace(FINAL, exact_lights=False)))
    g.vis_bits[:] = vb
    ratio = np.where(m, final.hdr[..., :3].mean(-1) / np.maximum(ref[..., :3].mean(-1), 1e-6), 1.0)
    col = np.zeros(ratio.shape + (3,), np.uint8)
    col[..., 2] = (np.clip(ratio - 1, 0, 1) * 255).astype(np.uint8)  # red (BGR): ours brighter
    col[..., 0] = (np.clip(1 - ratio, 0, 1) * 255).astype(np.uint8)  # blue: ours darker
    img = np.concatenate([display_8bit(ref)[..., ::-1], display_8bit(final.hdr)[..., ::-1], col], 1)
    cv2.imwrite(f"/work/probe/s25/ratio_{c.name[:3]}{which}.png",
                cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))  # fmt: skip
