"""The numba kernels of the shading: the fused per-pixel split-sum shader, the per-pixel GGX lobe average over the
environment and the GGX specular of the extracted lights. Their plain reference is shading_reference.py (same maths,
vectorised numpy); tests/test_shading.py compares the two."""

from typing import NamedTuple

import numba
import numpy as np

from ..core.equirect import nb_dir_to_uv, nb_sample_equirect, nb_sample_lod
from ..core.gaussians import GBUFFER_LAYOUT
from ..core.jit import njit_cached
from ..core.prefilter import nb_level_blend
from .shading_model import DIELECTRIC_F0, LOBE_LOD_BIAS, SHADOW_MAX, nb_multiscatter_scale


@njit_cached()
def lobe_radiance(nx, ny, nz, vx, vy, vz, ndv, rough, rot, mip_flat, mip_table, texel0, xi1, xi2):  # pragma: no cover
    """Environment radiance averaged over the GGX lobe of (n, v): filtered importance sampling with weights
    G1(v) G1(l) (v.h) / (n.v n.h) (the BRDF-cosine over the sampling pdf, without Fresnel; separable Smith G).
    -> (r, g, b) at strength 1."""
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
def lights_specular(nx, ny, nz, vx, vy, vz, ndv, rough, f0r, f0g, f0b, light_dirs, light_flux, cell_omega):  # pragma: no cover
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



_ALB, _ROUGH, _MET, _NRM, _VIS, _SHD = (GBUFFER_LAYOUT[k].start
                                        for k in ("albedo", "roughness", "metallic", "normal", "visibility", "shadow"))


class PixelCamera(NamedTuple):
    """The camera as the kernel reads it: a pixel's view direction from its index."""

    width: int  # pixels
    kparams: np.ndarray  # [4] float64 (fx, fy, cx, cy) pixels
    R: np.ndarray  # [3, 3] float64 world-to-camera rotation


class BrdfTables(NamedTuple):
    lut: np.ndarray  # [S, S, 2] float32 split-sum (A, B) over (n.v, roughness) (brdf_lut.brdf_lut)
    e_avg_rows: np.ndarray  # [S] float32 cosine-weighted average albedo per roughness row (brdf_lut.average_albedo)
    multiscatter: bool  # restore the multiple-scattering GGX energy (shading.shade)


class ShadePasses(NamedTuple):
    """The kernel's outputs, full-size [H*W, C] float32; only the covered rows are written. The passes other than
    hdr may have 0 rows: then they are not written."""

    hdr: np.ndarray  # [H*W, 3] linear Rec.709, premultiplied by alpha
    nrm: np.ndarray  # [H*W, 3] world unit normal
    alb: np.ndarray  # [H*W, 3]
    rgh: np.ndarray  # [H*W, 1]
    met: np.ndarray  # [H*W, 1]
    vsb: np.ndarray  # [H*W, 1] ambient occlusion
    shd: np.ndarray  # [H*W, 3] light-dependent shadow


@njit_cached(parallel=True)
def shade_pixels(feats, alpha, idx, cam, env, brdf, lobe, out):
    """Fused per-pixel version of shading_reference.shade_pixels (same maths, same order of operations).

    feats [H*W, 9] premultiplied G-buffer, alpha [H*W], idx [N] covered pixels; cam a PixelCamera, env an
    envmap.EnvLookup (rot float64, strength a float), brdf BrdfTables, lobe a shading_model.LobeSampling (coarse and
    fine envmap.LightSplit); writes rows idx of out (ShadePasses); of its passes other than hdr, only when they have
    rows (0 rows: not wanted)."""
    width, kparams, R = cam.width, cam.kparams, cam.R
    rot, strength, spec_flat, spec_table, irr_flat, irr_h, irr_w = env
    lut, e_avg_rows, multiscatter = brdf
    xi1, xi2, a_coarse, a_fine = lobe.xi1, lobe.xi2, lobe.a_coarse, lobe.a_fine
    mip_c, table_c, texel0_c, dirs_c, flux_c, omega_c = lobe.coarse
    mip_f, table_f, texel0_f, dirs_f, flux_f, omega_f = lobe.fine
    hdr, nrm, alb, rgh, met, vsb, shd = out
    n_levels = spec_table.shape[0]
    S = lut.shape[0]
    write_passes = alb.shape[0] > 0  # passes of 0 rows: the frame's HDR only
    for p in numba.prange(idx.shape[0]):
        pix = idx[p]
        a = alpha[pix]
        inv_a = 1.0 / a
        # albedo and shadow as the float32 passes hold them (the maths below reads them so)
        al0 = np.float32(min(max(feats[pix, _ALB] * inv_a, 0.0), 1.0))
        al1 = np.float32(min(max(feats[pix, _ALB + 1] * inv_a, 0.0), 1.0))
        al2 = np.float32(min(max(feats[pix, _ALB + 2] * inv_a, 0.0), 1.0))
        rough = min(max(feats[pix, _ROUGH] * inv_a, 0.0), 1.0)
        metal = min(max(feats[pix, _MET] * inv_a, 0.0), 1.0)
        vis = min(max(feats[pix, _VIS] * inv_a, 0.0), 1.0)
        sh0 = np.float32(min(max(feats[pix, _SHD] * inv_a, 0.0), SHADOW_MAX))
        sh1 = np.float32(min(max(feats[pix, _SHD + 1] * inv_a, 0.0), SHADOW_MAX))
        sh2 = np.float32(min(max(feats[pix, _SHD + 2] * inv_a, 0.0), SHADOW_MAX))
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
            f0r = DIELECTRIC_F0 + (al0 - DIELECTRIC_F0) * metal
            f0g = DIELECTRIC_F0 + (al1 - DIELECTRIC_F0) * metal
            f0b = DIELECTRIC_F0 + (al2 - DIELECTRIC_F0) * metal
            if rough * rough >= a_coarse:
                sr, sg, sb = lobe_radiance(nx, ny, nz, vx, vy, vz, ndv, rough, rot, mip_c, table_c, texel0_c, xi1, xi2)
                lr, lg, lb = lights_specular(nx, ny, nz, vx, vy, vz, ndv, rough, f0r, f0g, f0b, dirs_c, flux_c, omega_c)
            else:
                sr, sg, sb = lobe_radiance(nx, ny, nz, vx, vy, vz, ndv, rough, rot, mip_f, table_f, texel0_f, xi1, xi2)
                lr, lg, lb = lights_specular(nx, ny, nz, vx, vy, vz, ndv, rough, f0r, f0g, f0b, dirs_f, flux_f, omega_f)
        alpha_g = rough * rough
        so = min(max((ndv + vis) ** np.exp2(-16.0 * alpha_g - 1.0) - 1.0 + vis, 0.0), 1.0)
        ess = A + B
        yr = min(max(rough * S - 0.5, 0.0), S - 1.0)  # E_avg row coordinate (brdf_lut.lookup_average maths)
        yr0 = min(int(yr), S - 2)
        e_avg = e_avg_rows[yr0] * (1.0 - (yr - yr0)) + e_avg_rows[yr0 + 1] * (yr - yr0)
        for c in range(3):
            irr_c = (ir if c == 0 else (ig if c == 1 else ib)) * strength
            spec_c = (sr if c == 0 else (sg if c == 1 else sb)) * strength
            al_c = al0 if c == 0 else (al1 if c == 1 else al2)
            sh_c = sh0 if c == 0 else (sh1 if c == 1 else sh2)
            f0 = DIELECTRIC_F0 + (al_c - DIELECTRIC_F0) * metal
            fss_ess = f0 * A + B
            ms = nb_multiscatter_scale(ess, e_avg, f0) if multiscatter else 1.0
            specular = (spec_c * fss_ess + (lr if c == 0 else (lg if c == 1 else lb)) * strength) * ms
            base = al_c * (1.0 - metal)
            # radiance a surface like this one sends out: a dielectric its diffuse, a metal its specular reflection
            own = (base + metal * fss_ess * ms) * irr_c * sh_c
            if multiscatter:
                base *= 1.0 - fss_ess * ms
            hdr[pix, c] = (base * irr_c * sh_c + specular * so + (1.0 - so) * fss_ess * ms * own) * a
        if write_passes:
            alb[pix, 0], alb[pix, 1], alb[pix, 2] = al0, al1, al2
            shd[pix, 0], shd[pix, 1], shd[pix, 2] = sh0, sh1, sh2
            nrm[pix, 0], nrm[pix, 1], nrm[pix, 2] = nx, ny, nz
            rgh[pix, 0], met[pix, 0], vsb[pix, 0] = rough, metal, vis
