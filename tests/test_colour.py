"""Colour conversions: sRGB curves, 8-bit encoding, and AgX against Blender's own view transform (bpy)."""

import numpy as np
import pytest

from relight.core import colour


def test_srgb_curve_known_values_and_round_trip():
    # IEC 61966-2-1: the linear segment below 0.04045, 0.5 -> 0.214041, 1 -> 1
    np.testing.assert_allclose(colour.srgb_to_linear(np.array([0.0, 0.04, 0.5, 1.0])), [0.0, 0.04 / 12.92, 0.2140411, 1.0], rtol=1e-5)
    np.testing.assert_allclose(colour.linear_to_srgb(np.array([0.0, 0.001, 0.2140411, 1.0])), [0.0, 0.01292, 0.5, 1.0], rtol=1e-5)
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(colour.linear_to_srgb(colour.srgb_to_linear(x)), x, atol=2e-6)
    # continuous at the breakpoints
    assert abs(colour.linear_to_srgb(0.0031308 - 1e-7) - colour.linear_to_srgb(0.0031308 + 1e-7)) < 1e-5


def test_to_uint8_rounds_and_clips():
    np.testing.assert_array_equal(colour.to_uint8(np.array([-1.0, 0.0, 0.5, 1 / 255 * 0.49, 1.0, 7.0])), [0, 0, 128, 0, 255, 255])
    assert colour.to_uint8(np.zeros((2, 3, 3))).dtype == np.uint8


def agx_test_image() -> np.ndarray:
    """[24, 40, 3] linear: a grey ramp from 1e-4 to ~100, saturated primaries/secondaries at several
    exposures, and random HDR colours."""
    rng = np.random.default_rng(0)
    img = np.empty((24, 40, 3), np.float32)
    img[:8] = np.logspace(-4, 2, 40, dtype=np.float32)[None, :, None]
    hues = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 0.2, 0.05], [0.1, 0.3, 1]])
    expo = np.logspace(-3, 2, 5)
    colours = np.repeat(hues, 5, axis=0) * np.tile(expo, 8)[:, None]  # [40, 3]: 8 hues x 5 exposures
    img[8:16] = colours[None].astype(np.float32)
    img[16:] = (10 ** rng.uniform(-3, 2, (8, 40, 3))).astype(np.float32)
    return img


def blender_agx(img: np.ndarray, path) -> np.ndarray:
    """Blender's AgX view transform (look None, exposure 0) applied by bpy to a linear float image, saved as a
    16-bit PNG and read back: [H, W, 3] in [0, 1]."""
    import bpy
    import cv2

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.display_settings.display_device = "sRGB"
    scene.view_settings.view_transform = "AgX"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_depth = "16"
    scene.render.image_settings.color_mode = "RGB"
    h, w = img.shape[:2]
    im = bpy.data.images.new("agx_test", w, h, float_buffer=True, alpha=True)
    im.colorspace_settings.name = "Linear Rec.709"
    px = np.ones((h, w, 4), np.float32)
    px[..., :3] = img
    im.pixels.foreach_set(px[::-1].ravel())  # Blender stores rows bottom-up
    im.save_render(str(path), scene=scene)
    out = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert out is not None and out.dtype == np.uint16
    return out[..., ::-1].astype(np.float32) / 65535.0


def test_agx_matches_blender_view_transform(tmp_path):
    pytest.importorskip("bpy")
    img = agx_test_image()
    ref = blender_agx(img, tmp_path / "agx.png")
    ours = colour.agx(img)
    assert ours.shape == img.shape and ours.min() >= 0 and ours.max() <= 1
    assert np.abs(ours - ref).max() <= 1 / 255
    # the test image spans the curve: near black, mid-grey and near white all occur
    assert ref.min() < 0.05 and ref.max() > 0.95


def test_agx_is_not_filmic_or_plain_srgb():
    ramp = np.logspace(-2, 1, 16, dtype=np.float32)[:, None] * np.ones(3, np.float32)
    out = colour.agx(ramp)
    assert np.all(np.diff(out[:, 0]) > 0)  # monotonic
    assert np.abs(out - np.clip(colour.linear_to_srgb(ramp), 0, 1)).max() > 0.05
    from simple_ocio import ToneMapper

    filmic = ToneMapper(view="Filmic").hdr_to_ldr(ramp)
    assert np.abs(out - filmic).max() > 0.01
    # a saturated red goes towards white when very bright (AgX's path to white), keeps hue when dim
    red = colour.agx(np.array([[0.05, 0, 0], [200.0, 0, 0]], np.float32))
    assert red[0, 0] > 5 * red[0, 1] and red[1, 1] > 0.5


def test_agx_kernel_matches_ocio_processor():
    """The numba AgX (E-Gamut matrix, lg2 allocation, the config's 57^3 LUT, tetrahedral) against OCIO's own
    CPU processor on HDR colours over 10 decades, zeros, negatives, NaN and infinities."""
    rng = np.random.default_rng(1)
    x = (10 ** rng.uniform(-6, 4, (200_000, 3))).astype(np.float32)
    x[:20_000] *= rng.uniform(0, 1, (20_000, 1)) < 0.3  # exact zeros in some channels
    x[20_000:40_000, 0] *= -0.01  # small negatives (OCIO clamps after the gamut matrix)
    x[40_000:40_010] = np.nan
    x[40_010:40_020] = np.inf
    x[40_020:40_030, 1] = -np.inf
    ref = colour.agx_ocio(x)
    ours = colour.agx(x)
    fin = np.isfinite(x).all(1)
    assert np.abs(ours[fin] - ref[fin]).max() < 1e-4
    assert np.all(np.isfinite(ours)) and ours.min() >= 0 and ours.max() <= 1
    np.testing.assert_allclose(ours[40_000:40_010], colour.agx_ocio(np.zeros((10, 3), np.float32)), atol=1e-4)
    np.testing.assert_allclose(ours[40_010:40_020], 1.0, atol=1e-4)  # +inf -> white, as OCIO
    img = agx_test_image()
    assert np.abs(colour.agx(img) - colour.agx_ocio(img)).max() < 1e-4


def test_agx_rgba8_is_the_unpremultiplied_8bit_agx():
    rng = np.random.default_rng(2)
    rgb = (10 ** rng.uniform(-3, 1.5, (64, 80, 3))).astype(np.float32)
    a = rng.uniform(0, 1, (64, 80, 1)).astype(np.float32)
    a[a < 0.25] = 0.0
    a[:2] = 1e-7  # coverage that rounds to alpha 0 but still has a colour
    hdr = rgb * a
    out = colour.agx_rgba8(hdr, a)
    expect = np.concatenate([colour.to_uint8(colour.agx(hdr / np.maximum(a, 1e-6)) * (a > 0)), colour.to_uint8(a)], -1)
    assert out.dtype == np.uint8 and out.shape == (64, 80, 4)
    np.testing.assert_array_equal(out, expect)
    via_ocio = colour.to_uint8(colour.agx_ocio(hdr / np.maximum(a, 1e-6)) * (a > 0))
    assert np.abs(out[..., :3].astype(int) - via_ocio).max() <= 1


def test_srgb_curves_are_the_shared_conventions():
    """One sRGB curve for the backend and the add-on: relight.core.colour re-exports relight_protocol.conventions."""
    from relight_protocol import conventions

    assert colour.srgb_to_linear is conventions.srgb_to_linear
    assert colour.linear_to_srgb is conventions.linear_to_srgb
