"""Specular occlusion from the asset's precomputed visibility: per Gaussian, view and light, the share of the light
its GGX lobe gathers that escapes the object. Ambient occlusion says how much of the hemisphere is blocked, not which
part, nor how bright that part is: the inside of a ring letter's hole is mostly occluded, yet its mirror direction
looks out through the hole at the sky; a metal in a sun's shadow still has an open hemisphere, but the sun in its
lobe is blocked. The directions are the stored visibility's, plus each strong light's own shadow ray
(strong_lights.asset_light_directions), weighted by their radiance. The G-buffer's visibility channel carries this in
a final render (settings.RenderSettings.specular_visibility), and the shading's specular occlusion
(shading_model.specular_occlusion) reads it as it reads AO.

Measured with `relight eval relight --suite random` shapes rendered with their true uniform material against Cycles
(docs/relight_eval/stop23_specular_visibility/)."""

import numba
import numpy as np

from ..core.asset import RelightableAsset
from ..core.colour import LUMINANCE
from ..core.envmap import Environment
from ..core.jit import njit_cached
from ..core.visibility_rays import VIS_DIRECTIONS, sphere_directions
from relight_protocol.lru import LRU
from .strong_lights import asset_light_directions

_LOBES = LRU(4)  # per (asset arrays, eye, light): [N] float32 lobe visibility


@njit_cached(parallel=True, fastmath=True)
def _lobe_visibility(bits, means, normals, roughness, eye, dirs, weights, cells, out):  # pragma: no cover - jitted
    """out[i] = sum_k w_ik bit_ik / sum_k w_ik over the directions k above point i's tangent plane, with
    w_ik = weights_k D(h_ik) G1(l_k): the light along d_k through the GGX lobe seen from `eye`, D widened to
    alpha'^2 = alpha^2 + cells_k / (4 pi v.h) for a direction that stands for a cell of cells_k sr (a sharp lobe
    then still spans the cell its direction falls in; an exact light, cells_k = 0, is a point); 1 where no direction
    counts. Every array but bits and out is float64, the float32 asset arrays widened by the caller: a sharp lobe's
    D is sensitive to n.h near 1, and float32 dot products moved results by ~1e-5."""
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
            aw2 = a2 + cells[k] / (4.0 * np.pi * vdh)
            t = (aw2 - 1.0) * ndh * ndh + 1.0
            g1 = 2.0 * ndl / (ndl + np.sqrt(a2 + (1.0 - a2) * ndl * ndl))
            w = weights[k] * aw2 / (np.pi * t * t) * g1
            den += w
            if (bits[i, k >> 3] >> (k & 7)) & 1:
                num += w
        out[i] = num / den if den > 0.0 else 1.0


def lobe_visibility(bits: np.ndarray, means: np.ndarray, normals: np.ndarray, roughness: np.ndarray, eye: np.ndarray,
                    dirs: np.ndarray | None = None, weights: np.ndarray | None = None,
                    cells: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """[N] float32 in [0, 1]: the share of each point's GGX lobe, seen from eye [3], whose directions escape, each
    direction counted with its weight (the light along it; default 1). bits [N, ceil(D/8)] uint8 visibility over
    dirs [D, 3] (default sphere_directions()), weights [D] >= 0, cells [D] the solid angle each direction stands for
    (default 4 pi / VIS_DIRECTIONS, the stored visibility's cells; 0 for an exact light), means and normals [N, 3] in
    the same frame as eye and dirs, roughness [N] perceptual. The view direction is each point's own, towards eye."""
    dirs = sphere_directions() if dirs is None else dirs
    weights = np.ones(len(dirs)) if weights is None else weights
    cells = np.full(len(dirs), 4.0 * np.pi / VIS_DIRECTIONS) if cells is None else cells
    out = np.empty(len(means), np.float32)
    _lobe_visibility(np.ascontiguousarray(bits, np.uint8), np.ascontiguousarray(means, np.float64),
                     np.ascontiguousarray(normals, np.float64), np.ascontiguousarray(roughness, np.float64),
                     np.asarray(eye, np.float64), np.ascontiguousarray(dirs, np.float64),
                     np.ascontiguousarray(weights, np.float64), np.ascontiguousarray(cells, np.float64), out)  # fmt: skip
    return out


def specular_visibility(asset: RelightableAsset, eye_asset: np.ndarray, env: Environment,
                        exact_lights: bool = True) -> np.ndarray | None:  # fmt: skip
    """[N] lobe visibility of the asset's Gaussians seen from eye_asset [3] (asset space) under env, the light along
    each direction weighted by its luminance, or None when the asset has no visibility bits. Remembered per (asset
    arrays, eye, light): delighting's two albedo renders of a trial share it."""
    g = asset.gaussians
    if g.vis_bits is None:
        return None
    eye = np.asarray(eye_asset, np.float64)
    arrays = (g.vis_bits, g.means, g.normals, g.roughness)
    key = (asset.asset_id, *map(id, arrays), eye.tobytes(), asset.rotation.tobytes(), env.identity, env.rotation_z,
           env.strength, bool(exact_lights))  # fmt: skip

    def make():
        bits, dirs, radiance = asset_light_directions(asset, env, exact_lights)
        dirs_asset = np.asarray(dirs, np.float64) @ asset.rotation.astype(np.float64)  # R^T d
        weights = np.maximum(np.asarray(radiance, np.float64) @ LUMINANCE, 0.0)  # [D'] luminance
        cells = np.zeros(len(dirs))  # the stored directions stand for cells, the strong lights after them for points
        cells[:VIS_DIRECTIONS] = 4.0 * np.pi / VIS_DIRECTIONS
        return lobe_visibility(bits, g.means, g.normals, g.roughness, eye, dirs_asset, weights, cells)

    return _LOBES.get_or_make(key, make, pin=(*arrays, env))
