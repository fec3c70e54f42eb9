"""Predicted depth is trusted only up to a scale per view. A network's depth maps (and a rig whose distance is only
nominal) come with per-view scale errors of a few percent; at the rig's distance of 4 units, 2 % moves the surface
0.08 units, eight times the F-score's tolerance, and every view's error pulls the mesh its own way. The masks have no
such error, and their visual hull is an outer bound of the object that touches it along every view's silhouette
rim, so the observed depth can never be nearer than the hull's and equals it somewhere near the rim: each view's
scale is the low quantile of observed / hull depth over its mask. The hull itself stands proud of the object by
about half a voxel plus the masks' one-pixel dilation; that offset, divided by the view's depth, is taken off the
ratio (the hull's own bias, 0.1-0.5 % at 128^3), and a scale that is then within TRUST of 1 is left alone."""

import numpy as np

from .views import MultiViewSet

QUANTILE = 5.0  # percent: the ratio observed / hull that the rim pixels (where the hull touches the object) give
TRUST = 0.003  # a scale within this of 1 is left alone: the hull's voxels resolve no finer
UNCERTAINTY = 0.01  # how far a corrected scale may still be off: the masks' hull pins it to about 0.5 % when the masks
# are off by +-2 px (the multi-view evaluation's degraded input), so depth then carves the hull only beyond twice
# that, and the optimisation fits its shape rather than its distance (optimise.OptimiseSettings.depth_relative)


def depth_scales(views: MultiViewSet, hull_vertices: np.ndarray, hull_faces: np.ndarray, resolution: int,
                 dilate_px: float = 1.0) -> np.ndarray:
    """[V] the factor each view's depth is off by (observed = factor x true), from the hull of the masks alone
    (vertices [N, 3] world, faces [F, 3], carved at `resolution` voxels along its box's longest side with masks
    dilated by dilate_px); 1 where a view has too little overlap to say."""
    from .bake_maps import mesh_depth

    voxel = float(np.ptp(hull_vertices, axis=0).max()) / resolution
    out = np.ones(views.n_views)
    for i, cam in enumerate(views.cameras):
        zh = mesh_depth(cam, hull_vertices, hull_faces)  # [H, W] camera z of the hull, inf where empty
        zo = views.depth[i]
        ok = views.mask[i] & np.isfinite(zh) & (zh > 0) & (zo > 0)
        if ok.sum() >= 64:
            z = float(np.median(zh[ok]))
            offset = 0.5 * voxel + dilate_px * z / float(cam.K[0, 0])  # how far the hull stands proud, world units
            out[i] = float(np.percentile(zo[ok] / zh[ok], QUANTILE)) * (1.0 - offset / z)
    return out


def rescale_depth(views: MultiViewSet, scales: np.ndarray) -> MultiViewSet:
    """The views with each depth map divided by its scale (scales within TRUST of 1 are left as they are)."""
    from dataclasses import replace

    s = np.where(np.abs(scales - 1.0) > TRUST, scales, 1.0).astype(np.float32)
    return replace(views, depth=views.depth / s[:, None, None], meta={**views.meta, "depth_scales": s.tolist()})
