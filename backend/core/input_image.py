"""The input photo, converted once: linear for light transport, sRGB-encoded for segmentation and the thumbnail,
and its content digest for the asset id."""

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .colour import linear_to_srgb, srgb_to_linear


@dataclass(frozen=True, eq=False)
class InputImage:
    linear: np.ndarray  # [H, W, 4] float32 linear Rec.709, straight alpha in [0, 1], row 0 = top
    srgb: np.ndarray  # [H, W, 4] float32 sRGB-encoded in [0, 1], the same alpha
    ceiling: float = 1.0  # the linear radiance the input clips at: 1.0 for a display-encoded or 8-bit image, inf
    # for a float linear render (a pixel at the ceiling only bounds its radiance from below)

    @staticmethod
    def from_pixels(pixels: np.ndarray, colorspace: str = "srgb") -> "InputImage":
        """[H, W, 3|4] uint8 (0..255) or float RGB(A), row 0 = top, encoded as `colorspace` ("srgb" | "linear").
        Missing alpha is opaque; alpha is always linear. The other encoding is computed here, once."""
        x = np.asarray(pixels)
        if x.ndim != 3 or x.shape[-1] not in (3, 4):
            raise ValueError(f"an image must be [H, W, 3] or [H, W, 4], got shape {x.shape}")
        ceiling = 1.0 if x.dtype == np.uint8 else float("inf")  # 8 bits clip at 255 whatever the encoding
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else np.array(x, dtype=np.float32)
        if x.shape[-1] == 3:
            x = np.concatenate([x, np.ones_like(x[..., :1])], axis=-1)
        x[..., 3] = np.clip(x[..., 3], 0.0, 1.0)
        other = x.copy()
        if colorspace == "srgb":
            x[..., :3] = np.clip(x[..., :3], 0.0, 1.0)
            other[..., :3] = srgb_to_linear(x[..., :3])
            return InputImage(linear=np.ascontiguousarray(other), srgb=np.ascontiguousarray(x), ceiling=1.0)
        if colorspace == "linear":
            other[..., :3] = linear_to_srgb(x[..., :3])
            return InputImage(linear=np.ascontiguousarray(x), srgb=np.ascontiguousarray(other), ceiling=ceiling)
        raise ValueError(f"colorspace must be 'srgb' or 'linear', not {colorspace!r}")

    @staticmethod
    def from_file(path: str | Path) -> "InputImage":
        """An ordinary image file (PNG, JPEG: sRGB-encoded, 8 or 16 bit)."""
        from .imageio import read_rgba

        return InputImage.from_pixels(read_rgba(path), "srgb")

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) pixels."""
        return self.linear.shape[:2]

    @cached_property
    def digest(self) -> bytes:
        """SHA-256 of the linear pixels (computed once; part of the asset's content id)."""
        return hashlib.sha256(np.ascontiguousarray(self.linear, np.float32).tobytes()).digest()
