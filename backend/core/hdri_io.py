"""Reading and writing linear HDR images: OpenEXR (via OpenEXR) and Radiance .hdr (via OpenCV)."""

from pathlib import Path

import numpy as np


def _rgb_from_channels(channels: dict) -> np.ndarray:
    """OpenEXR channel dict -> [H, W, 3] float32. Accepts "RGB", "RGBA", or separate R/G/B (optionally
    layer-prefixed, e.g. "ViewLayer.Combined.R"), or a lone luminance "Y"."""
    for key in ("RGB", "RGBA"):
        if key in channels:
            return np.asarray(channels[key].pixels, dtype=np.float32)[..., :3]
    by_suffix: dict[str, np.ndarray] = {}
    for name, ch in channels.items():
        suffix = name.rsplit(".", 1)[-1]
        if suffix in by_suffix:  # several layers: keep the first one seen (the beauty pass comes first)
            continue
        by_suffix[suffix] = ch.pixels
        # a fused multi-channel array under a layer prefix, e.g. "Combined.RGBA"
        if suffix in ("RGB", "RGBA"):
            return np.asarray(ch.pixels, dtype=np.float32)[..., :3]
    if all(c in by_suffix for c in "RGB"):
        return np.stack([np.asarray(by_suffix[c], dtype=np.float32) for c in "RGB"], axis=-1)
    if "Y" in by_suffix:
        y = np.asarray(by_suffix["Y"], dtype=np.float32)
        return np.repeat(y[..., None], 3, axis=-1)
    raise ValueError(f"EXR has no RGB channels (found: {sorted(channels)})")


def read_hdr_image(path) -> np.ndarray:
    """Read an .exr or Radiance .hdr file -> [H, W, 3] float32 linear Rec.709, row 0 = top of the image."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HDR image not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".exr":
        import OpenEXR

        with OpenEXR.File(str(path)) as f:
            rgb = _rgb_from_channels(f.channels())
    elif suffix in (".hdr", ".pic", ".rgbe"):
        import cv2

        bgr = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)  # float32 BGR
        if bgr is None:
            raise ValueError(f"could not decode Radiance HDR file: {path}")
        rgb = bgr[..., ::-1]
    else:
        raise ValueError(f"unsupported HDR image type {suffix!r} (expected .exr or .hdr): {path}")
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    return np.nan_to_num(rgb, nan=0.0, posinf=65504.0, neginf=0.0)


def write_exr(path, image: np.ndarray) -> None:
    """Write [H, W, 3] RGB or [H, W, 4] RGBA linear float32 to a ZIP-compressed scanline EXR."""
    import OpenEXR

    arr = np.ascontiguousarray(image, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"write_exr expects [H, W, 3|4], got shape {arr.shape}")
    key = "RGB" if arr.shape[-1] == 3 else "RGBA"
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    OpenEXR.File(header, {key: arr}).write(str(path))
