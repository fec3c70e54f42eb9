"""Precomputed visibility: per-point occlusion bits over a fixed direction set, ray-marched through a voxel
occupancy grid (numba, CPU), and the ambient occlusion and light-dependent shadowing derived from them."""

import numba
import numpy as np

from .jit import njit_cached
from .surface import sample_surface
from .voxel import occupancy, voxel_index

# ------------------------------------------------------------------ per-point visibility over a fixed direction set

VIS_DIRECTIONS = 256  # directions of the precomputed visibility (bits per point), asset space
VIS_GRID = 128  # occupancy resolution of the ray-cast voxels
BOUNCE_MIN_COS = 0.3  # an occluded surface point reflects its light back along d when n . -d exceeds this
BOUNCE_OCCLUDED_AO = 0.98  # surface points below this ambient occlusion are the ones the bounce gathers from


def sphere_directions(m: int = VIS_DIRECTIONS) -> np.ndarray:
    """[m, 3] near-uniform unit directions on the sphere (Fibonacci), each standing for 4 pi / m sr."""
    k = np.arange(m) + 0.5
    z = 1.0 - 2.0 * k / m
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    phi = k * np.pi * (3 - np.sqrt(5))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1).astype(np.float32)


@njit_cached(parallel=True, fastmath=True)
def _march_bits(points, normals, dist, dirs, step, offset, out):  # pragma: no cover - jitted
    """out[i, k // 8] bit k % 8 = 1 when the ray from points[i] (lifted by offset along normals[i]) along dirs[k]
    leaves the grid [-0.5, 0.5]^3 without meeting an occupied cell (dist == 0). Rays enter the grid first if they
    start outside it, and skip empty space by the distance to the nearest occupied cell (dist, in cells).
    Directions below the point's tangent plane are left 0."""
    n = points.shape[0]
    g = dist.shape[0]
    m = dirs.shape[0]
    for i in numba.prange(n):
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        ox = points[i, 0] + nx * offset
        oy = points[i, 1] + ny * offset
        oz = points[i, 2] + nz * offset
        for k in range(m):
            dx, dy, dz = dirs[k, 0], dirs[k, 1], dirs[k, 2]
            if dx * nx + dy * ny + dz * nz <= 0.0:
                continue
            # slab test against the grid box
            t0, t1 = 0.0, 1e30
            for o, d in ((ox, dx), (oy, dy), (oz, dz)):
                if abs(d) < 1e-12:
                    if o < -0.5 or o > 0.5:
                        t0, t1 = 1.0, 0.0
                else:
                    a = (-0.5 - o) / d
                    b = (0.5 - o) / d
                    if a > b:
                        a, b = b, a
                    t0 = max(t0, a)
                    t1 = min(t1, b)
            hit = False
            t = t0
            while t < t1:
                px = int((ox + dx * t + 0.5) * g)
                py = int((oy + dy * t + 0.5) * g)
                pz = int((oz + dz * t + 0.5) * g)
                if px >= 0 and py >= 0 and pz >= 0 and px < g and py < g and pz < g:
                    dd = dist[px, py, pz]
                    if dd == 0.0:
                        hit = True
                        break
                    t += max(step, (dd - 1.75) / g)  # safe: a point is within sqrt(3)/2 of its cell centre
                else:
                    t += step
            if not hit:
                out[i, k >> 3] |= np.uint8(1 << (k & 7))


def surface_occupancy(vertices, faces, vnormals, grid: int = VIS_GRID) -> np.ndarray:
    """[grid]^3 bool cells over [-0.5, 0.5]^3 that the asset-space surface passes through."""
    pts, _, _, _, _ = sample_surface(vertices, faces, vnormals, 24 * grid * grid, seed=3)  # ~5 per cell crossed
    pts = np.concatenate([pts, np.asarray(vertices, np.float32)])
    return occupancy(np.unique(voxel_index(pts, grid), axis=0), grid)


def visibility_bits(occ: np.ndarray, points: np.ndarray, normals: np.ndarray, dirs: np.ndarray | None = None,
                    offset_voxels: float = 2.0) -> np.ndarray:  # fmt: skip
    """Points [N, 3] with normals [N, 3] (asset space) -> [N, ceil(D / 8)] uint8 bit-packed visibility over
    sphere_directions() (bit set = the direction escapes the object; below the tangent plane always 0)."""
    dirs = sphere_directions() if dirs is None else np.asarray(dirs, np.float32)
    g = occ.shape[0]
    out = np.zeros((len(points), (len(dirs) + 7) // 8), np.uint8)
    from scipy.ndimage import distance_transform_edt

    dist = distance_transform_edt(~occ).astype(np.float32)  # [g]^3 cells to the nearest occupied cell centre
    _march_bits(np.ascontiguousarray(points, np.float32), np.ascontiguousarray(normals, np.float32), dist, dirs,
                0.6 / g, offset_voxels / g, out)  # fmt: skip
    return out


def unpack_bits(bits: np.ndarray, m: int = VIS_DIRECTIONS) -> np.ndarray:
    """[N, ceil(m / 8)] uint8 -> [N, m] bool."""
    return np.unpackbits(bits, axis=1, bitorder="little")[:, :m].astype(bool)


def ao_from_bits(bits: np.ndarray, normals: np.ndarray, dirs: np.ndarray | None = None) -> np.ndarray:
    """Cosine-weighted unoccluded fraction [N] in [0, 1] from visibility bits (light-independent AO)."""
    dirs = sphere_directions() if dirs is None else dirs
    cos = np.maximum(np.asarray(normals, np.float32) @ dirs.T, 0.0)  # [N, D]
    vis = unpack_bits(bits, len(dirs))
    return (np.sum(cos * vis, 1) / np.maximum(np.sum(cos, 1), 1e-12)).astype(np.float32)


SEALED_ESCAPE = 0.08  # a point whose rays escape in fewer than this fraction of its hemisphere is inside the object


def sealed(bits: np.ndarray, max_fraction: float = 0.5) -> np.ndarray:
    """[N] bool: points from which (almost) no direction of the upper hemisphere escapes the object, bits
    [N, D / 8] as from visibility_bits. "Almost": a ray can slip diagonally between the cells of a one-voxel
    surface shell, so an enclosed point still shows a few escaping directions. Such points sit inside the surface
    (internal shells, self-intersections such as Suzanne's eyes): no light reaches them and no outside camera sees
    them, and kept as splats they can show through the real surface as dark specks. When more than max_fraction
    of the points are sealed the mesh itself is suspect (normals pointing inwards) and nothing is flagged."""
    m = np.asarray(bits).shape[1] * 8  # directions (a multiple of 8)
    escapes = unpack_bits(bits, m).sum(1)  # [N] escaping directions (the lower hemisphere is never set)
    s = escapes < SEALED_ESCAPE * 0.5 * m
    return s if s.mean() <= max_fraction else np.zeros(len(s), bool)


def surface_visibility(vertices, faces, vnormals, points, normals) -> tuple[np.ndarray, np.ndarray]:
    """Asset-space mesh and surface points [N, 3] with normals -> (ambient occlusion [N], visibility bits
    [N, VIS_DIRECTIONS / 8] uint8), by ray casting VIS_GRID^3 surface voxels."""
    occ = surface_occupancy(vertices, faces, vnormals)
    bits = visibility_bits(occ, points, normals)
    return ao_from_bits(bits, normals), bits


@njit_cached(parallel=True, fastmath=True)
def _light_ratio(bits, normals, dirs, radiance, up, ground_radiance, bounce, bounce_dir, out):  # pragma: no cover
    """out[i, c] = sum_k L_ik cos_ik / sum_k Lenv_k cos_ik over directions above points i's tangent plane, where
    L_ik is the environment when bit k is set, bounce[i, c] + bounce_dir[k, c] when blocked by the object, and
    ground_radiance when
    the direction points below the ground (dirs . up < 0; up = 0 means no ground)."""
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
                num0 += (bounce[i, 0] + bounce_dir[k, 0]) * c
                num1 += (bounce[i, 1] + bounce_dir[k, 1]) * c
                num2 += (bounce[i, 2] + bounce_dir[k, 2]) * c
        out[i, 0] = num0 / den0 if den0 > 0 else 1.0
        out[i, 1] = num1 / den1 if den1 > 0 else 1.0
        out[i, 2] = num2 / den2 if den2 > 0 else 1.0


def light_visibility(bits: np.ndarray, normals: np.ndarray, dirs: np.ndarray, radiance: np.ndarray,
                     up=None, ground_radiance=None, bounce=None, bounce_dir=None) -> np.ndarray:  # fmt: skip
    """Light-dependent diffuse visibility: the fraction of each point's environment irradiance that reaches it.

    bits [N, D/8] from visibility_bits; normals [N, 3] and dirs [D, 3] in the same (world) frame; radiance [D, 3]
    the environment averaged over each direction's cell. Optional: up [3] (world) with ground_radiance [3] for a
    ground plane that replaces the environment below the horizon; bounce [N, 3] radiance seen along directions the
    object blocks (its own interreflected light; default black), or bounce_dir [D, 3] the same per direction.
    -> [N, 3] float32, ~[0, 1]."""
    n = len(bits)
    out = np.empty((n, 3), np.float32)
    up = np.zeros(3, np.float32) if up is None else np.asarray(up, np.float32)
    gr = np.zeros(3, np.float32) if ground_radiance is None else np.asarray(ground_radiance, np.float32)
    bounce = np.zeros((n, 3), np.float32) if bounce is None else np.ascontiguousarray(np.broadcast_to(bounce, (n, 3)), np.float32)
    bd = np.zeros((len(dirs), 3), np.float32) if bounce_dir is None else np.ascontiguousarray(bounce_dir, np.float32)
    _light_ratio(bits, np.ascontiguousarray(normals, np.float32), np.ascontiguousarray(dirs, np.float32),
                 np.ascontiguousarray(radiance, np.float32), up, gr, bounce, bd, out)  # fmt: skip
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
