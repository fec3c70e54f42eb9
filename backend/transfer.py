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

from .jit import njit_cached
from .visibility import BOUNCE_MIN_COS, sphere_directions, unpack_bits

TRANSFER_RANK = 64  # basis directions kept (of visibility.VIS_DIRECTIONS)
BASIS_SAMPLES = 32768  # Gaussians whose rows estimate the basis
SHARP_DIRECTIONS = 16  # the light's brightest directions, summed exactly (a sun or softbox stays sharp)
CHUNK = 16384  # Gaussians per block while projecting (bounds the [CHUNK, D] float32 temporaries)
OCCLUDED_AO = 0.98  # ambient occlusion below which a Gaussian counts as occluded (directional_bounce's test)


@dataclass
class Transfer:
    """Per-Gaussian transfer coefficients on a direction basis (asset space, float32)."""

    basis: np.ndarray  # [D, r] orthonormal columns over visibility.sphere_directions()
    visible: np.ndarray  # [N, r] (cos x visibility) rows on the basis
    cosine: np.ndarray  # [N, r] clamped-cosine rows on the basis
    blocked: np.ndarray  # [N, r] cosine - visible: the rows of the directions the object blocks
    gather_t: np.ndarray  # [r, N] bounce gathering: V^T bounce = gather_t diffuse + empty x mean occluded diffuse
    empty: np.ndarray  # [r] basis summed over directions no occluded Gaussian faces back along
    occluded: np.ndarray  # [N] bool, the Gaussians whose radiance the bounce gathers
    bits: np.ndarray  # [N, D/8] uint8 the visibility bits (for the sharp directions)
    normals: np.ndarray  # [N, 3] float32 asset-space normals


def _rows(bits: np.ndarray, normals: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bits [n, D/8], normals [n, 3] -> (cos x visible [n, D], cos [n, D]) float32."""
    cos = np.maximum(np.asarray(normals, np.float32) @ dirs.T, 0.0)
    return cos * unpack_bits(bits, len(dirs)), cos


def build_transfer(bits: np.ndarray, normals: np.ndarray, ao: np.ndarray, rank: int = TRANSFER_RANK) -> Transfer:
    """Visibility bits [N, D/8] with asset-space normals [N, 3] and ambient occlusion [N] -> Transfer."""
    dirs = sphere_directions()
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

    occluded = np.asarray(ao) < OCCLUDED_AO
    if not occluded.any():
        occluded = np.ones(n, bool)
    facing_count = np.zeros(d, np.float64)  # occluded Gaussians facing back along each direction
    for s in range(0, n, CHUNK):
        sl = slice(s, s + CHUNK)
        facing_count += ((np.asarray(normals[sl], np.float32) @ -dirs.T > BOUNCE_MIN_COS) & occluded[sl, None]).sum(0)
    share = np.where(facing_count > 0, 1.0 / np.maximum(facing_count, 1.0), 0.0).astype(np.float32)  # [D]
    visible = np.empty((n, rank), np.float32)
    cosine = np.empty((n, rank), np.float32)
    gather = np.zeros((n, rank), np.float32)
    for s in range(0, n, CHUNK):
        sl = slice(s, s + CHUNK)
        a, c = _rows(bits[sl], normals[sl], dirs)
        visible[sl] = a @ basis
        cosine[sl] = c @ basis
        facing = (np.asarray(normals[sl], np.float32) @ -dirs.T > BOUNCE_MIN_COS) & occluded[sl, None]
        gather[sl] = (facing * share) @ basis
    empty = basis[facing_count == 0].sum(0)
    return Transfer(basis, visible, cosine, cosine - visible, np.ascontiguousarray(gather.T), empty.astype(np.float32), occluded, np.ascontiguousarray(bits),
                    np.ascontiguousarray(normals, np.float32))  # fmt: skip


@njit_cached(parallel=True, fastmath=True)
def _sharp_sums(bits, normals, sdirs, sidx, slight, sseen, num, den):  # pragma: no cover - jitted
    """Add the few sharp directions sdirs [S, 3] (asset space; indices sidx into sphere_directions()) exactly:
    num[i] += sum_s cos bit(i, sidx[s]) sseen[s], den[i] += sum_s cos slight[s], over s above i's tangent plane."""
    for i in numba.prange(bits.shape[0]):
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        n0 = n1 = n2 = d0 = d1 = d2 = 0.0
        for s in range(sidx.shape[0]):
            c = sdirs[s, 0] * nx + sdirs[s, 1] * ny + sdirs[s, 2] * nz
            if c <= 0.0:
                continue
            d0 += c * slight[s, 0]
            d1 += c * slight[s, 1]
            d2 += c * slight[s, 2]
            k = sidx[s]
            if (bits[i, k >> 3] >> (k & 7)) & 1:
                n0 += c * sseen[s, 0]
                n1 += c * sseen[s, 1]
                n2 += c * sseen[s, 2]
        num[i, 0] += n0
        num[i, 1] += n1
        num[i, 2] += n2
        den[i, 0] += d0
        den[i, 1] += d1
        den[i, 2] += d2


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
    if below_ground is not None and below_ground.any():
        seen = np.where(np.asarray(below_ground)[:, None], np.asarray(ground_radiance, np.float32)[None], light)
    # the brightest directions exactly, the smooth rest through the basis
    sharp = np.argsort(light.sum(1))[::-1][:SHARP_DIRECTIONS].astype(np.int64)
    rest, rest_seen = light.copy(), seen.copy()
    rest[sharp] = 0.0
    rest_seen[sharp] = 0.0
    num = t.visible @ (t.basis.T @ rest_seen)  # [N, 3] sum_k cos visible L
    den = t.cosine @ (t.basis.T @ rest)  # [N, 3] sum_k cos L
    _sharp_sums(t.bits, t.normals, sphere_directions()[sharp], sharp, np.ascontiguousarray(light[sharp]),
                np.ascontiguousarray(seen[sharp]), num, den)  # fmt: skip
    if interreflection:
        # first-pass diffuse radiance: (E / pi) x shadow = den (4 / D) x num / den
        diffuse = diffuse_albedo * np.maximum(num, 0.0) * np.float32(4.0 / len(light))  # [N, 3]
        mean = diffuse[t.occluded].mean(0)
        bounce = t.gather_t @ diffuse + t.empty[:, None] * mean[None]  # [r, 3] = V^T (bounce radiance per direction)
        num += t.blocked @ bounce.astype(np.float32)  # blocked directions see the bounce
    den = np.maximum(den, 1e-12 + 1e-6 * den.max(0))
    return np.clip(num / den, 0.0, 32.0).astype(np.float32)
