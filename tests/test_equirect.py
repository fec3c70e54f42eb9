"""The equirect mapping (Blender's Environment Texture), bilinear lookups and cube maps."""

import numpy as np
import pytest

from relight.core.equirect import (cubemap_face_dirs, cubemap_to_equirect, dir_to_equirect_uv, equirect_pixel_dirs,
                                   equirect_texel_solid_angles, equirect_to_cubemap, equirect_uv_to_dir,
                                   sample_equirect)  # fmt: skip


def random_dirs(n: int, seed: int = 0) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def smooth_image(h: int, w: int) -> np.ndarray:
    """A smooth, positive function of direction sampled on an equirect grid: [h, w, 3]."""
    d = equirect_pixel_dirs(h, w)
    return np.stack([1.5 + d[..., 0], 1.5 + 0.5 * d[..., 1] * d[..., 2], 1.2 + d[..., 2] ** 2], -1).astype(np.float32)


# ---- the mapping ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d, uv",
    [
        ((1, 0, 0), (0.5, 0.5)),  # +X: image centre
        ((0, 1, 0), (0.25, 0.5)),  # +Y: a quarter in from the left
        ((0, -1, 0), (0.75, 0.5)),
        ((-1, 1e-9, 0), (0.0, 0.5)),  # -X: the seam at the left/right edge
        ((0, 0, 1), (None, 1.0)),  # +Z: top row
        ((0, 0, -1), (None, 0.0)),
    ],
)
def test_known_points(d, uv):
    u, v = dir_to_equirect_uv(np.array(d, dtype=np.float64))
    if uv[0] is not None:
        assert float(u) == pytest.approx(uv[0], abs=1e-9)
    assert float(v) == pytest.approx(uv[1], abs=1e-9)


def test_top_row_is_up_and_centre_column_is_plus_x():
    d = equirect_pixel_dirs(64, 128)
    assert np.all(d[0, :, 2] > 0.99) and np.all(d[-1, :, 2] < -0.99)
    assert np.allclose(d[32, 64], [1, 0, 0], atol=0.03)  # just right/below of the centre
    assert d[32, 32, 1] > 0.99  # +Y on the left half


def test_uv_dir_round_trips():
    d = random_dirs(5000)
    u, v = dir_to_equirect_uv(d)
    assert u.min() >= 0 and u.max() <= 1 and v.min() >= 0 and v.max() <= 1
    np.testing.assert_allclose(equirect_uv_to_dir(u, v), d, atol=1e-9)
    uu, vv = np.random.default_rng(1).uniform(0, 1, (2, 5000))
    u2, v2 = dir_to_equirect_uv(equirect_uv_to_dir(uu, vv))
    np.testing.assert_allclose(v2, vv, atol=1e-9)
    du = np.abs(u2 - uu)
    np.testing.assert_allclose(np.minimum(du, 1 - du), 0, atol=1e-9)


def test_texel_solid_angles_sum_to_sphere():
    assert equirect_texel_solid_angles(32, 64).sum() * 64 == pytest.approx(4 * np.pi, rel=1e-9)


def test_sample_equirect_hits_texel_centres_and_wraps():
    img = np.random.default_rng(0).random((8, 16, 3)).astype(np.float32)
    j, i = np.meshgrid(np.arange(8), np.arange(16), indexing="ij")
    u, v = (i + 0.5) / 16, 1 - (j + 0.5) / 8
    np.testing.assert_allclose(sample_equirect(img, u, v), img, atol=1e-6)
    # halfway across the seam: mean of the last and first columns
    out = sample_equirect(img, np.array([1.0]), np.array([1 - 3.5 / 8]))
    np.testing.assert_allclose(out[0], 0.5 * (img[3, 0] + img[3, -1]), atol=1e-6)


# ---- cube maps --------------------------------------------------------------------------------------------


def test_cubemap_faces_point_along_their_axes():
    d = cubemap_face_dirs(9)
    centre = d[:, 4, 4]
    np.testing.assert_allclose(centre, [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], atol=1e-9)


def test_cubemap_round_trip():
    eq = smooth_image(128, 256)
    cube = equirect_to_cubemap(eq, 96)
    assert cube.shape == (6, 96, 96, 3)
    # cube texels equal the function at their directions
    d = cubemap_face_dirs(96)
    ref = np.stack([1.5 + d[..., 0], 1.5 + 0.5 * d[..., 1] * d[..., 2], 1.2 + d[..., 2] ** 2], -1)
    np.testing.assert_allclose(cube, ref, atol=2e-3)
    back = cubemap_to_equirect(cube, 128, 256)
    np.testing.assert_allclose(back, eq, atol=6e-3)  # bilinear twice; worst next to the poles
