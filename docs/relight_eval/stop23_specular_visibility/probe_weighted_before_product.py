"""Probe: light-weighted lobe visibility (strong lights with their exact bits) vs the light-independent one (product).
python diag_specvis2.py SEED CASEIDX..."""
import sys, numpy as np
from dataclasses import replace
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
from relight.core.colour import LUMINANCE
from relight.render.strong_lights import with_strong_lights, light_bits
from relight.render.specular_visibility_reference import lobe_visibility_reference

def weighted(asset, cam, env):
    g = asset.gaussians; R = asset.rotation.astype(np.float64)
    dirs_w = sphere_directions() @ R.T.astype(np.float32)
    rad = env.cell_radiance(dirs_w)
    bits, dirs_w, rad = with_strong_lights(env, g.vis_bits, dirs_w, rad, lambda d: light_bits(asset, d))
    dirs_a = (dirs_w.astype(np.float64) @ R)
    lum = np.maximum(rad @ LUMINANCE, 0.0)
    eye = camera_to_asset(cam, asset.model_matrix).position
    out = np.empty(len(g.means), np.float32)
    D = len(dirs_a)
    vis_all = unpack_bits(bits, D)
    d = dirs_a; omega = 4 * np.pi / 256
    for s in range(0, len(g.means), 2048):
        p = g.means[s:s+2048].astype(np.float64); n = g.normals[s:s+2048].astype(np.float64); n /= np.linalg.norm(n, axis=1, keepdims=True)
        v = eye[None] - p; v /= np.linalg.norm(v, axis=1, keepdims=True)
        a2 = (g.roughness[s:s+2048].astype(np.float64) ** 4)[:, None]
        h = d[None] + v[:, None]; h /= np.linalg.norm(h, axis=-1, keepdims=True)
        ndh = np.einsum("nkc,nc->nk", h, n); vdh = np.maximum(np.einsum("nkc,nc->nk", h, v), 1e-4); ndl = n @ d.T
        aw2 = a2 + omega / (4 * np.pi * vdh); t = (aw2 - 1) * ndh * ndh + 1
        ndl_c = np.maximum(ndl, 0); g1 = 2 * ndl_c / (ndl_c + np.sqrt(a2 + (1 - a2) * ndl_c ** 2))
        w = np.where(ndl > 0, aw2 / (np.pi * t * t) * g1, 0.0) * lum[None]
        den = w.sum(1); out[s:s+2048] = np.where(den > 0, (w * vis_all[s:s+2048]).sum(1) / np.where(den > 0, den, 1), 1)
    return out

seed = int(sys.argv[1]); idx = [int(x) for x in sys.argv[2:]]
cfg = SuiteConfig(); cam = view_camera(cfg.size)
cases = suite_cases(seed)
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
    res = []
    r = frame.render(asset, cam, env_b, replace(FINAL, specular_visibility=False)); res.append(score(r.hdr, r.alpha, ref_b, cam, env_b)[0]["psnr"])
    r = frame.render(asset, cam, env_b, FINAL); res.append(score(r.hdr, r.alpha, ref_b, cam, env_b)[0]["psnr"])
    orig = frame.cached_shadows
    shadow = orig(asset, env_b, None, 0, True)
    frame.cached_shadows = lambda *a, **k: shadow
    ao = g.visibility.copy()
    g.visibility = weighted(asset, cam, env_b)
    r = frame.render(asset, cam, env_b, replace(FINAL, specular_visibility=False)); res.append(score(r.hdr, r.alpha, ref_b, cam, env_b)[0]["psnr"])
    g.visibility = ao; frame.cached_shadows = orig
    print(f"{c.name:36s} r {uni[1]:.2f} m {uni[2]:.0f} {c.light_b.label():24s} ao {res[0]:.2f} | lobe {res[1]:.2f} | weighted {res[2]:.2f}", flush=True)
