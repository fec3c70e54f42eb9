"""Splat rasterizer: torch reference vs gsplat's pure-torch projection, native vs reference, and an independent
brute-force per-pixel compositor (gsplat 1.5.3 classic rules) as the compositing oracle."""

import numpy as np
import pytest
import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

from relight.render import splat_bin, splat_native
from relight.core.camera import Camera
from relight.core.gaussians import quats_from_normals
from relight.render.splat_project import covariance, project
from relight.render.splat_raster import rasterize, rasterize_torch

W, H = 70, 45  # non-square, and not a multiple of the 16-pixel tile: partial tiles on two sides


def sphere_gaussians(n: int, seed: int = 0, d: int = 9, radius: float = 1.0):
    """Flat Gaussians on a sphere's surface: (means, quats, scales, opacities, features), float32 numpy."""
    rng = np.random.default_rng(seed)
    nrm = rng.normal(size=(n, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    s = radius * np.sqrt(8.0 / n) * 0.6  # discs cover the sphere about twice
    scales = np.stack([np.full(n, s), s * rng.uniform(0.5, 1.0, n), np.full(n, 0.01 * s)], 1)
    quats = quats_from_normals(nrm) * rng.uniform(0.5, 2.0, (n, 1))  # not unit on purpose
    return (
        (nrm * radius).astype(np.float32),
        quats.astype(np.float32),
        scales.astype(np.float32),
        rng.uniform(0.3, 1.0, n).astype(np.float32),
        rng.uniform(0.0, 1.0, (n, d)).astype(np.float32),
    )


def cameras(n: int, width: int = W, height: int = H, dist: float = 3.2, off_centre: bool = False):
    """[C, 4, 4] viewmats and [C, 3, 3] Ks looking at the origin from around the sphere."""
    views, Ks = [], []
    for k in range(n):
        a = 0.9 * k + 0.3
        cam = Camera.look_at((dist * np.cos(a), dist * np.sin(a), 0.7 + 0.4 * k), (0, 0, 0), 45.0, width, height)
        K = cam.K.copy()
        if off_centre:  # principal point off centre, fy != fx: exercises the asymmetric FOV clamp
            K[0, 2] += 5.0 + 3 * k
            K[1, 2] -= 4.0
            K[1, 1] *= 1.1
        views.append(cam.viewmat)
        Ks.append(K)
    return np.stack(views).astype(np.float32), np.stack(Ks).astype(np.float32)


def t(*arrays):
    return [torch.from_numpy(np.asarray(a)) for a in arrays]


def test_covariance_matches_gsplat():
    _, quats, scales, _, _ = sphere_gaussians(500)
    q, s = t(quats, scales)
    cov, prec = covariance(q, s)
    cov_g, prec_g = _quat_scale_to_covar_preci(q, s)
    torch.testing.assert_close(cov, cov_g)
    torch.testing.assert_close(prec, prec_g, rtol=1e-4, atol=1e-2)  # precision entries reach 1e6 for flat discs
    torch.testing.assert_close(cov @ prec, torch.eye(3).expand_as(cov), rtol=0, atol=2e-3)


@pytest.mark.parametrize("n_cam,off_centre", [(1, False), (2, True)])
def test_projection_matches_gsplat(n_cam, off_centre):
    means, quats, scales, _, _ = sphere_gaussians(2000, seed=1)
    viewmats, Ks = cameras(n_cam, off_centre=off_centre)
    # a few Gaussians behind the camera and far off-screen, to exercise culling and the FOV clamp
    cam_pos = -viewmats[0, :3, :3].T @ viewmats[0, :3, 3]
    means[:20] = cam_pos * 1.5
    means[20:40] = np.array([0.0, 0.0, 30.0], np.float32) + means[20:40]
    m, q, s, V, K = t(means, quats, scales, viewmats, Ks)
    radii, means2d, depths, conics = project(m, q, s, None, V, K, W, H)
    cov, _ = _quat_scale_to_covar_preci(q, s)
    radii_g, means2d_g, depths_g, conics_g, _ = _fully_fused_projection(m, cov, V, K, W, H)
    assert radii.shape == radii_g.shape == (n_cam, 2000, 2)
    torch.testing.assert_close(radii, radii_g, rtol=0, atol=0)
    valid = (radii_g > 0).all(-1)
    assert valid.sum() > 500 * n_cam and not valid[0, :40].any()  # plenty visible, and the planted ones culled
    torch.testing.assert_close(means2d[valid], means2d_g[valid])
    torch.testing.assert_close(depths, depths_g)
    torch.testing.assert_close(conics[valid], conics_g[valid], rtol=1e-4, atol=1e-4)


def test_native_projection_matches_reference():
    means, quats, scales, opac, _ = sphere_gaussians(3000, seed=2)
    opac[:100] = 0.002  # below 1/255: culled by the opacity-aware bound
    viewmats, Ks = cameras(1, off_centre=True)
    radii, means2d, depths, conics = project(*t(means, quats, scales, opac, viewmats, Ks), W, H)
    gp = np.zeros((len(means), splat_native.N_GP), np.float32)
    rect = np.zeros((len(means), 4), np.int32)
    splat_native.project_kernel(means, quats, scales, opac, viewmats[0], Ks[0], W, H, 0.01, 1e10, 0.3, gp, rect)
    valid = (radii[0] > 0).any(-1).numpy()
    assert not valid[:100].any()
    np.testing.assert_array_equal(valid, (rect[:, 1] > rect[:, 0]) & (rect[:, 3] > rect[:, 2]))
    np.testing.assert_allclose(gp[valid][:, [0, 1]], means2d[0, valid].numpy(), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(gp[:, 6], depths[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gp[valid][:, 2:5], conics[0, valid].numpy(), rtol=1e-3, atol=1e-4)
    # tile ranges cover the box mean +- radius, like gsplat's isect_tiles
    r = radii[0, valid].numpy()
    m2 = means2d[0, valid].numpy()
    np.testing.assert_array_equal(rect[valid, 0], np.clip(np.floor((m2[:, 0] - r[:, 0]) / 16), 0, 5))
    np.testing.assert_array_equal(rect[valid, 3], np.clip(np.ceil((m2[:, 1] + r[:, 1]) / 16), 0, 3))


def brute_force_composite(means, quats, scales, opac, feats, viewmats, Ks, width, height):
    """Independent oracle: gsplat's own torch projection, then every pixel against every Gaussian front to back
    with gsplat's classic rules (alpha = min(0.999, o exp(-sigma)), skip alpha < 1/255, stop before T <= 1e-4)."""
    m, q, s, V, K = t(means, quats, scales, viewmats, Ks)
    cov, _ = _quat_scale_to_covar_preci(q, s)
    radii, means2d, depths, conics, _ = _fully_fused_projection(m, cov, V, K, width, height)
    py, px = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    px, py = px.ravel(), py.ravel()
    out = []
    for c in range(len(viewmats)):
        ids = np.nonzero((radii[c] > 0).all(-1).numpy() & (opac >= 1 / 255))[0]
        ids = ids[np.argsort(depths[c, ids].numpy(), kind="stable")]
        T = np.ones(px.shape, np.float64)
        done = np.zeros(px.shape, bool)
        acc = np.zeros(px.shape + (feats.shape[1] + 1,), np.float64)
        for i in ids:
            dx, dy = means2d[c, i, 0].item() - px, means2d[c, i, 1].item() - py
            a, b, cc = conics[c, i].tolist()
            sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
            alpha = np.minimum(0.999, opac[i] * np.exp(-sigma))
            use = (sigma >= 0) & (alpha >= 1 / 255) & ~done
            t_next = T * (1 - alpha)
            stop = use & (t_next <= 1e-4)
            done |= stop
            use &= ~stop
            w = np.where(use, alpha * T, 0.0)
            acc += w[:, None] * np.append(feats[i], depths[c, i].item())[None, :]
            T = np.where(use, t_next, T)
        alpha = 1 - T
        depth = np.where(alpha > 0, acc[:, -1] / np.maximum(alpha, 1e-10), 0.0)
        out.append((acc[:, :-1].reshape(height, width, -1), alpha.reshape(height, width, 1),
                    depth.reshape(height, width, 1)))
    return [np.stack(o) for o in zip(*out)]


@pytest.fixture(scope="module")
def scene():
    means, quats, scales, opac, feats = sphere_gaussians(2000, seed=3)
    viewmats, Ks = cameras(2, off_centre=True)
    return means, quats, scales, opac, feats, viewmats, Ks


@pytest.fixture(scope="module")
def native_out(scene):
    return rasterize(*scene, W, H, backend="native")


@pytest.fixture(scope="module")
def torch_out(scene):
    return rasterize(*scene, W, H, backend="torch")


def test_native_matches_torch_reference(native_out, torch_out):
    for name, a, b in zip(("colors", "alphas", "depths"), native_out, torch_out):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype == np.float32
        assert a.shape == b.shape, name
        assert np.abs(a - b).max() <= 1e-3, (name, np.abs(a - b).max())
    colors, alphas, depths = native_out
    assert colors.shape == (2, H, W, 9) and alphas.shape == depths.shape == (2, H, W, 1)
    assert 0.3 < (alphas > 0.5).mean() < 0.95  # the sphere covers a good part of the frame, not all of it
    assert (alphas == 0).any()


def test_native_matches_brute_force_oracle(scene, native_out):
    ref = brute_force_composite(*scene, W, H)
    for name, a, b in zip(("colors", "alphas", "depths"), native_out, ref):
        assert np.abs(a - b).max() <= 1e-3, (name, np.abs(a - b).max())
    # expected depth lies between the sphere's near and far points where the pixel is mostly covered
    _, alphas, depths = native_out
    dist = np.linalg.norm(-scene[5][:, :3, :3].transpose(0, 2, 1) @ scene[5][:, :3, 3:], axis=1)[:, 0]
    for c in range(2):
        d = depths[c][alphas[c] > 0.5]
        assert d.min() > dist[c] - 1.01 and d.max() < dist[c] + 1.01


def test_torch_reference_gradients(scene):
    means, quats, scales, opac, feats, viewmats, Ks = scene
    params = [torch.from_numpy(a[:600].copy()).requires_grad_() for a in (means, quats, scales, opac, feats)]
    colors, alphas, depths = rasterize_torch(*params, *t(viewmats[:1], Ks[:1]), W, H)
    loss = colors.square().sum() + alphas.sum() + 0.1 * depths.sum()
    loss.backward()
    for name, p in zip(("means", "quats", "scales", "opacities", "features"), params):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_torch_in_torch_out_numpy_in_numpy_out(scene):
    args = [torch.from_numpy(a) for a in scene]
    out = rasterize(*args, W, H, backend="native")
    assert all(isinstance(o, torch.Tensor) and o.dtype == torch.float32 for o in out)
    out_auto = rasterize(*scene, W, H)  # auto on CPU -> native
    assert all(isinstance(o, np.ndarray) for o in out_auto)
    np.testing.assert_array_equal(out[1].numpy(), out_auto[1])


def test_no_gaussians():
    viewmats, Ks = cameras(2)
    empty = (np.zeros((0, 3)), np.zeros((0, 4)), np.zeros((0, 3)), np.zeros(0), np.zeros((0, 5)))
    for backend in ("native", "torch"):
        colors, alphas, depths = rasterize(*empty, viewmats, Ks, W, H, backend=backend)
        assert colors.shape == (2, H, W, 5) and alphas.shape == (2, H, W, 1) and depths.shape == (2, H, W, 1)
        assert not colors.any() and not alphas.any() and not depths.any()


def test_all_behind_camera(scene):
    means, quats, scales, opac, feats, viewmats, Ks = scene
    flipped = viewmats.copy()
    flipped[:, 2, :] *= -1  # camera now looks away: every Gaussian has z < 0
    flipped[:, 0, :] *= -1  # keep a proper rotation
    for backend in ("native", "torch"):
        colors, alphas, depths = rasterize(means, quats, scales, opac, feats, flipped, Ks, W, H, backend=backend)
        assert not alphas.any() and not colors.any() and not depths.any()


def test_near_plane_straddling_gaussian():
    # camera at the origin looking down +Z (identity viewmat); Gaussian centres at z = 0.05 and z = 0.005 with
    # 0.1 std dev along z: the first straddles near = 0.01 and renders, the second's centre is culled.
    viewmats = np.eye(4, dtype=np.float32)[None]
    Ks = np.array([[[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]], np.float32)
    means = np.array([[0.002, 0.001, 0.05], [0.0, 0.0, 0.005]], np.float32)
    quats = np.array([[1, 0, 0, 0], [1, 0, 0, 0]], np.float32)
    scales = np.array([[0.001, 0.001, 0.1], [0.001, 0.001, 0.1]], np.float32)
    opac = np.array([0.9, 0.9], np.float32)
    feats = np.array([[1.0], [1.0]], np.float32)
    outs = [rasterize(means, quats, scales, opac, feats, viewmats, Ks, W, H, backend=b) for b in ("native", "torch")]
    (cn, an, dn), (ct, at, dt) = outs
    for a in (cn, an, dn):
        assert np.isfinite(a).all()
    assert an.max() > 0.5 and np.abs(an - at).max() <= 1e-3 and np.abs(cn - ct).max() <= 1e-3
    assert np.abs(dn - dt).max() <= 1e-3
    np.testing.assert_allclose(dn[an > 0], 0.05, rtol=1e-4)  # only the straddling one contributes
    # its projected centre lands at (x, y) = (W/2 + 1.6, H/2 + 0.8) = (36.6, 23.3): pixel column 36, row 23
    peak = np.unravel_index(np.argmax(an[0, :, :, 0]), (H, W))
    assert peak == (23, 36)


def test_expected_depth_and_pixel_centres():
    # one big opaque disc facing the camera at depth 2: alpha hits the 0.999 clamp at the centre pixel, and the
    # expected depth is 2 wherever anything was drawn; a half-pixel offset picks which pixel is brightest
    viewmats = np.eye(4, dtype=np.float32)[None]
    Ks = np.array([[[50.0, 0, 20.0], [0, 50.0, 10.0], [0, 0, 1]]], np.float32)
    means = np.array([[0.0, 0.0, 2.0]], np.float32)  # projects to pixel coords (20, 10): a pixel corner
    args = (np.array([[1, 0, 0, 0]], np.float32), np.array([[0.02, 0.02, 1e-4]], np.float32),
            np.array([1.0], np.float32), np.array([[1.0, 2.0]], np.float32), viewmats, Ks, 40, 20)
    for backend in ("native", "torch"):
        colors, alphas, depths = rasterize(means, *args, backend=backend)
        a = alphas[0, :, :, 0]
        # symmetric about the corner (20, 10): the four pixels around it are equal and the largest
        quad = a[9:11, 19:21]
        np.testing.assert_allclose(quad, quad.max(), rtol=1e-5)
        assert quad.max() == a.max() and a.max() < 0.999 + 1e-6
        np.testing.assert_allclose(depths[alphas > 0], 2.0, rtol=1e-5)
        np.testing.assert_allclose(colors[0, :, :, 1], 2 * colors[0, :, :, 0], rtol=1e-5)
        np.testing.assert_allclose(colors[0, :, :, 0], a, rtol=1e-5)


def test_bad_arguments():
    means, quats, scales, opac, feats = sphere_gaussians(10)
    viewmats, Ks = cameras(1)
    with pytest.raises(ValueError, match="quats"):
        rasterize(means, quats[:, :3], scales, opac, feats, viewmats, Ks, W, H)
    with pytest.raises(ValueError, match="Ks"):
        rasterize(means, quats, scales, opac, feats, viewmats, Ks[0], W, H)
    with pytest.raises(ValueError, match="backend"):
        rasterize(means, quats, scales, opac, feats, viewmats, Ks, W, H, backend="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            rasterize(means, quats, scales, opac, feats, viewmats, Ks, W, H, backend="gsplat")


def test_jit_falls_back_without_cache(monkeypatch):
    real_njit = splat_native.numba.njit

    def njit_without_locator(*args, cache=False, **kw):
        if cache:
            raise RuntimeError("cannot cache function: no locator available")
        return real_njit(*args, **kw)

    monkeypatch.setattr(splat_native.numba, "njit", njit_without_locator)
    with pytest.warns(UserWarning, match="cannot cache"):
        add = splat_native._jit()(lambda a, b: a + b)
    assert add(2, 3) == 5


@pytest.mark.parametrize("n_chunk", [1, 2, 3, 7])
def test_tile_lists_keep_the_stable_depth_order_whatever_the_chunking(n_chunk):
    """bin_tiles' lists: each tile's Gaussians front to back, ties in index order (a stable sort on depth, as gsplat's),
    however many parallel chunks the counting sort is cut into; against a plain argsort, on seeded random boxes."""
    rng = np.random.default_rng(11)
    n, tiles_x, tiles_y = 3000, 9, 7
    rect = np.zeros((n, 4), np.int32)
    rect[:, 0] = rng.integers(0, tiles_x, n)
    rect[:, 1] = np.minimum(rect[:, 0] + rng.integers(0, 3, n), tiles_x)  # some empty: culled
    rect[:, 2] = rng.integers(0, tiles_y, n)
    rect[:, 3] = np.minimum(rect[:, 2] + rng.integers(0, 3, n), tiles_y)
    depth = np.round(rng.uniform(1.0, 3.0, n), 2).astype(np.float32)  # many ties
    order, boxes = splat_bin.depth_order(rect, depth.view(np.uint32))
    offsets, ids = splat_bin.tile_lists(order, boxes, tiles_x * tiles_y, tiles_x, n_chunk)
    visible = np.nonzero((rect[:, 1] > rect[:, 0]) & (rect[:, 3] > rect[:, 2]))[0]
    by_depth = visible[np.argsort(depth[visible], kind="stable")]
    np.testing.assert_array_equal(order, by_depth)
    for t in range(tiles_x * tiles_y):
        tx, ty = t % tiles_x, t // tiles_x
        inside = by_depth[(rect[by_depth, 0] <= tx) & (tx < rect[by_depth, 1]) & (rect[by_depth, 2] <= ty)
                          & (ty < rect[by_depth, 3])]
        np.testing.assert_array_equal(ids[offsets[t]:offsets[t + 1]], inside, err_msg=f"tile {t}")
