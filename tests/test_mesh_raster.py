"""Mesh rasterizer: coverage, depth and perspective-correct interpolation against analytic values, the hand-written
backward against its autograd reference, gradient checks of the barycentric path, the CPU path without nvdiffrast,
and the mesh path against the Gaussian path."""

import sys

import numpy as np
import pytest
import torch

from relight.core.camera import Camera
from relight.core.gaussians import quats_from_normals
from relight.core.surface import sample_surface
from relight.render import mesh_antialias as ma
from relight.render import mesh_raster as mr
from relight.render import mesh_visible_triangles as mv
from relight.render.mesh_nvdiffrast import nvdiffrast_or_none
from relight.render.splat_raster import rasterize as splat_rasterize

from mesh_fixtures import clip_from_pixels, icosphere, random_clip_triangles


# ---------------------------------------------------------------------------------------------- rasterize / interpolate


def test_coverage_depth_and_rast_db_of_a_square_vs_analytic():
    # an axis-aligned square at constant w: covered pixels are exactly the centres inside it, z/w is the plane's
    H, W = 32, 40
    px = np.array([[6.2, 3.7], [31.4, 3.7], [31.4, 25.1], [6.2, 25.1]])
    pos = clip_from_pixels(px, [2.0] * 4, z=0.25, H=H, W=W)[None]
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]])
    rast, db = mr.rasterize(pos, tri, (H, W))
    j, i = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    inside = (i >= 6.2) & (i <= 31.4) & (j >= 3.7) & (j <= 25.1)
    cov = rast[0, ..., 3].numpy() > 0
    assert (cov == inside).all()
    assert np.allclose(rast[0, ..., 2].numpy()[cov], 0.25, atol=1e-12)
    assert set(np.unique(rast[0, ..., 3].numpy()[cov])) == {1.0, 2.0}
    # constant w: barycentrics are affine, with the derivatives of the first triangle (v0 -> v1 along +X, v1 -> v2 along +Y)
    first = rast[0, ..., 3].numpy() == 1
    sx, sy = 31.4 - 6.2, 25.1 - 3.7
    expect = np.array([-1 / sx, 0.0, 1 / sx, -1 / sy])  # du/dX, du/dY, dv/dX, dv/dY
    assert np.allclose(db[0].numpy()[first], expect, atol=1e-9)
    assert (db[0].numpy()[~cov] == 0).all()


def test_perspective_correct_interpolation_matches_ray_plane_intersection():
    # a quad tilted away from the camera: the interpolated world position of each pixel is where its ray meets the quad
    cam = Camera.look_at((0.3, -2.5, 0.6), (0, 0, 0), 50.0, 48, 40)
    v = np.array([[-1, -0.6, -0.8], [1, 0.9, -0.8], [1, 0.9, 0.8], [-1, -0.6, 0.8]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    rast, db = mr.rasterize(mr.to_clip(v, mr.clip_from_camera(cam)).double(), f, (40, 48))
    p, dp = mr.interpolate(torch.from_numpy(v).double(), rast, f, rast_db=db, diff_attrs="all")
    cov = rast[0, ..., 3].numpy() > 0
    assert cov.mean() > 0.3
    o, d = cam.rays()
    n = np.cross(v[1] - v[0], v[3] - v[0])
    t = ((v[0] - o) @ n) / (d @ n)
    hit = o + d * t[..., None]
    assert np.abs(p[0].numpy()[cov] - hit[cov]).max() < 1e-4
    # attribute pixel derivatives against central differences of the exact hit point
    def hit_at(x, y):
        dc = np.stack([(x - cam.K[0, 2]) / cam.K[0, 0], (y - cam.K[1, 2]) / cam.K[1, 1], np.ones_like(x)], -1)
        dw = dc @ cam.viewmat[:3, :3]
        return o + dw * (((v[0] - o) @ n) / (dw @ n))[..., None]
    jj, ii = np.meshgrid(np.arange(40) + 0.5, np.arange(48) + 0.5, indexing="ij")
    h = 1e-3
    dX = (hit_at(ii + h, jj) - hit_at(ii - h, jj)) / (2 * h)
    dY = (hit_at(ii, jj + h) - hit_at(ii, jj - h)) / (2 * h)
    expect = np.stack([dX, dY], -1).reshape(40, 48, 6)  # (dx/dX, dx/dY, dy/dX, ...)
    assert np.abs(dp[0].numpy()[cov] - expect[cov]).max() < 1e-4


def test_nearest_surface_wins_and_empty_pixels_are_zero():
    H, W = 16, 16
    near = clip_from_pixels([[2, 2], [14, 2], [8, 14]], [1.0] * 3, z=-0.2, H=H, W=W)
    far = clip_from_pixels([[1, 8], [15, 8], [8, 15.5]], [1.0] * 3, z=0.6, H=H, W=W)
    for order in ((far, near), (near, far)):
        pos = torch.cat(order)[None]
        rast, _ = mr.rasterize(pos, torch.tensor([[0, 1, 2], [3, 4, 5]]), (H, W))
        z = rast[0, ..., 2]
        both = rast[0, 12, 8]  # covered by both: the nearer one (z = -0.2) wins
        assert both[2].item() == pytest.approx(-0.2) and both[3].item() == (2 if order[0] is far else 1)
        assert (rast[0][rast[0, ..., 3] == 0] == 0).all() and (z[rast[0, ..., 3] > 0] <= 0.6 + 1e-9).all()


def test_barycentric_path_gradcheck():
    H, W = 10, 12
    pos = clip_from_pixels([[1.3, 0.7], [11.2, 2.9], [3.37, 9.4]], [1.0, 1.7, 2.6], z=0.1, H=H, W=W)[None]
    tri = torch.tensor([[0, 1, 2]])
    attr = torch.tensor([[0.2, 1.0], [0.9, -0.5], [0.1, 0.4]], dtype=torch.float64)

    def f(p, a):
        rast, db = mr.rasterize(p, tri, (H, W))
        out, da = mr.interpolate(a, rast, tri, rast_db=db, diff_attrs="all")
        return out, da, rast[..., 2]

    assert torch.autograd.gradcheck(f, (pos.requires_grad_(True), attr.requires_grad_(True)), fast_mode=True)


def test_batched_rasterize_and_interpolate_match_single():
    v, f = icosphere(2)
    cams = [Camera.look_at((3 * np.cos(a), 3 * np.sin(a), 0.5), (0, 0, 0), 45.0, 40, 32) for a in (0.2, 2.0)]
    pos = torch.cat([mr.to_clip(v, mr.clip_from_camera(c)) for c in cams])
    rast, db = mr.rasterize(pos, f, (32, 40))
    out, _ = mr.interpolate(torch.from_numpy(v), rast, f)
    outb, _ = mr.interpolate(torch.from_numpy(v)[None].expand(2, -1, -1) * torch.tensor([1.0, 2.0])[:, None, None], rast, f)
    for b in range(2):
        r1, d1 = mr.rasterize(pos[b : b + 1], f, (32, 40))
        assert torch.equal(r1[0], rast[b]) and torch.equal(d1[0], db[b])
    assert torch.allclose(outb[1], 2 * out[1]) and torch.allclose(outb[0], out[0])



@pytest.mark.parametrize("with_db", [True, False])
def test_hand_written_backward_matches_the_autograd_reference(with_db):
    # _RasterPixels (forward, and its backward into the face table) against _pixels_reference through autograd
    H, W = 48, 64
    pos, tri = random_clip_triangles(300, seed=2)
    tid = mv.visible_triangles(pos, tri, (H, W)).reshape(-1)
    cov = torch.nonzero(tid > 0).squeeze(1)
    f = tid[cov] - 1
    X = (cov % W).double() + 0.5
    Y = torch.div(cov, W, rounding_mode="floor").double() + 0.5
    table = mr.face_table(pos, tri, H, W)
    cols = [0, 1, 2, 4, 5, 6, 7] if with_db else [0, 1, 2]  # (u, v, z/w) and rast_db; column 3 is the triangle id
    g = torch.randn(len(cov), len(cols), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t_fast = table.clone().requires_grad_(True)
    rast, db = mr._RasterPixels.apply(t_fast, f, X, Y, cov, H * W, with_db)
    fast = torch.cat([rast[cov], db[cov]], 1)
    t_ref = table.clone().requires_grad_(True)
    ref = mr._pixels_reference(t_ref, f, X, Y)
    torch.testing.assert_close(fast[:, cols], ref[:, cols])
    assert torch.equal(fast[:, 3], (f + 1).double())
    (g_fast,) = torch.autograd.grad((fast[:, cols] * g).sum(), t_fast)
    (g_ref,) = torch.autograd.grad((ref[:, cols] * g).sum(), t_ref)
    torch.testing.assert_close(g_fast, g_ref)


def test_rasterize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pos must be"):
        mr.rasterize(torch.zeros(3, 4), torch.tensor([[0, 1, 2]]), (4, 4))


def test_cpu_path_never_imports_nvdiffrast():
    v, f = icosphere(1)
    pos = mr.to_clip(v, mr.clip_from_camera(Camera.look_at((0, -3, 0), (0, 0, 0), 45.0, 16, 16)))
    rast, _ = mr.rasterize(pos, f, (16, 16))
    ma.antialias(rast[..., :3], rast, pos, f)
    assert nvdiffrast_or_none(pos) is None and "nvdiffrast" not in sys.modules


# -------------------------------------------------------------------------------------------- mesh path vs Gaussian path


def test_mesh_and_gaussian_paths_render_the_same_sphere():
    """Normals and albedo of one mesh through mesh_raster + interpolate and through flat surface Gaussians sampled on
    it (as pipeline.generate builds them) agree up to the splats' footprint. At the rim, edge-on splats blurred by
    eps2d (0.3 px^2) saturate alpha about 1.4 px beyond the mesh's silhouette: 256^2 keeps that ring small."""
    v, f = icosphere(4)
    vn = v / np.linalg.norm(v, axis=1, keepdims=True)
    albedo_v = (0.5 + 0.4 * v).astype(np.float32)  # a smooth colour field
    H = W = 256
    cam = Camera.look_at((0.4, -3.0, 0.8), (0, 0, 0), 45.0, W, H)

    rast, _ = mr.rasterize(mr.to_clip(v, mr.clip_from_camera(cam)), f, (H, W))
    attrs, _ = mr.interpolate(torch.from_numpy(np.concatenate([vn, albedo_v], 1)), rast, f)
    mesh_mask = rast[0, ..., 3].numpy() > 0
    mesh_n = attrs[0, ..., :3].numpy()
    mesh_n /= np.maximum(np.linalg.norm(mesh_n, axis=-1, keepdims=True), 1e-12)
    mesh_a = attrs[0, ..., 3:].numpy()

    pts, nrm, fid, bary, spacing = sample_surface(v, f, vn, 100_000, seed=0)
    alb = np.einsum("nk,nkc->nc", bary, albedo_v[f[fid]]).astype(np.float32)
    sigma = 0.75 * spacing
    colors, alphas, _ = splat_rasterize(
        pts, quats_from_normals(nrm), np.tile(np.array([sigma, sigma, 0.1 * sigma], np.float32), (len(pts), 1)),
        np.full(len(pts), 0.98, np.float32), np.concatenate([nrm, alb], 1), cam.viewmat[None].astype(np.float32),
        cam.K[None].astype(np.float32), W, H)
    a = alphas[0, ..., 0]
    splat_mask = a > 0.5
    iou = (mesh_mask & splat_mask).sum() / (mesh_mask | splat_mask).sum()
    assert iou > 0.97

    from scipy.ndimage import binary_erosion

    interior = binary_erosion(mesh_mask & splat_mask, iterations=3)
    splat_n = colors[0, ..., :3] / np.maximum(a[..., None], 1e-6)
    splat_n /= np.maximum(np.linalg.norm(splat_n, axis=-1, keepdims=True), 1e-12)
    splat_a = colors[0, ..., 3:] / np.maximum(a[..., None], 1e-6)
    assert interior.sum() > 0.9 * mesh_mask.sum()
    assert np.abs(splat_n - mesh_n)[interior].mean() < 0.02
    assert np.abs(splat_a - mesh_a)[interior].mean() < 0.02
