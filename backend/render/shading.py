"""Deferred split-sum image-based shading of rasterized G-buffers, matching Blender's Principled BSDF
(metallic workflow, specular 0.5 = IOR 1.5, GGX) under an `Environment`; plus background compositing.
shade() runs the numba kernels (shading_kernels.py) or their numpy reference (shading_reference.py)."""

import numpy as np

from . import brdf_lut, shading_kernels, shading_reference
from ..core.camera import Camera
from ..core.envmap import Environment
from ..core.gaussians import GBUFFER_CHANNELS
from .shading_model import lobe_sampling

ALPHA_EPS = 1e-4  # pixels with less coverage are treated as empty


def shade(
    features: np.ndarray,  # [H, W, >= GBUFFER_CHANNELS] alpha-premultiplied G-buffer, GBUFFER_LAYOUT order
    alpha: np.ndarray,  # [H, W, 1] (or [H, W]) coverage in [0, 1]
    camera: Camera,
    env: Environment,
    multiscatter: bool = True,
    impl: str = "numba",
    specular_samples: int = 0,
    passes: bool = True,
) -> dict[str, np.ndarray]:
    """Split-sum shading of a G-buffer under `env`.

    Per covered pixel (alpha > ALPHA_EPS), after un-premultiplying and renormalising the normal:
      F0       = lerp(0.04, albedo, metallic)
      (A, B)   = brdf_lut.lookup(n.v, roughness)
      specular = env.specular(reflect(-v, n), roughness) * (F0 A + B) * specular_occlusion
      diffuse  = albedo (1 - metallic) * env.irradiance(n) * shadow
    where visibility (the AO, or in a final render the Gaussians' lobe visibility from this view:
    specular_visibility.py) drives specular occlusion and shadow (RGB, light-dependent) scales the diffuse. The
    occluded part of the specular lobe, (1 - specular_occlusion), is not black: it sees the asset's own surfaces,
    taken as lit like this pixel and sending out what it does: a dielectric its diffuse (albedo irradiance shadow),
    a metal its specular reflection (F0 A + B, multiscattered, times irradiance shadow); that is specular
    interreflection in a concave shape (a white bowl's inside mirrors its other side, and the inner faces of
    extruded metal text each other).
    With multiscatter=True (default) it follows Blender's Principled BSDF more closely: the multiple-scattering
    GGX energy is restored as Cycles does it, by scaling the single-scattering lobe (multiscatter_scale), and the
    dielectric diffuse base is weighted by 1 - the specular layer's albedo, as Cycles' layered Principled BSDF
    does; a white furnace then shades to exactly the environment for any roughness and metallic.
    multiscatter=False gives the plain single-scattering split sum above.
    impl: "numba" (a fused parallel kernel, the fast path) or "numpy" (the vectorised reference, float64); they
    agree to float32 rounding.
    specular_samples: 0 reads the prefiltered environment (split sum, lobe assumed n = v = r). K > 0 instead
    averages the environment over this pixel's own GGX lobe: K GGX half vectors about n for the real v,
    weighted by G1(v) G1(l) (v.h) / (n.v n.h), each read from the box mip matching its solid angle (filtered importance
    sampling); the result still multiplies the same (F0 A + B) table, so energy is unchanged. At grazing views
    the split-sum lobe reaches bright lights the real, stretched lobe misses. On this path the environment's
    bright lights are taken out (Environment.light_kernel_data): the lobe samples read the clamped residual, and
    the lights are summed exactly with the GGX BRDF (Schlick Fresnel per light), since a few filtered samples
    miss small bright lights in the lobe's tail (at 128 samples, 25-45 % too dark on a rough metal whose
    reflection sees black and whose tail sees studio lamps).

    Returns {"hdr": [H, W, 3] linear Rec.709 premultiplied by alpha, "alpha": [H, W, 1], and un-premultiplied
    passes "albedo" [H, W, 3], "roughness" [H, W, 1], "metallic" [H, W, 1], "normal" [H, W, 3] (world, unit),
    "visibility" [H, W, 1], "shadow" [H, W, 3]}; every pass is 0 where alpha <= ALPHA_EPS. All float32.
    passes=False: "hdr" and "alpha" only (the live preview's frame: ~15 MB of passes at 512² it does not show)."""
    H, W = features.shape[:2]
    if features.ndim != 3 or features.shape[-1] < GBUFFER_CHANNELS:  # channels past the G-buffer's are not read
        raise ValueError(f"features must be [H, W, {GBUFFER_CHANNELS}], got {features.shape}")
    if (camera.height, camera.width) != (H, W):
        raise ValueError(f"camera is {camera.width}x{camera.height} but the G-buffer is {W}x{H}")
    a_img = np.asarray(alpha, dtype=np.float32).reshape(H, W, 1)
    a_all = a_img.reshape(-1)
    idx = np.flatnonzero(a_all > ALPHA_EPS)  # [N] covered pixels
    feats = np.ascontiguousarray(features, dtype=np.float32).reshape(H * W, features.shape[-1])

    if impl not in ("numba", "numpy"):
        raise ValueError(f"impl must be 'numba' or 'numpy', got {impl!r}")
    lobe = lobe_sampling(env, int(specular_samples))
    run = _shade_numba if impl == "numba" else _shade_numpy
    out = run(feats, a_all, idx, camera, env, multiscatter, lobe, passes)
    out = {k: x.reshape(H, W, x.shape[1]) for k, x in out.items() if passes or k == "hdr"}
    out["alpha"] = np.where(a_img > ALPHA_EPS, a_img, 0.0).astype(np.float32)
    return out


def _shade_numba(feats, a_all, idx, camera, env, multiscatter, lobe, passes=True) -> dict[str, np.ndarray]:
    """shade() by the fused kernel, which writes straight into the full-size passes [H*W, C] (calloc'd zeros:
    cheap), no scatter needed. passes=False: the passes other than hdr have 0 rows, and the kernel skips them."""
    hw = a_all.shape[0]
    rows = hw if passes else 0
    hdr = np.zeros((hw, 3), dtype=np.float32)
    n_img, alb_img, s_img = (np.zeros((rows, 3), dtype=np.float32) for _ in range(3))
    r_img, m_img, v_img = (np.zeros((rows, 1), dtype=np.float32) for _ in range(3))
    kd = env.kernel_data()
    K = camera.K
    cam = shading_kernels.PixelCamera(int(camera.width), np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], np.float64),
                                      np.asarray(camera.viewmat[:3, :3], dtype=np.float64))  # fmt: skip
    env_k = kd._replace(rot=np.asarray(kd.rot, dtype=np.float64), strength=float(kd.strength), irr_h=int(kd.irr_h),
                        irr_w=int(kd.irr_w))  # fmt: skip
    brdf = shading_kernels.BrdfTables(brdf_lut.brdf_lut(), brdf_lut.average_albedo(), bool(multiscatter))
    lobe = lobe._replace(coarse=_float_cells(lobe.coarse), fine=_float_cells(lobe.fine))
    out = shading_kernels.ShadePasses(hdr, n_img, alb_img, r_img, m_img, v_img, s_img)
    shading_kernels.shade_pixels(feats, a_all, idx, cam, env_k, brdf, lobe, out)
    return {"hdr": hdr, "albedo": alb_img, "roughness": r_img, "metallic": m_img, "normal": n_img, "visibility": v_img,
            "shadow": s_img}  # fmt: skip


def _float_cells(split):
    """A LightSplit with its solid angles as Python floats (one kernel type whatever made them)."""
    return split._replace(texel0=float(split.texel0), cell_omega=float(split.cell_omega))


def _shade_numpy(feats, a_all, idx, camera, env, multiscatter, lobe, passes=True) -> dict[str, np.ndarray]:
    """shade() by the vectorised reference over the covered pixels, scattered into full-size float32 passes (all of
    them: shade() keeps what was asked for)."""
    out = {}
    for k, x in shading_reference.shade_pixels(feats, a_all, idx, camera, env, multiscatter, lobe).items():
        out[k] = np.zeros((a_all.shape[0], x.shape[1]), dtype=np.float32)
        out[k][idx] = x
    return out


def composite(hdr_premul: np.ndarray, alpha: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """'Over' compositing of a premultiplied [H, W, 3] image onto background [H, W, 3] (None = keep it
    premultiplied over black). -> [H, W, 3] float32."""
    hdr = np.asarray(hdr_premul, dtype=np.float32)
    if background is None:
        return hdr.copy()
    a = np.asarray(alpha, dtype=np.float32).reshape(*hdr.shape[:2], 1)
    return hdr + (1.0 - a) * np.asarray(background, dtype=np.float32)


def environment_background(camera: Camera, env: Environment) -> np.ndarray:
    """[H, W, 3] linear radiance of the environment seen along each pixel's ray (film_transparent off)."""
    _, dirs = camera.rays()
    return env.radiance(dirs.astype(np.float32))

