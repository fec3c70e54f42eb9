"""Mesh rasterizer: coverage, depth and perspective-correct interpolation against analytic values, gradient checks of
the barycentric and antialias paths, texture filtering (mips, cube maps), and the mesh path against the Gaussian path."""

import sys

import numpy as np
import pytest
import torch

from relight.render import mesh_raster as mr
from relight.core.camera import Camera
from relight.core.gaussians import quats_from_normals
from relight.render.splat_raster import rasterize as splat_rasterize
from relight.core.surface import sample_surface


def icosphere(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: ([V, 3] float32 vertices, [20 * 4**level, 3] int64 faces, outward winding)."""
    g = (1 + 5**0.5) / 2
    v = np.array([[-1, g, 0], [1, g, 0], [-1, -g, 0], [1, -g, 0], [0, -1, g], [0, 1, g], [0, -1, -g], [0, 1, -g],
                  [g, 0, -1], [g, 0, 1], [-g, 0, -1], [-g, 0, 1]], float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
                  [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
                  [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for _ in range(level):
        e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(e, axis=0, return_inverse=True)
        mid = v[uniq].mean(1)
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        m = inv.reshape(3, -1).T + len(v)  # [F, 3] midpoints of edges 01, 12, 20
        v = np.concatenate([v, mid])
        f = np.concatenate([np.stack([f[:, 0], m[:, 0], m[:, 2]], 1), np.stack([f[:, 1], m[:, 1], m[:, 0]], 1),
                            np.stack([f[:, 2], m[:, 2], m[:, 1]], 1), m])
    return v.astype(np.float32), f.astype(np.int64)


def clip_from_pixels(px, w, z=0.5, H=32, W=40):
    """Clip positions [N, 4] of pixel positions px [N, 2] (continuous, x along a row) with homogeneous w [N]."""
    px, w = torch.as_tensor(px, dtype=torch.float64), torch.as_tensor(w, dtype=torch.float64)
    x = (px[:, 0] / W * 2 - 1) * w
    y = (px[:, 1] / H * 2 - 1) * w
    return torch.stack([x, y, z * w, w], 1)


def screen_area(pos, H, W):
    """Exact area in pixels of a single clip-space triangle [3, 4] (differentiable)."""
    sx = (pos[:, 0] / pos[:, 3] + 1) / 2 * W
    sy = (pos[:, 1] / pos[:, 3] + 1) / 2 * H
    return 0.5 * ((sx[1] - sx[0]) * (sy[2] - sy[0]) - (sx[2] - sx[0]) * (sy[1] - sy[0])).abs()


# ---------------------------------------------------------------------------------------------- rasterize / interpolate


def test_native_visibility_matches_torch_reference():
    rng = np.random.default_rng(1)
    F = 300
    c = rng.uniform(-1.1, 1.1, (F, 1, 2)) + rng.normal(scale=0.15, size=(F, 3, 2))  # triangles, some off screen
    w = rng.uniform(0.5, 3.0, (F, 3, 1))
    z = rng.uniform(-0.9, 0.9, (F, 1, 1)) + rng.normal(scale=0.05, size=(F, 3, 1))
    pos = torch.from_numpy(np.concatenate([c * w, z * w, w], 2).reshape(-1, 4))
    tri = torch.arange(3 * F).reshape(F, 3)
    a = mr.visible_triangles(pos, tri, (48, 64), backend="native")
    b = mr.visible_triangles(pos, tri, (48, 64), backend="torch")
    assert (a > 0).float().mean() > 0.5
    assert (a == b).float().mean() > 0.999  # the reference quantises depth to 30 bits: near-ties may differ


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


# ------------------------------------------------------------------------------------------------------------ antialias


def _aa_loss(pos, H, W, tri):
    rast, _ = mr.rasterize(pos[None], tri, (H, W))
    mask = (rast[..., 3:] > 0).to(pos.dtype)
    return mr.antialias(mask, rast, pos[None], tri).sum()


def test_antialias_coverage_gradient_matches_area_and_finite_differences():
    # silhouette-only loss: the antialiased coverage of one triangle, whose true value is its screen area
    H, W = 32, 40
    tri = torch.tensor([[0, 1, 2]])
    pos = clip_from_pixels([[5.3, 4.2], [33.7, 9.9], [14.1, 27.6]], [1.0, 1.5, 2.0], H=H, W=W).requires_grad_(True)
    loss = _aa_loss(pos, H, W, tri)
    (g,) = torch.autograd.grad(loss, pos)
    p = pos.detach().clone().requires_grad_(True)
    area = screen_area(p, H, W)
    (g_area,) = torch.autograd.grad(area, p)
    assert loss.item() == pytest.approx(area.item(), rel=0.02)
    assert (g.sign() == g_area.sign())[:, :2].all()
    assert torch.linalg.norm(g - g_area) / torch.linalg.norm(g_area) < 0.2
    for i in range(3):  # each vertex's x and y separately, within 20 %
        for k in range(2):
            assert g[i, k].item() == pytest.approx(g_area[i, k].item(), rel=0.2, abs=0.05 * g_area.abs().max().item())
    # finite differences of the antialiased loss itself, over steps that cross pixel centres (the loss is continuous)
    fd = torch.zeros_like(g)
    h = 0.05
    for i in range(3):
        for k in range(4):
            d = torch.zeros_like(p)
            d[i, k] = h
            fd[i, k] = (_aa_loss(pos.detach() + d, H, W, tri) - _aa_loss(pos.detach() - d, H, W, tri)) / (2 * h)
    assert torch.linalg.norm(g - fd) / torch.linalg.norm(fd) < 0.2
    big = fd.abs() > 0.1 * fd.abs().max()
    assert (g.sign() == fd.sign())[big].all()


def test_antialias_silhouette_gradient_of_a_closed_mesh():
    # a sphere mesh scaled on screen by s about the image centre: its covered area grows as s^2, so the antialiased
    # coverage must have d/ds = 2 * area at s = 1; only contour edges (front/back-facing pairs) carry that gradient
    v, f = icosphere(4)
    cam = Camera.look_at((0, -3.0, 0), (0, 0, 0), 45.0, 96, 96)
    pos = mr.to_clip(v, mr.clip_from_camera(cam)).double()
    s = torch.ones((), dtype=torch.float64, requires_grad=True)
    p = torch.cat([pos[..., :2] * s, pos[..., 2:]], -1)
    rast, _ = mr.rasterize(p, f, (96, 96))
    cover = mr.antialias((rast[..., 3:] > 0).double(), rast, p, f).sum()
    (g,) = torch.autograd.grad(cover, s)
    area = (rast[..., 3] > 0).sum().item()
    assert cover.item() == pytest.approx(area, rel=0.02)
    assert g.item() == pytest.approx(2 * cover.item(), rel=0.05)


def test_antialias_gradcheck():
    H, W = 8, 9
    tri = torch.tensor([[0, 1, 2]])
    pos = clip_from_pixels([[1.3, 0.7], [8.2, 2.9], [3.37, 7.4]], [1.0, 1.3, 1.6], H=H, W=W, z=0.2)[None]
    rast, _ = mr.rasterize(pos, tri, (H, W))
    colour = torch.rand(1, H, W, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.autograd.gradcheck(lambda c, p: mr.antialias(c, rast, p, tri),
                                    (colour.requires_grad_(True), pos.requires_grad_(True)), fast_mode=True)


def test_antialias_fits_a_silhouette_by_gradient_descent():
    # only the silhouette gradient moves the triangle onto the target's silhouette
    H, W = 32, 32
    tri = torch.tensor([[0, 1, 2]])
    target_px = torch.tensor([[6.0, 5.0], [27.0, 9.0], [12.0, 27.0]])
    target = mr.antialias(*(lambda p: (lambda r: ((r[..., 3:] > 0).double(), r, p, tri))(mr.rasterize(p, tri, (H, W))[0]))(
        clip_from_pixels(target_px, [1.0] * 3, H=H, W=W)[None]))
    xy = (target_px + torch.tensor([[2.5, -1.5], [-2.0, 2.0], [1.5, -2.5]])).double().requires_grad_(True)
    opt = torch.optim.Adam([xy], lr=0.3)
    losses = []
    for _ in range(60):
        p = clip_from_pixels(xy, [1.0] * 3, H=H, W=W)[None]
        rast, _ = mr.rasterize(p, tri, (H, W))
        img = mr.antialias((rast[..., 3:] > 0).double(), rast, p, tri)
        loss = ((img - target) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    assert (xy.detach() - target_px).abs().max() < 0.5


def test_antialias_touches_only_silhouette_pixels_of_a_closed_mesh():
    v, f = icosphere(3)
    cam = Camera.look_at((0, -3.0, 0), (0, 0, 0), 45.0, 64, 64)
    pos = mr.to_clip(v, mr.clip_from_camera(cam))
    rast, _ = mr.rasterize(pos, f, (64, 64))
    col, _ = mr.interpolate(torch.from_numpy(v) * 0.5 + 0.5, rast, f)
    aa = mr.antialias(col, rast, pos, f, topology_hash=mr.antialias_construct_topology_hash(f))
    cov = rast[0, ..., 3] > 0
    changed = (aa - col).abs().amax(-1)[0] > 1e-6
    dilate = lambda m: torch.nn.functional.max_pool2d(m.float()[None, None], 3, 1, 1)[0, 0].bool()
    ring = dilate(cov) & dilate(~cov)  # pixels next to the silhouette
    inner = cov & dilate(~cov)  # covered pixels with an empty neighbour
    assert changed.sum() > 0.7 * inner.sum() and not (changed & ~ring).any()
    nb = mr.antialias_construct_topology_hash(f)
    assert (nb >= 0).all()  # closed manifold: every edge has a neighbour


# -------------------------------------------------------------------------------------------------------------- texture


def test_bilinear_is_exact_at_texel_centres_and_wraps():
    g = torch.Generator().manual_seed(0)
    tex = torch.rand(2, 5, 7, 3, dtype=torch.float64, generator=g)
    jj, ii = torch.meshgrid(torch.arange(5), torch.arange(7), indexing="ij")
    uv = torch.stack([(ii + 0.5) / 7, (jj + 0.5) / 5], -1).double()[None].expand(2, -1, -1, -1)
    for mode in ("wrap", "clamp", "zero"):
        assert torch.allclose(mr.texture(tex, uv, boundary_mode=mode), tex)
        assert torch.allclose(mr.texture(tex, uv, filter_mode="nearest", boundary_mode=mode), tex)
    mid = torch.tensor([[[[0.0, 0.5 / 5]]]], dtype=torch.float64).expand(2, 1, 1, 2)  # on the u = 0 seam, row 0
    half = 0.5 * (tex[:, 0, 0] + tex[:, 0, 6])
    assert torch.allclose(mr.texture(tex, mid, boundary_mode="wrap")[:, 0, 0], half)
    assert torch.allclose(mr.texture(tex, mid, boundary_mode="clamp")[:, 0, 0], tex[:, 0, 0])
    assert torch.allclose(mr.texture(tex, mid, boundary_mode="zero")[:, 0, 0], 0.5 * tex[:, 0, 0])
    corner = torch.zeros(2, 1, 1, 2, dtype=torch.float64)  # uv (0, 0): a quarter of texel (0, 0), the rest outside
    assert torch.allclose(mr.texture(tex, corner, boundary_mode="zero")[:, 0, 0], 0.25 * tex[:, 0, 0])
    assert torch.allclose(mr.texture(tex, corner, boundary_mode="wrap")[:, 0, 0], tex[:, [0, 0, 4, 4], [0, 6, 0, 6]].mean(1))
    assert torch.autograd.gradcheck(lambda t, u: mr.texture(t, u, boundary_mode="wrap"),
                                    (tex[:1].clone().requires_grad_(True), torch.rand(1, 3, 4, 2, dtype=torch.float64, generator=g).requires_grad_(True)),
                                    fast_mode=True)


def test_mip_pyramid_and_level_selection():
    g = torch.Generator().manual_seed(0)
    tex = torch.rand(1, 16, 16, 1, dtype=torch.float64, generator=g)
    mip = mr.texture_construct_mip(tex)
    assert [m.shape[1] for m in mip] == [16, 8, 4, 2, 1]
    assert torch.allclose(mip[2][0, 1, 3], tex[0, 4:8, 12:16].mean((0, 1)))
    # uv at the centre of level-2 texel (3, 1); a footprint of 4 level-0 texels per pixel selects level 2
    uv = torch.tensor([[[[(3 + 0.5) / 4, (1 + 0.5) / 4]]]], dtype=torch.float64)
    da = lambda k: torch.tensor([[[[k / 16, 0.0, 0.0, k / 16]]]], dtype=torch.float64)  # (du/dX, du/dY, dv/dX, dv/dY)
    assert torch.allclose(mr.texture(tex, uv, da(4.0), mip=mip)[0, 0, 0], mip[2][0, 1, 3])
    assert torch.allclose(mr.texture(tex, uv, da(4.0))[0, 0, 0], mip[2][0, 1, 3])  # builds its own pyramid
    # lod 2.5: halfway between levels 2 and 3 (trilinear); nearest-mip rounds to 3
    l3 = mr.texture(mip[3], uv)[0, 0, 0]
    assert torch.allclose(mr.texture(tex, uv, da(2**2.5), mip=mip)[0, 0, 0], 0.5 * (mip[2][0, 1, 3] + l3))
    assert torch.allclose(mr.texture(tex, uv, da(2**2.6), mip=mip, filter_mode="linear-mipmap-nearest")[0, 0, 0], l3)
    # bias alone selects the level; magnification (footprint < 1 texel) stays on level 0; max_mip_level caps it
    assert torch.allclose(mr.texture(tex, uv, mip_level_bias=torch.full((1, 1, 1), 2.0, dtype=torch.float64))[0, 0, 0], mip[2][0, 1, 3])
    uv0 = torch.tensor([[[[(5 + 0.5) / 16, (9 + 0.5) / 16]]]], dtype=torch.float64)
    assert torch.allclose(mr.texture(tex, uv0, da(0.25))[0, 0, 0], tex[0, 9, 5])
    assert torch.allclose(mr.texture(tex, uv, da(64.0), max_mip_level=2)[0, 0, 0], mip[2][0, 1, 3])
    # gradients reach tex, uv and uv_da
    uvr = (uv + 0.01).requires_grad_(True)
    dar = da(2**2.3).requires_grad_(True)
    texr = tex[:, :8, :8].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, u, d: mr.texture(t, u, d), (texr, uvr, dar / 2), fast_mode=True)


def test_interpolated_uv_derivatives_drive_the_mip_level():
    # a textured quad seen at 1:1 texel-to-pixel, then 4x smaller: the 4x smaller one samples level 2
    tex = torch.rand(1, 32, 32, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    mip = mr.texture_construct_mip(tex)
    uvs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]])
    for size, level in ((32.0, 0), (8.0, 2)):
        px = torch.tensor([[0.0, 0.0], [size, 0.0], [size, size], [0.0, size]])
        pos = clip_from_pixels(px, [1.0] * 4, H=32, W=32)[None]
        rast, db = mr.rasterize(pos, tri, (32, 32))
        uv, uv_da = mr.interpolate(uvs, rast, tri, rast_db=db, diff_attrs="all")
        out = mr.texture(tex, uv, uv_da, mip=mip)
        n = int(size)
        assert torch.allclose(out[0, :n, :n], mip[level][0], atol=1e-9)


def test_cube_map_faces_orientation_and_seams():
    S = 4
    tex = torch.arange(6 * S * S, dtype=torch.float64).reshape(1, 6, S, S, 1)  # unique value per texel
    axes = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=torch.float64)
    assert (mr.cube_face(axes) == torch.arange(6)).all()
    faces = torch.arange(6, dtype=torch.float64).reshape(1, 6, 1, 1, 1).expand(1, 6, S, S, 1)
    out = mr.texture(faces, axes.reshape(1, 1, 6, 3) * 2.5, boundary_mode="cube")
    assert torch.equal(out[0, 0, :, 0], torch.arange(6, dtype=torch.float64))
    # orientation (OpenGL's table): column s = (sc/|ma| + 1)/2, row t = (tc/|ma| + 1)/2
    cases = [  # direction, face, expected (column, row) on a 4x4 face
        ((1, -0.5, -0.3), 0, (2, 3)),  # +X: sc = -z, tc = -y
        ((-1, 0.6, -0.6), 1, (0, 0)),  # -X: sc = z, tc = -y
        ((0.6, 1, 0.6), 2, (3, 3)),  # +Y: sc = x, tc = z
        ((0.6, -1, 0.6), 3, (3, 0)),  # -Y: sc = x, tc = -z
        ((-0.6, -0.6, 1), 4, (0, 3)),  # +Z: sc = x, tc = -y
        ((-0.6, 0.6, -1), 5, (3, 0)),  # -Z: sc = -x, tc = -y
    ]
    d = torch.tensor([c[0] for c in cases], dtype=torch.float64).reshape(1, 1, 6, 3)
    got = mr.texture(tex, d, filter_mode="nearest", boundary_mode="cube")[0, 0, :, 0]
    want = torch.tensor([(f * S + r) * S + c for _, f, (c, r) in cases], dtype=torch.float64)
    assert torch.equal(got, want)
    # seamless: a smooth function of direction stored in the faces is read back smoothly across every edge
    lin = torch.linspace(-1 + 1 / 32, 1 - 1 / 32, 32, dtype=torch.float64)
    tc, sc = torch.meshgrid(lin, lin, indexing="ij")
    R = torch.as_tensor(mr._CUBE)
    dirs = torch.einsum("fki,hwk->fhwi", R, torch.stack([sc, tc, torch.ones_like(sc)], -1))  # [6, 32, 32, 3]
    field = lambda x: (x / x.norm(dim=-1, keepdim=True) @ torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64))[..., None]
    ctex = field(dirs)[None]
    a = torch.linspace(0, 2 * np.pi, 721, dtype=torch.float64)
    for ring in (torch.stack([a.cos(), a.sin(), 0.3 * torch.ones_like(a)], -1), torch.stack([a.cos(), 0.2 * torch.ones_like(a), a.sin()], -1)):
        got = mr.texture(ctex, ring.reshape(1, 1, -1, 3), boundary_mode="cube")[0, 0, :, 0]
        assert (got - field(ring)[:, 0]).abs().max() < 0.01
        assert got.diff().abs().max() < 0.02
    # mip levels of a cube map from direction derivatives
    mip = mr.texture_construct_mip(ctex)
    assert mip[1].shape == (1, 6, 16, 16, 1)
    dd = torch.tensor([[[[0.0, 0.0, 4 / 16, 0.0, 0.0, 4 / 16]]]], dtype=torch.float64)  # 4 texels per pixel at +X's centre
    uvx = torch.tensor([[[[1.0, 1 / 8, 1 / 8]]]], dtype=torch.float64)  # +X, texel (3, 3) of level 2
    assert torch.allclose(mr.texture(ctex, uvx, dd, mip=mip, boundary_mode="cube")[0, 0, 0], mip[2][0, 0, 3, 3], atol=1e-6)


def test_texture_rejects_bad_arguments():
    tex = torch.zeros(1, 4, 4, 3)
    with pytest.raises(ValueError, match="filter_mode"):
        mr.texture(tex, torch.zeros(1, 2, 2, 2), filter_mode="cubic")
    with pytest.raises(ValueError, match="cube map"):
        mr.texture(tex, torch.zeros(1, 2, 2, 3), boundary_mode="cube")
    with pytest.raises(ValueError, match="pos must be"):
        mr.rasterize(torch.zeros(3, 4), torch.tensor([[0, 1, 2]]), (4, 4))


def test_cpu_path_never_imports_nvdiffrast():
    v, f = icosphere(1)
    pos = mr.to_clip(v, mr.clip_from_camera(Camera.look_at((0, -3, 0), (0, 0, 0), 45.0, 16, 16)))
    rast, _ = mr.rasterize(pos, f, (16, 16))
    mr.antialias(rast[..., :3], rast, pos, f)
    assert mr._nvdiffrast(pos) is None and "nvdiffrast" not in sys.modules


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
