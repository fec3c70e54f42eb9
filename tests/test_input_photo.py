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


# ------------------------------------------------------------------------------ the object's outline

from relight.generate.segment import NoObjectError, grabcut_doubts, mask_from_picture, segment, user_mask  # noqa: E402


def _busy_photo(size=96, object_box=(20, 76, 24, 72), seed=0) -> np.ndarray:
    """[H, W, 4] opaque: a noisy textured background and a flat orange object."""
    rng = np.random.default_rng(seed)
    img = np.ones((size, size, 4), np.float32)
    img[..., :3] = rng.uniform(0.0, 1.0, (size, size, 3))
    y0, y1, x0, x1 = object_box
    img[y0:y1, x0:x1, :3] = (0.9, 0.45, 0.1)
    return img


def test_an_unsure_grabcut_is_said_and_a_sure_one_is_not():
    warnings = []
    small = np.ones((96, 96, 4), np.float32)
    small[..., :3] = 0.8
    small[44:54, 44:54, :3] = (0.9, 0.3, 0.1)  # 1.1 % of the frame
    segment(small, warnings=warnings)
    assert len(warnings) == 1 and "covers only" in warnings[0] and "mask image" in warnings[0]
    clean = np.ones((96, 96, 4), np.float32)
    clean[..., :3] = 0.8
    clean[30:66, 30:66, :3] = (0.9, 0.3, 0.1)
    warnings = []
    m = segment(clean, warnings=warnings)
    assert warnings == [] and abs(int(m.sum()) - 36 * 36) < 0.05 * 36 * 36
    edge = np.zeros((50, 50), bool)
    edge[10:40, 0:30] = True  # reaches the left edge
    assert "touches the frame" in grabcut_doubts(edge)
    most = np.ones((50, 50), bool)
    most[:2] = False
    assert "covers 96%" in grabcut_doubts(most) or "touches the frame" in grabcut_doubts(most)


def test_a_user_mask_is_taken_as_given_and_checked():
    m = np.zeros((40, 60), np.uint8)
    m[10:30, 5:25] = 255
    np.testing.assert_array_equal(user_mask(m, (40, 60)), m > 0)
    rgba = np.zeros((40, 60, 4), np.float32)
    rgba[..., 3] = 1.0
    rgba[10:30, 5:25, :3] = 1.0  # white on black, opaque: the brightest channel
    np.testing.assert_array_equal(mask_from_picture(rgba) > 0.5, m > 0)
    with pytest.raises(NoObjectError, match="60x40 pixels but the image is 50x40"):
        user_mask(m, (40, 50))
    with pytest.raises(NoObjectError, match="empty"):
        user_mask(np.zeros((40, 60), np.uint8), (40, 60))


def test_the_pipeline_uses_the_given_mask():
    from relight.core.input_image import InputImage
    from relight.generate.pipeline import GenerateInputs, generate

    photo = _busy_photo()
    mask = np.zeros((96, 96), np.uint8)
    mask[20:76, 24:72] = 255
    a = generate(GenerateInputs(image=InputImage.from_pixels(photo, "srgb"), mask=mask, delight=False,
                                n_gaussians=3000))  # fmt: skip
    assert not any("guesswork" in w for w in a.meta["warnings"])
    sil = a.thumbnail  # the inflated shape's input camera sees the object where the mask is
    assert sil.shape[:2] == (96, 96)
    from relight.core.frames import camera_to_world
    from relight.reconstruct.synthetic import render_gbuffers

    cam = camera_to_world(a.input_camera, a.model_matrix)
    v = (a.vertices @ a.model_matrix[:3, :3].T + a.model_matrix[:3, 3]).astype(np.float32)
    seen = render_gbuffers(v, a.faces, [cam]).mask[0]
    iou = (seen & (mask > 0)).sum() / (seen | (mask > 0)).sum()
    assert iou > 0.9, iou
