"""Precomputed transfer (the preview's per-light shadows) against the sum over every visibility direction, on a
concave Blender mesh under the bpy HDRIs, with and without the bounce and a ground plane."""

import numpy as np
import pytest

from relight.core.envmap import Environment, builtin_hdris
from relight.evaluate.reference_assets import asset_from_mesh
from dataclasses import replace

from relight.core.ground import GroundPlane
from relight.core.visibility_rays import VIS_DIRECTIONS, sphere_directions
from relight.render.frame import render
from relight.render.settings import PREVIEW
from relight.render.shadows import gaussian_shadows
from relight.render.transfer import build_transfer, transfer_shadows


@pytest.fixture(scope="module")
def bowl():
    from relight.evaluate.cycles_scenes import shape_mesh

    v, f, n = shape_mesh("bowl")  # concave: strong self-shadowing and interreflection
    return asset_from_mesh(v, f, n, (0.7, 0.5, 0.3), 0.5, 0.0, n_gaussians=30_000)


def _shaded_error(asset, env, fast, exact):
    """|fast - exact| x irradiance / mean irradiance: [N, 3] error in units of the asset's mean diffuse light."""
    irr = env.irradiance(asset.gaussians.normals @ asset.rotation.T)
    return np.abs(fast - exact) * irr / irr.mean(0)


def test_full_rank_transfer_equals_the_sum_over_every_direction(bowl):
    """With every basis direction kept, the transfer is an exact change of basis: the direct shadows match."""
    g = bowl.gaussians
    t = build_transfer(g.vis_bits, g.normals, g.visibility, rank=VIS_DIRECTIONS)
    env = Environment.from_file(builtin_hdris()["sunset"]).with_transform(1.0, 1.0)
    dirs = sphere_directions() @ bowl.rotation.T.astype(np.float32)
    fast = transfer_shadows(t, env.cell_radiance(dirs), g.albedo, interreflection=False)
    exact = gaussian_shadows(bowl, env, interreflection=False)
    np.testing.assert_allclose(fast, exact, atol=2e-3)


@pytest.mark.parametrize("hdri", ["studio", "sunrise", "forest"])
@pytest.mark.parametrize("with_ground", [False, True])
def test_preview_rank_shadows_match_every_direction(bowl, hdri, with_ground):
    env = Environment.from_file(builtin_hdris()[hdri]).with_transform(2.2, 1.0)
    ground = GroundPlane(z=float(bowl.model_matrix[2, 3] - bowl.scale * 0.5)) if with_ground else None
    rank = PREVIEW.shadow_rank
    assert rank > 0
    exact = gaussian_shadows(bowl, env, ground, exact_lights=False, bounces=1, linked=False)  # what the transfer
    # approximates: every cell, one bounce of the directional mean
    fast = gaussian_shadows(bowl, env, ground, rank=rank)
    err = _shaded_error(bowl, env, fast, exact)
    assert err.mean() < 0.008 and np.percentile(err, 99) < 0.05, (err.mean(), np.percentile(err, 99))
    # the shadows are real: the bowl's inside is darker than its rim under any of these lights
    assert exact.min() < 0.6 and fast.min() < 0.6


def test_unoccluded_gaussians_are_unshadowed_exactly(bowl):
    g = bowl.gaussians
    t = build_transfer(g.vis_bits, g.normals, g.visibility)
    env = Environment.from_file(builtin_hdris()["city"])
    dirs = sphere_directions() @ bowl.rotation.T.astype(np.float32)
    fast = transfer_shadows(t, env.cell_radiance(dirs), g.albedo, interreflection=False)
    free = g.visibility > 0.999
    assert free.sum() > 100
    np.testing.assert_allclose(fast[free], 1.0, atol=1e-3)


def test_preview_render_follows_a_turning_light_like_the_exact_shadows(bowl):
    """The preview preset's frame under a new light (transfer shadows) against the same frame with the shadows
    summed over every direction: the same picture up to a small error, and it changes as the world turns."""
    from relight.core.frames import camera_to_world

    cam = camera_to_world(bowl.input_camera, bowl.model_matrix).resized(96, 96)
    env = Environment.from_file(builtin_hdris()["sunrise"])
    frames = []
    for rot in (0.0, 1.5):
        light = env.with_transform(rot, 1.0)
        fast = render(bowl, cam, light, PREVIEW)
        exact = render(bowl, cam, light, replace(PREVIEW, shadow_rank=0, exact_lights=False))  # every cell
        a = fast.alpha[..., 0] > 0.5
        diff = np.abs(fast.rgba8[a, :3].astype(int) - exact.rgba8[a, :3].astype(int))
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 6, (diff.mean(), np.percentile(diff, 99))
        frames.append(fast.rgba8[a, :3].astype(float))
    assert np.abs(frames[0] - frames[1]).mean() > 3.0  # a turned world relights the asset


@pytest.mark.parametrize("rows, rank", [(1, 1), (7, 16), (5000, 64)])
def test_basis_rows_kernel_equals_the_matrix_product(rows, rank):
    """The numba kernel that replaced BLAS for the transfer's thin products, against numpy's product."""
    from relight.render.transfer import _basis_rows

    rng = np.random.default_rng(rows + rank)
    a = rng.uniform(-1.0, 1.0, (rows, rank)).astype(np.float32)
    b = rng.uniform(-2.0, 2.0, (rank, 3)).astype(np.float32)
    out = np.empty((rows, 3), np.float32)
    _basis_rows(a, np.ascontiguousarray(b.T), out)  # the coefficients go in transposed, [3, rank]
    # float32 sums of `rank` terms of magnitude <= 2: a few ulps of the largest partial sum
    np.testing.assert_allclose(out, a.astype(np.float64) @ b.astype(np.float64), rtol=0, atol=8 * rank * 2e-7 * 2)
