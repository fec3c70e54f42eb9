"""The visibility stage: per surface Gaussian, occlusion bits over the fixed direction set and ambient occlusion
(core.visibility_rays does the ray march), and the points sealed inside the object, which are dropped."""

import numpy as np

from ..core.visibility_rays import ao_from_bits, surface_occupancy, unpack_bits, visibility_bits

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


def surface_visibility(vertices, faces, vnormals, points, normals, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Asset-space mesh and surface points [N, 3] with normals -> (ambient occlusion [N], visibility bits
    [N, VIS_DIRECTIONS / 8] uint8), by ray casting VIS_GRID^3 surface voxels. progress(fraction done), often."""
    occ = surface_occupancy(vertices, faces, vnormals)
    bits = visibility_bits(occ, points, normals, progress=progress)
    return ao_from_bits(bits, normals), bits
