"""Mesh antialias: coverage and its gradient against the exact screen area and finite differences, gradient checks,
fitting a silhouette, and which pixels it touches on a closed mesh."""

import pytest
import torch

from relight.core.camera import Camera
from relight.render import mesh_antialias as ma
from relight.render import mesh_raster as mr

from mesh_fixtures import clip_from_pixels, icosphere, screen_area


def _aa_loss(pos, H, W, tri):
    rast, _ = mr.rasterize(pos[None], tri, (H, W))
    mask = (rast[..., 3:] > 0).to(pos.dtype)
    return ma.antialias(mask, rast, pos[None], tri).sum()


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
    cover = ma.antialias((rast[..., 3:] > 0).double(), rast, p, f).sum()
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
    assert torch.autograd.gradcheck(lambda c, p: ma.antialias(c, rast, p, tri),
                                    (colour.requires_grad_(True), pos.requires_grad_(True)), fast_mode=True)


def test_antialias_fits_a_silhouette_by_gradient_descent():
    # only the silhouette gradient moves the triangle onto the target's silhouette
    H, W = 32, 32
    tri = torch.tensor([[0, 1, 2]])
    target_px = torch.tensor([[6.0, 5.0], [27.0, 9.0], [12.0, 27.0]])
    target = ma.antialias(*(lambda p: (lambda r: ((r[..., 3:] > 0).double(), r, p, tri))(mr.rasterize(p, tri, (H, W))[0]))(
        clip_from_pixels(target_px, [1.0] * 3, H=H, W=W)[None]))
    xy = (target_px + torch.tensor([[2.5, -1.5], [-2.0, 2.0], [1.5, -2.5]])).double().requires_grad_(True)
    opt = torch.optim.Adam([xy], lr=0.3)
    losses = []
    for _ in range(60):
        p = clip_from_pixels(xy, [1.0] * 3, H=H, W=W)[None]
        rast, _ = mr.rasterize(p, tri, (H, W))
        img = ma.antialias((rast[..., 3:] > 0).double(), rast, p, tri)
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
    aa = ma.antialias(col, rast, pos, f, topology_hash=ma.antialias_construct_topology_hash(f))
    cov = rast[0, ..., 3] > 0
    changed = (aa - col).abs().amax(-1)[0] > 1e-6
    dilate = lambda m: torch.nn.functional.max_pool2d(m.float()[None, None], 3, 1, 1)[0, 0].bool()
    ring = dilate(cov) & dilate(~cov)  # pixels next to the silhouette
    inner = cov & dilate(~cov)  # covered pixels with an empty neighbour
    assert changed.sum() > 0.7 * inner.sum() and not (changed & ~ring).any()
    nb = ma.antialias_construct_topology_hash(f)
    assert (nb >= 0).all()  # closed manifold: every edge has a neighbour

