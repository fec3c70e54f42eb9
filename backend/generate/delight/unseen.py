"""What the photo shows and what it does not: the surface points the input camera sees, reading the image at them,
and completing the side the image does not show."""

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.spatial import cKDTree

from ...core.camera import Camera
from ...render.occlusion import facing, on_surface


def visible_points(camera: Camera, vertices, faces, points, normals, mask) -> tuple[np.ndarray, np.ndarray]:
    """Which points the input camera sees -> (seen [N] bool, pixel coords [N, 2] (x, y) continuous)."""
    front, _, xy = on_surface(camera, vertices, faces, points)
    ix = np.clip(np.floor(xy[:, 0]).astype(np.int64), 0, camera.width - 1)
    iy = np.clip(np.floor(xy[:, 1]).astype(np.int64), 0, camera.height - 1)
    seen = front & mask[iy, ix] & (facing(camera, normals) > 0.05)  # normal towards the camera
    return seen, xy


def sample_image(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """[H, W, C] image, [N, 2] continuous pixel coords (centres at +0.5) -> [N, C] bilinear."""
    coords = [xy[:, 1] - 0.5, xy[:, 0] - 0.5]
    return np.stack([map_coordinates(img[..., c], coords, order=1, mode="nearest") for c in range(img.shape[-1])], 1)


FADE_LENGTH = 0.1  # complete_unseen(fade=True): a seen value's weight falls by e every this share of the extent
EXACT_REACH = 0.3  # nearest_seen is exact out to this share of the extent (weight exp(-3) ~ 0.05 there), ...
FAR_EPS = 0.5  # ... and beyond, within 1 + this of the nearest distance (the weight then errs by at most ~0.01)


def nearest_seen(tree: cKDTree, p: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """The seen point nearest each of p [U, 3] -> (distances [U], indices [U] into the tree's points): exact within
    `reach`, and beyond it a seen point at most (1 + FAR_EPS) times farther than the nearest. The exact search is
    slow far from the surface, where many points lie at nearly the same distance (on an 80k-point sphere half seen,
    4 s against 0.3 s), and a value found that far has faded almost wholly into the mean."""
    d, i = tree.query(p, distance_upper_bound=reach, workers=-1)
    far = ~np.isfinite(d)
    if far.any():
        d[far], i[far] = tree.query(p[far], eps=FAR_EPS, workers=-1)
    return d, i


def complete_unseen(points, seen, values_seen, camera: Camera, spacing: float, mirror: bool = True,
                    smooth_steps: int = 3, fade: bool = False) -> np.ndarray:
    """Fill the side the image does not show. points [N, 3], seen [N] bool, values_seen [S, C] -> [N, C].

    With `mirror` (inflated shapes, whose back is the front's mirror image), each unseen point takes the seen point
    at its reflection across the plane through the centre facing the camera when one lies there; otherwise the
    nearest seen point (nearest_seen). With `fade`, the nearest seen value fades with distance d into the seen
    points' mean, weight exp(-d / (FADE_LENGTH extent)): next to the seam the texture continues, far from it the
    least-squares guess is the mean colour. Then `smooth_steps` rounds of neighbour averaging over the unseen points
    soften the fill."""
    out = np.zeros((len(points), values_seen.shape[1]), np.float64)
    out[seen] = values_seen
    tree = cKDTree(points[seen])
    un = np.nonzero(~seen)[0]
    if un.size == 0:
        return out
    p = points[un]
    extent = float(np.ptp(points, axis=0).max())
    d_n, i_n = nearest_seen(tree, p, EXACT_REACH * extent)
    out[un] = values_seen[i_n]
    if fade:
        w = np.exp(-d_n / max(FADE_LENGTH * extent, 1e-9))[:, None]  # [U, 1]
        out[un] = w * values_seen[i_n] + (1 - w) * values_seen.mean(0)
    if mirror:
        fwd = camera.viewmat[2, :3]  # camera viewing direction in asset space
        c = points.mean(0)
        mirrored = p - 2 * ((p - c) @ fwd)[:, None] * fwd[None]
        d_m, i_m = tree.query(mirrored, workers=-1)
        use_m = d_m < 4 * spacing
        out[un[use_m]] = values_seen[i_m[use_m]]
    all_tree = cKDTree(points)
    _, nb = all_tree.query(p, k=8, workers=-1)
    for _ in range(smooth_steps):
        out[un] = 0.5 * out[un] + 0.5 * out[nb].mean(1)
    return out
