"""Coverage from the truth: which pixels the asset's mesh covers, and the splat G-buffer made to fill exactly those.
Splat alpha thins where flat surfels are seen edge-on (a disc seen side-on is a line) once the hidden back surface
is culled, and the background showed through as speckles; the mesh says where the surface is, the splats what it is."""

import numpy as np
from scipy.ndimage import distance_transform_edt

from ..core.camera import Camera
from ..core.jit import njit_cached
from .mesh_raster import clip_from_camera
from .mesh_visible_triangles import visible_triangle_ids

MIN_SPLAT_ALPHA = 0.01  # a pixel with less splat alpha carries no features of its own: it takes its nearest neighbour's
NEAR_RADIUS = 4  # px: how far an empty pixel looks for its nearest covered one before a whole distance transform


def mesh_coverage(view: Camera, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[H, W] bool: the pixels of `view` (H, W its size) whose centre the mesh covers. vertices [V, 3] and the view
    are in one space (asset space for an asset's mesh); faces [F, 3] int. Visibility pass only (numba, no
    barycentrics): a triangle with a vertex behind the camera is dropped, as mesh_visible_triangles documents."""
    # [V, 4] clip space. Not mesh_raster.to_clip: the same product, but through torch's thread pool it took 0.1 to
    # 25 ms a call (median 24) on a busy 2-core machine, more than the whole visibility pass; numpy takes 0.1 ms
    pos = np.c_[vertices, np.ones(len(vertices))] @ clip_from_camera(view).T
    return visible_triangle_ids(pos, faces, (view.height, view.width)) > 0


def fill_coverage(colors: np.ndarray, alphas: np.ndarray, covered: np.ndarray, impl: str = "numba",
                  out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Splat G-buffer -> the G-buffer of the mesh's coverage.

    colors [H, W, C] alpha-premultiplied features (0 where alpha is 0) and alphas [H, W, 1] float32 from the splat
    rasterizer; covered [H, W] bool (mesh_coverage at the same size). Each pixel the mesh covers takes its splat
    features over its splat alpha (the weighted mean of the Gaussians there, so a thinly covered spot is at full
    strength) or, where the splats leave it empty (alpha < MIN_SPLAT_ALPHA), the features of the nearest pixel they
    do cover. Pixels the mesh does not cover are emptied: the splats' fringe beyond the true silhouette goes.
    -> (colors [H, W, C] float32, alphas [H, W, 1] float32: 1 where the mesh covers, else 0). With no splat-covered
    pixel inside the coverage there is nothing to fill from: the splat buffers come back unchanged.
    out: [H, W, C] float32 the features are written to, either zeros or `colors` itself (a render's own buffer,
    whose pages are already in memory: the demo asset at 1024 px fills in ~4 ms so, ~9 into a new array); None: a
    new array, and the inputs are left as they are.
    impl: "numba" (one pass, the fast path: it runs on every frame) or "numpy" (the vectorised reference); they
    agree bit for bit."""
    if impl not in ("numba", "numpy"):
        raise ValueError(f"impl must be 'numba' or 'numpy', got {impl!r}")
    if not covered.any():
        return colors, alphas
    rows, cols = _bounds(covered)  # the coverage's bounding box: the search for empty pixels is on that crop only
    own = covered[rows, cols] & (alphas[rows, cols, 0] >= MIN_SPLAT_ALPHA)  # [h, w] pixels whose features are kept
    if not own.any():
        return colors, alphas
    ey, ex = np.nonzero(covered[rows, cols] & ~own)  # [E] covered by the mesh, not by the splats: a few, usually
    if len(ey):
        ny, nx = nearest_pixels(own, ey, ex)
        # [E, C], read before `out` (which may be `colors`) is written
        fill = colors[ny + rows.start, nx + cols.start] / alphas[ny + rows.start, nx + cols.start]
    out = np.zeros(colors.shape, np.float32) if out is None else out  # calloc'd: pages left 0 are never touched
    if impl == "numba":
        _straighten(colors, alphas, covered, np.float32(MIN_SPLAT_ALPHA), out)
    else:
        keep = covered & (alphas[..., 0] >= MIN_SPLAT_ALPHA)  # [H, W]
        scale = np.where(keep, 1.0 / np.maximum(alphas[..., 0], MIN_SPLAT_ALPHA), 0.0)  # [H, W]
        np.multiply(colors, scale[..., None].astype(np.float32), out=out)  # 0 off the mesh and where empty
    if len(ey):
        out[ey + rows.start, ex + cols.start] = fill
    return out, covered[..., None].astype(np.float32)


@njit_cached()
def _straighten(colors, alphas, covered, floor, out):  # pragma: no cover - compiled
    """fill_coverage's pass over the frame: out[y, x] = colors[y, x] * (1 / alpha) (rounded as the numpy reference
    does) where covered and alpha >= floor; 0 where not covered and alpha > 0 (where alpha is 0, colors and out are
    already). Covered pixels below floor are left for the caller to fill."""
    one = np.float32(1.0)
    for y in range(colors.shape[0]):
        for x in range(colors.shape[1]):
            a = alphas[y, x, 0]
            if covered[y, x]:
                if a >= floor:
                    s = one / a
                    for c in range(colors.shape[2]):
                        out[y, x, c] = colors[y, x, c] * s
            elif a > 0:
                for c in range(colors.shape[2]):
                    out[y, x, c] = 0.0


def nearest_pixels(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mask [H, W] bool with some True, pixels ys, xs [E] -> (rows, cols) [E] of the nearest True pixel of each
    (Euclidean; of equally near ones, any). The pixels are usually few: each first looks among the offsets within
    NEAR_RADIUS (nearest first), and only those with none there pay for a distance transform of the whole mask."""
    H, W = mask.shape
    dy, dx = _NEAR_OFFSETS.T  # [K] each
    cy, cx = ys[:, None] + dy, xs[:, None] + dx  # [E, K]
    inside = (cy >= 0) & (cy < H) & (cx >= 0) & (cx < W)
    hit = inside & mask[np.clip(cy, 0, H - 1), np.clip(cx, 0, W - 1)]
    k = hit.argmax(1)  # [E] first hit, i.e. the nearest offset that lands on the mask
    ny, nx = cy[np.arange(len(ys)), k], cx[np.arange(len(ys)), k]
    far = ~hit.any(1)
    if far.any():
        near = distance_transform_edt(~mask, return_distances=False, return_indices=True)  # [2, H, W]
        ny[far], nx[far] = near[0][ys[far], xs[far]], near[1][ys[far], xs[far]]
    return ny, nx


def _near_offsets(radius: int) -> np.ndarray:
    """[K, 2] (dy, dx) pixel offsets within `radius` (a disc: any True pixel that near is among them), nearest first."""
    d = np.arange(-radius, radius + 1)
    o = np.stack(np.meshgrid(d, d, indexing="ij"), -1).reshape(-1, 2)
    r2 = (o**2).sum(1)
    keep = np.nonzero(r2 <= radius * radius)[0]
    return o[keep[np.argsort(r2[keep], kind="stable")]]


_NEAR_OFFSETS = _near_offsets(NEAR_RADIUS)


def _bounds(mask: np.ndarray) -> tuple[slice, slice]:
    """[H, W] bool with some True -> (rows, cols) slices of its bounding box: the fill works on that crop only."""
    ys, xs = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1)
