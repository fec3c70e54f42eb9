"""Specular occlusion from the visibility bits along each Gaussian's GGX lobe (render/specular_visibility.py): the
kernel against its reference, what it says in a real concavity that AO cannot, and a final render's use of it."""

from dataclasses import replace

import numpy as np
import pytest

from relight.core.camera import Camera
from relight.core.envmap import Environment
from relight.core.surface import vertex_normals
from relight.core.visibility_rays import (ao_from_bits, sphere_directions, surface_occupancy, unpack_bits,
                                         visibility_bits)
from relight.evaluate.reference_assets import asset_from_mesh
from relight.render.frame import render
from relight.render.settings import FINAL, PREVIEW
from relight.render.specular_visibility import lobe_visibility
from relight.render.specular_visibility_reference import lobe_visibility_reference
from test_visibility import uv_sphere


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lobe_visibility_kernel_matches_its_reference(seed):
    """Random bits, points, normals, roughness (0.01 to 1), eye, and direction weights and cells (none, or a few
    bright directions and a few exact lights among cells). Both compute in float64 from the same float32
    inputs; fastmath may reorder the sums (relative error ~1e-13 over 256 terms). A direction within rounding of the
    tangent plane can be kept by one and dropped by the other, but its weight carries G1(l), which vanishes there
    (2 n.l / alpha for n.l << alpha: <= 2e-16 / 1e-4 at the smallest alpha drawn). The kernel's float32 output
    rounds a value <= 1 by at most 6e-8: 1e-7 bounds the difference."""
    rng = np.random.default_rng(seed)
    n_pts = 300
    d = sphere_directions()
    means = rng.uniform(-1, 1, (n_pts, 3)).astype(np.float32)
    normals = rng.normal(size=(n_pts, 3)).astype(np.float32)
    rough = rng.uniform(0.01, 1.0, n_pts).astype(np.float32)
    bits = rng.integers(0, 256, size=(n_pts, len(d) // 8), dtype=np.uint8)
    eye = rng.uniform(-5, 5, 3)
    weights = rng.uniform(0, 1, len(d)) ** 8 * 1e4  # a few bright directions, as a sky with a sun
    cells = np.where(rng.uniform(0, 1, len(d)) < 0.05, 0.0, 4 * np.pi / len(d))  # some exact lights among the cells
    for w, c in ((None, None), (weights, cells)):
        fast = lobe_visibility(bits, means, normals, rough, eye, weights=w, cells=c)
        ref = lobe_visibility_reference(bits, means, normals, rough, eye, weights=w, cells=c)
        assert fast.dtype == np.float32 and fast.shape == (n_pts,)
        assert np.all((fast >= 0) & (fast <= 1))
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-7)
    ones = np.full_like(bits, 255)
    np.testing.assert_array_equal(lobe_visibility(ones, means, normals, rough, eye), 1.0)
    np.testing.assert_array_equal(lobe_visibility(np.zeros_like(bits), means, normals, rough, eye), 0.0)


def test_a_point_under_a_lid_mirrors_the_open_horizon_but_not_the_lid():
    """A point just under a sphere, facing up (test_visibility's lid): straight up is blocked, the horizon open, its
    AO low. Seen at a grazing angle, a sharp lobe reflects the open horizon: nearly all of it escapes, far more than
    the AO says. Seen from straight above, it reflects the lid: nearly none escapes. A rough lobe lies between."""
    v, f = uv_sphere(0.4)
    occ = surface_occupancy(v, f, vertex_normals(v, f))
    p = np.array([[0.0, 0.0, -0.45]], np.float32)
    up = np.array([[0.0, 0.0, 1.0]], np.float32)
    bits = visibility_bits(occ, p, up, offset_voxels=0.0)
    ao = ao_from_bits(bits, up)[0]
    assert ao < 0.6
    grazing = p[0] + 5.0 * np.array([np.cos(np.radians(10)), 0.0, np.sin(np.radians(10))])
    above = p[0] + np.array([0.0, 0.0, 5.0])
    vis = {(r, name): lobe_visibility(bits, p, up, np.array([r], np.float32), eye)[0]
           for r in (0.1, 1.0) for name, eye in (("grazing", grazing), ("above", above))}
    assert vis[0.1, "grazing"] > 0.75 > ao + 0.5, (vis, ao)  # the widened lobe reaches a little of the lid
    assert vis[0.1, "above"] < 0.1, vis
    assert vis[0.1, "above"] < vis[1.0, "above"] and vis[1.0, "grazing"] < vis[0.1, "grazing"], vis


def test_final_renders_carry_the_lobe_visibility_and_the_preview_the_ao():
    """Two spheres side by side, one half hiding the other's near side: the visibility pass of a final render is
    the lobe visibility from its camera, which differs from the AO there; the preview's is the AO. On the far,
    open sides both are 1 and the images agree."""
    v1, f1 = uv_sphere(0.5, centre=(-0.55, 0.0, 0.0))
    v2, f2 = uv_sphere(0.5, centre=(0.55, 0.0, 0.0))
    v, f = np.concatenate([v1, v2]), np.concatenate([f1, f2 + len(v1)])
    asset = asset_from_mesh(v, f, vertex_normals(v, f), (0.6, 0.6, 0.6), 0.15, 0.0, n_gaussians=20_000)
    cam = Camera.look_at((0.0, -4.0, 0.3), (0.0, 0.0, 0.0), 40.0, 64, 64)
    env = Environment.constant([1.0, 1.0, 1.0])
    final = render(asset, cam, env, replace(FINAL, supersample=1))
    ao_only = render(asset, cam, env, replace(FINAL, supersample=1, specular_visibility=False))
    preview = render(asset, cam, env, PREVIEW)
    a = final.alpha[..., 0] > 0.99
    np.testing.assert_array_equal(ao_only.passes["visibility"][a], preview.passes["visibility"][a])
    diff = np.abs(final.passes["visibility"] - ao_only.passes["visibility"])[..., 0][a]
    assert diff.max() > 0.2  # the gap between the spheres: their lobes look at each other, their AO differs
    outer = a.copy()
    outer[:, 12:52] = False  # the spheres' outer sides, away from the gap
    assert outer.sum() > 50
    np.testing.assert_allclose(final.passes["visibility"][outer], 1.0, atol=0.02)
    np.testing.assert_allclose(final.hdr[outer], ao_only.hdr[outer], atol=0.02)


def test_a_blocked_sun_in_the_lobe_takes_the_lobe_with_it_and_one_outside_it_does_not():
    """The lid again, weighted by the light: a sun straight up (blocked by the lid), 10^4 times a dim sky's cell,
    as strong_lights gives it its own direction and shadow ray (a point: no cell widens the lobe towards it). A
    rough lobe, which reaches straight up, gathers mostly the sun: nearly nothing of its light escapes, though a
    quarter of its unweighted lobe does. A sharp lobe on the open horizon reaches the sun only with its tail: the
    weighting leaves it nearly as it was. The same sun on the open horizon, in that sharp lobe, escapes."""
    v, f = uv_sphere(0.4)
    occ = surface_occupancy(v, f, vertex_normals(v, f))
    p = np.array([[0.0, 0.0, -0.45]], np.float32)
    up = np.array([[0.0, 0.0, 1.0]], np.float32)
    grazing = p[0] + 5.0 * np.array([np.cos(np.radians(10)), 0.0, np.sin(np.radians(10))])
    horizon_mirror = np.array([-np.cos(np.radians(10)), 0.0, np.sin(np.radians(10))], np.float32)
    d = sphere_directions()
    lobe = {}
    for name, sun in (("up", np.array([0.0, 0.0, 1.0], np.float32)), ("horizon", horizon_mirror)):
        dirs = np.concatenate([d, sun[None]])
        bits = visibility_bits(occ, p, up, dirs, offset_voxels=0.0)
        assert unpack_bits(bits, len(dirs))[0, -1] == (name == "horizon")  # blocked by the lid, or open
        weights = np.concatenate([np.ones(len(d)), [1e4]])
        cells = np.concatenate([np.full(len(d), 4 * np.pi / len(d)), [0.0]])  # the sun is a point, not a cell
        for r in (0.1, 1.0):
            rr = np.array([r], np.float32)
            lobe[name, r] = lobe_visibility(bits, p, up, rr, grazing, dirs, weights, cells)[0]
            lobe[name, r, "sky"] = lobe_visibility(bits, p, up, rr, grazing, dirs, weights * 0 + 1, cells)[0]
    assert lobe["up", 1.0] < 0.05 < 0.15 < lobe["up", 1.0, "sky"], lobe
    assert lobe["up", 0.1, "sky"] - 0.1 < lobe["up", 0.1] <= lobe["up", 0.1, "sky"], lobe  # only the tail reaches
    assert lobe["horizon", 0.1] > 0.95, lobe
