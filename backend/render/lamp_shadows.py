"""Each Gaussian's visibility towards the scene's lamps: a sun along its one direction, a point, spot or area lamp
towards its position (so a lamp near the asset shadows each part from where that part sees it). Exact: a ray per
Gaussian through the asset's occupancy grid. Interactive, while a lamp is dragged: a blend of the asset's stored
visibility directions nearest each Gaussian's direction to the lamp."""

import numba
import numpy as np

from ..core.asset import RelightableAsset
from ..core.jit import njit_cached
from ..core.visibility_rays import sphere_directions, unpack_bits, visibility_towards
from relight_protocol.lru import LRU
from .strong_lights import asset_occupancy, light_bits

STORED_NEIGHBOURS = 3  # stored directions blended per lamp direction (_blend_towards keeps 3 in scalars)
STORED_SHARPNESS = 40.0  # weight exp(sharpness (d . l - 1)) of a stored direction d for a lamp direction l
TABLE_SIZE = (64, 128)  # equirect texels (z rows, azimuth columns) of the stored directions' candidate table
TABLE_CANDIDATES = 8  # stored directions nearest each texel's centre: a lamp direction in the texel (< 2.8 degrees
# off its centre) has its STORED_NEIGHBOURS nearest among them (the stored directions lie ~12.7 degrees apart)

_LAMP_VIS = LRU(4)  # per (asset arrays, placement, lamps, exact): [N, K] float32
_TOWARDS = LRU(8)  # per (asset geometry, Gaussians, asset-space lamp position): [N] bool exact visibility
_TABLE = LRU(1)  # the candidate table of sphere_directions()
_DIRECTIONS = sphere_directions()  # [D, 3] float32 asset space: the stored visibility's directions


def lamp_visibility(asset: RelightableAsset, lamps: tuple, exact: bool = True) -> np.ndarray:
    """[N, K] float32 visibility of each Gaussian towards each lamp (lamps.Lamp; 1: lit; 1 for a lamp without
    shadows or with no light). exact: a ray per Gaussian and lamp through the occupancy grid (~0.3 s of CPU per new
    lamp direction or position at 100k Gaussians, remembered); else, when the asset has its stored visibility bits, a
    blend of the stored directions nearest each Gaussian's direction to the lamp (soft, ~1 ms: the interactive
    preview while a lamp is dragged). Remembered for the last few (asset arrays, placement, lamps): an orbit with the
    lamps still reuses it; entries hold the arrays they are keyed on."""
    g = asset.gaussians
    arrays = (asset.vertices, asset.faces, g.means, g.normals, g.vis_bits)
    key = (asset.asset_id, *map(id, arrays), asset.model_matrix.tobytes(), _lamps_key(lamps), bool(exact))
    return _LAMP_VIS.get_or_make(key, lambda: _lamp_visibility(asset, tuple(lamps), exact), pin=arrays)


def _lamp_visibility(asset: RelightableAsset, lamps: tuple, exact: bool) -> np.ndarray:
    """lamp_visibility, computed."""
    g = asset.gaussians
    vis = np.ones((len(g), len(lamps)), np.float32)
    stored = not exact and g.vis_bits is not None
    suns = [k for k, lamp in enumerate(lamps) if lamp.kind == "sun" and lamp.shadows and _shines(lamp)]
    if suns:
        dirs = -np.array([lamps[k].direction for k in suns], np.float32)  # [K', 3] world, towards each sun
        if stored:
            vis[:, suns] = stored_visibility(asset, dirs)
        else:
            vis[:, suns] = unpack_bits(light_bits(asset, dirs), len(suns))
    for k, lamp in enumerate(lamps):
        if lamp.kind != "sun" and lamp.shadows and _shines(lamp):
            target = _to_asset(asset, lamp.position)
            vis[:, k] = stored_visibility_towards(asset, target) if stored else _exact_towards(asset, target)
    return vis


def _lamps_key(lamps: tuple) -> tuple:
    """A hashable key of the lamps' fields (a caller may give numpy vectors)."""
    def values(lamp) -> list:
        return np.asarray([*lamp.color, lamp.energy, *lamp.position, *lamp.direction, lamp.spot_size, lamp.spot_blend],
                          np.float64).tolist()  # fmt: skip

    return tuple((lamp.kind, *values(lamp), lamp.shadows) for lamp in lamps)


def _shines(lamp) -> bool:
    return lamp.energy > 0 and max(lamp.color) > 0


def _to_asset(asset: RelightableAsset, position) -> np.ndarray:
    """[3] float32 asset-space point of a world position [3] (model_matrix: asset -> world)."""
    p = np.linalg.solve(asset.model_matrix, np.array([*map(float, position), 1.0]))
    return p[:3].astype(np.float32)


def _exact_towards(asset: RelightableAsset, target: np.ndarray) -> np.ndarray:
    """[N] float32: 1 where the segment from the Gaussian to the asset-space point target [3] escapes the object."""
    g = asset.gaussians
    key = (asset.asset_id, id(asset.vertices), id(asset.faces), id(g.means), id(g.normals), target.tobytes())
    hit = _TOWARDS.get_or_make(key, lambda: visibility_towards(asset_occupancy(asset), g.means, g.normals, target),
                               pin=(asset.vertices, asset.faces, g.means, g.normals))  # fmt: skip
    return hit.astype(np.float32)


def stored_visibility(asset: RelightableAsset, dirs_world: np.ndarray) -> np.ndarray:
    """[N, K] float32 visibility of the Gaussians towards world directions dirs_world [K, 3] from the asset's stored
    visibility bits (VIS_DIRECTIONS directions): a blend of the STORED_NEIGHBOURS stored directions nearest each."""
    stored = _DIRECTIONS  # [D, 3] asset space
    bits = asset.gaussians.vis_bits  # [N, D / 8]
    local = np.asarray(dirs_world, np.float64) @ asset.rotation.astype(np.float64)  # [K, 3] R^T d
    out = np.zeros((bits.shape[0], len(local)), np.float32)
    for j, l in enumerate(local):
        cos = stored @ l.astype(np.float32)
        near = np.argsort(-cos)[:STORED_NEIGHBOURS]
        w = np.exp(STORED_SHARPNESS * (cos[near] - 1.0))
        w /= w.sum()
        for k, wk in zip(near, w):
            out[:, j] += np.float32(wk) * ((bits[:, k >> 3] >> (k & 7)) & 1)
    return out


def stored_visibility_towards(asset: RelightableAsset, target: np.ndarray) -> np.ndarray:
    """[N] float32 visibility of each Gaussian towards the asset-space point target [3] from the stored bits: the
    stored_visibility blend along each Gaussian's own direction to the point (0 where the point is below its tangent
    plane, as the exact ray gives)."""
    g = asset.gaussians
    out = np.zeros(len(g), np.float32)
    _blend_towards(g.means, g.normals, g.vis_bits, _DIRECTIONS, _candidate_table(), np.asarray(target, np.float32),
                   np.float32(STORED_SHARPNESS), out)  # fmt: skip
    return out


def _candidate_table() -> np.ndarray:
    """[TH, TW, TABLE_CANDIDATES] int16: the stored directions nearest each equirect texel's centre direction (row:
    z from 1 down to -1 evenly, column: azimuth from -pi)."""

    def make():
        th, tw = TABLE_SIZE
        z = 1.0 - 2.0 * (np.arange(th) + 0.5) / th
        phi = -np.pi + 2.0 * np.pi * (np.arange(tw) + 0.5) / tw
        r = np.sqrt(1.0 - z * z)[:, None]
        centres = np.stack([r * np.cos(phi), r * np.sin(phi), np.broadcast_to(z[:, None], (th, tw))], -1)
        cos = centres.reshape(-1, 3) @ _DIRECTIONS.T.astype(np.float64)  # [TH TW, D]
        near = np.argsort(-cos, 1)[:, :TABLE_CANDIDATES]
        return near.reshape(th, tw, TABLE_CANDIDATES).astype(np.int16)

    return _TABLE.get_or_make("table", make)


@njit_cached(parallel=True, fastmath=True)
def _blend_towards(means, normals, bits, dirs, table, target, sharpness, out):  # pragma: no cover - jitted
    """out[i] = the weighted blend of the stored bits of the 3 (STORED_NEIGHBOURS) stored directions nearest the unit
    direction from means[i] to target, among the table's candidates for that direction's texel; 0 below the tangent
    plane. The three best are kept in scalars: an array per Gaussian would be a heap allocation each."""
    th, tw, nc = table.shape
    for i in numba.prange(means.shape[0]):
        dx, dy, dz = target[0] - means[i, 0], target[1] - means[i, 1], target[2] - means[i, 2]
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        if d < 1e-9 or dx * normals[i, 0] + dy * normals[i, 1] + dz * normals[i, 2] <= 0.0:
            continue
        dx, dy, dz = dx / d, dy / d, dz / d
        row = min(th - 1, max(0, int((1.0 - dz) * 0.5 * th)))
        col = min(tw - 1, max(0, int((np.arctan2(dy, dx) + np.pi) / (2.0 * np.pi) * tw)))
        c0 = c1 = c2 = -2.0  # the three largest cosines, c0 >= c1 >= c2, and their directions
        k0 = k1 = k2 = 0
        for c in range(nc):
            k = table[row, col, c]
            cos = dirs[k, 0] * dx + dirs[k, 1] * dy + dirs[k, 2] * dz
            if cos > c0:
                c2, k2, c1, k1, c0, k0 = c1, k1, c0, k0, cos, k
            elif cos > c1:
                c2, k2, c1, k1 = c1, k1, cos, k
            elif cos > c2:
                c2, k2 = cos, k
        w0 = np.exp(sharpness * (c0 - 1.0))
        w1 = np.exp(sharpness * (c1 - 1.0))
        w2 = np.exp(sharpness * (c2 - 1.0))
        acc = w0 * ((bits[i, k0 >> 3] >> (k0 & 7)) & 1) + w1 * ((bits[i, k1 >> 3] >> (k1 & 7)) & 1)
        acc += w2 * ((bits[i, k2 >> 3] >> (k2 & 7)) & 1)
        out[i] = acc / (w0 + w1 + w2)
