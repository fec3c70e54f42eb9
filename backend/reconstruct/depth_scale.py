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
VISIBLE = 0.02  # a point lifted from one view and seen in another agrees with its depth this well, at the prior
TRUST = 0.003  # a scale within this of 1 is left alone: the hull's voxels resolve no finer


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


def consistent_scales(views: MultiViewSet, prior: np.ndarray, stride: int = 4, prior_weight: float = 0.05) -> np.ndarray:
    """[V] depth scales that make the views' depth maps agree with each other where they overlap, the common scale
    (which agreement cannot fix) pulled towards `prior` [V] (the hull's reading, depth_scales): each view's masked
    pixels (every `stride`-th) are lifted to 3D at depth / scale and compared, in every other view that sees them in
    its mask, with that view's depth / its scale (a robust fit: occluded pairs fall out as outliers). The hull alone
    reads each scale to about the masks' accuracy (a pixel or two: 0.2-0.4 % at the rig's distance); agreement
    between the depth maps themselves is far finer."""
    from scipy.optimize import least_squares

    pairs = []  # (i, j, z of the lifted point in camera i at unit scale [P], ray [P, 3] cam i, pixel in j, depth_j)
    for i, ci in enumerate(views.cameras):
        ys, xs = np.nonzero(views.mask[i][::stride, ::stride])
        ys, xs = ys * stride, xs * stride
        z = views.depth[i][ys, xs].astype(np.float64)
        good = z > 0
        ys, xs, z = ys[good], xs[good], z[good]
        ray = np.stack([(xs + 0.5 - ci.K[0, 2]) / ci.K[0, 0], (ys + 0.5 - ci.K[1, 2]) / ci.K[1, 1], np.ones_like(z)], 1)
        Ri, ti = ci.viewmat[:3, :3], ci.viewmat[:3, 3]
        for j, cj in enumerate(views.cameras):
            if j == i:
                continue
            pw = ((ray * (z / prior[i])[:, None]) - ti) @ Ri  # world points at the prior's scale: where j sees them
            pc = pw @ cj.viewmat[:3, :3].T + cj.viewmat[:3, 3]
            u = cj.K[0, 0] * pc[:, 0] / pc[:, 2] + cj.K[0, 2]
            v = cj.K[1, 1] * pc[:, 1] / pc[:, 2] + cj.K[1, 2]
            ui, vi = np.floor(u).astype(int), np.floor(v).astype(int)
            inside = (pc[:, 2] > 0) & (ui >= 0) & (vi >= 0) & (ui < cj.width) & (vi < cj.height)
            ui, vi = ui[inside], vi[inside]
            dj = views.depth[j][vi, ui].astype(np.float64)
            keep = views.mask[j][vi, ui] & (dj > 0)
            if keep.sum() < 32:
                continue
            sel = np.nonzero(inside)[0][keep]
            # visible in j (not behind what j sees): agreeing within VISIBLE at the prior scales
            agree = np.abs(pc[sel, 2] * prior[j] / dj[keep] - 1.0) < VISIBLE
            if agree.sum() < 32:
                continue
            pairs.append((i, j, z[sel][agree], ray[sel][agree], dj[keep][agree]))
    if not pairs:
        return prior

    def residuals(log_s):
        sc = np.exp(log_s)
        out = []
        for i, j, z, ray, dj in pairs:
            ci, cj = views.cameras[i], views.cameras[j]
            pw = ((ray * (z / sc[i])[:, None]) - ci.viewmat[:3, 3]) @ ci.viewmat[:3, :3]
            zj = pw @ cj.viewmat[2, :3] + cj.viewmat[2, 3]  # the lifted point's depth in view j
            out.append(np.log(np.maximum(zj, 1e-6) * sc[j] / dj))  # relative: blind to a common scale, as it should be
        out.append(prior_weight * (log_s - np.log(prior)).mean() * np.ones(1) * np.sqrt(sum(len(p[2]) for p in pairs)))
        return np.concatenate(out)

    fit = least_squares(residuals, np.log(prior), loss="soft_l1", f_scale=0.005)
    return np.exp(fit.x)


def rescale_depth(views: MultiViewSet, scales: np.ndarray) -> MultiViewSet:
    """The views with each depth map divided by its scale (scales within TRUST of 1 are left as they are)."""
    from dataclasses import replace

    s = np.where(np.abs(scales - 1.0) > TRUST, scales, 1.0).astype(np.float32)
    return replace(views, depth=views.depth / s[:, None, None], meta={**views.meta, "depth_scales": s.tolist()})
