"""Depth is trusted up to a scale per view: the masks' hull recovers each view's scale error, and exact depth is left
exactly as it was."""

import numpy as np
import trimesh

from relight.reconstruct.depth_scale import TRUST, UNCERTAINTY, depth_scales, rescale_depth
from relight.reconstruct.hull import visual_hull
from relight.reconstruct.optimise import OptimiseSettings, optimise_mesh
from relight.reconstruct.synthetic import render_gbuffers
from relight.reconstruct.zero123 import zero123_cameras


def test_each_view_s_depth_scale_is_recovered_from_the_masks():
    mesh = trimesh.creation.capsule(height=0.5, radius=0.35)
    views = render_gbuffers(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces), zero123_cameras(160))
    hv, hf = visual_hull(views, resolution=96, use_depth=False)
    exact = depth_scales(views, hv, hf, 96)
    # exact depth: every view agrees with the others to well within TRUST, so nothing is touched
    assert np.all(np.abs(exact - 1) < TRUST), exact
    errors = np.array([1.02, 0.98, 1.0, 1.035, 0.97, 1.01])
    views.depth = views.depth * errors[:, None, None].astype(np.float32)
    found = depth_scales(views, hv, hf, 96)
    np.testing.assert_allclose(found, errors, atol=0.003)
    fixed = rescale_depth(views, found)
    inside = views.mask
    rel = np.abs(fixed.depth[inside] / (views.depth[inside] / np.repeat(errors, inside.sum((1, 2)))) - 1)
    assert np.percentile(rel, 99) < 0.01
    untouched = rescale_depth(views, np.full(6, 1 + TRUST / 2))
    np.testing.assert_array_equal(untouched.depth, views.depth)


# ---------------------------------------------------------------------------------------- depth known up to a scale

def _capsule_views(size: int = 128):
    mesh = trimesh.creation.capsule(height=0.5, radius=0.35)  # axis z, cylinder from z=-0.25 to 0.25
    return render_gbuffers(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces), zero123_cameras(size))


def _capsule_distance(points: np.ndarray) -> np.ndarray:
    """[N, 3] -> [N] signed distance to the capsule's surface (negative inside)."""
    axis = np.stack([np.zeros(len(points)), np.zeros(len(points)), np.clip(points[:, 2], -0.25, 0.25)], -1)
    return np.linalg.norm(points - axis, axis=1) - 0.35


def test_the_fixture_distance_is_the_capsule_s_own():
    mesh = trimesh.creation.capsule(height=0.5, radius=0.35)
    assert np.abs(_capsule_distance(np.asarray(mesh.vertices))).max() < 1e-6


def test_depth_off_by_its_uncertainty_carves_no_deeper_than_exact_depth_with_the_margin():
    """Depth 1 % too far (a corrected scale still off by its uncertainty) carves into the object without the margin;
    with depth_margin=UNCERTAINTY the hull reaches no deeper than exact depth's does."""
    views = _capsule_views()
    R = 96
    voxel = 1.2 / R  # the hull's box is about the capsule's 1.2 units tall, padded
    exact = visual_hull(views, resolution=R)[0]
    views.depth = views.depth * np.float32(1 + UNCERTAINTY)
    far = [visual_hull(views, resolution=R, depth_margin=m)[0] for m in (0.0, UNCERTAINTY)]
    depth = lambda v: float(np.percentile(_capsule_distance(v.astype(np.float64)), 5))  # noqa: E731 - how far inside
    # 1 % of the rig's 4 units is 0.04 units (3 voxels): without the margin the carving front moves that far in
    assert depth(far[0]) < depth(exact) - voxel, (depth(far[0]), depth(exact))
    assert depth(far[1]) > depth(exact) - voxel / 4, (depth(far[1]), depth(exact))


def test_relative_depth_fits_the_shape_when_the_scales_are_off():
    """Per-view scale errors the hull did not catch (+-1.5 %, as after a correction from noisy masks): fitting
    depth as it is pulls each view's side of the surface off by up to 0.06 units; fitting it up to a scale per
    view (OptimiseSettings.depth_relative) does not."""
    views = _capsule_views()
    hv, hf = visual_hull(views, resolution=96, use_depth=False)
    views.depth = views.depth * np.array([1.015, 0.985, 1.015, 0.985, 1.015, 0.985], np.float32)[:, None, None]
    err = {}
    for relative in (False, True):
        s = OptimiseSettings(size=96, faces=3000, depth_relative=relative, time_budget_s=600.0)
        v, _, _ = optimise_mesh(views, hv, hf, steps=80, settings=s)
        err[relative] = float(np.mean(np.abs(_capsule_distance(v.astype(np.float64)))))
    # a working pixel (96 px over the rig's 30 degrees at 4 units) is 0.022 units; the masks' hull starts 0.022 off on
    # average; 1.5 % of 4 units is 0.06. Measured here: 0.0011 relative, 0.0080 absolute
    assert err[True] < 0.022 / 4, err
    assert err[False] > 3 * err[True], err
