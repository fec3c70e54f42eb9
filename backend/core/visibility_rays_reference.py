"""Plain numpy reference of the visibility ray march (`visibility_rays._march_hits` behind `visibility_bits`): the
same definition, marched with a small fixed step and no distance-field skipping. For tests, not for speed."""

import numpy as np

from .visibility_rays import sphere_directions


def ray_box_span(origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[3] origin, [D, 3] directions -> (t0, t1) [D]: the ray parameters where each ray (t >= 0) is inside the grid box
    [-0.5, 0.5]^3; t0 >= t1 when it never is. A direction parallel to a slab keeps the ray in it or never in it."""
    t0 = np.zeros(len(dirs))
    t1 = np.full(len(dirs), np.inf)
    for axis in range(3):
        o, d = origin[axis], dirs[:, axis]
        flat = np.abs(d) < 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (-0.5 - o) / d
            b = (0.5 - o) / d
        lo = np.where(flat, -np.inf if -0.5 <= o <= 0.5 else np.inf, np.minimum(a, b))
        hi = np.where(flat, np.inf if -0.5 <= o <= 0.5 else -np.inf, np.maximum(a, b))
        t0, t1 = np.maximum(t0, lo), np.minimum(t1, hi)
    return t0, t1


def visibility_bits_reference(occ: np.ndarray, points: np.ndarray, normals: np.ndarray, dirs: np.ndarray | None = None,
                              offset_voxels: float = 2.0, step_voxels: float = 0.05) -> np.ndarray:  # fmt: skip
    """occ [g, g, g] bool over [-0.5, 0.5]^3, points [N, 3] with normals [N, 3] (asset space) -> [N, ceil(D / 8)]
    uint8 bit-packed visibility over dirs [D, 3] (default sphere_directions()), as visibility_bits gives it.

    Bit k of point i is set when the ray from points[i] + normals[i] * offset_voxels / g along dirs[k] leaves the
    grid without entering an occupied cell, for directions above the tangent plane (dirs[k] . normals[i] > 0); 0
    below it. The ray is sampled every step_voxels / g from where it enters the grid (t >= 0) to where it leaves,
    each sample looked up in the cell that holds it."""
    dirs = sphere_directions() if dirs is None else np.asarray(dirs, np.float32)
    g = occ.shape[0]
    n32 = np.asarray(normals, np.float32)
    origins = np.asarray(points, np.float64) + n32.astype(np.float64) * (offset_voxels / g)  # [N, 3]
    d = dirs.astype(np.float64)  # [D, 3]
    step = step_voxels / g
    vis = np.zeros((len(origins), len(dirs)), bool)
    for i, o in enumerate(origins):
        up = np.nonzero(dirs @ n32[i] > 0.0)[0]  # [K] directions above the tangent plane
        t0, t1 = ray_box_span(o, d[up])
        meets = t1 > t0
        t0, t1 = np.where(meets, t0, 0.0), np.where(meets, t1, 0.0)  # a ray that never meets the grid: no samples
        ts = t0[:, None] + step * np.arange(int(np.ceil(np.max(t1 - t0, initial=0.0) / step)) + 1)  # [K, S]
        inside = ts < t1[:, None]
        cell = np.floor((o + d[up][:, None, :] * ts[..., None] + 0.5) * g).astype(np.int64)  # [K, S, 3]
        inside &= np.all((cell >= 0) & (cell < g), axis=-1)
        c = np.clip(cell, 0, g - 1)
        hit = np.any(inside & occ[c[..., 0], c[..., 1], c[..., 2]], axis=1)  # [K]
        vis[i, up] = ~hit
    return np.packbits(vis, axis=1, bitorder="little")
