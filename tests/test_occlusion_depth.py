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


@pytest.mark.parametrize("eye, size", [((0.0, -3.0, 0.5), 64), ((2.0, 1.5, -1.0), 97), ((-0.4, 2.2, 1.7), 256)])
def test_the_hidden_gaussian_kernel_agrees_with_facing_and_on_surface(eye, size):
    """frame.hidden_and_covered's numba pass (occlusion_kernels.hidden_away: facing away, on a covered pixel, behind
    the 3 x 3 farthest covered depth, borders clamped) against the numpy reference (facing + on_surface with
    maximum_filter 'nearest'): the same Gaussians, from views where about half face away and a dent hides some."""
    from dataclasses import replace

    from relight.render.frame import hidden_and_covered

    v, f = bumpy_mesh()
    a = sphere_asset(20_000)
    g = a.gaussians
    r = np.linalg.norm(g.means, axis=1, keepdims=True)
    bumpy = g.means * (1.0 + 0.3 * np.sin(5 * g.means[:, :1] / r) * np.cos(3 * g.means[:, 2:] / r))  # near the mesh
    a = replace(a, vertices=v, faces=f, gaussians=replace(g, means=bumpy.astype(np.float32)))
    view = Camera.look_at(eye, (0.05, 0.0, 0.0), 40.0, size, size + 7)
    fast, cov_fast = hidden_and_covered(a, view)
    ref, cov_ref = hidden_and_covered(a, view, impl="numpy")
    np.testing.assert_array_equal(cov_fast, cov_ref)
    assert 0 < ref.sum() < len(ref), "some Gaussians are hidden, some not"
    np.testing.assert_array_equal(fast, ref)
    with pytest.raises(ValueError, match="impl must be 'numba' or 'numpy'"):
        hidden_and_covered(a, view, impl="gpu")
