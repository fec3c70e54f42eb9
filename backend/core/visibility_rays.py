"""Visibility over a fixed direction set: the directions, a ray march through a voxel occupancy grid (numba, CPU) that
gives per-point occlusion bits, and the bit encoding. The generator stores these bits in the asset; the renderer
reads them, and ray-marches the ground plane's points with the same kernel."""

import numba
import numpy as np

from .jit import njit_cached
from .surface import sample_surface
from .voxel_grid import occupancy, voxel_index

VIS_DIRECTIONS = 256  # directions of the precomputed visibility (bits per point), asset space
VIS_GRID = 128  # occupancy resolution of the ray-cast voxels
ESCAPES, BELOW = -1.0, -2.0  # the march's distance for a ray that meets no occupied cell, and for one not marched


def sphere_directions(m: int = VIS_DIRECTIONS) -> np.ndarray:
    """[m, 3] near-uniform unit directions on the sphere (Fibonacci), each standing for 4 pi / m sr."""
    k = np.arange(m) + 0.5
    z = 1.0 - 2.0 * k / m
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    phi = k * np.pi * (3 - np.sqrt(5))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1).astype(np.float32)


@njit_cached(fastmath=True)
def _hit_distance(ox, oy, oz, dx, dy, dz, t_end, dist, step):  # pragma: no cover - jitted
    """The distance t (asset units) along the ray o + t d (asset space, |d| = 1), 0 <= t < t_end, to the first
    occupied cell (dist == 0) of the grid [-0.5, 0.5]^3, or ESCAPES when it meets none: it enters the grid first if it
    starts outside, and skips empty space by the distance to the nearest occupied cell (dist, in cells)."""
    g = dist.shape[0]
    t0, t1 = 0.0, t_end
    for o, d in ((ox, dx), (oy, dy), (oz, dz)):  # slab test against the grid box
        if abs(d) < 1e-12:
            if o < -0.5 or o > 0.5:
                return ESCAPES
        else:
            a = (-0.5 - o) / d
            b = (0.5 - o) / d
            if a > b:
                a, b = b, a
            t0 = max(t0, a)
            t1 = min(t1, b)
    t = t0
    while t < t1:
        px = int((ox + dx * t + 0.5) * g)
        py = int((oy + dy * t + 0.5) * g)
        pz = int((oz + dz * t + 0.5) * g)
        if px >= 0 and py >= 0 and pz >= 0 and px < g and py < g and pz < g:
            dd = dist[px, py, pz]
            if dd == 0.0:
                return t
            t += max(step, (dd - 1.75) / g)  # safe: a point is within sqrt(3)/2 of its cell centre
        else:
            t += step
    return ESCAPES


@njit_cached(fastmath=True)
def _escapes(ox, oy, oz, dx, dy, dz, t_end, dist, step):  # pragma: no cover - jitted
    """True when the ray o + t d, 0 <= t < t_end, meets no occupied cell (_hit_distance)."""
    return _hit_distance(ox, oy, oz, dx, dy, dz, t_end, dist, step) < 0.0


@njit_cached(parallel=True, fastmath=True)
def _march_hits(points, normals, dist, dirs, step, offset, out):  # pragma: no cover - jitted
    """out[i, k] = the distance from points[i] (lifted by offset along normals[i]) along dirs[k] to the first
    occupied cell (_hit_distance); ESCAPES when the ray meets none, BELOW when dirs[k] is below the point's tangent
    plane (not marched)."""
    n = points.shape[0]
    m = dirs.shape[0]
    for i in numba.prange(n):
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        ox = points[i, 0] + nx * offset
        oy = points[i, 1] + ny * offset
        oz = points[i, 2] + nz * offset
        for k in range(m):
            dx, dy, dz = dirs[k, 0], dirs[k, 1], dirs[k, 2]
            if dx * nx + dy * ny + dz * nz <= 0.0:
                out[i, k] = BELOW
            else:
                out[i, k] = _hit_distance(ox, oy, oz, dx, dy, dz, 1e30, dist, step)


@njit_cached(parallel=True, fastmath=True)
def _march_towards(points, normals, dist, target, step, offset, out):  # pragma: no cover - jitted
    """out[i] = True when the segment from points[i] (lifted by offset along normals[i]) to the point `target` [3]
    meets no occupied cell (_escapes up to the target). A target below the point's tangent plane is left False."""
    for i in numba.prange(points.shape[0]):
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        ox = points[i, 0] + nx * offset
        oy = points[i, 1] + ny * offset
        oz = points[i, 2] + nz * offset
        dx, dy, dz = target[0] - ox, target[1] - oy, target[2] - oz
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        if d < 1e-9 or dx * nx + dy * ny + dz * nz <= 0.0:
            continue
        out[i] = _escapes(ox, oy, oz, dx / d, dy / d, dz / d, d, dist, step)


def _distance_cells(occ: np.ndarray) -> np.ndarray:
    """[g]^3 float32 distance (cells) of each cell to the nearest occupied cell centre: the march's empty-space skip."""
    from scipy.ndimage import distance_transform_edt

    return distance_transform_edt(~occ).astype(np.float32)


def visibility_bits(occ: np.ndarray, points: np.ndarray, normals: np.ndarray, dirs: np.ndarray | None = None,
                    offset_voxels: float = 2.0, progress=None, chunk: int = 4096) -> np.ndarray:  # fmt: skip
    """Points [N, 3] with normals [N, 3] (asset space) -> [N, ceil(D / 8)] uint8 bit-packed visibility over
    sphere_directions() (bit set = the direction escapes the object; below the tangent plane always 0).
    progress(fraction done) is called after every `chunk` points (a fraction of a second each)."""
    dirs = sphere_directions() if dirs is None else np.ascontiguousarray(dirs, np.float32)
    g = occ.shape[0]
    out = np.zeros((len(points), (len(dirs) + 7) // 8), np.uint8)
    dist = _distance_cells(occ)
    points = np.ascontiguousarray(points, np.float32)
    normals = np.ascontiguousarray(normals, np.float32)
    t = np.empty((min(chunk, len(points)), len(dirs)), np.float32)  # [chunk, D] the march's distances
    for a in range(0, len(points), chunk):
        ta = t[:len(points[a:a + chunk])]
        _march_hits(points[a:a + chunk], normals[a:a + chunk], dist, dirs, 0.6 / g, offset_voxels / g, ta)
        out[a:a + chunk] = np.packbits(ta == ESCAPES, axis=1, bitorder="little")
        if progress is not None:
            progress(min(1.0, (a + chunk) / len(points)))
    return out


def hit_points(occ: np.ndarray, points: np.ndarray, normals: np.ndarray, dirs: np.ndarray,
               offset_voxels: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Points [N, 3] with normals [N, 3] (asset space), directions dirs [D, 3] -> the rays the object blocks, marched
    like visibility_bits (a blocked ray above the tangent plane is a clear bit there): (point index [M] int,
    direction index [M] int, where [M, 3] float32 the asset-space point each stops at, within a cell of the
    surface)."""
    g = occ.shape[0]
    points = np.ascontiguousarray(points, np.float32)
    normals = np.ascontiguousarray(normals, np.float32)
    dirs = np.ascontiguousarray(dirs, np.float32)
    t = np.empty((len(points), len(dirs)), np.float32)  # [N, D] distance to the hit, < 0 when none
    _march_hits(points, normals, _distance_cells(occ), dirs, 0.6 / g, offset_voxels / g, t)
    ii, kk = np.nonzero(t >= 0.0)
    where = points[ii] + normals[ii] * np.float32(offset_voxels / g) + t[ii, kk, None] * dirs[kk]
    return ii, kk, where.astype(np.float32)


def visibility_towards(occ: np.ndarray, points: np.ndarray, normals: np.ndarray, target: np.ndarray,
                       offset_voxels: float = 2.0) -> np.ndarray:  # fmt: skip
    """Points [N, 3] with normals [N, 3] (asset space) -> [N] bool: the segment to the asset-space point target [3]
    (a point, spot or area lamp) escapes the object; a target below a point's tangent plane is never seen."""
    g = occ.shape[0]
    out = np.zeros(len(points), bool)
    _march_towards(np.ascontiguousarray(points, np.float32), np.ascontiguousarray(normals, np.float32),
                   _distance_cells(occ), np.asarray(target, np.float32), 0.6 / g, offset_voxels / g, out)  # fmt: skip
    return out


def surface_occupancy(vertices, faces, vnormals, grid: int = VIS_GRID) -> np.ndarray:
    """[grid]^3 bool cells over [-0.5, 0.5]^3 that the asset-space surface passes through."""
    pts, _, _, _, _ = sample_surface(vertices, faces, vnormals, 24 * grid * grid, seed=3)  # ~5 per cell crossed
    pts = np.concatenate([pts, np.asarray(vertices, np.float32)])
    return occupancy(np.unique(voxel_index(pts, grid), axis=0), grid)


def unpack_bits(bits: np.ndarray, m: int = VIS_DIRECTIONS) -> np.ndarray:
    """[N, ceil(m / 8)] uint8 -> [N, m] bool."""
    return np.unpackbits(bits, axis=1, bitorder="little")[:, :m].astype(bool)


def ao_from_bits(bits: np.ndarray, normals: np.ndarray, dirs: np.ndarray | None = None) -> np.ndarray:
    """Cosine-weighted unoccluded fraction [N] in [0, 1] from visibility bits (light-independent AO)."""
    dirs = sphere_directions() if dirs is None else dirs
    cos = np.maximum(np.asarray(normals, np.float32) @ dirs.T, 0.0)  # [N, D]
    vis = unpack_bits(bits, len(dirs))
    return (np.sum(cos * vis, 1) / np.maximum(np.sum(cos, 1), 1e-12)).astype(np.float32)
