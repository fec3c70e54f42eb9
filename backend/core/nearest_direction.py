"""Nearest of a set of unit directions, for many query directions at once: the Voronoi cell each equirect texel
falls in (envmap.Environment.cell_radiance), on every new light of the live preview."""

import numba
import numpy as np

from .jit import njit_cached


@njit_cached(parallel=True, fastmath=True)
def _nearest(queries, dirs_t, out):  # pragma: no cover - jitted
    for i in numba.prange(queries.shape[0]):
        qx, qy, qz = queries[i, 0], queries[i, 1], queries[i, 2]
        best = np.float32(-3.0)
        arg = 0
        for k in range(dirs_t.shape[1]):
            c = qx * dirs_t[0, k] + qy * dirs_t[1, k] + qz * dirs_t[2, k]
            if c > best:
                best = c
                arg = k
        out[i] = arg


def nearest_direction(queries: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """queries [M, 3], dirs [D, 3] unit vectors -> [M] int64 index of the dir with the largest dot product (the
    first on a tie, as np.argmax(queries @ dirs.T, 1)); one pass without the [M, D] matrix."""
    q = np.ascontiguousarray(queries, np.float32)
    out = np.empty(len(q), np.int64)
    if len(dirs) == 0:
        raise ValueError("nearest_direction needs at least one direction")
    _nearest(q, np.ascontiguousarray(np.asarray(dirs, np.float32).T), out)
    return out
