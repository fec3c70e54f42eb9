"""Depth is trusted up to a scale per view: the masks' hull recovers each view's scale error, and exact depth is left
exactly as it was."""

import numpy as np
import trimesh

from relight.reconstruct.depth_scale import TRUST, depth_scales, rescale_depth
from relight.reconstruct.hull import visual_hull
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
