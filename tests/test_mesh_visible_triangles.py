"""Which triangle each pixel sees: the numba kernels (serial and parallel over row bands) against the plain-torch
reference."""

import numpy as np

from relight.render import mesh_visible_triangles as mv

from mesh_fixtures import random_clip_triangles


def test_native_visibility_matches_torch_reference():
    pos, tri = random_clip_triangles(300, seed=1)
    a = mv.visible_triangles(pos, tri, (48, 64), backend="native")
    b = mv.visible_triangles(pos, tri, (48, 64), backend="torch")
    assert (a > 0).float().mean() > 0.5
    assert (a == b).float().mean() > 0.999  # the reference quantises depth to 30 bits: near-ties may differ


def test_parallel_kernel_matches_serial_kernel():
    # visible_triangles runs _visible_parallel only on frames of _PARALLEL_PIXELS or more: call both kernels here on a
    # small frame. Each band of rows is depth-tested by itself, in triangle order, so the two agree exactly.
    pos, tri = random_clip_triangles(300, seed=4)
    p, t = pos.numpy(), tri.numpy()
    for H, W in ((48, 64), (37, 29)):  # whole bands and a partial last band
        a, za = mv._visible_parallel(p, t, H, W, mv._BAND)
        b, zb = mv._visible_serial(p, t, H, W, mv._BAND)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(za, zb)  # the depth test's NDC depths too
        assert (a > 0).mean() > 0.5
        assert np.all(np.isfinite(za) == (a > 0)), "a depth where a triangle is seen, inf elsewhere"
