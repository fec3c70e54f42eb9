"""Precomputed radiance transfer for per-light shadows: the light-independent part of
visibility.light_visibility (cosine x visibility over the fixed direction set, plus the one-bounce gathering of
directional_bounce) compressed per Gaussian onto a small direction basis learned from the asset's own rows, so a new
light costs a few [N, r] x [r, 3] products instead of a pass over every visibility bit.

With A [N, D] = cos x visible and C [N, D] = cos (clamped, tangent-plane), the exact shadows are
A L / C L per channel for the light L [D, 3]. The basis V [D, r] holds the top principal directions of the rows of
A and C (their Gram matrix over a sample of Gaussians), so A L ~ (A V)(V^T L). An unoccluded Gaussian has equal
rows in A and C and so a ratio of exactly 1.
"""

from dataclasses import dataclass

import numba
import numpy as np

from ..core.jit import njit_cached
from ..core.visibility_rays import sphere_directions, unpack_bits
from .light_visibility import BOUNCE_MIN_COS, BOUNCE_OCCLUDED_AO

TRANSFER_RANK = 64  # basis directions kept (of core.visibility_rays.VIS_DIRECTIONS)
BASIS_SAMPLES = 32768  # Gaussians whose rows estimate the basis
SHARP_DIRECTIONS = 16  # the light's brightest directions, summed exactly (a sun or softbox stays sharp)
CHUNK = 16384  # Gaussians per block while projecting (bounds the [CHUNK, D] float32 temporaries)


@dataclass
class Group:
    """Gaussians that share a treatment: rows on the basis, their bits and normals (asset space, float32)."""

    index: np.ndarray  # [M] int64 into the asset's Gaussians
    visible: np.ndarray  # [M, r] (cos x visibility) rows on the basis
    cosine: np.ndarray  # [M, r] clamped-cosine rows on the basis
    bits: np.ndarray  # [M, D/8] uint8 visibility bits (for the sharp directions)
    normals: np.ndarray  # [M, 3]


@dataclass
class Transfer:
    """An asset's light-independent shadowing on a direction basis. Gaussians that see their whole hemisphere
    (no blocked direction) are unshadowed under any light unless a ground plane replaces part of it, so they are
    only evaluated with a ground."""

    basis: np.ndarray  # [D, r] orthonormal columns over visibility.sphere_directions()
    partial: Group  # Gaussians with at least one blocked direction
    whole: Group  # the rest (visible rows are their cosine rows, bits all set)
    blocked: np.ndarray  # [M, r] partial.cosine - partial.visible: the directions the object blocks
    occluded: np.ndarray  # [Q] int64 rows of `partial` whose diffuse radiance the bounce gathers
    gather_t: np.ndarray  # [r, Q] V^T bounce = gather_t diffuse[occluded] + empty x their mean diffuse
    empty: np.ndarray  # [r] basis summed over directions no occluded Gaussian faces back along


def _rows(bits: np.ndarray, normals: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bits [n, D/8], normals [n, 3] -> (cos x visible [n, D], cos [n, D]) float32."""
    cos = np.maximum(np.asarray(normals, np.float32) @ dirs.T, 0.0)
    return cos * unpack_bits(bits, len(dirs)), cos


def _project(bits, normals, dirs, basis, extra=None) -> tuple[np.ndarray, ...]:
    """Rows of bits [n, D/8] / normals [n, 3] on basis [D, r], in blocks -> (visible [n, r], cosine [n, r],
    extra(normals block) @ basis [n, r] when extra is given)."""
    n, r = len(bits), basis.shape[1]
    out = [np.empty((n, r), np.float32) for _ in range(2 if extra is None else 3)]
    for s in range(0, n, CHUNK):
        sl = slice(s, s + CHUNK)
        a, c = _rows(bits[sl], normals[sl], dirs)
        out[0][sl] = a @ basis
        out[1][sl] = c @ basis
        if extra is not None:
            out[2][sl] = extra(normals[sl]) @ basis
    return tuple(out)


def build_transfer(bits: np.ndarray, normals: np.ndarray, ao: np.ndarray, rank: int = TRANSFER_RANK) -> Transfer:
    """Visibility bits [N, D/8] with asset-space normals [N, 3] and ambient occlusion [N] -> Transfer."""
    dirs = sphere_directions()
    bits = np.ascontiguousarray(bits, np.uint8)
    normals = np.ascontiguousarray(normals, np.float32)
    n, d = len(bits), len(dirs)
    rank = int(min(max(rank, 1), d))
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(n, BASIS_SAMPLES, replace=False)) if n > BASIS_SAMPLES else np.arange(n)
    gram = np.zeros((d, d), np.float64)
    for s in range(0, len(pick), CHUNK):
        a, c = _rows(bits[pick[s:s + CHUNK]], normals[pick[s:s + CHUNK]], dirs)
        gram += a.T @ a + c.T @ c
    w, v = np.linalg.eigh(gram)
    basis = np.ascontiguousarray(v[:, np.argsort(w)[::-1][:rank]], np.float32)  # [D, r]

    has_blocked = np.zeros(n, bool)
    for s in range(0, n, CHUNK):
        a, c = _rows(bits[s:s + CHUNK], normals[s:s + CHUNK], dirs)
        has_blocked[s:s + CHUNK] = ((c > 0) & (a == 0)).any(1)
    part = np.nonzero(has_blocked)[0]
    rest = np.nonzero(~has_blocked)[0]
    occ = np.nonzero(np.asarray(ao)[part] < BOUNCE_OCCLUDED_AO)[0]  # rows of `part`
    if len(occ) == 0:
        occ = np.arange(len(part))
    occ_normals = normals[part[occ]]
    facing_count = np.zeros(d, np.float64)  # occluded Gaussians facing back along each direction
    for s in range(0, len(occ), CHUNK):
        facing_count += (occ_normals[s:s + CHUNK] @ -dirs.T > BOUNCE_MIN_COS).sum(0)
    share = np.where(facing_count > 0, 1.0 / np.maximum(facing_count, 1.0), 0.0).astype(np.float32)  # [D]
    p_vis, p_cos = _project(bits[part], normals[part], dirs, basis)
    _, _, gather = _project(bits[part[occ]], occ_normals, dirs, basis,
                            extra=lambda nb: (nb @ -dirs.T > BOUNCE_MIN_COS) * share)  # fmt: skip
    w_cos = _project(bits[rest], normals[rest], dirs, basis)[1]
    ones = np.full((len(rest), bits.shape[1]), 255, np.uint8)
    return Transfer(
        basis=basis,
        partial=Group(part, p_vis, p_cos, np.ascontiguousarray(bits[part]), np.ascontiguousarray(normals[part])),
        whole=Group(rest, w_cos, w_cos, ones, np.ascontiguousarray(normals[rest])),
        blocked=p_cos - p_vis,
        occluded=occ,
        gather_t=np.ascontiguousarray(gather.T),
        empty=basis[facing_count == 0].sum(0).astype(np.float32),
    )


@njit_cached(parallel=True, fastmath=True)
def _sharp_sums(bits, normals, sdirs, sidx, slight, sseen, num, den):  # pragma: no cover - jitted
    """Add the few sharp directions sdirs [S, 3] (asset space; indices sidx into sphere_directions()) exactly:
    num[i] += sum_s cos bit(i, sidx[s]) sseen[s], den[i] += sum_s cos slight[s], over s above i's tangent plane."""
    for i in numba.prange(bits.shape[0]):
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        n0 = n1 = n2 = d0 = d1 = d2 = np.float32(0.0)
        for s in range(sidx.shape[0]):  # branch-free: the tests are data-dependent and mispredict
            c = max(sdirs[s, 0] * nx + sdirs[s, 1] * ny + sdirs[s, 2] * nz, np.float32(0.0))
            k = sidx[s]
            v = c * np.float32((bits[i, k >> 3] >> (k & 7)) & 1)
            d0 += c * slight[s, 0]
            d1 += c * slight[s, 1]
            d2 += c * slight[s, 2]
            n0 += v * sseen[s, 0]
            n1 += v * sseen[s, 1]
            n2 += v * sseen[s, 2]
        num[i, 0] += n0
        num[i, 1] += n1
        num[i, 2] += n2
        den[i, 0] += d0
        den[i, 1] += d1
        den[i, 2] += d2


def _sums(g: Group, lv_seen, lv, sdirs, sharp, slight, sseen) -> tuple[np.ndarray, np.ndarray]:
    """(num [M, 3] = sum_k cos visible L_seen, den [M, 3] = sum_k cos L) of a group: basis part plus the sharp
    directions exactly. The basis products are numba's (_basis_rows), not BLAS: on 2 cores BLAS's threads and
    numba's handing the cores back and forth cost more than these thin products."""
    num = np.empty((len(g.index), 3), np.float32)
    den = np.empty((len(g.index), 3), np.float32)
    _basis_rows(g.visible, np.ascontiguousarray(np.asarray(lv_seen, np.float32).T), num)
    _basis_rows(g.cosine, np.ascontiguousarray(np.asarray(lv, np.float32).T), den)
    _sharp_sums(g.bits, g.normals, sdirs, sharp, slight, sseen, num, den)
    return num, den


@njit_cached(parallel=True, fastmath=True)
def _basis_rows(rows, coeffs_t, out, accumulate=False):  # pragma: no cover - jitted
    """out [M, 3] = rows [M, r] @ coeffs_t.T (coeffs_t [3, r] float32), or out += that when accumulate, one row per
    parallel iteration. The coefficients come transposed so that the loop over r reads both operands in order and
    vectorises: with them as [r, 3] the same products took 7x as long (2.75 against 0.38 ms for 55k rows of 64 on 2
    cores)."""
    for i in numba.prange(rows.shape[0]):
        a0 = a1 = a2 = np.float32(0.0)
        for k in range(rows.shape[1]):
            w = rows[i, k]
            a0 += w * coeffs_t[0, k]
            a1 += w * coeffs_t[1, k]
            a2 += w * coeffs_t[2, k]
        if accumulate:
            a0 += out[i, 0]
            a1 += out[i, 1]
            a2 += out[i, 2]
        out[i, 0] = a0
        out[i, 1] = a1
        out[i, 2] = a2


@njit_cached(parallel=True, fastmath=True)
def _diffuse_t(diffuse_albedo, occ, rows, num, scale, out):  # pragma: no cover - jitted
    """out [3, Q] = (diffuse_albedo[occ] max(num[rows], 0) scale)^T: the occluded Gaussians' first-pass diffuse
    radiance (occ [Q] their asset indices, rows [Q] their rows of num [M, 3])."""
    for q in numba.prange(occ.shape[0]):
        i, r = occ[q], rows[q]
        for c in range(3):
            out[c, q] = diffuse_albedo[i, c] * max(num[r, c], np.float32(0.0)) * scale


@njit_cached(parallel=True, fastmath=True)
def _ratio_into(num, den, floor, index, out):  # pragma: no cover - jitted
    """out[index[i]] = clip(num[i] / max(den[i], floor), 0, 32) for rows [M, 3] (the shadow of transfer_shadows)."""
    for i in numba.prange(num.shape[0]):
        k = index[i]
        for c in range(3):
            out[k, c] = min(max(num[i, c] / max(den[i, c], floor), np.float32(0.0)), np.float32(32.0))


def transfer_shadows(t: Transfer, radiance: np.ndarray, diffuse_albedo: np.ndarray,
                     below_ground: np.ndarray | None = None, ground_radiance=None,
                     interreflection: bool = True) -> np.ndarray:  # fmt: skip
    """Light-dependent diffuse visibility [N, 3] ~[0, 1], as render.gaussian_shadows computes it over every
    direction (visibility.light_visibility, direct then with the one bounce of visibility.directional_bounce).

    radiance [D, 3]: the environment over each direction's cell (visibility.sphere_directions(), asset space;
    world light); diffuse_albedo [N, 3] = albedo (1 - metallic), the bounce's reflectance; below_ground [D] bool
    with ground_radiance [3]: directions that see a lit ground plane instead of the environment."""
    light = np.ascontiguousarray(radiance, np.float32)
    seen = light
    ground = below_ground is not None and bool(np.any(below_ground))
    if ground:
        seen = np.where(np.asarray(below_ground)[:, None], np.asarray(ground_radiance, np.float32)[None], light)
    # the brightest directions exactly, the smooth rest through the basis
    sharp = np.argsort(light.sum(1))[::-1][:SHARP_DIRECTIONS].astype(np.int64)
    rest, rest_seen = light.copy(), seen.copy()
    rest[sharp] = 0.0
    rest_seen[sharp] = 0.0
    args = (t.basis.T @ rest_seen, t.basis.T @ rest, sphere_directions()[sharp], sharp,
            np.ascontiguousarray(light[sharp]), np.ascontiguousarray(seen[sharp]))  # fmt: skip
    out = np.ones((len(t.partial.index) + len(t.whole.index), 3), np.float32)
    groups = (t.partial, t.whole) if ground else (t.partial,)  # without a ground the whole-hemisphere ones are 1
    for gi, g in enumerate(groups):
        if len(g.index) == 0:
            continue
        num, den = _sums(g, *args)
        if gi == 0 and interreflection and len(t.occluded):
            # first-pass diffuse radiance of the occluded ones: (E / pi) x shadow = den (4 / D) x num / den
            occ = g.index[t.occluded]
            diffuse_t = np.empty((3, len(occ)), np.float32)  # [3, Q]
            _diffuse_t(np.ascontiguousarray(diffuse_albedo, np.float32), occ, t.occluded, num,
                       np.float32(4.0 / len(light)), diffuse_t)  # fmt: skip
            # V^T bounce radiance [r, 3] = gather_t [r, Q] @ diffuse + empty x their mean (numba's product, not
            # BLAS's: this thin one cost 3 ms in BLAS beside numba's threads, under 1 ms here)
            bounce = np.empty((len(t.gather_t), 3), np.float32)
            _basis_rows(t.gather_t, diffuse_t, bounce)
            bounce += t.empty[:, None] * diffuse_t.mean(1)[None]
            _basis_rows(t.blocked, np.ascontiguousarray(bounce.T), num, True)  # blocked directions see the bounce
        _ratio_into(num, den, np.float32(1e-12 + 1e-6 * float(den.max())), g.index, out)
    return out
