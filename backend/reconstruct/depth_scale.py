"""Predicted depth is trusted only up to a scale per view. A network's depth maps (and a rig whose distance is only
nominal) come with per-view scale errors of a few percent; at the rig's distance of 4 units, 2 % moves the surface
0.08 units, eight times the F-score's tolerance, and every view's error pulls the mesh its own way. The masks have no
such error, and their visual hull is an outer bound of the object that touches it along every view's silhouette
rim, so the observed depth can never be nearer than the hull's and equals it somewhere near the rim: each view's
scale is the low quantile of observed / hull depth over its mask. The hull itself stands a fraction of a voxel
proud of the object in every view alike (0.1-0.5 % of the depth at 128^3), so the scales are taken relative to
their median across the views: what is corrected is each view's disagreement with the others, which is what pulls
the mesh apart (a common scale is left alone: it cannot be told from the hull's own offset)."""

import numpy as np

from .views import MultiViewSet

QUANTILE = 5.0  # percent: the ratio observed / hull that the rim pixels (where the hull touches the object) give
TRUST = 0.003  # a scale within this of 1 is left alone: the hull's voxels resolve no finer


def depth_scales(views: MultiViewSet, hull_vertices: np.ndarray, hull_faces: np.ndarray) -> np.ndarray:
    """[V] the factor each view's depth is off by relative to the views' median (observed = factor x true), from the
    hull of the masks alone (vertices [N, 3] world, faces [F, 3]); 1 where a view has too little overlap to say."""
    from .bake_maps import mesh_depth

    out = np.ones(views.n_views)
    for i, cam in enumerate(views.cameras):
        zh = mesh_depth(cam, hull_vertices, hull_faces)  # [H, W] camera z of the hull, inf where empty
        zo = views.depth[i]
        ok = views.mask[i] & np.isfinite(zh) & (zh > 0) & (zo > 0)
        if ok.sum() >= 64:
            out[i] = float(np.percentile(zo[ok] / zh[ok], QUANTILE))
    return out / float(np.median(out))


def rescale_depth(views: MultiViewSet, scales: np.ndarray) -> MultiViewSet:
    """The views with each depth map divided by its scale (scales within TRUST of 1 are left as they are)."""
    from dataclasses import replace

    s = np.where(np.abs(scales - 1.0) > TRUST, scales, 1.0).astype(np.float32)
    return replace(views, depth=views.depth / s[:, None, None], meta={**views.meta, "depth_scales": s.tolist()})
