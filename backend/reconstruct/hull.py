"""Visual hull: a voxel grid carved by the views' masks (and by their depth, where given), meshed by marching cubes.

A voxel survives when its centre projects inside every view's frame and mask (the object is taken to be whole in
every view, as in Zero123++'s rig; a voxel no view can rule out would otherwise survive far from the object). Masks are dilated by
`dilate_px` pixels (1 by default) before carving: the hull stays conservative under +-1 pixel of mask error (rounding
of a generated mask, a slightly eroded matte) while growing by under half a voxel at the rig's scale (one pixel is
4 / 597 = 0.0067 world units at the origin for 320^2 Zero123++ views; a 128^3 voxel over the object is ~0.016).
`outlier_views` lets a voxel lie outside that many masks: for generated masks where a whole view may be wrong; it
widens the hull a lot with six views, so it is 0 unless asked for. With depth, a voxel more than a margin (1.5 voxels)
in front of the observed surface in any view is empty: depth sees the concavities no silhouette shows.
"""

import numpy as np
from scipy import ndimage
from skimage.measure import marching_cubes

from ..core.camera import Camera
from ..core.progress import no_progress
from .views import MultiViewSet


class HullError(ValueError):
    """The masks and cameras carve away everything (or leave nothing meshable)."""


def project(cam: Camera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """points [N, 3] world -> (col [N], row [N] pixel coordinates (centres at +0.5), z [N] camera depth)."""
    pc = points @ cam.viewmat[:3, :3].T + cam.viewmat[:3, 3]
    z = pc[:, 2]
    zs = np.where(z > 1e-9, z, 1e-9)
    return cam.K[0, 0] * pc[:, 0] / zs + cam.K[0, 2], cam.K[1, 1] * pc[:, 1] / zs + cam.K[1, 2], z


def initial_bounds(cameras: list[Camera]) -> tuple[np.ndarray, np.ndarray]:
    """(lo [3], hi [3]) world box around the point nearest to all optical axes, as wide as the nearest camera's frame
    diagonal there: where the cameras can all see."""
    A, b = np.zeros((3, 3)), np.zeros(3)
    for cam in cameras:
        d = cam.viewmat[2, :3]  # optical axis in world
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ cam.position
    centre = np.linalg.lstsq(A, b, rcond=None)[0]
    half = []
    for cam in cameras:
        dist = np.linalg.norm(centre - cam.position)
        half.append(dist * np.hypot(0.5 * cam.width / cam.K[0, 0], 0.5 * cam.height / cam.K[1, 1]))
    h = min(half)
    return centre - h, centre + h


def carve(views: MultiViewSet, lo: np.ndarray, hi: np.ndarray, resolution: int, dilate_px: int = 1,
          outlier_views: int = 0, use_depth: bool = True, exclude: int | None = None,
          depth_margin: float = 0.0) -> np.ndarray:
    """[R, R, R] bool occupancy of voxel centres over the box [lo, hi] (index order x, y, z). `exclude`: a view
    left out (to test that view against the others' hull). depth_margin: how far the depth may be off, as a fraction
    of it (its scale's uncertainty), kept on top of the 1.5-voxel margin before depth carves a voxel."""
    R = int(resolution)
    axes = [lo[i] + (np.arange(R) + 0.5) * (hi[i] - lo[i]) / R for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)  # [R^3, 3] world
    voxel = float(np.max(hi - lo)) / R
    outside = np.zeros(len(pts), np.int16)
    seen = np.ones(len(pts), bool)
    H, W = views.size
    for v, cam in enumerate(views.cameras):
        if v == exclude:
            continue
        m = views.mask[v]
        if dilate_px > 0:
            m = ndimage.binary_dilation(m, iterations=int(dilate_px))
        c, r, z = project(cam, pts)
        ci, ri = np.floor(c).astype(np.int64), np.floor(r).astype(np.int64)
        inframe = (z > 0) & (ci >= 0) & (ci < W) & (ri >= 0) & (ri < H)
        seen &= inframe  # the object is whole in every view: a voxel out of any frame is not the object
        hit = np.zeros(len(pts), bool)
        hit[inframe] = m[ri[inframe], ci[inframe]]
        outside += (inframe & ~hit).astype(np.int16)
        if use_depth and views.depth is not None:
            d = ndimage.maximum_filter(np.where(views.mask[v], views.depth[v], 0.0), size=3)  # conservative at edges
            dv = np.zeros(len(pts), np.float32)
            dv[inframe] = d[ri[inframe], ci[inframe]]
            front = z < dv * (1.0 - depth_margin) - 1.5 * voxel
            outside += ((dv > 0) & front).astype(np.int16) * (outlier_views + 1)
    return (seen & (outside <= outlier_views)).reshape(R, R, R)  # seen by every view, outside at most the allowed


def clean_occupancy(occ: np.ndarray) -> np.ndarray:
    """Keep the largest 26-connected component and fill its inner cavities."""
    lab, n = ndimage.label(occ, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return occ
    sizes = np.bincount(lab.ravel())[1:]
    return ndimage.binary_fill_holes(lab == 1 + int(np.argmax(sizes)))


def mesh_occupancy(occ: np.ndarray, lo: np.ndarray, hi: np.ndarray, smooth: float = 0.75):
    """[R, R, R] bool -> (vertices [V, 3] float32 world, faces [F, 3] int64 outward, counter-clockwise), by marching
    cubes at 0.5 of the occupancy blurred by `smooth` voxels (staircase-free; moves a flat face by under 0.1 voxel)."""
    R = occ.shape[0]
    f = np.pad(occ.astype(np.float32), 2)
    if smooth > 0:
        f = ndimage.gaussian_filter(f, smooth)
    verts, faces, _, _ = marching_cubes(f, level=0.5)
    step = (hi - lo) / R
    v = (verts - 2.0 + 0.5) * step + lo  # padded index -> voxel centre -> world
    faces = faces.astype(np.int64)
    t = v[faces]
    if np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() < 0:  # signed volume: make it outward
        faces = faces[:, ::-1].copy()
    return v.astype(np.float32), faces


def visual_hull(views: MultiViewSet, resolution: int = 128, progress=None, bounds=None, dilate_px: int = 1,
                outlier_views: int = 0, use_depth: bool = True, depth_margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Masks (and depth) + cameras -> (vertices [V, 3] float32 world, faces [F, 3] int64 outward winding).

    bounds: (lo [3], hi [3]) world box to carve, else found by a 32^3 carve of the box all cameras see, padded."""
    progress = progress or no_progress
    progress("hull", 0.0, "carving the bounding region")
    if bounds is None:
        lo, hi = initial_bounds(views.cameras)
        coarse = carve(views, lo, hi, 32, dilate_px, outlier_views, use_depth=False)
        if not coarse.any():
            raise HullError("visual hull: the masks carve away the whole region every camera sees")
        idx = np.argwhere(coarse)
        step = (hi - lo) / 32
        lo, hi = lo + (idx.min(0) - 1) * step, lo + (idx.max(0) + 2) * step
        side = float(np.max(hi - lo))  # a cube: voxels stay cubic
        c = 0.5 * (lo + hi)
        lo, hi = c - side / 2, c + side / 2
    else:
        lo, hi = (np.asarray(b, np.float64) for b in bounds)
    progress("hull", 0.2, f"carving {resolution}^3 voxels with {views.n_views} views")
    occ = carve(views, lo, hi, resolution, dilate_px, outlier_views, use_depth, depth_margin=depth_margin)
    occ = clean_occupancy(occ)
    if occ.sum() < 8:
        raise HullError(f"visual hull: only {int(occ.sum())} voxels survive carving; the masks and cameras disagree")
    progress("hull", 0.8, "marching cubes")
    v, f = mesh_occupancy(occ, lo, hi)
    progress("hull", 1.0, f"{len(f)} faces")
    return v, f
