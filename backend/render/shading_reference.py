"""The plain numpy reference of the shading kernels (shading_kernels.py): the same maths written straightforwardly,
vectorised over pixels in float64 (the kernels' own arithmetic precision), for tests to hold the kernels to;
shade(..., impl="numpy") runs it."""

import numpy as np

from . import brdf_lut
from ..core.camera import Camera
from ..core.envmap import Environment
from ..core.equirect import dir_to_equirect_uv, sample_equirect
from ..core.gaussians import GBUFFER_LAYOUT
from ..core.prefilter import level_blend, orthonormal_frame
from .shading_model import (DIELECTRIC_F0, LOBE_LOD_BIAS, SHADOW_MAX, LobeSampling, multiscatter_scale,
                            specular_occlusion)  # fmt: skip

_BLOCK = 1024  # pixels at a time on the lobe path (its temporaries are [pixels, samples or lights, 3])


def unpack_levels(flat: np.ndarray, table: np.ndarray) -> list[np.ndarray]:
    """Equirect levels packed in flat [M, 3] with table [L, 3] of (offset, h, w) -> L views [h, w, 3]."""
    return [flat[o : o + h * w].reshape(h, w, 3) for o, h, w in table]


def sample_level(level: np.ndarray, d: np.ndarray) -> np.ndarray:
    """[N, 3] bilinear radiance of an equirect level [h, w, 3] along image-frame directions d [N, 3], positions in
    float64 (nb_dir_to_uv + nb_sample_equirect)."""
    u, v = dir_to_equirect_uv(d)
    return sample_equirect(level, u, v, dtype=np.float64)


def sample_lod(levels: list[np.ndarray], lod: np.ndarray, d: np.ndarray) -> np.ndarray:
    """[N, 3] trilinear radiance of a mip chain at fractional levels lod [N] (clamped to the chain) along
    image-frame directions d [N, 3]: bilinear in the level below lod, blended linearly with the one above unless
    lod is within 1e-3 of the level below (nb_sample_lod)."""
    lod = np.clip(lod, 0.0, len(levels) - 1.0)
    k0 = lod.astype(np.int64)
    t = (lod - k0)[:, None]
    blend = (t[:, 0] > 1e-3) & (k0 + 1 < len(levels))
    below = np.zeros((len(lod), 3))
    above = np.zeros((len(lod), 3))
    for k, level in enumerate(levels):
        for out, m in ((below, k0 == k), (above, blend & (k0 + 1 == k))):
            if m.any():
                out[m] = sample_level(level, d[m])
    return np.where(blend[:, None], below * (1 - t) + above * t, below)


def split_sum_radiance(levels: list[np.ndarray], d: np.ndarray, rough: np.ndarray) -> np.ndarray:
    """[N, 3] GGX-prefiltered radiance at strength 1 along image-frame directions d [N, 3] for perceptual roughness
    rough [N]: the two levels around it, blended linearly in alpha = rough^2 (Environment.specular's maths)."""
    n_levels = len(levels)
    k0 = np.minimum(np.floor(rough * (n_levels - 1)).astype(np.int64), n_levels - 2)
    t = np.clip(level_blend(rough, k0, n_levels), 0.0, 1.0)
    out = np.zeros((len(rough), 3))
    for k, level in enumerate(levels):
        for m, w in ((k0 == k, 1.0 - t), (k0 + 1 == k, t)):
            m = m & (w > 0.0)
            if m.any():
                out[m] += w[m][:, None] * sample_level(level, d[m])
    return out


def lobe_radiance(n, v, n_dot_v, rough, rot, mip_flat, mip_table, texel0, xi1, xi2) -> np.ndarray:
    """[N, 3] environment radiance averaged over each pixel's own GGX lobe, at strength 1 (kernels.lobe_radiance).

    n, v [N, 3] unit world normal and view (towards the camera), n_dot_v [N] (clamped), rough [N] perceptual,
    rot [3, 3] world -> image frame, (mip_flat [M, 3], mip_table [L, 3]) the packed box mips read, texel0 sr a
    level-0 texel's solid angle at the equator, xi1, xi2 [K] Hammersley points. Each point gives a GGX half vector
    h about n and l = reflect(-v, h); the ones with v.h > 0 and n.l > 0 weigh G1(v) G1(l) (v.h) / (n.v n.h) and read
    the mip whose texel solid angle is the sample's share of the lobe, 1 / (K pdf(l))."""
    a = rough * rough
    a2 = (a * a)[:, None]  # [N, 1] GGX alpha^2
    ndv = n_dot_v[:, None]
    T, B = orthonormal_frame(n)  # [N, 3] each
    c2 = (1.0 - xi1) / (1.0 + (a2 - 1.0) * xi1)  # [N, K] cos^2 of h from n
    ch = np.sqrt(c2)
    sh = np.sqrt(np.maximum(0.0, 1.0 - c2))
    ph = 2.0 * np.pi * xi2  # [K]
    h = ((sh * np.cos(ph))[..., None] * T[:, None] + (sh * np.sin(ph))[..., None] * B[:, None]
         + ch[..., None] * n[:, None])  # [N, K, 3]  # fmt: skip
    vdh = np.sum(v[:, None] * h, axis=-1)  # [N, K]
    l = 2.0 * vdh[..., None] * h - v[:, None]  # [N, K, 3]
    ndl = np.sum(n[:, None] * l, axis=-1)
    ok = (vdh > 0.0) & (ndl > 0.0)  # [N, K] samples that count
    a2k = np.broadcast_to(a2, ok.shape)[ok]  # [S] per counted sample
    ndvk = np.broadcast_to(ndv, ok.shape)[ok]
    g1v = 2.0 * ndvk / (ndvk + np.sqrt(a2k + (1.0 - a2k) * ndvk * ndvk))
    g1l = 2.0 * ndl[ok] / (ndl[ok] + np.sqrt(a2k + (1.0 - a2k) * ndl[ok] ** 2))
    w = np.zeros(ok.shape)  # [N, K]
    w[ok] = g1v * g1l * vdh[ok] / (ndvk * ch[ok])
    d = a2k / (np.pi * ((a2k - 1.0) * c2[ok] + 1.0) ** 2)  # GGX D(h)
    pdf_l = d * ch[ok] / (4.0 * vdh[ok])
    lod = 0.5 * np.log2(np.maximum(1.0 / (len(xi1) * pdf_l), 1e-30) / texel0) + LOBE_LOD_BIAS
    radiance = np.zeros(ok.shape + (3,))  # [N, K, 3]
    radiance[ok] = sample_lod(unpack_levels(mip_flat, mip_table), lod, l[ok] @ np.asarray(rot).T)
    wsum = w.sum(axis=1)[:, None]
    total = np.sum(w[..., None] * radiance, axis=1)
    return np.where(wsum > 0.0, total / np.where(wsum > 0.0, wsum, 1.0), 0.0)


def lights_specular(n, v, n_dot_v, rough, f0, light_dirs, light_flux, cell_omega) -> np.ndarray:
    """[N, 3] single-scattering GGX specular of directional lights at strength 1 (kernels.lights_specular):
    sum_j D G2 F / (4 n.v) flux_j with height-correlated Smith G2 and Schlick F per channel, D widened to
    alpha'^2 = alpha^2 + cell_omega / (4 pi v.h) for the light cell each light stands for.

    n, v [N, 3] unit world, n_dot_v [N] (clamped), rough [N] perceptual, f0 [N, 3], light_dirs [J, 3] unit world,
    light_flux [J, 3] radiance x solid angle, cell_omega sr."""
    a = rough * rough
    a2 = (a * a)[:, None]  # [N, 1]
    ndv = n_dot_v[:, None]
    gv = np.sqrt(a2 + (1.0 - a2) * ndv * ndv)
    ndl = n @ light_dirs.T  # [N, J]
    h = light_dirs[None] + v[:, None]  # [N, J, 3] unnormalised half vectors
    hl = np.linalg.norm(h, axis=-1)
    ok = (ndl > 0.0) & (hl > 1e-12)
    hl = np.where(ok, hl, 1.0)
    ndh = np.sum(n[:, None] * h, axis=-1) / hl
    vdh = np.maximum(np.sum(v[:, None] * h, axis=-1) / hl, 1e-6)
    aw2 = a2 + cell_omega / (4.0 * np.pi * vdh)
    t = (aw2 - 1.0) * ndh * ndh + 1.0
    d = aw2 / (np.pi * t * t)
    ndl = np.where(ok, ndl, 1.0)
    g2 = 2.0 * ndl * ndv / (ndl * gv + ndv * np.sqrt(a2 + (1.0 - a2) * ndl * ndl))
    k = np.where(ok, d * g2 / (4.0 * ndv), 0.0)  # [N, J]
    fresnel = f0[:, None] + (1.0 - f0[:, None]) * ((1.0 - vdh) ** 5)[..., None]  # [N, J, 3]
    return np.sum((k[..., None] * fresnel) * light_flux[None], axis=1)


def pixel_geometry(normal: np.ndarray, camera: Camera, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shading frame of pixels idx [N] (flat indices) with un-premultiplied normals normal [N, 3], as the kernel
    builds it: (n [N, 3] the unit normal - v where it vanishes, bent to just past grazing where it faces away -,
    v [N, 3] unit towards the camera (Camera.rays maths), n.v [N] clamped to [1e-4, 1])."""
    j, i = np.divmod(idx, camera.width)
    K = camera.K
    d_cam = np.stack([(i + 0.5 - K[0, 2]) / K[0, 0], (j + 0.5 - K[1, 2]) / K[1, 1], np.ones(idx.size)], axis=1)
    v = -(d_cam @ np.asarray(camera.viewmat[:3, :3], np.float64))  # camera -> world: R^T d, towards the camera
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    n = np.where(length > 1e-6, normal / np.maximum(length, 1e-12), v)
    n_dot_v = np.sum(n * v, axis=1)
    bent = n_dot_v < 1e-3  # blended splat normals can face away at silhouettes: bend them to just past grazing
    nb = n[bent] + (1e-3 - n_dot_v[bent])[:, None] * v[bent]
    n[bent] = nb / np.linalg.norm(nb, axis=1, keepdims=True)
    n_dot_v[bent] = np.sum(n[bent] * v[bent], axis=1)
    return n, v, np.clip(n_dot_v, 1e-4, 1.0)


def shade_pixels(feats: np.ndarray, alpha: np.ndarray, idx: np.ndarray, camera: Camera, env: Environment,
                 multiscatter: bool, lobe: LobeSampling) -> dict[str, np.ndarray]:  # fmt: skip
    """The reference of kernels.shade_pixels over the covered pixels idx [N] of feats [H*W, GBUFFER_CHANNELS]
    (premultiplied) and alpha [H*W]: shade()'s maths (see its docstring) -> {"hdr" [N, 3] premultiplied, "albedo"
    [N, 3], "roughness" [N, 1], "metallic" [N, 1], "normal" [N, 3], "visibility" [N, 1], "shadow" [N, 3]} float64."""
    a = alpha[idx].astype(np.float64)[:, None]  # [N, 1]
    f = feats[idx].astype(np.float64) / a  # [N, C] un-premultiplied
    albedo = np.clip(f[:, GBUFFER_LAYOUT["albedo"]], 0.0, 1.0)
    rough = np.clip(f[:, GBUFFER_LAYOUT["roughness"]], 0.0, 1.0)[:, 0]  # [N] perceptual
    metal = np.clip(f[:, GBUFFER_LAYOUT["metallic"]], 0.0, 1.0)
    vis = np.clip(f[:, GBUFFER_LAYOUT["visibility"]], 0.0, 1.0)
    shd = np.clip(f[:, GBUFFER_LAYOUT["shadow"]], 0.0, SHADOW_MAX)
    n, v, n_dot_v = pixel_geometry(f[:, GBUFFER_LAYOUT["normal"]], camera, idx)
    refl = 2.0 * n_dot_v[:, None] * n - v  # reflect(-v, n)
    f0 = DIELECTRIC_F0 + (albedo - DIELECTRIC_F0) * metal  # [N, 3]

    rot, strength, spec_flat, spec_table, irr_flat, irr_h, irr_w = env.kernel_data()
    rot = np.asarray(rot, np.float64)  # world -> image frame
    irradiance = sample_level(irr_flat.reshape(irr_h, irr_w, 3), n @ rot.T)  # [N, 3] E / pi at strength 1
    radiance = split_sum_radiance(unpack_levels(spec_flat, spec_table), refl @ rot.T, rough)  # [N, 3]
    lights = np.zeros_like(radiance)  # specular of the extracted lights (Fresnel included), at strength 1
    if lobe.xi1.size:  # the lobe path replaces the split sum from a_fine on
        ggx_a = rough * rough
        coarse = ggx_a >= lobe.a_coarse
        for grid, on in ((lobe.coarse, coarse), (lobe.fine, (ggx_a >= lobe.a_fine) & ~coarse)):
            sel = np.flatnonzero(on)
            for s in (sel[b : b + _BLOCK] for b in range(0, sel.size, _BLOCK)):
                radiance[s] = lobe_radiance(n[s], v[s], n_dot_v[s], rough[s], rot, grid.mip_flat, grid.mip_table,
                                            grid.texel0, lobe.xi1, lobe.xi2)  # fmt: skip
                lights[s] = lights_specular(n[s], v[s], n_dot_v[s], rough[s], f0[s], grid.dirs, grid.flux,
                                            grid.cell_omega)  # fmt: skip

    A, B = (x[:, None] for x in brdf_lut.lookup(n_dot_v, rough, dtype=np.float64))
    fss_ess = f0 * A + B  # single-scattering directional albedo of the specular lobe
    so = specular_occlusion(n_dot_v[:, None], vis, (rough * rough)[:, None])
    ms = 1.0
    if multiscatter:
        # Cycles' microfacet_ggx_preserve_energy (Kulla & Conty 2017): the multiply-scattered energy follows the
        # single-scattering lobe, scaled by 1 + F_ms (1 - E) / E
        ms = multiscatter_scale(A + B, brdf_lut.lookup_average(rough, dtype=np.float64)[:, None], f0)
    irradiance = irradiance * strength
    specular = (radiance * strength * fss_ess + lights * strength) * ms
    base = albedo * (1.0 - metal)
    # radiance a surface like this one sends out: a dielectric its diffuse, a metal its specular reflection (the
    # dielectric's own ~4 % specular is left out)
    own = (base + metal * fss_ess * ms) * irradiance * shd
    if multiscatter:
        base = base * (1.0 - fss_ess * ms)  # the dielectric layer passes on what it does not reflect
    # the occluded part of the lobe (1 - so) sees the asset's own surfaces, taken as lit like this one
    hdr = (base * irradiance * shd + specular * so + (1.0 - so) * fss_ess * ms * own) * a  # premultiplied
    return {"hdr": hdr, "albedo": albedo, "roughness": rough[:, None], "metallic": metal, "normal": n,
            "visibility": vis, "shadow": shd}  # fmt: skip
