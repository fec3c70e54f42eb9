"""The input photo as a user has it: a phone's JPEG stored sideways with an EXIF orientation flag is read upright."""

import struct

import cv2
import numpy as np
import pytest

from relight.core.imageio import read_rgba


def _jpeg_with_orientation(img_bgr: np.ndarray, orientation: int) -> bytes:
    """A baseline JPEG of img_bgr with an APP1 Exif segment holding only the Orientation tag (0x0112)."""
    ok, jpg = cv2.imencode(".jpg", img_bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    tiff = b"II*\x00" + struct.pack("<I", 8)  # little-endian TIFF header, IFD at offset 8
    tiff += struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    data = jpg.tobytes()
    return data[:2] + segment + data[2:]  # right after SOI


@pytest.mark.parametrize("orientation,turn", [(1, None), (6, cv2.ROTATE_90_CLOCKWISE), (3, cv2.ROTATE_180),
                                               (8, cv2.ROTATE_90_COUNTERCLOCKWISE)])
def test_exif_orientation_is_honoured(tmp_path, orientation, turn):
    stored = np.zeros((40, 64, 3), np.uint8)  # as the sensor stored it: wide, a bright block top-left
    stored[:16, :16] = (40, 200, 250)
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg_with_orientation(stored, orientation))
    upright = stored if turn is None else cv2.rotate(stored, turn)
    got = read_rgba(path)
    assert got.shape[:2] == upright.shape[:2]
    expect = upright[..., ::-1].astype(np.float32) / 255  # BGR -> RGB
    assert np.abs(got[..., :3] - expect).mean() < 0.02  # JPEG noise only
    assert np.all(got[..., 3] == 1.0)
