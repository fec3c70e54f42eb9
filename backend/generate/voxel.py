"""Sparse voxel structure over the asset (NeAR's SLAT layout): active cells of a 64^3 grid on [-0.5, 0.5]^3."""

import numpy as np

from ..core.surface import sample_surface
from ..core.voxel_grid import GRID, voxel_index


def voxelize(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, grid: int = GRID) -> np.ndarray:
    """Surface voxelization -> [L, 3] int32 active coordinates, sorted (dense enough sampling to touch every cell)."""
    n = int(max(20000, 8 * grid * grid * 6))
    pts, _, _, _, _ = sample_surface(vertices, faces, normals, n, seed=1)
    pts = np.concatenate([pts, vertices.astype(np.float32)])
    return np.unique(voxel_index(pts, grid), axis=0)


def assign(points: np.ndarray, coords: np.ndarray, grid: int = GRID) -> np.ndarray:
    """[N, 3] points, [L, 3] active coords -> [N] int32 index of each point's voxel in `coords` (-1 if inactive)."""
    key = lambda c: (c[:, 0].astype(np.int64) * grid + c[:, 1]) * grid + c[:, 2]  # noqa: E731
    ck = key(coords)
    order = np.argsort(ck)
    pk = key(voxel_index(points, grid))
    pos = np.searchsorted(ck[order], pk)
    pos = np.clip(pos, 0, len(ck) - 1)
    hit = ck[order][pos] == pk
    return np.where(hit, order[pos], -1).astype(np.int32)
