"""A view seen again under a new light: its blend record re-composites the light's channels (render/blend_record.py,
render/gbuffer_reuse.py) to what rasterizing them would give; and the nearest-direction kernel behind the
environment's cells (core/nearest_direction.py) agrees with the argmax it replaces."""

import numpy as np
import pytest

from relight.core.camera import Camera
from relight.core.envmap import Environment
from relight.core.nearest_direction import nearest_direction
from relight.core.surface import vertex_normals
from relight.evaluate.reference_assets import asset_from_mesh
from relight.render import gbuffer_reuse
from relight.render.blend_record import recomposite
from relight.render.frame import render
from relight.render.lamps import Lamp
from relight.render.settings import PREVIEW
from relight.render.splat_native import rasterize_native
from relight.render.splat_raster import FAR, NEAR

from test_hard_light_and_texture import _two_boxes
from test_splat_raster import H, W, cameras, sphere_gaussians



def test_the_record_recomposites_new_features_as_the_rasterizer_composites_them():
    means, quats, scales, opac, feats = sphere_gaussians(3000, seed=3, d=5)
    viewmats, Ks = cameras(1, off_centre=True)
    args = (means, quats, scales, opac)
    plain = rasterize_native(*args, feats, viewmats, Ks, W, H, NEAR, FAR, 0.3)
    colors, alphas, depths, rec = rasterize_native(*args, feats, viewmats, Ks, W, H, NEAR, FAR, 0.3, record=True)
    for a, b in zip(plain, (colors, alphas, depths)):
        assert np.array_equal(a, b), "recording does not change the frame"
    assert rec.entries > W * H, "most pixels blend several Gaussians"
    new = np.random.default_rng(1).uniform(0.0, 1.0, (len(means), 3)).astype(np.float32)
    expect = rasterize_native(*args, new, viewmats, Ks, W, H, NEAR, FAR, 0.3)[0][0]
    got = recomposite(rec, new)
    assert got.shape == (H, W, 3)
    np.testing.assert_array_equal(got, expect)  # the rasterizer's own float32 operations in its order
    # into a base frame: the other channels are the base's, the named ones the recomposite
    base = colors[0]
    merged = recomposite(rec, new, [4, 0, 2], base)
    np.testing.assert_array_equal(merged[..., [1, 3]], base[..., [1, 3]])
    np.testing.assert_array_equal(merged[..., [4, 0, 2]], expect)
    with pytest.raises(ValueError, match="do not fit"):
        recomposite(rec, new, [0, 1], base)


def _boxes_asset():
    v, f = _two_boxes()
    cam = Camera.look_at((0.0, -6.0, 3.0), (0.0, 0.0, 0.4), 40.0, 64, 64)
    return asset_from_mesh(v, f, vertex_normals(v, f), (0.7, 0.5, 0.3), 0.6, 0.0, n_gaussians=20_000, camera=cam)


def test_a_view_seen_again_under_new_lights_renders_as_a_fresh_render_would():
    """The live preview's world drag: one view, a new light every frame, without and then with a lamp. From the
    third frame of the view on, the shadows (and the lamp's visibility) are re-composited from the record; every
    frame must equal, bit for bit, the same frame rendered with nothing remembered."""
    asset = _boxes_asset()
    assert asset.gaussians.vis_bits is not None
    rng = np.random.default_rng(0)
    sky = np.ones((16, 32, 3), np.float32) * 0.2
    sky[2:5, 3:6] = 40.0  # a small bright light, so that turning the world moves hard shadows
    cam = Camera.look_at((1.0, -5.0, 3.0), (0.0, 0.0, 0.4), 40.0, 80, 72)
    lamp = Lamp("point", (1.0, 0.9, 0.8), 300.0, (1.1, -0.5, 2.2), (0, 0, -1))
    gbuffer_reuse.forget()
    frames = []
    for k, lamps in enumerate([()] * 4 + [(lamp,)] * 4):
        env = Environment(sky, rotation_z=float(rng.uniform(0, 2 * np.pi)), strength=1.0)
        frames.append((env, lamps, render(asset, cam, env, PREVIEW, lamps=lamps)))
    assert len(gbuffer_reuse._RECORDED) == 2, "both views (without and with the lamp's channels) were recorded"
    for env, lamps, got in frames:
        gbuffer_reuse.forget()
        fresh = render(asset, cam, env, PREVIEW, lamps=lamps)
        np.testing.assert_array_equal(got.hdr, fresh.hdr)
        np.testing.assert_array_equal(got.passes["shadow"], fresh.passes["shadow"])
        np.testing.assert_array_equal(got.alpha, fresh.alpha)
    # the shadows did change between the frames: the reuse had something to get right
    shadows = [f[2].passes["shadow"] for f in frames[:4]]
    assert max(np.abs(s - shadows[0]).max() for s in shadows[1:]) > 0.1


@pytest.mark.parametrize("n_dirs", [256, 250, 7])  # whole lanes of 16, a remainder, fewer than one lane
def test_nearest_direction_is_the_argmax_of_the_dot_products(n_dirs):
    rng = np.random.default_rng(5)
    dirs = rng.normal(size=(n_dirs, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    q = rng.normal(size=(20_000, 3))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    dots = q @ dirs.T
    top2 = np.sort(dots, 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5  # float32 products: a near-tie may go either way
    got = nearest_direction(q, dirs)
    assert clear.mean() > 0.99
    dirs = np.concatenate([dirs, dirs[:3]])  # exact ties: the first of equal directions wins, as np.argmax's
    assert (nearest_direction(q, dirs) < n_dirs).all()
    np.testing.assert_array_equal(got[clear], np.argmax(dots, 1)[clear])
    with pytest.raises(ValueError):
        nearest_direction(q, np.zeros((0, 3)))
