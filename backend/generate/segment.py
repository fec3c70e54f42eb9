"""Foreground segmentation of the input image: its alpha channel when present, else GrabCut seeded from the border."""

import cv2
import numpy as np


class NoObjectError(ValueError):
    """The image holds no separable object."""


def segment(rgba: np.ndarray, min_fraction: float = 0.002) -> np.ndarray:
    """[H, W, 4] RGBA in [0, 1] (any encoding) -> [H, W] bool foreground mask.

    Uses alpha when it is not uniformly opaque; otherwise GrabCut with the image border as background seed."""
    H, W = rgba.shape[:2]
    alpha = rgba[..., 3] if rgba.shape[-1] == 4 else np.ones((H, W), np.float32)
    if float(alpha.min()) < 0.99:
        mask = alpha > 0.5
    else:
        mask = _grabcut(rgba[..., :3])
    mask = _largest_components(mask)
    if mask.sum() < min_fraction * H * W:
        raise NoObjectError(
            f"no object found in the image: the foreground covers {100 * mask.mean():.2f}% of it. "
            "Use an image with a transparent background, or one where the object stands out from a plain border."
        )
    if mask.all():
        raise NoObjectError("the whole image was classified as foreground; give the object some background around it")
    return mask


def _grabcut(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] in [0, 1] -> [H, W] bool, GrabCut initialised with a 4 % border as sure background."""
    H, W = rgb.shape[:2]
    img = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)[..., ::-1].copy()  # OpenCV wants BGR uint8
    m = max(2, int(0.04 * min(H, W)))
    rect = (m, m, W - 2 * m, H - 2 * m)
    mask = np.zeros((H, W), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(img, mask, rect, bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def _largest_components(mask: np.ndarray, keep_ratio: float = 0.1) -> np.ndarray:
    """Drop specks: keep connected components at least `keep_ratio` of the largest one, and fill holes."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.nonzero(areas >= keep_ratio * areas.max())[0]
    out = np.isin(labels, keep)
    # fill holes: background components not touching the border become foreground
    n2, lab2, _, _ = cv2.connectedComponentsWithStats((~out).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([lab2[0], lab2[-1], lab2[:, 0], lab2[:, -1]]))
    holes = ~np.isin(lab2, border) & ~out
    return out | holes
