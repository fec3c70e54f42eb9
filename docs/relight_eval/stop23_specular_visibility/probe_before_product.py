"""Probe: specular occlusion from the visibility bits along each Gaussian's GGX lobe for the view, in place of AO.
python diag_specvis.py SEED CASEIDX..."""
import sys, numpy as np
from relight.evaluate.suite import view_camera, SuiteConfig, score
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import render_object, light_environment
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
import relight.render.frame as frame
from relight.render.settings import FINAL
from relight.core.input_image import InputImage
from relight.core.visibility_rays import sphere_directions, unpack_bits
from relight.core.frames import camera_to_asset

def spec_vis(asset, cam, mode):
    g = asset.gaussians
    view = camera_to_asset(cam, asset.model_matrix)
    eye = view.position() if callable(view.position) else view.position
    dirs = sphere_directions().astype(np.float64)
    omega = 4 * np.pi / len(dirs)
    out = np.empty(len(g.means), np.float32)
    for s in range(0, len(g.means), 4096):
        p = g.means[s:s+4096].astype(np.float64); n = g.normals[s:s+4096].astype(np.float64)
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        v = eye[None] - p; v /= np.linalg.norm(v, axis=1, keepdims=True)
        a = g.roughness[s:s+4096].astype(np.float64) ** 2; a2 = (a * a)[:, None]
        h = dirs[None] + v[:, None]; h /= np.linalg.norm(h, axis=-1, keepdims=True)
        ndh = np.einsum("nkc,nc->nk", h, n); vdh = np.maximum(np.einsum("nkc,nc->nk", h, v), 1e-4)
        ndl = n @ dirs.T
        aw2 = a2 + omega / (4 * np.pi * vdh)
        t = (aw2 - 1) * ndh * ndh + 1
        ndlc = np.clip(ndl, 1e-4, 1); g1 = 2 * ndlc / (ndlc + np.sqrt(a2 + (1 - a2) * ndlc ** 2))
        w = np.where(ndl > 0, aw2 / (np.pi * t * t) * g1, 0.0)
        bits = unpack_bits(g.vis_bits[s:s+4096])
        out[s:s+4096] = (w * bits).sum(1) / np.maximum(w.sum(1), 1e-12)
    return out

seed = int(sys.argv[1]); idx = [int(x) for x in sys.argv[2:]]
cfg = SuiteConfig(); cam = view_camera(cfg.size)
cases = suite_cases(seed)
orig = frame.cached_shadows
for i in idx:
    c = cases[i]
    uni = (tuple(c.texture.colour_a), float(c.surface.roughness), float(c.surface.metallic if c.surface.kind != "mixed" else 0.0))
    ref_a = render_object(c, c.light_a, cam, cfg.samples, uniform=uni)
    ref_b = render_object(c, c.light_b, cam, cfg.samples, uniform=uni)
    a = ref_a[..., 3:4]; rgb = np.where(a > 1e-4, ref_a[..., :3] / np.maximum(a, 1e-4), 0)
    inp = InputImage.from_pixels(np.concatenate([rgb, a], -1).astype(np.float32), "linear")
    asset = generate(GenerateInputs(image=inp, name=c.name, provider="scene", light_hint="unknown", delight=False,
                                    n_gaussians=cfg.n_gaussians, mesh=suite_mesh(c.shape), camera=cam))
    g = asset.gaussians
    g.albedo[:] = np.asarray(uni[0], np.float32); g.roughness[:] = uni[1]; g.metallic[:] = uni[2]
    env_b = light_environment(c.light_b).prefilter()
    frame.cached_shadows = orig
    r = frame.render(asset, cam, env_b, FINAL)
    s0, _, _ = score(r.hdr, r.alpha, ref_b, cam, env_b)
    shadow = orig(asset, env_b, None, 0, True)
    frame.cached_shadows = lambda *a, **k: shadow
    ao = g.visibility.copy()
    sv = spec_vis(asset, cam, 0)
    res = []
    # invert Lagarde so the kernel's so equals sv at the Gaussian's own n.v
    view = __import__("relight.core.frames", fromlist=["x"]).camera_to_asset(cam, asset.model_matrix)
    eye = view.position() if callable(view.position) else view.position
    vv = eye[None] - g.means; vv /= np.linalg.norm(vv, axis=1, keepdims=True)
    ndv = np.clip((g.normals * vv).sum(1) / np.linalg.norm(g.normals, axis=1), 1e-4, 1)
    e = np.exp2(-16 * g.roughness.astype(np.float64) ** 2 - 1)
    lo = np.zeros_like(ndv); hi = np.ones_like(ndv)
    for _ in range(30):
        mid = 0.5 * (lo + hi); val = np.clip((ndv + mid) ** e - 1 + mid, 0, 1)
        lo = np.where(val < sv, mid, lo); hi = np.where(val < sv, hi, mid)
    direct = 0.5 * (lo + hi)
    for label, vis in (("sv", sv), ("direct", direct)):
        g.visibility = vis.astype(np.float32)
        r1 = frame.render(asset, cam, env_b, FINAL)
        s1, _, _ = score(r1.hdr, r1.alpha, ref_b, cam, env_b)
        res.append(f"{label} {s1['psnr']:.2f}")
    g.visibility = ao
    print(f"{c.name:36s} r {uni[1]:.2f} m {uni[2]:.0f} {c.light_b.label():24s} base {s0['psnr']:.2f} | " + " | ".join(res), flush=True)
