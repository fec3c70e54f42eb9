"""Precomputed visibility: per-point ambient occlusion by ray marching a voxel occupancy grid (numba, CPU)."""

import numba
import numpy as np

from .surface import sample_surface
from .voxel import occupancy, voxel_index

AO_GRID = 128  # occupancy resolution over [-0.5, 0.5]^3 used for the rays


@numba.njit(parallel=True, cache=True, fastmath=True)
def _march(points, normals, occ, dirs_local, max_dist, step, offset, seed):  # pragma: no cover - jitted
    n = points.shape[0]
    g = occ.shape[0]
    m = dirs_local.shape[0]
    out = np.empty(n, np.float32)
    for i in numba.prange(n):
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        nl = np.sqrt(nx * nx + ny * ny + nz * nz)
        if not (nl > 1e-6) or not (np.isfinite(points[i, 0]) and np.isfinite(points[i, 1]) and np.isfinite(points[i, 2])):
            out[i] = 1.0  # no usable normal: treat as unoccluded
            continue
        nx, ny, nz = nx / nl, ny / nl, nz / nl
        # tangent frame around the normal
        if abs(nz) < 0.9:
            tx, ty, tz = -ny, nx, 0.0
        else:
            tx, ty, tz = 0.0, -nz, ny
        tl = np.sqrt(tx * tx + ty * ty + tz * tz)
        tx, ty, tz = tx / tl, ty / tl, tz / tl
        bx, by, bz = ny * tz - nz * ty, nz * tx - nx * tz, nx * ty - ny * tx
        ang = ((i * 2654435761 + seed) % 1000003) / 1000003.0 * 6.283185307  # per-point twist against banding
        ca, sa = np.cos(ang), np.sin(ang)
        ox = points[i, 0] + nx * offset
        oy = points[i, 1] + ny * offset
        oz = points[i, 2] + nz * offset
        free = 0
        for k in range(m):
            lx = dirs_local[k, 0] * ca - dirs_local[k, 1] * sa
            ly = dirs_local[k, 0] * sa + dirs_local[k, 1] * ca
            lz = dirs_local[k, 2]
            dx = lx * tx + ly * bx + lz * nx
            dy = lx * ty + ly * by + lz * ny
            dz = lx * tz + ly * bz + lz * nz
            t = 0.0
            hit = False
            while t < max_dist:
                px = (ox + dx * t + 0.5) * g
                py = (oy + dy * t + 0.5) * g
                pz = (oz + dz * t + 0.5) * g
                if not (px >= 0 and py >= 0 and pz >= 0 and px < g and py < g and pz < g):
                    break
                if occ[int(px), int(py), int(pz)]:
                    hit = True
                    break
                t += step
            if not hit:
                free += 1
        out[i] = free / m
    return out


def hemisphere_directions(m: int) -> np.ndarray:
    """[m, 3] cosine-weighted directions about +z (Fibonacci spiral), so the AO mean is cosine-weighted."""
    k = np.arange(m) + 0.5
    r = np.sqrt(k / m)
    phi = k * np.pi * (3 - np.sqrt(5))
    return np.stack([r * np.cos(phi), r * np.sin(phi), np.sqrt(1 - r * r)], 1).astype(np.float32)


def ambient_occlusion(vertices, faces, vnormals, points, normals, rays: int = 48, max_dist: float = 0.6) -> np.ndarray:
    """Asset-space mesh and query points [N, 3] with normals -> [N] cosine-weighted unoccluded fraction in [0, 1]."""
    pts, _, _, _, _ = sample_surface(vertices, faces, vnormals, 60 * AO_GRID * AO_GRID, seed=3)
    occ = occupancy(np.unique(voxel_index(pts, AO_GRID), axis=0), AO_GRID)
    voxel = 1.0 / AO_GRID
    return _march(
        points.astype(np.float32), normals.astype(np.float32), occ, hemisphere_directions(rays),
        max_dist, 0.5 * voxel, 2.0 * voxel, 12345,
    )
