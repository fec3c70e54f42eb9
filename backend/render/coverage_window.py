"""The part of a frame the asset can cover: the window of the G-buffer that is rasterized, filled and shaded.

With the mesh's coverage on (frame.render), every pixel outside the mesh's silhouette is empty whatever the splats
do there, so the G-buffer only needs the silhouette's bounding box. An asset fills a fraction of a typical frame
(the bench's orbit: 14 % of 512²), and the compositing's per-tile work, the coverage fill and the shading's buffers
otherwise scale with the whole frame."""

import numpy as np

from ..core.camera import Camera

MIN_DEPTH = 1e-6  # asset units: a vertex this close to the camera's plane or behind it leaves the frame uncropped


def coverage_window(view: Camera, vertices: np.ndarray, covered: np.ndarray | None = None) -> tuple | None:
    """(x0, y0, x1, y1), half-open pixels of `view` (asset space; vertices [V, 3] the asset's mesh) that hold every
    pixel whose centre the mesh can cover, or None when that is the whole frame, nothing, or unknown (a vertex at or
    behind the camera: its projection is not bounded).

    The projected vertices bound the silhouette (each triangle projects inside the hull of its corners). covered
    [h, w] bool, when it is the mesh's coverage of `view` at its own size (frame.hidden_and_covered's z-buffer),
    tightens that to the covered pixels' bounding box; at another size it is not used (a coarser z-buffer can miss
    a part thinner than its pixels)."""
    W, H = int(view.width), int(view.height)
    if covered is not None and covered.shape == (H, W):
        rows, cols = np.flatnonzero(covered.any(1)), np.flatnonzero(covered.any(0))
        if rows.size == 0:
            return None
        box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    else:
        V = np.asarray(view.viewmat, np.float64)
        pc = np.asarray(vertices, np.float64) @ V[:3, :3].T + V[:3, 3]  # [V, 3] camera space
        z = pc[:, 2]
        if z.size == 0 or not np.all(z > MIN_DEPTH):
            return None
        K = view.K
        x = K[0, 0] * pc[:, 0] / z + K[0, 2]  # [V] pixels, centres at +0.5
        y = K[1, 1] * pc[:, 1] / z + K[1, 2]
        # pixel i's centre i + 0.5 lies in [min, max] for i in [ceil(min - 0.5), floor(max - 0.5)]: one pixel more
        # each side absorbs the rounding
        box = (int(np.floor(x.min())) - 1, int(np.floor(y.min())) - 1, int(np.ceil(x.max())) + 1,
               int(np.ceil(y.max())) + 1)  # fmt: skip
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(W, box[2]), min(H, box[3])
    if x1 <= x0 or y1 <= y0 or (x0, y0, x1, y1) == (0, 0, W, H):
        return None
    return x0, y0, x1, y1


def paste(part: np.ndarray, window: tuple, height: int, width: int) -> np.ndarray:
    """part [y1 - y0, x1 - x0, C] -> [height, width, C] of part's dtype: zero outside the window."""
    x0, y0, x1, y1 = window
    out = np.zeros((height, width, *part.shape[2:]), part.dtype)  # calloc'd: pages left 0 cost nothing
    out[y0:y1, x0:x1] = part
    return out
