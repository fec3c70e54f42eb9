"""Mesh antialias: the numba silhouette search against its plain reference, coverage and its gradient against the
exact screen area and finite differences, gradient checks, fitting a silhouette, and which pixels it touches on a
closed mesh."""

import numpy as np
import pytest
import torch

from relight.core.camera import Camera
from relight.render import mesh_antialias as ma
from relight.render import mesh_antialias_reference as mar
from relight.render import mesh_raster as mr

from mesh_fixtures import clip_from_pixels, icosphere, random_clip_grid, random_clip_triangles, screen_area


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


# ------------------------------------------------------------------------------ the silhouette kernel vs its reference


def _sphere(seed: int, H: int, W: int):
    """A closed mesh (silhouettes only where facing flips, back faces hidden) seen from a random camera that may
    leave part of it outside the image."""
    rng = np.random.default_rng(seed)
    v, f = icosphere(2)
    eye = rng.normal(size=3)
    eye *= rng.uniform(2.2, 5.0) / np.linalg.norm(eye)
    cam = Camera.look_at(eye, rng.uniform(-0.6, 0.6, 3), rng.uniform(40, 70), W, H)
    return mr.to_clip(v, mr.clip_from_camera(cam))[0].double(), torch.from_numpy(f)


def _snapped(pos, H: int, W: int, seed: int):
    """The vertices moved to half-pixel screen positions with w a power of two (exact on power-of-two image sizes):
    edges through pixel centres, at 45 degrees, and segments through vertices, so the kernel's ties are exact ties."""
    w = 2.0 ** np.random.default_rng(seed).integers(0, 3, (len(pos), 1))
    size = np.array([W, H], float)
    px = np.round((pos[:, :2] / pos[:, 3:] + 1).numpy() * size)  # twice the screen position, rounded
    xy = (px / size - 1) * w
    return torch.from_numpy(np.concatenate([xy, (pos[:, 2:3] / pos[:, 3:]).numpy() * w, w], 1))


def _scene(kind: str, seed: int, H: int, W: int):
    """(pos [V, 4] float64 clip, tri [F, 3]) of one seeded test scene."""
    if kind == "snapped_sheet":
        pos, tri = random_clip_grid(max(H, W) // 3, seed, fins=6)
        return _snapped(pos, H, W, seed), tri
    if kind == "triangles":  # separate triangles: every edge a boundary, overlapping at random depths and off screen
        return random_clip_triangles(40, seed)
    if kind == "sheet":  # cells of about two pixels: contours cross thin faces that cover no pixel centre
        return random_clip_grid(max(H, W) // 2, seed, fins=6)
    if kind == "fine_sheet":  # cells under a pixel: walks through several faces, some longer than the walk limit
        return random_clip_grid(2 * max(H, W), seed, fins=6)
    return _sphere(seed, H, W)


def _kernel_inputs(pos, tri, H: int, W: int, labels_seed: int | None = None):
    """The arrays antialias hands _silhouette_pairs, from rasterizing (pos, tri); or, with labels_seed, arbitrary
    triangle ids and depths (pixel centres outside their face, so crossings at negative t)."""
    tri = torch.as_tensor(tri, dtype=torch.int64)
    rast, _ = mr.rasterize(pos[None], tri, (H, W), grad_db=False)
    tid = rast[0, ..., 3].numpy().astype(np.int64).reshape(-1)
    z = rast[0, ..., 2].double().numpy().reshape(-1)
    if labels_seed is not None:
        rng = np.random.default_rng(labels_seed)
        tid = rng.integers(0, len(tri) + 1, H * W) * (rng.random(H * W) < 0.8)
        z = rng.choice([0.0, 0.5], H * W) if labels_seed % 2 else rng.uniform(-1, 1, H * W)  # with and without ties
    nb = np.ascontiguousarray(ma.antialias_construct_topology_hash(tri).numpy())
    return np.ascontiguousarray(pos.numpy()), np.ascontiguousarray(tri.numpy()), nb, tid, z


CASES = [(kind, seed, H, W) for kind in ("triangles", "sheet", "fine_sheet", "sphere") for seed, (H, W) in
         enumerate([(1, 9), (7, 1), (6, 5), (16, 20), (31, 44)])]
CASES += [("snapped_sheet", seed, H, W) for seed, (H, W) in enumerate([(8, 16), (16, 16), (32, 32), (12, 20)])]


@pytest.mark.parametrize("walk", [1, 2, ma._AA_WALK])
@pytest.mark.parametrize("kind, seed, H, W", CASES)
def test_silhouette_pairs_match_reference(kind, seed, H, W, walk):
    # Integer outputs, compared exactly and in order: the kernel visits pairs in a fixed order (horizontal pairs row
    # by row, then vertical ones), which antialias's index_add sums follow, and the reference visits them the same way.
    # Exact agreement is possible because the reference makes every float64 decision with the kernel's expressions
    # (numba compiles them without fastmath, so both round as IEEE double). No tolerance: on the snapped scenes, where
    # ties are exact, even writing lam_2 as 1 - lam_1 - lam_0 instead of 1 - lam_0 - lam_1 changes the output.
    args = _kernel_inputs(*_scene(kind, seed, H, W), H, W)
    got = ma._silhouette_pairs(*args, H, W, walk)
    want = mar.silhouette_pairs_reference(*args, H, W, walk)
    for name, g, w in zip(("pin", "pout", "face", "edge", "step"), got, want):
        assert g.dtype == np.int64 and g.shape == w.shape, name
        np.testing.assert_array_equal(g, w, err_msg=name)


@pytest.mark.parametrize("seed", range(4))
def test_silhouette_pairs_match_reference_on_arbitrary_labels(seed):
    # triangle ids and depths that no rasterizer gives (every fifth pixel on a zero-area face) and vertices at w = 0,
    # -0 and -1e-13 (all taken as +1e-12): the branches realistic frames rarely reach, compared exactly as above
    H, W = 13, 17
    pos, tri = random_clip_grid(12, seed, fins=4)
    pos[:3, 3] = torch.tensor([0.0, -0.0, -1e-13])
    tri = torch.cat([tri, torch.tensor([[5, 5, 9], [7, 8, 7]])])
    args = _kernel_inputs(pos, tri, H, W, labels_seed=seed)
    args[3][::5] = len(tri) - seed % 2  # tid of one of the two zero-area faces
    for walk in (1, ma._AA_WALK):
        got = ma._silhouette_pairs(*args, H, W, walk)
        want = mar.silhouette_pairs_reference(*args, H, W, walk)
        for name, g, w in zip(("pin", "pout", "face", "edge", "step"), got, want):
            np.testing.assert_array_equal(g, w, err_msg=name)


def test_silhouette_cases_exercise_every_branch():
    # the comparison above means something only if its scenes reach each kind of pair and edge
    seen = set()
    for kind, seed, H, W in CASES:
        pos, tri, nb, tid, z = _kernel_inputs(*_scene(kind, seed, H, W), H, W)
        pin, pout, face, edge, step = mar.silhouette_pairs_reference(pos, tri, nb, tid, z, H, W, ma._AA_WALK)
        short = mar.silhouette_pairs_reference(pos, tri, nb, tid, z, H, W, 1)
        g = nb[face, edge]
        seen |= {"boundary"} if (g == -1).any() else set()
        seen |= {"non-manifold"} if (g == -2).any() else set()
        seen |= {"facing flips"} if (g >= 0).any() else set()
        seen |= {"occluded neighbour"} if (tid[pout] > 0).any() else set()
        seen |= {"walked"} if (face != tid[pin] - 1).any() else set()
        seen |= {"walk limit"} if len(short[0]) < len(pin) else set()
        seen |= {"both directions"} if (step[:, 0] != 0).any() and (step[:, 1] != 0).any() else set()
        seen |= {"both signs"} if (step.sum(1) > 0).any() and (step.sum(1) < 0).any() else set()
        sx, sy = mar.screen_positions(pos, H, W)
        a, b = tri[face, (edge + 1) % 3], tri[face, (edge + 2) % 3]
        seen |= {"45-degree edge"} if (np.abs(sx[a] - sx[b]) == np.abs(sy[a] - sy[b])).any() else set()
        if H > 2 and W > 2:  # pairs on the first and last row and column (every pixel is on the border of a thin image)
            seen |= {"image border"} if np.isin(pin % W, [0, W - 1]).any() else set()
            seen |= {"image border rows"} if np.isin(pin // W, [0, H - 1]).any() else set()
    assert seen == {"boundary", "non-manifold", "facing flips", "occluded neighbour", "walked", "walk limit",
                    "both directions", "both signs", "45-degree edge", "image border", "image border rows"}
