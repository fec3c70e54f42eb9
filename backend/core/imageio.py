"""8/16-bit image files in and out (PNG and friends via OpenCV), RGBA in [0, 1] with row 0 at the top."""

from pathlib import Path

import cv2
import numpy as np


def read_rgba(path: str | Path) -> np.ndarray:
    """Image file -> [H, W, 4] float32 in [0, 1], as stored (sRGB-encoded for ordinary PNG/JPEG), turned upright by
    its EXIF orientation (a phone's portrait JPEG is stored sideways with a flag saying so)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if img.ndim == 2 or img.shape[-1] == 3:
        # IMREAD_UNCHANGED ignores the EXIF orientation; the colour read applies it (and photos with EXIF carry
        # no alpha: JPEG). ANYDEPTH keeps 16-bit files 16-bit.
        img = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    img = img.astype(np.float32) / scale
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, -1)
    if img.shape[-1] == 3:
        img = np.concatenate([img[..., ::-1], np.ones_like(img[..., :1])], -1)
    else:
        img = img[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(img)


def write_rgba(path: str | Path, img: np.ndarray) -> None:
    """[H, W, 3|4] uint8 or float in [0, 1] -> PNG (8-bit)."""
    if img.dtype != np.uint8:
        img = np.clip(np.round(np.asarray(img) * 255), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        out = img[..., 0]
    elif img.shape[-1] == 3:
        out = img[..., ::-1]
    else:
        out = img[..., [2, 1, 0, 3]]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(out)):
        raise OSError(f"cannot write {path}")
