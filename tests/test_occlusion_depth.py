"""The mesh z-buffer's fast path (numba visibility pass + ray-plane depth) against the reference (the differentiable
rasterizer's perspective-correct interpolation): the same coverage, the same depth to float32 rounding."""

import numpy as np
import pytest

from relight.core.camera import Camera
from relight.render.occlusion import depth_map

from test_bench import sphere_asset


def bumpy_mesh():
    """A sphere mesh with a dent and a bump: depth varies across triangles at many slopes."""
    a = sphere_asset(200)
    v = a.vertices.astype(np.float64)
    r = 1.0 + 0.3 * np.sin(5 * v[:, 0]) * np.cos(3 * v[:, 2])
    return (v * r[:, None]).astype(np.float32), a.faces


@pytest.mark.parametrize("eye, size", [((0.0, -3.0, 0.5), 64), ((2.0, 1.5, -1.0), 97), ((0.3, -1.6, 0.2), 128)])
def test_fast_depth_map_matches_the_reference(eye, size):
    v, f = bumpy_mesh()
    cam = Camera.look_at(eye, (0.05, 0.0, 0.0), 40.0, size, size + 7)
    z_fast, cov_fast = depth_map(cam, v, f)
    z_ref, cov_ref = depth_map(cam, v, f, impl="reference")
    np.testing.assert_array_equal(cov_fast, cov_ref)
    assert cov_fast.mean() > 0.1
    np.testing.assert_allclose(z_fast[cov_fast], z_ref[cov_ref], rtol=2e-5, atol=1e-6)
    assert np.all(z_fast[~cov_fast] == 0)
    with pytest.raises(ValueError, match="impl must be 'fast' or 'reference'"):
        depth_map(cam, v, f, impl="gpu")
