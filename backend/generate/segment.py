"""Foreground segmentation of the input image: a mask the user gives, else its alpha channel when present, else GrabCut
seeded from the border; with a warning when GrabCut's result looks unsure."""

import cv2
import numpy as np
from relight_protocol import limits


class NoObjectError(ValueError):
    """The image holds no separable object."""


UNSURE_MIN, UNSURE_MAX = 0.02, 0.90  # a GrabCut mask covering less or more of the frame than this is doubtful


def user_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A mask the user gave ([H, W] or [H, W, C], any numeric type; the object where it is above half its range;
    an RGBA picture's alpha) -> [H, W] bool, checked against the image's (H, W)."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 3] if m.shape[-1] == 4 else m.max(-1)
    if m.shape != tuple(shape):
        raise NoObjectError(f"the mask is {m.shape[1]}x{m.shape[0]} pixels but the image is {shape[1]}x{shape[0]}; "
                            "give a mask of the image's size")
    top = 255.0 if m.dtype == np.uint8 else 65535.0 if m.dtype == np.uint16 else 1.0
    out = m.astype(np.float32) > 0.5 * top
    if not out.any():
        raise NoObjectError("the mask given is empty: paint the object white on black")
    if out.sum() < limits.MIN_OBJECT_PIXELS:
        raise NoObjectError(f"the mask given covers only {int(out.sum())} pixel(s); the limit MIN_OBJECT_PIXELS is "
                            f"{limits.MIN_OBJECT_PIXELS} pixels: paint the whole object")
    return out


def mask_from_picture(rgba: np.ndarray) -> np.ndarray:
    """A mask image as read (read_rgba: [H, W, 4] in [0, 1]) -> [H, W] float in [0, 1]: its alpha when it has
    transparency, else its brightest channel (white object on black)."""
    return rgba[..., 3] if float(rgba[..., 3].min()) < 0.99 else rgba[..., :3].max(-1)


def grabcut_doubts(mask: np.ndarray) -> str | None:
    """Why a GrabCut mask [H, W] bool is doubtful, for the user, or None: it touches the frame (the object is cut
    off, or the background was taken in), or covers under UNSURE_MIN or over UNSURE_MAX of it."""
    frac = float(mask.mean())
    edge = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    why = ("it touches the frame" if edge else f"it covers only {100 * frac:.1f}% of the image" if frac < UNSURE_MIN
           else f"it covers {100 * frac:.0f}% of the image" if frac > UNSURE_MAX else None)
    if why is None:
        return None
    return (f"the object was separated from its background by guesswork and {why}; if the asset looks wrong, give a "
            "mask image (white object on black) or an image with a transparent background")


def segment(rgba: np.ndarray, min_fraction: float = 0.002, warnings: list | None = None) -> np.ndarray:
    """[H, W, 4] RGBA in [0, 1] (any encoding) -> [H, W] bool foreground mask.

    Uses alpha when it is not uniformly opaque; otherwise rembg when it is installed with its model
    (segment_rembg), else GrabCut with the image border as background seed, and appends grabcut_doubts' message
    to `warnings` when its mask looks unsure."""
    from .segment_rembg import rembg_available, rembg_mask

    H, W = rgba.shape[:2]
    if min(H, W) < limits.MIN_IMAGE_SIDE:  # GrabCut and the grids after it need some pixels to work on
        raise NoObjectError(f"the image is {W}x{H} pixels, too small to find an object in; the limit "
                            f"MIN_IMAGE_SIDE is {limits.MIN_IMAGE_SIDE} pixels per side")
    alpha = rgba[..., 3] if rgba.shape[-1] == 4 else np.ones((H, W), np.float32)
    guessed = float(alpha.min()) >= 0.99
    if not guessed:
        mask = alpha > 0.5
    elif rembg_available()[0]:
        mask = rembg_mask(rgba[..., :3])
    else:
        mask = _grabcut(rgba[..., :3])
    mask = _largest_components(mask)
    if guessed and warnings is not None and mask.any() and not mask.all():
        doubt = grabcut_doubts(mask)
        if doubt:
            warnings.append(doubt)
    if mask.sum() < min_fraction * H * W:
        raise NoObjectError(
            f"no object found in the image: the foreground covers {100 * mask.mean():.2f}% of it. "
            "Use an image with a transparent background, or one where the object stands out from a plain border."
        )
    if mask.sum() < limits.MIN_OBJECT_PIXELS:  # a few pixels make no surface: the solvers after this fail on them
        raise NoObjectError(f"the object covers only {int(mask.sum())} pixel(s) of the image, too few to build it "
                            f"from; the limit MIN_OBJECT_PIXELS is {limits.MIN_OBJECT_PIXELS} pixels")
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
