"""The Gaussians stage: one flat surfel per surface sample, oriented by the smooth normal, with neutral materials
that delighting then replaces."""

import numpy as np

from ..core.gaussians import SurfaceGaussians, quats_from_normals

SURFEL_SIGMA = 0.75  # in-plane standard deviation, in units of the mean sample spacing
SURFEL_THICKNESS = 0.1  # normal-axis standard deviation relative to the in-plane one
SURFEL_OPACITY = 0.98


def surface_gaussians(points: np.ndarray, normals: np.ndarray, ao: np.ndarray, vis_bits: np.ndarray,
                      voxel: np.ndarray, spacing: float) -> SurfaceGaussians:  # fmt: skip
    """points [N, 3] and unit normals [N, 3] (asset space), ambient occlusion [N], visibility bits [N, D / 8],
    voxel index [N], mean sample spacing -> SurfaceGaussians with albedo 0.5, roughness 0.5, metallic 0."""
    sigma = SURFEL_SIGMA * spacing
    n = len(points)
    return SurfaceGaussians(
        means=points,
        quats=quats_from_normals(normals),
        scales=np.tile(np.array([sigma, sigma, SURFEL_THICKNESS * sigma], np.float32), (n, 1)),
        opacities=np.full(n, SURFEL_OPACITY, np.float32),
        albedo=np.full((n, 3), 0.5, np.float32), roughness=np.full(n, 0.5, np.float32),
        metallic=np.zeros(n, np.float32), normals=normals, visibility=ao, voxel=voxel, vis_bits=vis_bits,
    )
