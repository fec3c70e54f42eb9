"""The voxel grids over asset space [-0.5, 0.5]^3: a point's cell and a dense occupancy from active cells."""

import numpy as np

GRID = 64  # the sparse structure's resolution (NeAR's SLAT layout); other users pass their own


def voxel_index(points: np.ndarray, grid: int = GRID) -> np.ndarray:
    """[N, 3] asset-space points -> [N, 3] int32 cell coordinates in [0, grid)."""
    return np.clip(np.floor((points + 0.5) * grid), 0, grid - 1).astype(np.int32)


def occupancy(coords: np.ndarray, grid: int = GRID) -> np.ndarray:
    """[L, 3] active coordinates -> [grid, grid, grid] bool occupancy."""
    occ = np.zeros((grid, grid, grid), bool)
    occ[coords[:, 0], coords[:, 1], coords[:, 2]] = True
    return occ
