"""Light-dependent shadowing from precomputed visibility bits: the fraction of each point's irradiance under one
environment that reaches it (numba), and the one-bounce estimate of what a blocked ray meets."""

import numba
import numpy as np

from ..core.jit import njit_cached

BOUNCE_MIN_COS = 0.3  # an occluded surface point reflects its light back along d when n . -d exceeds this
BOUNCE_OCCLUDED_AO = 0.98  # surface points below this ambient occlusion are the ones the bounce gathers from


@njit_cached(parallel=True, fastmath=True)
def _light_ratio(bits, normals, dirs, radiance, up, ground_radiance, bounce, bounce_dir, rep, hit, source,
                 out):  # pragma: no cover
    """out[i, c] = sum_k L_ik cos_ik / sum_k Lenv_k cos_ik over directions above points i's tangent plane, where
    L_ik is the environment when bit k is set, and ground_radiance when the direction points below the ground
    (dirs . up < 0; up = 0 means no ground). When bit k is clear (blocked by the object) it is bounce[i] plus
    source[h] when the ray's landing point is known (h = hit[rep[i], k] >= 0, k < hit.shape[1]), else plus
    bounce_dir[k]."""
    n = bits.shape[0]
    m = dirs.shape[0]
    for i in numba.prange(n):
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        num0 = num1 = num2 = 0.0
        den0 = den1 = den2 = 0.0
        for k in range(m):
            c = dirs[k, 0] * nx + dirs[k, 1] * ny + dirs[k, 2] * nz
            if c <= 0.0:
                continue
            e0, e1, e2 = radiance[k, 0] * c, radiance[k, 1] * c, radiance[k, 2] * c
            den0 += e0
            den1 += e1
            den2 += e2
            if (bits[i, k >> 3] >> (k & 7)) & 1:
                if dirs[k, 0] * up[0] + dirs[k, 1] * up[1] + dirs[k, 2] * up[2] < 0.0:
                    num0 += ground_radiance[0] * c
                    num1 += ground_radiance[1] * c
                    num2 += ground_radiance[2] * c
                else:
                    num0 += e0
                    num1 += e1
                    num2 += e2
            else:
                h = hit[rep[i], k] if k < hit.shape[1] else -1
                if h >= 0:
                    num0 += (bounce[i, 0] + source[h, 0]) * c
                    num1 += (bounce[i, 1] + source[h, 1]) * c
                    num2 += (bounce[i, 2] + source[h, 2]) * c
                else:
                    num0 += (bounce[i, 0] + bounce_dir[k, 0]) * c
                    num1 += (bounce[i, 1] + bounce_dir[k, 1]) * c
                    num2 += (bounce[i, 2] + bounce_dir[k, 2]) * c
        out[i, 0] = num0 / den0 if den0 > 0 else 1.0
        out[i, 1] = num1 / den1 if den1 > 0 else 1.0
        out[i, 2] = num2 / den2 if den2 > 0 else 1.0


def light_visibility(bits: np.ndarray, normals: np.ndarray, dirs: np.ndarray, radiance: np.ndarray,
                     up=None, ground_radiance=None, bounce=None, bounce_dir=None, links=None) -> np.ndarray:  # fmt: skip
    """Light-dependent diffuse visibility: the fraction of each point's environment irradiance that reaches it.

    bits [N, D/8] from visibility_bits; normals [N, 3] and dirs [D, 3] in the same (world) frame; radiance [D, 3]
    the environment averaged over each direction's cell. Optional: up [3] (world) with ground_radiance [3] for a
    ground plane that replaces the environment below the horizon; bounce [N, 3] radiance seen along directions the
    object blocks (its own interreflected light; default black), or bounce_dir [D, 3] the same per direction;
    links (rep [N] int32, hit [K, D'] int32, source [S, 3]): where a blocked ray along one of the first D'
    directions lands is known (bounce_links), so it sees source[hit[rep[i], k]] there instead of bounce_dir[k]
    (hit -1: not known). -> [N, 3] float32, ~[0, 1]; above 1 where the object's own light outshines the
    environment's (a face turned from a sun, lit by the sunlit wall it faces)."""
    n = len(bits)
    out = np.empty((n, 3), np.float32)
    up = np.zeros(3, np.float32) if up is None else np.asarray(up, np.float32)
    gr = np.zeros(3, np.float32) if ground_radiance is None else np.asarray(ground_radiance, np.float32)
    bounce = np.zeros((n, 3), np.float32) if bounce is None else np.ascontiguousarray(np.broadcast_to(bounce, (n, 3)), np.float32)
    bd = np.zeros((len(dirs), 3), np.float32) if bounce_dir is None else np.ascontiguousarray(bounce_dir, np.float32)
    if links is None:
        rep, hit, source = np.zeros(n, np.int32), np.zeros((1, 0), np.int32), np.zeros((1, 3), np.float32)
    else:
        rep, hit, source = (np.ascontiguousarray(links[0], np.int32), np.ascontiguousarray(links[1], np.int32),
                            np.ascontiguousarray(links[2], np.float32))  # fmt: skip
    _light_ratio(bits, np.ascontiguousarray(normals, np.float32), np.ascontiguousarray(dirs, np.float32),
                 np.ascontiguousarray(radiance, np.float32), up, gr, bounce, bd, rep, hit, source, out)  # fmt: skip
    return out


def directional_bounce(normals: np.ndarray, radiance: np.ndarray, ao: np.ndarray, dirs: np.ndarray,
                       min_cos: float = BOUNCE_MIN_COS) -> np.ndarray:  # fmt: skip
    """[D, 3] radiance an occluded ray along each direction is expected to meet: the mean diffuse radiance [N, 3]
    of the occluded surface points (ao < 1) facing back along it (n . -d > min_cos); the asset's mean where none."""
    occl = np.asarray(ao) < BOUNCE_OCCLUDED_AO
    n = np.asarray(normals, np.float32)[occl]
    rad = np.asarray(radiance, np.float32)[occl]
    if len(n) == 0:
        n, rad = np.asarray(normals, np.float32), np.asarray(radiance, np.float32)
    out = np.empty((len(dirs), 3), np.float32)
    fallback = rad.mean(0)
    for s in range(0, len(dirs), 32):
        facing = (n @ -np.asarray(dirs[s:s + 32], np.float32).T) > min_cos  # [N, 32]
        cnt = facing.sum(0)
        out[s:s + 32] = np.where(cnt[:, None] > 0, (facing.T.astype(np.float32) @ rad) / np.maximum(cnt, 1)[:, None], fallback)
    return out
