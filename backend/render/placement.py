"""An asset placed in the scene: the placement object's matrix_world (a similarity) applied after the asset's own
model_matrix, as a shallow copy that shares every array (so the renderer's caches keep working)."""

import dataclasses

import numpy as np

from ..core.asset import RelightableAsset

SIMILARITY_TOLERANCE = 1e-3  # relative: |columns| equal and orthogonal to this


def placement_similarity(matrix: np.ndarray) -> np.ndarray:
    """[4, 4] affine -> the nearest similarity (rotation from the polar decomposition, the mean column length as
    the uniform scale, the same translation): an artist's non-uniform scale is shown as its mean."""
    m = np.asarray(matrix, np.float64)
    u, s, vt = np.linalg.svd(m[:3, :3])
    r = u @ vt
    if np.linalg.det(r) < 0:  # a mirror: keep a proper rotation, the mirror is not representable
        u[:, -1] *= -1
        r = u @ vt
    out = np.eye(4)
    out[:3, :3] = r * float(np.cbrt(np.prod(s)))
    out[:3, 3] = m[:3, 3]
    return out


def placed(asset: RelightableAsset, matrix: np.ndarray | None) -> RelightableAsset:
    """The asset moved by `matrix` ([4, 4] object -> world of its placement object; None or the identity: as
    made)."""
    if matrix is None or np.allclose(matrix, np.eye(4)):
        return asset
    return dataclasses.replace(asset, model_matrix=placement_similarity(matrix) @ asset.model_matrix)
