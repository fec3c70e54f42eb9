"""Deferred split-sum image-based shading of rasterized G-buffers, matching Blender's Principled BSDF
(metallic workflow, specular 0.5 = IOR 1.5, GGX) under an `Environment`; plus background compositing."""

import numba
import numpy as np

from . import brdf_lut
from ..core.camera import Camera
from ..core.envmap import Environment
from ..core.equirect import nb_dir_to_uv, nb_sample_equirect, nb_sample_lod
from ..core.jit import njit_cached
from ..core.prefilter import FINE_LIGHT_CELL_WIDTH, LIGHT_CELL_WIDTH, nb_level_blend
from ..core.gaussians import GBUFFER_CHANNELS, GBUFFER_LAYOUT
from ..core.sampling import hammersley

ALPHA_EPS = 1e-4  # pixels with less coverage are treated as empty
# The lobe path sums extracted lights on a grid of cells of angular size d = 2 pi / cell grid width; a light is a
# point, seen through D. GGX D falls to half its peak at tan(theta_h) = 0.64 alpha, so its full width at half maximum
# spans the half-vector extent of a cell (d / 2) when alpha >= d / (4 x 0.64) = LOBE_CELL_FRACTION d: then the
# lights of a lamp blend into one highlight. Sharper lobes use the fine grid; below it, the split-sum mirror levels.
LOBE_CELL_FRACTION = 0.39
LOBE_LOD_BIAS = 0.0  # extra mip level per lobe sample (a positive bias blurs bright lights into the GGX tail)
SHADOW_MAX = 4.0  # a shadow pass above 1 means more light than the open sky (e.g. a bright ground bounce)
DIELECTRIC_F0 = 0.04  # ((1.5 - 1) / (1.5 + 1))^2: Principled BSDF at specular 0.5 (IOR 1.5)


def specular_occlusion(n_dot_v: np.ndarray, ao: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Specular occlusion from ambient occlusion (Lagarde & de Rousiers 2014, 'Moving Frostbite to PBR',
    section 4.10.2, eq. for computeSpecOcclusion): saturate((n.v + ao)^(2^(-16 alpha - 1)) - 1 + ao),
    alpha = GGX alpha (perceptual roughness squared)."""
    return np.clip((n_dot_v + ao) ** np.exp2(-16.0 * alpha - 1.0) - 1.0 + ao, 0.0, 1.0)


def multiscatter_scale(ess, e_avg, f0):
    """Energy compensation of single-scattering GGX as Blender's Cycles applies it to the Principled BSDF
    (microfacet_ggx_preserve_energy; Kulla & Conty 2017, 'Revisiting Physically Based Shading at Imageworks'):
    the lobe times 1 + F_ms (1 - E) / E, with F_ms = F_avg E_avg / (1 - F_avg (1 - E_avg)) and F_avg the
    hemispherical average of Schlick's Fresnel, F0 + (1 - F0) / 21. ess: E = A + B at (n.v, roughness), e_avg: its
    cosine-weighted average over n.v (brdf_lut.lookup_average), f0: Fresnel at normal incidence; broadcast.
    A white furnace (F0 = 1) then reflects exactly its environment."""
    f_avg = f0 + (1.0 - f0) / 21.0
    f_ms = f_avg * e_avg / (1.0 - f_avg * (1.0 - e_avg))
    return 1.0 + f_ms * (1.0 - ess) / ess


nb_multiscatter_scale = njit_cached()(multiscatter_scale)


def _pixel_view_dirs(camera: Camera, idx: np.ndarray) -> np.ndarray:
    """[N, 3] unit world directions from the camera through flat pixel indices idx (same maths as Camera.rays)."""
    j, i = np.divmod(idx, camera.width)
    K = camera.K
    d_cam = np.empty((idx.size, 3), dtype=np.float32)
    d_cam[:, 0] = (i + 0.5 - K[0, 2]) / K[0, 0]
    d_cam[:, 1] = (j + 0.5 - K[1, 2]) / K[1, 1]
    d_cam[:, 2] = 1.0
    d = d_cam @ np.asarray(camera.viewmat[:3, :3], dtype=np.float32)  # camera -> world: R^T d
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d


def shade(
    features: np.ndarray,  # [H, W, GBUFFER_CHANNELS] alpha-premultiplied G-buffer, GBUFFER_LAYOUT order
    alpha: np.ndarray,  # [H, W, 1] (or [H, W]) coverage in [0, 1]
    camera: Camera,
    env: Environment,
    multiscatter: bool = True,
    impl: str = "numba",
    specular_samples: int = 0,
) -> dict[str, np.ndarray]:
    """Split-sum shading of a G-buffer under `env`.

    Per covered pixel (alpha > ALPHA_EPS), after un-premultiplying and renormalising the normal:
      F0       = lerp(0.04, albedo, metallic)
      (A, B)   = brdf_lut.lookup(n.v, roughness)
      specular = env.specular(reflect(-v, n), roughness) * (F0 A + B) * specular_occlusion
      diffuse  = albedo (1 - metallic) * env.irradiance(n) * shadow
    where visibility (AO) drives specular occlusion and shadow (RGB, light-dependent) scales the diffuse. The
    occluded part of the specular lobe, (1 - specular_occlusion), is not black: it sees the asset's own surfaces,
    taken as sending out what this pixel's diffuse does (albedo (1 - metallic) irradiance shadow); that is
    specular interreflection in a concave shape (a white bowl's inside mirrors its other side).
    With multiscatter=True (default) it follows Blender's Principled BSDF more closely: the multiple-scattering
    GGX energy is restored as Cycles does it, by scaling the single-scattering lobe (multiscatter_scale), and the
    dielectric diffuse base is weighted by 1 - the specular layer's albedo, as Cycles' layered Principled BSDF
    does; a white furnace then shades to exactly the environment for any roughness and metallic.
    multiscatter=False gives the plain single-scattering split sum above.
    impl: "numba" (a fused parallel kernel, the fast path) or "numpy" (the vectorised reference); they agree
    to float32 rounding.
    specular_samples: 0 reads the prefiltered environment (split sum, lobe assumed n = v = r). K > 0 (numba only)
    instead averages the environment over this pixel's own GGX lobe: K GGX half vectors about n for the real v,
    weighted by G2 (v.h) / (n.v n.h), each read from the box mip matching its solid angle (filtered importance
    sampling); the result still multiplies the same (F0 A + B) table, so energy is unchanged. At grazing views
    the split-sum lobe reaches bright lights the real, stretched lobe misses. On this path the environment's
    bright lights are taken out (Environment.light_kernel_data): the lobe samples read the clamped residual, and
    the lights are summed exactly with the GGX BRDF (Schlick Fresnel per light), since a few filtered samples
    miss small bright lights in the lobe's tail (at 128 samples, 25-45 % too dark on a rough metal whose
    reflection sees black and whose tail sees studio lamps).

    Returns {"hdr": [H, W, 3] linear Rec.709 premultiplied by alpha, "alpha": [H, W, 1], and un-premultiplied
    passes "albedo" [H, W, 3], "roughness" [H, W, 1], "metallic" [H, W, 1], "normal" [H, W, 3] (world, unit),
    "visibility" [H, W, 1], "shadow" [H, W, 3]}; every pass is 0 where alpha <= ALPHA_EPS. All float32."""
    H, W = features.shape[:2]
    if features.shape[-1] != GBUFFER_CHANNELS:
        raise ValueError(f"features must be [H, W, {GBUFFER_CHANNELS}], got {features.shape}")
    if (camera.height, camera.width) != (H, W):
        raise ValueError(f"camera is {camera.width}x{camera.height} but the G-buffer is {W}x{H}")
    a_img = np.asarray(alpha, dtype=np.float32).reshape(H, W, 1)
    a_all = a_img.reshape(-1)
    idx = np.flatnonzero(a_all > ALPHA_EPS)  # [N] covered pixels
    a = a_all[idx][:, None]  # [N, 1]
    feats = np.ascontiguousarray(features, dtype=np.float32).reshape(-1, GBUFFER_CHANNELS)

    if impl == "numba":
        # the kernel writes straight into the full-size passes (calloc'd zeros: cheap), no scatter needed
        hdr, n_img, alb_img = (np.zeros((H * W, 3), dtype=np.float32) for _ in range(3))
        r_img, m_img, v_img = (np.zeros((H * W, 1), dtype=np.float32) for _ in range(3))
        s_img = np.zeros((H * W, 3), dtype=np.float32)
        rot, strength, spec_flat, spec_table, irr_flat, irr_h, irr_w = env.kernel_data()
        xi1, xi2 = hammersley(int(specular_samples))
        if specular_samples > 0:  # coarse and fine light grids, the GGX alpha each starts at
            coarse, fine = (env.light_kernel_data(w) for w in (LIGHT_CELL_WIDTH, FINE_LIGHT_CELL_WIDTH))
            a_coarse, a_fine = (LOBE_CELL_FRACTION * np.sqrt(ld[5]) for ld in (coarse, fine))
        else:  # the lobe path is off: nothing of this is read
            coarse = fine = (np.zeros((1, 3), np.float32), np.zeros((1, 3), np.int64), 1.0, np.zeros((0, 3)),
                             np.zeros((0, 3)), 1.0)  # fmt: skip
            a_coarse = a_fine = 2.0
        K = camera.K
        _shade_kernel(
            feats, a_all, idx, int(camera.width),
            np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], dtype=np.float64),
            np.asarray(camera.viewmat[:3, :3], dtype=np.float64),
            np.asarray(rot, dtype=np.float64), float(strength), spec_flat, spec_table, irr_flat, int(irr_h), int(irr_w),
            brdf_lut.brdf_lut(), brdf_lut.average_albedo(), bool(multiscatter), xi1, xi2,
            coarse[0], coarse[1], float(coarse[2]), coarse[3], coarse[4], float(coarse[5]), float(a_coarse),
            fine[0], fine[1], float(fine[2]), fine[3], fine[4], float(fine[5]), float(a_fine), hdr, n_img, alb_img, r_img, m_img, v_img, s_img,
        )  # fmt: skip
        passes = {"hdr": hdr, "albedo": alb_img, "roughness": r_img, "metallic": m_img, "normal": n_img, "visibility": v_img,
                  "shadow": s_img}
        passes = {k: x.reshape(H, W, x.shape[1]) for k, x in passes.items()}
        passes["alpha"] = np.where(a_img > ALPHA_EPS, a_img, 0.0).astype(np.float32)
        return passes
    elif impl == "numpy":
        if specular_samples:
            raise ValueError("specular_samples > 0 needs impl='numba'")
        f = feats[idx] / a  # [N, 9] un-premultiplied
        albedo = np.clip(f[:, GBUFFER_LAYOUT["albedo"]], 0.0, 1.0)
        rough = np.clip(f[:, GBUFFER_LAYOUT["roughness"]], 0.0, 1.0)  # [N, 1] perceptual
        metal = np.clip(f[:, GBUFFER_LAYOUT["metallic"]], 0.0, 1.0)
        vis = np.clip(f[:, GBUFFER_LAYOUT["visibility"]], 0.0, 1.0)
        shd = np.clip(f[:, GBUFFER_LAYOUT["shadow"]], 0.0, SHADOW_MAX)
        rgb, n = _shade_numpy(albedo, rough, metal, vis, shd, f[:, GBUFFER_LAYOUT["normal"]], a, idx, camera, env,
                              multiscatter)  # fmt: skip
    else:
        raise ValueError(f"impl must be 'numba' or 'numpy', got {impl!r}")

    def scatter(x: np.ndarray) -> np.ndarray:
        out = np.zeros((H * W, x.shape[1]), dtype=np.float32)
        out[idx] = x
        return out.reshape(H, W, x.shape[1])

    return {
        "hdr": scatter(rgb),
        "alpha": np.where(a_img > ALPHA_EPS, a_img, 0.0).astype(np.float32),
        "albedo": scatter(albedo),
        "roughness": scatter(rough),
        "metallic": scatter(metal),
        "normal": scatter(n),
        "visibility": scatter(vis),
        "shadow": scatter(shd),
    }


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


@njit_cached()
def _lobe_radiance(nx, ny, nz, vx, vy, vz, ndv, rough, rot, mip_flat, mip_table, texel0, xi1, xi2):  # pragma: no cover
    """Environment radiance averaged over the GGX lobe of (n, v): filtered importance sampling with weights
    G2 (v.h) / (n.v n.h) (the BRDF-cosine over the sampling pdf, without Fresnel). -> (r, g, b) at strength 1."""
    a = rough * rough
    a2 = a * a
    # tangent frame about n (Duff et al. 2017)
    sign = 1.0 if nz >= 0.0 else -1.0
    q = -1.0 / (sign + nz)
    b = nx * ny * q
    tx, ty, tz = 1.0 + sign * nx * nx * q, sign * b, -sign * nx
    bx, by, bz = b, sign + ny * ny * q, -ny
    K = xi1.shape[0]
    ar = ag = ab = 0.0
    wsum = 0.0
    for k in range(K):
        c2 = (1.0 - xi1[k]) / (1.0 + (a2 - 1.0) * xi1[k])
        ch = np.sqrt(c2)
        sh = np.sqrt(max(0.0, 1.0 - c2))
        ph = 6.283185307179586 * xi2[k]
        hx = sh * np.cos(ph) * tx + sh * np.sin(ph) * bx + ch * nx
        hy = sh * np.cos(ph) * ty + sh * np.sin(ph) * by + ch * ny
        hz = sh * np.cos(ph) * tz + sh * np.sin(ph) * bz + ch * nz
        vdh = vx * hx + vy * hy + vz * hz
        if vdh <= 0.0:
            continue
        lx = 2.0 * vdh * hx - vx
        ly = 2.0 * vdh * hy - vy
        lz = 2.0 * vdh * hz - vz
        ndl = nx * lx + ny * ly + nz * lz
        if ndl <= 0.0:
            continue
        g1v = 2.0 * ndv / (ndv + np.sqrt(a2 + (1.0 - a2) * ndv * ndv))
        g1l = 2.0 * ndl / (ndl + np.sqrt(a2 + (1.0 - a2) * ndl * ndl))
        w = g1v * g1l * vdh / (ndv * ch)
        d = a2 / (3.141592653589793 * ((a2 - 1.0) * c2 + 1.0) ** 2)
        pdf_l = d * ch / (4.0 * vdh)
        lod = 0.5 * np.log2(max(1.0 / (K * pdf_l), 1e-30) / texel0) + LOBE_LOD_BIAS
        u, v = nb_dir_to_uv(rot[0, 0] * lx + rot[0, 1] * ly + rot[0, 2] * lz,
                            rot[1, 0] * lx + rot[1, 1] * ly + rot[1, 2] * lz,
                            rot[2, 0] * lx + rot[2, 1] * ly + rot[2, 2] * lz)  # fmt: skip
        r, g, bb = nb_sample_lod(mip_flat, mip_table, lod, u, v)
        ar += w * r
        ag += w * g
        ab += w * bb
        wsum += w
    if wsum <= 0.0:
        return 0.0, 0.0, 0.0
    return ar / wsum, ag / wsum, ab / wsum


@njit_cached()
def _lights_specular(nx, ny, nz, vx, vy, vz, ndv, rough, f0r, f0g, f0b, light_dirs, light_flux, cell_omega):  # pragma: no cover
    """Single-scattering GGX specular of directional lights: sum_j D G2 F / (4 n.v) * flux_j, with height-correlated
    Smith G2 and Schlick F per channel. Each light stands for a cell of solid angle <= cell_omega: D is widened to
    alpha'^2 = alpha^2 + cell_omega / (4 pi v.h), adding the cell's half-vector solid angle to the lobe's
    peak-equivalent solid angle 1 / D(0) = pi alpha^2 (D stays normalised), so a narrow lobe does not show the
    cell grid. -> (r, g, b) outgoing radiance at strength 1."""
    a = rough * rough
    a2 = a * a
    ar = ag = ab = 0.0
    gv = np.sqrt(a2 + (1.0 - a2) * ndv * ndv)
    for j in range(light_dirs.shape[0]):
        lx, ly, lz = light_dirs[j, 0], light_dirs[j, 1], light_dirs[j, 2]
        ndl = nx * lx + ny * ly + nz * lz
        if ndl <= 0.0:
            continue
        hx, hy, hz = lx + vx, ly + vy, lz + vz
        hl = np.sqrt(hx * hx + hy * hy + hz * hz)
        if hl <= 1e-12:
            continue
        ndh = (nx * hx + ny * hy + nz * hz) / hl
        vdh = max((vx * hx + vy * hy + vz * hz) / hl, 1e-6)
        aw2 = a2 + cell_omega / (4.0 * 3.141592653589793 * vdh)
        t = (aw2 - 1.0) * ndh * ndh + 1.0
        d = aw2 / (3.141592653589793 * t * t)
        g2 = 2.0 * ndl * ndv / (ndl * gv + ndv * np.sqrt(a2 + (1.0 - a2) * ndl * ndl))
        k = d * g2 / (4.0 * ndv)
        fc = (1.0 - vdh) ** 5
        ar += k * (f0r + (1.0 - f0r) * fc) * light_flux[j, 0]
        ag += k * (f0g + (1.0 - f0g) * fc) * light_flux[j, 1]
        ab += k * (f0b + (1.0 - f0b) * fc) * light_flux[j, 2]
    return ar, ag, ab


def _shade_numpy(albedo, rough, metal, vis, shd, n, a, idx, camera, env, multiscatter):
    """Vectorised reference of the shading maths over N covered pixels. -> (rgb premultiplied [N, 3], n [N, 3])."""
    n_len = np.linalg.norm(n, axis=1, keepdims=True)
    v = -_pixel_view_dirs(camera, idx)  # [N, 3] towards the camera
    n = np.where(n_len > 1e-6, n / np.maximum(n_len, 1e-12), v)
    # Blended splat normals can face away at silhouettes: bend them to just past grazing so reflect() stays
    # in the upper hemisphere.
    n_dot_v = np.sum(n * v, axis=1, keepdims=True)
    bend = np.maximum(0.0, 1e-3 - n_dot_v)
    if np.any(bend > 0):
        n = n + bend * v
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        n_dot_v = np.sum(n * v, axis=1, keepdims=True)
    n_dot_v = np.clip(n_dot_v, 1e-4, 1.0)
    refl = 2.0 * n_dot_v * n - v  # reflect(-v, n)

    A, B = brdf_lut.lookup(n_dot_v[:, 0], rough[:, 0])
    A, B = A[:, None], B[:, None]
    f0 = DIELECTRIC_F0 + (albedo - DIELECTRIC_F0) * metal  # [N, 3]
    fss_ess = f0 * A + B  # single-scattering directional albedo of the specular lobe
    so = specular_occlusion(n_dot_v, vis, rough * rough)
    irradiance = env.irradiance(n)  # [N, 3] E / pi
    specular = env.specular(refl, rough[:, 0]) * fss_ess
    base = albedo * (1.0 - metal)
    ms = 1.0
    if multiscatter:
        # Cycles' microfacet_ggx_preserve_energy (Kulla & Conty 2017): the multiply-scattered energy follows the
        # single-scattering lobe, scaled by 1 + F_ms (1 - E) / E
        ms = multiscatter_scale(A + B, brdf_lut.lookup_average(rough[:, 0])[:, None], f0)
    specular = specular * ms
    own = base * irradiance * shd  # diffuse radiance of a surface like this one
    if multiscatter:
        base = base * (1.0 - fss_ess * ms)  # the dielectric layer passes on what it does not reflect
    # the occluded part of the lobe (1 - so) sees the asset's own surfaces, taken as lit like this one
    specular = specular * so + (1.0 - so) * fss_ess * ms * own
    diffuse = base * irradiance * shd
    return (diffuse + specular) * a, n  # premultiplied


_ALB, _ROUGH, _MET, _NRM, _VIS, _SHD = (GBUFFER_LAYOUT[k].start
                                        for k in ("albedo", "roughness", "metallic", "normal", "visibility", "shadow"))


@njit_cached(parallel=True)
def _shade_kernel(feats, alpha, idx, width, kparams, R, rot, strength, spec_flat, spec_table, irr_flat, irr_h, irr_w,
                  lut, e_avg_rows, multiscatter, xi1, xi2,
                  mip_c, table_c, texel0_c, dirs_c, flux_c, omega_c, a_coarse,
                  mip_f, table_f, texel0_f, dirs_f, flux_f, omega_f, a_fine,
                  hdr, nrm, alb, rgh, met, vsb, shd):  # fmt: skip
    """Fused per-pixel version of _shade_numpy (same maths, same order of operations).

    feats [H*W, 9] premultiplied, alpha [H*W], idx [N] covered pixels, kparams (fx, fy, cx, cy), R [3, 3] world-to-
    camera rotation, rot [3, 3] world -> env image frame; writes rows idx of hdr [H*W, 3] (premultiplied),
    nrm [H*W, 3], alb [H*W, 3], rgh, met, vsb [H*W, 1]."""
    n_levels = spec_table.shape[0]
    S = lut.shape[0]
    for p in numba.prange(idx.shape[0]):
        pix = idx[p]
        a = alpha[pix]
        inv_a = 1.0 / a
        for c in range(3):
            alb[pix, c] = min(max(feats[pix, _ALB + c] * inv_a, 0.0), 1.0)
        rough = min(max(feats[pix, _ROUGH] * inv_a, 0.0), 1.0)
        metal = min(max(feats[pix, _MET] * inv_a, 0.0), 1.0)
        vis = min(max(feats[pix, _VIS] * inv_a, 0.0), 1.0)
        for c in range(3):
            shd[pix, c] = min(max(feats[pix, _SHD + c] * inv_a, 0.0), SHADOW_MAX)
        # view direction towards the camera (Camera.rays maths)
        j = pix // width
        i = pix - j * width
        cx = (i + 0.5 - kparams[2]) / kparams[0]
        cy = (j + 0.5 - kparams[3]) / kparams[1]
        vx = -(cx * R[0, 0] + cy * R[1, 0] + R[2, 0])
        vy = -(cx * R[0, 1] + cy * R[1, 1] + R[2, 1])
        vz = -(cx * R[0, 2] + cy * R[1, 2] + R[2, 2])
        vl = np.sqrt(vx * vx + vy * vy + vz * vz)
        vx /= vl
        vy /= vl
        vz /= vl
        nx = feats[pix, _NRM] * inv_a
        ny = feats[pix, _NRM + 1] * inv_a
        nz = feats[pix, _NRM + 2] * inv_a
        nl = np.sqrt(nx * nx + ny * ny + nz * nz)
        if nl > 1e-6:
            nx /= nl
            ny /= nl
            nz /= nl
        else:
            nx, ny, nz = vx, vy, vz
        ndv = nx * vx + ny * vy + nz * vz
        if ndv < 1e-3:  # bend back-facing normals to just past grazing
            b = 1e-3 - ndv
            nx += b * vx
            ny += b * vy
            nz += b * vz
            nl = np.sqrt(nx * nx + ny * ny + nz * nz)
            nx /= nl
            ny /= nl
            nz /= nl
            ndv = nx * vx + ny * vy + nz * vz
        ndv = min(max(ndv, 1e-4), 1.0)
        rx = 2.0 * ndv * nx - vx
        ry = 2.0 * ndv * ny - vy
        rz = 2.0 * ndv * nz - vz
        # BRDF table (brdf_lut.lookup maths)
        x = min(max(ndv * S - 0.5, 0.0), S - 1.0)
        y = min(max(rough * S - 0.5, 0.0), S - 1.0)
        x0 = min(int(x), S - 2)
        y0 = min(int(y), S - 2)
        fx = x - x0
        fy = y - y0
        A = ((1 - fx) * (1 - fy) * lut[y0, x0, 0] + fx * (1 - fy) * lut[y0, x0 + 1, 0]
             + (1 - fx) * fy * lut[y0 + 1, x0, 0] + fx * fy * lut[y0 + 1, x0 + 1, 0])  # fmt: skip
        B = ((1 - fx) * (1 - fy) * lut[y0, x0, 1] + fx * (1 - fy) * lut[y0, x0 + 1, 1]
             + (1 - fx) * fy * lut[y0 + 1, x0, 1] + fx * fy * lut[y0 + 1, x0 + 1, 1])  # fmt: skip
        # environment lookups in the image frame
        u, v = nb_dir_to_uv(rot[0, 0] * nx + rot[0, 1] * ny + rot[0, 2] * nz,
                            rot[1, 0] * nx + rot[1, 1] * ny + rot[1, 2] * nz,
                            rot[2, 0] * nx + rot[2, 1] * ny + rot[2, 2] * nz)  # fmt: skip
        ir, ig, ib = nb_sample_equirect(irr_flat, 0, irr_h, irr_w, u, v)
        u, v = nb_dir_to_uv(rot[0, 0] * rx + rot[0, 1] * ry + rot[0, 2] * rz,
                            rot[1, 0] * rx + rot[1, 1] * ry + rot[1, 2] * rz,
                            rot[2, 0] * rx + rot[2, 1] * ry + rot[2, 2] * rz)  # fmt: skip
        lf = rough * (n_levels - 1)
        k0 = min(int(np.floor(lf)), n_levels - 2)
        t = min(max(nb_level_blend(rough, k0, n_levels), 0.0), 1.0)
        sr = sg = sb = 0.0
        if 1.0 - t > 0.0:
            lr, lg, lb = nb_sample_equirect(spec_flat, spec_table[k0, 0], spec_table[k0, 1], spec_table[k0, 2], u, v)
            sr += (1.0 - t) * lr
            sg += (1.0 - t) * lg
            sb += (1.0 - t) * lb
        if t > 0.0:
            k1 = k0 + 1
            lr, lg, lb = nb_sample_equirect(spec_flat, spec_table[k1, 0], spec_table[k1, 1], spec_table[k1, 2], u, v)
            sr += t * lr
            sg += t * lg
            sb += t * lb
        lr = lg = lb = 0.0  # specular from the extracted lights (Fresnel included), at strength 1
        if xi1.shape[0] > 0 and rough * rough >= a_fine:
            f0r = DIELECTRIC_F0 + (alb[pix, 0] - DIELECTRIC_F0) * metal
            f0g = DIELECTRIC_F0 + (alb[pix, 1] - DIELECTRIC_F0) * metal
            f0b = DIELECTRIC_F0 + (alb[pix, 2] - DIELECTRIC_F0) * metal
            if rough * rough >= a_coarse:
                sr, sg, sb = _lobe_radiance(nx, ny, nz, vx, vy, vz, ndv, rough, rot, mip_c, table_c, texel0_c, xi1, xi2)
                lr, lg, lb = _lights_specular(nx, ny, nz, vx, vy, vz, ndv, rough, f0r, f0g, f0b, dirs_c, flux_c, omega_c)
            else:
                sr, sg, sb = _lobe_radiance(nx, ny, nz, vx, vy, vz, ndv, rough, rot, mip_f, table_f, texel0_f, xi1, xi2)
                lr, lg, lb = _lights_specular(nx, ny, nz, vx, vy, vz, ndv, rough, f0r, f0g, f0b, dirs_f, flux_f, omega_f)
        alpha_g = rough * rough
        so = min(max((ndv + vis) ** np.exp2(-16.0 * alpha_g - 1.0) - 1.0 + vis, 0.0), 1.0)
        ess = A + B
        yr = min(max(rough * S - 0.5, 0.0), S - 1.0)  # E_avg row coordinate (brdf_lut.lookup_average maths)
        yr0 = min(int(yr), S - 2)
        e_avg = e_avg_rows[yr0] * (1.0 - (yr - yr0)) + e_avg_rows[yr0 + 1] * (yr - yr0)
        for c in range(3):
            irr_c = (ir if c == 0 else (ig if c == 1 else ib)) * strength
            spec_c = (sr if c == 0 else (sg if c == 1 else sb)) * strength
            f0 = DIELECTRIC_F0 + (alb[pix, c] - DIELECTRIC_F0) * metal
            fss_ess = f0 * A + B
            ms = nb_multiscatter_scale(ess, e_avg, f0) if multiscatter else 1.0
            specular = (spec_c * fss_ess + (lr if c == 0 else (lg if c == 1 else lb)) * strength) * ms
            base = alb[pix, c] * (1.0 - metal)
            own = base * irr_c * shd[pix, c]  # diffuse radiance of a surface like this one
            if multiscatter:
                base *= 1.0 - fss_ess * ms
            hdr[pix, c] = (base * irr_c * shd[pix, c] + specular * so + (1.0 - so) * fss_ess * ms * own) * a
        nrm[pix, 0] = nx
        nrm[pix, 1] = ny
        nrm[pix, 2] = nz
        rgh[pix, 0] = rough
        met[pix, 0] = metal
        vsb[pix, 0] = vis
