"""Zero123++ v1.2's rig as reconstruct/zero123.py writes it down: tile order, azimuth / elevation, look-at, FOV."""

import numpy as np
import pytest
from relight.reconstruct import zero123
from relight.reconstruct.zero123 import (
    TileLayoutError,
    split_tiles,
    tile_views,
    zero123_cameras,
)


def test_tiles_round_trip_row_major():
    S = 4
    views = np.stack([np.full((S, S, 2), k, np.float32) for k in range(6)])
    sheet = tile_views(views)
    assert sheet.shape == (3 * S, 2 * S, 2)
    for k in range(6):  # view k at row k // 2, column k % 2
        r, c = divmod(k, 2)
        assert np.all(sheet[r * S:(r + 1) * S, c * S:(c + 1) * S] == k)
    rng = np.random.default_rng(0)
    sheet2 = rng.random((960, 640, 3))
    assert split_tiles(sheet2).shape == (6, 320, 320, 3)
    np.testing.assert_array_equal(tile_views(split_tiles(sheet2)), sheet2)
    np.testing.assert_array_equal(split_tiles(tile_views(views)), views)


def test_bad_sheet_shape_is_named():
    with pytest.raises(TileLayoutError, match="3 rows x 2 columns"):
        split_tiles(np.zeros((640, 960, 3)))


def test_cameras_positions_recover_azimuth_elevation_radius():
    cams = zero123_cameras()
    assert len(cams) == 6
    for cam, az, el in zip(cams, zero123.AZIMUTHS_DEG, zero123.ELEVATIONS_DEG):
        p = cam.position
        assert np.linalg.norm(p) == pytest.approx(4.0, abs=1e-9)
        assert np.degrees(np.arctan2(p[1], p[0])) % 360 == pytest.approx(az, abs=1e-9)
        assert np.degrees(np.arcsin(p[2] / np.linalg.norm(p))) == pytest.approx(el, abs=1e-9)
    assert [e for e in zero123.ELEVATIONS_DEG] == [20, -10, 20, -10, 20, -10]


def test_cameras_look_at_origin_upright_with_30_degree_fov():
    for cam in zero123_cameras(320):
        assert (cam.width, cam.height) == (320, 320)
        c = cam.viewmat[:3, :3] @ np.zeros(3) + cam.viewmat[:3, 3]  # origin in camera space
        uv = cam.K @ (c / c[2])
        np.testing.assert_allclose(uv[:2], [160, 160], atol=1e-9)  # the origin projects to the image centre
        fov = 2 * np.degrees(np.arctan(0.5 * cam.width / cam.K[0, 0]))
        assert fov == pytest.approx(30.0, abs=1e-9)
        assert cam.K[1, 1] == pytest.approx(cam.K[0, 0])
        up = cam.viewmat[:3, :3] @ np.array([0, 0, 1.0])  # world +Z in camera axes: -y (up on screen), no roll
        assert up[1] < 0 and abs(up[0]) < 1e-9
