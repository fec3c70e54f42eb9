"""The one place for colour conversions: sRGB transfer functions, AgX view transform, 8-bit encoding."""

import threading

import numpy as np


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear (IEC 61966-2-1 piecewise curve). Same shape, float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear values -> sRGB encoding (IEC 61966-2-1 piecewise curve); no clipping above 1. Float32."""
    x = np.asarray(x, dtype=np.float32)
    hi = 1.055 * np.maximum(x, 0.0031308) ** (1.0 / 2.4) - 0.055
    return np.where(x <= 0.0031308, x * 12.92, hi).astype(np.float32)


_TONE_MAPPER = None
_TONE_MAPPER_LOCK = threading.Lock()


def _agx_tone_mapper():
    """simple_ocio ToneMapper on Blender's OCIO config, AgX view, no look, exposure 0 (built once)."""
    global _TONE_MAPPER
    with _TONE_MAPPER_LOCK:
        if _TONE_MAPPER is None:
            from simple_ocio import ToneMapper

            _TONE_MAPPER = ToneMapper(view="AgX")  # the default view is Filmic; AgX is Blender 4.x's default
        return _TONE_MAPPER


def agx(rgb_linear: np.ndarray) -> np.ndarray:
    """[..., 3] scene-linear Rec.709 -> [..., 3] display sRGB in [0, 1] through Blender's AgX view (look None).

    OCIO's CPU processor is shared, so calls are serialised by a lock."""
    rgb = np.asarray(rgb_linear, dtype=np.float32)
    if rgb.shape[-1] != 3:
        raise ValueError(f"agx expects [..., 3] RGB, got shape {rgb.shape}")
    flat = np.nan_to_num(rgb.reshape(-1, 3), nan=0.0)
    tm = _agx_tone_mapper()
    with _TONE_MAPPER_LOCK:
        out = tm.hdr_to_ldr(flat, clip=True)  # copies, C-contiguous float32
    return out.reshape(rgb.shape)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Display values in [0, 1] -> uint8 with rounding to nearest (values outside [0, 1] are clipped)."""
    return (np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
