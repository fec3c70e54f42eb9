"""Specular occlusion from the asset's precomputed visibility: per Gaussian and view, the share of its GGX lobe that
escapes the object. Ambient occlusion says how much of the hemisphere is blocked, not which part; the inside of a
ring letter's hole is mostly occluded, yet its mirror direction looks out through the hole at the sky. The G-buffer's
visibility channel carries this lobe visibility in a final render (settings.RenderSettings.specular_visibility), and
the shading's specular occlusion (shading_model.specular_occlusion) reads it as it reads AO.

Measured with `relight eval relight --suite random` shapes rendered with their true uniform material against Cycles
(docs/relight_eval/stop23_specular_visibility/): extruded text gains up to 3 dB, convex shapes do not move."""

import numba
import numpy as np

from ..core.asset import RelightableAsset
from ..core.jit import njit_cached
from ..core.visibility_rays import sphere_directions
from relight_protocol.lru import LRU

_LOBES = LRU(4)  # per (asset arrays, eye): [N] float32 lobe visibility


@njit_cached(parallel=True, fastmath=True)
def _lobe_visibility(bits, means, normals, roughness, eye, dirs, cell_omega, out):  # pragma: no cover - jitted
    """out[i] = sum_k w_ik bit_ik / sum_k w_ik over the directions k above point i's tangent plane, with
    w_ik = D(h_ik) G1(l_k) the GGX lobe seen from `eye` (D widened to alpha'^2 = alpha^2 + cell_omega / (4 pi v.h),
    so a sharp lobe still spans the cell its direction falls in); 1 where no direction counts. Every array but bits
    and out is float64, the float32 asset arrays widened by the caller: a sharp lobe's D is sensitive to n.h near 1,
    and float32 dot products moved results by ~1e-5."""
    n_pts = means.shape[0]
    m = dirs.shape[0]
    for i in numba.prange(n_pts):
        vx, vy, vz = eye[0] - means[i, 0], eye[1] - means[i, 1], eye[2] - means[i, 2]
        vl = np.sqrt(vx * vx + vy * vy + vz * vz)
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        nl = np.sqrt(nx * nx + ny * ny + nz * nz)
        if vl < 1e-12 or nl < 1e-12:
            out[i] = 1.0
            continue
        vx, vy, vz = vx / vl, vy / vl, vz / vl
        nx, ny, nz = nx / nl, ny / nl, nz / nl
        a = roughness[i] * roughness[i]
        a2 = a * a
        num = 0.0
        den = 0.0
        for k in range(m):
            ndl = dirs[k, 0] * nx + dirs[k, 1] * ny + dirs[k, 2] * nz
            if ndl <= 0.0:
                continue
            hx, hy, hz = dirs[k, 0] + vx, dirs[k, 1] + vy, dirs[k, 2] + vz
            hl = np.sqrt(hx * hx + hy * hy + hz * hz)
            if hl < 1e-12:
                continue
            ndh = (hx * nx + hy * ny + hz * nz) / hl
            vdh = max((hx * vx + hy * vy + hz * vz) / hl, 1e-4)
            aw2 = a2 + cell_omega / (4.0 * np.pi * vdh)
            t = (aw2 - 1.0) * ndh * ndh + 1.0
            g1 = 2.0 * ndl / (ndl + np.sqrt(a2 + (1.0 - a2) * ndl * ndl))
            w = aw2 / (np.pi * t * t) * g1
            den += w
            if (bits[i, k >> 3] >> (k & 7)) & 1:
                num += w
        out[i] = num / den if den > 0.0 else 1.0


def lobe_visibility(bits: np.ndarray, means: np.ndarray, normals: np.ndarray, roughness: np.ndarray,
                    eye: np.ndarray, dirs: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """[N] float32 in [0, 1]: the share of each point's GGX lobe, seen from eye [3], whose directions escape.
    bits [N, D/8] uint8 visibility over dirs [D, 3] (default sphere_directions()), means and normals [N, 3] in the
    same frame as eye and dirs, roughness [N] perceptual. The view direction is each point's own, towards eye."""
    dirs = sphere_directions() if dirs is None else dirs
    out = np.empty(len(means), np.float32)
    _lobe_visibility(np.ascontiguousarray(bits, np.uint8), np.ascontiguousarray(means, np.float64),
                     np.ascontiguousarray(normals, np.float64), np.ascontiguousarray(roughness, np.float64),
                     np.asarray(eye, np.float64), np.ascontiguousarray(dirs, np.float64),
                     4.0 * np.pi / len(dirs), out)  # fmt: skip
    return out


def specular_visibility(asset: RelightableAsset, eye_asset: np.ndarray) -> np.ndarray | None:
    """[N] lobe visibility of the asset's Gaussians seen from eye_asset [3] (asset space), or None when the asset
    has no visibility bits; remembered per (asset arrays, eye): delighting's two albedo renders of a trial share it."""
    g = asset.gaussians
    if g.vis_bits is None:
        return None
    eye = np.asarray(eye_asset, np.float64)
    arrays = (g.vis_bits, g.means, g.normals, g.roughness)
    key = (asset.asset_id, *map(id, arrays), eye.tobytes())
    return _LOBES.get_or_make(key, lambda: lobe_visibility(g.vis_bits, g.means, g.normals, g.roughness, eye),
                              pin=arrays)
