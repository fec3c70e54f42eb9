"""Precomputed visibility: ray-cast bits, AO from bits, light-dependent shadows, Voronoi-cell environment radiance,
and the render's ground plane whose cast shadow follows the light."""

import numpy as np
import pytest

from relight.core.camera import Camera
from relight.core.envmap import Environment
from relight.core.gaussians import SurfaceGaussians
from relight.core.surface import vertex_normals
from relight.evaluate.reference_assets import asset_from_mesh, subdivide_for_sampling
from relight.core.ground import GroundPlane
from relight.core.visibility_rays import ao_from_bits, sphere_directions, surface_occupancy, unpack_bits, visibility_bits
from relight.render.frame import render
from relight.render.light_visibility import light_visibility
from relight.render.settings import RenderSettings


def uv_sphere(radius=1.0, centre=(0.0, 0.0, 0.0), rings=24, segments=48):
    th = np.linspace(0, np.pi, rings + 1)[1:-1]
    ph = np.arange(segments) * 2 * np.pi / segments
    v = [[0, 0, radius]] + [[radius * np.sin(t) * np.cos(p), radius * np.sin(t) * np.sin(p), radius * np.cos(t)]
                            for t in th for p in ph] + [[0, 0, -radius]]  # fmt: skip
    idx = lambda r, s: 1 + r * segments + s % segments  # noqa: E731
    f = [(0, idx(0, s), idx(0, s + 1)) for s in range(segments)]
    for r in range(rings - 2):
        for s in range(segments):
            f += [(idx(r, s), idx(r + 1, s), idx(r + 1, s + 1)), (idx(r, s), idx(r + 1, s + 1), idx(r, s + 1))]
    last = len(v) - 1
    f += [(last, idx(rings - 2, s + 1), idx(rings - 2, s)) for s in range(segments)]
    v = np.array(v) + np.asarray(centre)
    return v.astype(np.float32), np.array(f, np.int32)


def sun_env(direction, sun=2000.0, sky=0.05, h=64, w=128):
    """Dim uniform sky plus a small bright disc (~3 degrees) around `direction` (world, Z up)."""
    from relight.core.equirect import equirect_pixel_dirs

    d = np.asarray(direction, np.float64)
    d /= np.linalg.norm(d)
    eq = np.full((h, w, 3), sky, np.float32)
    eq[equirect_pixel_dirs(h, w) @ d > np.cos(np.radians(3.0))] = sun
    return Environment(eq)


def test_sphere_directions_cover_the_sphere():
    d = sphere_directions(256)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(d.mean(0), 0.0, atol=0.01)
    # every direction of a dense set has a neighbour within ~the cell radius
    probe = sphere_directions(4000)
    assert np.min(np.max(probe @ d.T, axis=1)) > np.cos(np.radians(12))


def test_convex_sphere_sees_its_whole_hemisphere_and_a_point_under_a_lid_sees_little():
    v, f = uv_sphere(0.4)
    n = vertex_normals(v, f)
    occ = surface_occupancy(v, f, n)
    bits = visibility_bits(occ, v, n)
    assert bits.shape == (len(v), 32) and bits.dtype == np.uint8
    ao = ao_from_bits(bits, n)
    assert ao.min() > 0.97  # convex: nothing occludes
    vis = unpack_bits(bits)
    above = (n @ sphere_directions().T) > 0
    assert np.all(vis <= above)  # never visible below the tangent plane
    # a point just under the sphere, facing up, is covered by it: the directions straight up are blocked
    p = np.array([[0.0, 0.0, -0.45]], np.float32)
    up = np.array([[0.0, 0.0, 1.0]], np.float32)
    b = unpack_bits(visibility_bits(occ, p, up, offset_voxels=0.0))[0]
    d = sphere_directions()
    assert not b[d[:, 2] > 0.9].any()
    assert b[(d[:, 2] > 0.0) & (d[:, 2] < 0.2)].mean() > 0.9  # the horizon stays open
    assert 0.05 < ao_from_bits(visibility_bits(occ, p, up, offset_voxels=0.0), up)[0] < 0.6


def test_light_visibility_follows_the_light():
    """One point whose upper-left half of the sky is blocked: lit (ratio ~1) by a sun on the open side, dark by a
    sun behind the blocker; a uniform sky gives ~1/2; blocked directions return the bounce radiance."""
    d = sphere_directions()
    n = np.array([[0.0, 0.0, 1.0]], np.float32)
    open_ = ~((d[:, 0] < 0) & (d[:, 2] > 0))
    bits = np.packbits(open_[None] & (d[:, 2] > 0)[None], axis=1, bitorder="little")
    rad_sun_right = np.where((d @ np.array([0.6, 0, 0.8]) > 0.97)[:, None], 100.0, 0.0).astype(np.float32) + 0.01
    rad_sun_left = np.where((d @ np.array([-0.6, 0, 0.8]) > 0.97)[:, None], 100.0, 0.0).astype(np.float32) + 0.01
    assert light_visibility(bits, n, d, np.repeat(rad_sun_right, 3, 1))[0, 0] > 0.95
    assert light_visibility(bits, n, d, np.repeat(rad_sun_left, 3, 1))[0, 0] < 0.05
    uniform = np.ones((len(d), 3), np.float32)
    assert light_visibility(bits, n, d, uniform)[0, 0] == pytest.approx(0.5, abs=0.05)
    full = light_visibility(bits, n, d, uniform, bounce=np.ones((1, 3), np.float32))
    np.testing.assert_allclose(full, 1.0, atol=1e-5)
    # a ground below the horizon replaces the environment there
    side = np.array([[1.0, 0.0, 0.0]], np.float32)
    bits_side = np.packbits((d @ side[0] > 0)[None], axis=1, bitorder="little")
    g = light_visibility(bits_side, side, d, uniform, up=[0, 0, 1], ground_radiance=[0.2, 0.2, 0.2])
    assert g[0, 0] == pytest.approx(0.6, abs=0.05)


def test_cell_radiance_keeps_the_energy_of_a_small_sun():
    d = sphere_directions()
    for rot in (0.0, 1.3):
        env = sun_env([0.3, -0.5, 0.8], sun=500.0, sky=0.1)
        env = env.with_transform(rot, 1.5)
        cells = env.cell_radiance(d)  # [D, 3]
        total = cells.sum(0) * 4 * np.pi / len(d)
        from relight.core.equirect import equirect_pixel_dirs, equirect_texel_solid_angles

        h, w = 64, 128
        ref = (env.radiance(equirect_pixel_dirs(h, w)) * np.repeat(equirect_texel_solid_angles(h, w), w).reshape(h, w, 1)).sum((0, 1))
        np.testing.assert_allclose(total, ref, rtol=0.08)
        # the brightest cell points at the sun, seen through the rotation
        s_img = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
        c, sn = np.cos(rot), np.sin(rot)
        s_world = np.array([[c, -sn, 0], [sn, c, 0], [0, 0, 1]]).T @ s_img  # the image reads R_z(rot) d
        assert np.max(d @ s_world) > 0.97
        assert d[cells[:, 0].argmax()] @ s_world > 0.95


def test_subdivision_keeps_the_surface_and_its_normals():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    f = np.array([[0, 1, 2]], np.int32)
    n = np.array([[0, 0, 1], [0.6, 0, 0.8], [0, 0.6, 0.8]], np.float32)
    sv, sf, sn = subdivide_for_sampling(v, f, n, 1000, per_face=10)
    assert len(sf) >= 64
    assert np.isclose(0.5 * np.linalg.norm(np.cross(sv[sf[:, 1]] - sv[sf[:, 0]], sv[sf[:, 2]] - sv[sf[:, 0]]), axis=1).sum(), 0.5)
    # normals stay the barycentric interpolation of the original corners
    np.testing.assert_allclose(sn, sv[:, :1] * n[1] + sv[:, 1:2] * n[2] + (1 - sv[:, :1] - sv[:, 1:2]) * n[0], atol=1e-6)


@pytest.fixture(scope="module")
def sphere_asset():
    v, f = uv_sphere(0.5, centre=(0.0, 0.0, 0.5))
    return asset_from_mesh(v, f, vertex_normals(v, f), (0.6, 0.6, 0.6), 0.8, 0.0, n_gaussians=20_000)


def test_ground_shadow_pass_follows_the_sun(sphere_asset):
    """A sphere resting on a ground plane under a sun: the cast shadow is on the side away from the sun, and moves
    to the other side when the sun does; it is a separate pass (1 = unshadowed)."""
    cam = Camera.look_at((0.0, -0.01, 6.0), (0.0, 0.0, 0.0), 50.0, 64, 64)  # straight down, +X to the right
    ground = GroundPlane(z=0.0)
    sides = {}
    for sx in (1.0, -1.0):
        res = render(sphere_asset, cam, sun_env([sx, 0.0, 0.8]), RenderSettings(supersample=1), ground=ground)
        gs = res.passes["ground_shadow"][..., 0]
        assert res.passes["ground_alpha"].min() == 1.0
        assert gs.shape == (64, 64) and gs.max() < 1.5  # > 1 only where the lit sphere bounces light down
        row = gs[32]
        sides[sx] = (row[20:25].mean(), row[39:44].mean())  # x in -(0.6..1.0), +(0.6..1.0): beside the sphere
        assert row[:4].mean() > 0.9 and row[-4:].mean() > 0.9  # far from the sphere: unshadowed
    assert sides[1.0][0] < 0.5 < sides[1.0][1]  # sun at +X: shadow on the left
    assert sides[-1.0][1] < 0.5 < sides[-1.0][0]  # and it follows the sun


def test_self_shadow_darkens_the_side_away_from_the_sun_only_with_visibility(sphere_asset):
    cam = Camera.look_at((0.0, -4.0, 0.6), (0.0, 0.0, 0.5), 40.0, 48, 48)
    env = sun_env([1.0, 0.0, -0.3])  # a sun below the horizon, from +X: the plane would block it
    with_ground = render(sphere_asset, cam, env, RenderSettings(supersample=1), ground=GroundPlane(z=0.0))
    plain = render(sphere_asset, cam, env, RenderSettings(supersample=1))
    hit = plain.alpha[..., 0] > 0.99
    assert with_ground.passes["shadow"][hit].min() < 0.5  # the ground blocks the low sun for the lower sphere
    assert plain.passes["shadow"][hit].min() > 0.9  # nothing blocks it without the ground (convex)
    flat = render(sphere_asset, cam, env, RenderSettings(supersample=1, shadows=False), ground=GroundPlane(z=0.0))
    assert flat.passes["shadow"][hit].min() > 0.9  # shadows off: ambient occlusion only, light-independent


def test_gaussians_without_visibility_bits_still_load():
    n = 4
    g = SurfaceGaussians(np.zeros((n, 3), np.float32), np.tile([1.0, 0, 0, 0], (n, 1)).astype(np.float32),
                         np.ones((n, 3), np.float32), np.ones(n, np.float32), np.ones((n, 3), np.float32),
                         np.ones(n, np.float32), np.zeros(n, np.float32), np.tile([0, 0, 1.0], (n, 1)).astype(np.float32),
                         np.ones(n, np.float32), np.zeros(n, np.int32))  # fmt: skip
    arrays = g.to_arrays()
    assert "g_vis_bits" not in arrays
    back = SurfaceGaussians.from_arrays(arrays)
    assert back.vis_bits is None and back.subset(np.array([0, 2])).vis_bits is None
    assert back.features().shape == (n, 12)


def test_points_on_a_shell_inside_another_are_sealed_and_left_out_of_the_asset():
    """A small sphere inside a big one (like Suzanne's eye shells inside the head): no direction escapes from
    the inner shell, so its points are flagged, and asset_from_mesh drops them; the outer shell stays whole."""
    from relight.generate.visibility import sealed

    vo, fo = uv_sphere(1.0)
    vi, fi = uv_sphere(0.5)
    v, f = np.concatenate([vo, vi]), np.concatenate([fo, fi + len(vo)])
    n = vertex_normals(v, f)
    r = np.linalg.norm(v, axis=1)
    occ = surface_occupancy(v / 2.2, f, n)  # the grid spans [-0.5, 0.5]^3: scale as normalise() would
    bits = visibility_bits(occ, v / 2.2, n)
    s = sealed(bits)
    assert s[r < 0.75].all() and not s[r > 0.75].any()
    # flipped normals everywhere: most points look sealed, which says the mesh is suspect, so none are flagged
    assert not sealed(visibility_bits(occ, v / 2.2, -n)).any()
    a = asset_from_mesh(v, f, n, (0.5, 0.5, 0.5), 0.5, 0.0, n_gaussians=6000)
    radius = np.linalg.norm(a.gaussians.means - a.gaussians.means.mean(0), axis=1)
    assert radius.min() > 0.8 * radius.max()  # no Gaussian of the inner shell is left


def test_render_leaves_out_gaussians_behind_the_front_surface_but_not_a_sheet_seen_from_behind(sphere_asset):
    """A closed sphere: the Gaussians on its far side are hidden from the camera and facing away, so they are not
    splatted (they would show through where the front's random samples thin out); those facing the camera are
    all kept. An open sheet seen from behind: nothing is in front of it, so nothing is left out and it renders."""
    from relight.core.frames import camera_to_asset
    from relight.render.frame import hidden_gaussians

    cam = Camera.look_at((0.0, -4.0, 0.6), (0.0, 0.0, 0.5), 40.0, 96, 96)
    view = camera_to_asset(cam, sphere_asset.model_matrix)
    g = sphere_asset.gaussians
    to_cam = view.position[None] - g.means
    cos = (g.normals * to_cam).sum(1) / np.linalg.norm(to_cam, axis=1)
    hidden = hidden_gaussians(sphere_asset, view)
    assert not hidden[cos > 0].any()
    assert hidden[cos < -0.3].all()  # nearer the limb the test is conservative: its 3 x 3 pixels reach the front
    assert 0.45 < hidden.mean() < 0.56

    s = np.linspace(-0.5, 0.5, 9)
    xx, yy = np.meshgrid(s, s)
    v = np.stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)], 1).astype(np.float32)
    q = lambda i, j: i * 9 + j  # noqa: E731
    f = np.array([t for i in range(8) for j in range(8)
                  for t in ((q(i, j), q(i, j + 1), q(i + 1, j + 1)), (q(i, j), q(i + 1, j + 1), q(i + 1, j)))], np.int32)
    sheet = asset_from_mesh(v, f, np.tile([0.0, 0.0, 1.0], (len(v), 1)), (0.6, 0.6, 0.6), 0.5, 0.0, n_gaussians=4000)
    below = Camera.look_at((0.3, -0.2, -3.0), (0.0, 0.0, 0.0), 40.0, 64, 64)  # sees the sheet's back
    assert not hidden_gaussians(sheet, camera_to_asset(below, sheet.model_matrix)).any()
    above = Camera.look_at((0.3, -0.2, 3.0), (0.0, 0.0, 0.0), 40.0, 64, 64)  # its mirror image: sees the front
    cover = [(render(sheet, c, Environment.constant([1.0, 1.0, 1.0]), RenderSettings(supersample=1, specular_samples=0)).alpha > 0.99).mean()
             for c in (below, above)]  # fmt: skip
    assert cover[0] > 0.1 and abs(cover[0] - cover[1]) < 0.01, cover


@pytest.mark.parametrize("seed, with_ground, with_bounce", [(0, False, False), (1, True, False), (2, True, True),
                                                            (3, False, True), (4, True, "links")])  # fmt: skip
def test_light_visibility_kernel_matches_its_reference(seed, with_ground, with_bounce):
    """The numba kernel against the plain reference (render/light_visibility_reference.py) on random bits, normals
    and lights. The kernel rounds each cosine and each radiance x cosine product to float32 (about 3 and 1 roundings,
    fastmath may reorder them) and sums in float64; the reference is float64 throughout. So each summed term is off
    by at most ~4 eps32 of |L_k| (|c| <= 1), including a direction whose cosine is within rounding of 0 being kept
    or dropped: bound |kernel - reference| by 8 eps32 (S_num + ratio S_den) / den, S = sum of |L_k| over the
    directions near or above the tangent plane."""
    from relight.render.light_visibility_reference import light_visibility_reference

    rng = np.random.default_rng(seed)
    d = sphere_directions()
    n_pts = 200
    normals = rng.normal(size=(n_pts, 3)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    bits = rng.integers(0, 256, size=(n_pts, len(d) // 8), dtype=np.uint8)
    radiance = (rng.uniform(0, 1, (len(d), 3)) ** 6 * 50).astype(np.float32)  # a few bright directions
    kw = {}
    if with_ground:
        kw.update(up=[0.0, 0.0, 1.0], ground_radiance=[0.3, 0.25, 0.2])
    if with_bounce:
        kw.update(bounce=rng.uniform(0, 0.5, (n_pts, 3)).astype(np.float32),
                  bounce_dir=rng.uniform(0, 0.5, (len(d), 3)).astype(np.float32))
    if with_bounce == "links":  # 50 representatives, landing points known for the first 200 directions, some not
        hit = rng.integers(-1, 300, size=(50, len(d) - 56)).astype(np.int32)
        kw.update(links=(rng.integers(0, 50, n_pts).astype(np.int32), hit, rng.uniform(0, 0.5, (300, 3)).astype(np.float32)))
    fast = light_visibility(bits, normals, d, radiance, **kw)
    ref = light_visibility_reference(bits, normals, d, radiance, **kw)
    eps32 = float(np.finfo(np.float32).eps)
    c = normals.astype(np.float64) @ d.astype(np.float64).T  # [N, D]
    near = c > -4 * eps32
    big = radiance.astype(np.float64).max() + 1.0 + (1.0 if with_bounce else 0.0)  # bounds every |L_k| above
    s_den = near @ radiance.astype(np.float64)  # [N, 3]
    s_num = near.sum(1, keepdims=True) * big
    den = np.maximum((np.maximum(c, 0)) @ radiance.astype(np.float64), 1e-30)
    tol = 8 * eps32 * (s_num + np.abs(ref) * s_den) / den
    assert np.all(np.abs(fast - ref) <= tol), float(np.max(np.abs(fast - ref) / tol))
    assert 0.05 < float(np.mean(ref)) < 2.0
