"""Issue 13, "no speckles": a relit frame covers exactly the asset's mesh. A flat face seen at a grazing angle at the
final preset (2x supersampling, the hidden back surface culled), and at the preview preset (1x), once let the
background through between its edge-on surfels; now every pixel well inside the silhouette is opaque and shades like
the mesh itself."""

import numpy as np
import pytest
from scipy.ndimage import binary_erosion, distance_transform_edt, maximum_filter, minimum_filter

from relight.core.asset import RelightableAsset
from relight.core.camera import Camera
from relight.core.envmap import Environment, builtin_hdris
from relight.core.frames import camera_to_asset
from relight.core.gaussians import GBUFFER_CHANNELS, GBUFFER_LAYOUT as LAYOUT, SurfaceGaussians, quats_from_normals
from relight.core.surface import sample_surface
from relight.render.frame import HIDDEN_DEPTH_SIDE, render
from relight.render.mesh_coverage import MIN_SPLAT_ALPHA, fill_coverage, mesh_coverage, nearest_pixels
from relight.render.mesh_raster import clip_from_camera, rasterize, to_clip
from relight.render.settings import FINAL, PREVIEW
from relight.render.shading import shade
from relight.render.splat_project import ALPHA_THRESHOLD

SIZE = 128  # output pixels (the G-buffers are FINAL.supersample times finer)
SLAB = (1.0, 0.25, 0.6)  # asset-space edges (x, y, z): a slab, like a letter extruded along y
CELLS = 8  # each face is a CELLS x CELLS grid of quads, so stratified sampling leaves no random gaps
N_GAUSSIANS = 40_000
SIGMA_PER_SPACING = 0.75  # surfel std dev / sample spacing, as the reference assets make them
OPACITY = 0.98
COLOUR, ROUGHNESS, METALLIC = (0.8, 0.5, 0.3), 0.4, 0.0
GRAZING_DEG = 78.0  # angle between the view and the slab's big face's normal
GRAZING_FACE = 2  # that face's label in slab_mesh (labels run axis-major, - before +: this is -y)


def slab_mesh() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The slab as six gridded faces -> (vertices [V, 3] float32 asset space, faces [F, 3] int32 outward winding,
    vertex normals [V, 3] (each face's own: corners are repeated per face), face label [F] int: which of the six)."""
    vs, fs, ns, labels = [], [], [], []
    g = np.linspace(-0.5, 0.5, CELLS + 1)
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u, w = [a for a in range(3) if a != axis]
            p = np.zeros((CELLS + 1, CELLS + 1, 3))
            p[..., axis] = 0.5 * sign
            p[..., u], p[..., w] = np.meshgrid(g, g, indexing="ij")
            p = (p * SLAB).reshape(-1, 3)
            idx = sum(map(len, vs)) + np.arange((CELLS + 1) ** 2).reshape(CELLS + 1, CELLS + 1)
            a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[:-1, 1:], idx[1:, 1:]
            tri = np.concatenate([np.stack([a, b, d], -1), np.stack([a, d, c], -1)]).reshape(-1, 3)
            n = np.zeros(3)
            n[axis] = sign
            c0, c1, c2 = p[tri[0] - idx[0, 0]]  # the first triangle's corners
            e = np.cross(c1 - c0, c2 - c0)
            vs.append(p)
            fs.append(tri if e @ n > 0 else tri[:, ::-1])
            ns.append(np.tile(n, (len(p), 1)))
            labels.append(np.full(len(tri), len(labels)))
    return (np.concatenate(vs).astype(np.float32), np.concatenate(fs).astype(np.int32),
            np.concatenate(ns).astype(np.float32), np.concatenate(labels))  # fmt: skip


def model_matrix() -> np.ndarray:
    """[4, 4] asset -> world: scale 2, turned 0.3 rad about z, lifted; so the render's space conversions are used."""
    c, s = np.cos(0.3), np.sin(0.3)
    M = np.eye(4)
    M[:3, :3] = 2.0 * np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    M[:3, 3] = (0.2, -0.1, 0.6)
    return M


@pytest.fixture(scope="module")
def slab():
    """(asset, sigma): surface Gaussians on the slab with one material, as the reference assets are made."""
    v, f, vn, _ = slab_mesh()
    pts, nrm, _, _, spacing = sample_surface(v, f, vn, N_GAUSSIANS, seed=0)
    n, sigma = len(pts), SIGMA_PER_SPACING * spacing
    g = SurfaceGaussians(
        means=pts, quats=quats_from_normals(nrm).astype(np.float32),
        scales=np.tile(np.array([sigma, sigma, 0.1 * sigma], np.float32), (n, 1)),
        opacities=np.full(n, OPACITY, np.float32), albedo=np.tile(np.float32(COLOUR), (n, 1)),
        roughness=np.full(n, ROUGHNESS, np.float32), metallic=np.full(n, METALLIC, np.float32), normals=nrm,
        visibility=np.ones(n, np.float32), voxel=np.zeros(n, np.int32),
    )  # fmt: skip
    asset = RelightableAsset(
        asset_id="51ab00000000000000000013", name="slab", vertices=v, faces=f, vertex_normals=vn, gaussians=g,
        voxels=np.zeros((0, 3), np.int32), model_matrix=model_matrix(),
        input_camera=Camera.look_at((0.0, -3.0, 0.5), (0.0, 0.0, 0.0), 35.0, 64, 64),
        thumbnail=np.zeros((8, 8, 4), np.uint8),
    )  # fmt: skip
    return asset, sigma


def grazing_camera(asset: RelightableAsset) -> Camera:
    """World camera seeing the slab's big -y face GRAZING_DEG off its normal (and its +x end almost head-on)."""
    a = np.radians(GRAZING_DEG)
    eye_asset = np.array([np.sin(a), -np.cos(a), 0.0]) * 2.6 + (0.0, 0.0, 0.3)  # asset units
    to_world = lambda p: asset.model_matrix[:3, :3] @ p + asset.model_matrix[:3, 3]  # noqa: E731
    return Camera.look_at(tuple(to_world(eye_asset)), tuple(to_world(np.zeros(3))), 28.0, SIZE, SIZE)


def box_down(x: np.ndarray, ss: int) -> np.ndarray:
    """[H*ss, W*ss, C] -> [H, W, C] mean over ss x ss blocks (as the renderer antialiases)."""
    H, W = x.shape[0] // ss, x.shape[1] // ss
    return x.reshape(H, ss, W, ss, -1).mean((1, 3))


def mesh_gbuffer(asset: RelightableAsset, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """The slab's exact G-buffer from its mesh at `camera`'s size (world camera): (features [H, W,
    GBUFFER_CHANNELS] the material and each face's world normal, no shadowing, 0 off the mesh; face label [H, W]
    int, -1 off the mesh)."""
    view = camera_to_asset(camera, asset.model_matrix)
    rast, _ = rasterize(to_clip(asset.vertices, clip_from_camera(view)), asset.faces, (camera.height, camera.width),
                        grad_db=False)  # fmt: skip
    tri = rast[0, ..., 3].numpy().astype(np.int64) - 1  # [H, W] triangle index, -1 off the mesh
    on = tri >= 0
    label = np.where(on, slab_mesh()[3][tri], -1)
    f = np.zeros((camera.height, camera.width, GBUFFER_CHANNELS), np.float32)
    f[..., LAYOUT["albedo"]] = COLOUR
    f[..., LAYOUT["roughness"]] = ROUGHNESS
    f[..., LAYOUT["metallic"]] = METALLIC
    f[..., LAYOUT["normal"]] = asset.vertex_normals[asset.faces[np.maximum(tri, 0), 0]] @ asset.rotation.T
    f[..., LAYOUT["visibility"]] = 1.0
    f[..., LAYOUT["shadow"]] = 1.0
    return f * on[..., None], label


def test_a_grazing_flat_face_is_opaque_and_shades_like_its_mesh(slab):
    """The slab at the final preset, its big face 78 degrees off the view: (a) opaque inside its silhouette, the
    silhouette the mesh's own; (b) shaded like the mesh's exact G-buffer through the same shader."""
    asset, sigma = slab
    camera = grazing_camera(asset)
    env = Environment.from_file(builtin_hdris()["studio"])
    out = render(asset, camera, env, FINAL)
    ss = FINAL.supersample
    fine = camera.resized(SIZE * ss, SIZE * ss)
    feats, label = mesh_gbuffer(asset, fine)
    covered = label >= 0  # [H * ss, W * ss]
    share = box_down(covered[..., None].astype(np.float32), ss)[..., 0]  # [H, W] of each output pixel covered

    # (a) no hole: every pixel 2 px or more inside the mesh's silhouette is opaque (the splats' own coverage left 704
    # of these 2618 below 0.98 here, as low as 0.36); the silhouette itself is the mesh's, box-filtered like the render
    inside = binary_erosion(share == 1.0, iterations=2)
    assert inside.sum() > 0.2 * SIZE * SIZE / 4, "the slab fills a good part of the frame"
    alpha = out.alpha[..., 0]
    holes = inside & (alpha < 0.98)
    assert not holes.any(), f"{holes.sum()} of {inside.sum()} pixels inside the silhouette have alpha < 0.98 " \
                            f"(lowest {alpha[inside].min():.3f})"
    np.testing.assert_allclose(alpha, share, atol=1e-6)

    # (b) the same shading as the exact mesh G-buffer through the same shader. Away from the face edges every
    # Gaussian reaching a pixel carries exactly the face's features, so their alpha-normalised mean is those
    # features up to float32 rounding (eps 6e-8, a few tens of surfels summed per pixel, the normal renormalised),
    # carried through the shader: 4e-7 relative when measured. The bound, 1e-4, leaves a wide margin over that and
    # sits far below what a thin pixel costs (under the old splat coverage the premultiplied colour was up to 64 %
    # too dark here, 20 % at the 99th percentile).
    one_face = covered & one_face_pixels(asset, camera, fine, sigma, label)
    compare = box_down(one_face[..., None].astype(np.float32), ss)[..., 0] == 1.0  # [SIZE, SIZE] output pixels
    grazing = box_down((label == GRAZING_FACE)[..., None].astype(np.float32), ss)[..., 0] == 1.0
    assert (compare & grazing).sum() >= 100, "the grazing face has pixels away from its edges to compare"
    ref = shade(feats, covered[..., None].astype(np.float32), fine, env, specular_samples=FINAL.specular_samples)
    ref_hdr = box_down(ref["hdr"], ss)
    err = np.abs(out.hdr - ref_hdr).max(-1) / np.maximum(ref_hdr.max(-1), 1e-3)
    worst = np.unravel_index(np.argmax(np.where(compare, err, 0)), err.shape)
    assert err[compare].max() < 1e-4, f"relative error {err[compare].max():.2e} at {worst} (of {compare.sum()} px)"


@pytest.mark.parametrize("size", [SIZE, 5 * SIZE])
def test_the_preview_has_no_holes_either(slab, size):
    """The same slab and view at the preview preset (one sample per pixel: what the add-on shows while the artist
    orbits), at a frame within HIDDEN_DEPTH_SIDE (the coverage is the hidden-Gaussian cull's own z-buffer's) and one
    beyond it (the cull's z-buffer is coarser there, and scaling its coverage up would be wrong at the silhouette):
    (a) opaque inside the silhouette, which is exactly the mesh's (the pixels whose centre it covers); (b) shaded
    like the mesh's exact G-buffer, as at the final preset."""
    asset, sigma = slab
    assert (size <= HIDDEN_DEPTH_SIDE) == (size == SIZE)
    camera = grazing_camera(asset).resized(size, size)
    env = Environment.from_file(builtin_hdris()["studio"])
    out = render(asset, camera, env, PREVIEW)
    feats, label = mesh_gbuffer(asset, camera)
    covered = label >= 0  # [size, size]

    # (a) the splats' own coverage left 524 of 2707 pixels 2 px or more inside below alpha 0.98 at 128 px (lowest
    # 0.30), 6657 of 26647 at 384 px (lowest 0.20)
    inside = binary_erosion(covered, iterations=2)
    alpha = out.alpha[..., 0]
    holes = inside & (alpha < 0.98)
    assert not holes.any(), f"{holes.sum()} of {inside.sum()} pixels inside the silhouette have alpha < 0.98 " \
                            f"(lowest {alpha[inside].min():.3f})"
    np.testing.assert_array_equal(alpha, covered.astype(np.float32))

    # (b) as the final preset's (b), one sample per pixel and the preset's prefiltered specular
    compare = covered & one_face_pixels(asset, camera, camera, sigma, label) & (label == GRAZING_FACE)
    assert compare.sum() >= 100, "the grazing face has pixels away from its edges to compare"
    ref = shade(feats, covered[..., None].astype(np.float32), camera, env, specular_samples=PREVIEW.specular_samples)
    err = np.abs(out.hdr - ref["hdr"]).max(-1) / np.maximum(ref["hdr"].max(-1), 1e-3)
    assert err[compare].max() < 1e-4, f"relative error {err[compare].max():.2e} (of {compare.sum()} px)"


def one_face_pixels(asset: RelightableAsset, camera: Camera, gbuffer: Camera, sigma: float,
                    label: np.ndarray) -> np.ndarray:  # fmt: skip
    """[H, W] bool over the G-buffer's pixels (world camera `gbuffer`: `camera`, the frame's, at the G-buffer's
    size; label [H, W] its face labels, mesh_gbuffer): those whose square of radius r holds one face label, so that
    every surfel reaching them is that face's. A surfel reaches no farther than reach = sqrt(2 ln(opacity /
    ALPHA_THRESHOLD)) std devs (the rasterizer's cut-off, ~3.3), i.e. reach sigma f / z pixels on screen
    (foreshortening only shortens it; the projection's off-axis stretch is at most sqrt(1 + tan^2) of the
    half-diagonal field of view, 1.06 here); +1 px for pixel centres, + one pixel of the hidden-Gaussian cull's
    z-buffer (the frame's pixel up to HIDDEN_DEPTH_SIDE, coarser beyond), because the cull tests 3 x 3 of those and
    keeps back-facing surfels that close to the silhouette."""
    reach = np.sqrt(2.0 * np.log(OPACITY / ALPHA_THRESHOLD))
    view = camera_to_asset(gbuffer, asset.model_matrix)
    z_near = float(np.min((asset.vertices @ view.viewmat[:3, :3].T + view.viewmat[:3, 3])[:, 2]))  # asset units
    tan_half = 0.5 * gbuffer.width / gbuffer.K[0, 0] * np.sqrt(2.0)
    cull_pixel = gbuffer.width / camera.width * max(1.0, max(camera.width, camera.height) / HIDDEN_DEPTH_SIDE)
    r = int(np.ceil(reach * sigma * gbuffer.K[0, 0] / z_near * np.sqrt(1.0 + tan_half**2) + 1 + cull_pixel))
    return minimum_filter(label, 2 * r + 1) == maximum_filter(label, 2 * r + 1)


@pytest.mark.parametrize("impl", ["numba", "numpy"])
def test_fill_takes_features_over_alpha_and_fills_empty_pixels_from_the_nearest_covered_one(impl):
    """fill_coverage on a hand-made G-buffer: a thin pixel is brought to full strength, an empty one inside the
    coverage copies its nearest covered neighbour, and everything outside the coverage goes."""
    colors = np.zeros((4, 6, 2), np.float32)
    alphas = np.zeros((4, 6, 1), np.float32)
    colors[1, 1], alphas[1, 1] = (0.5, 0.25), 0.5  # straight (1.0, 0.5), half covered
    colors[1, 4], alphas[1, 4] = (0.02, 0.06), 0.1  # straight (0.2, 0.6), thin
    colors[3, 5], alphas[3, 5] = (0.3, 0.3), 0.3  # outside the coverage: dropped
    colors[2, 2], alphas[2, 2] = (0.0, 1e-4), MIN_SPLAT_ALPHA / 2  # below the floor: treated as empty
    covered = np.zeros((4, 6), bool)
    covered[1:3, 1:5] = True
    out, a = fill_coverage(colors, alphas, covered, impl)
    np.testing.assert_array_equal(a[..., 0], covered.astype(np.float32))
    np.testing.assert_allclose(out[1, 1], (1.0, 0.5), rtol=1e-6)
    np.testing.assert_allclose(out[1, 4], (0.2, 0.6), rtol=1e-6)
    np.testing.assert_allclose(out[2, 1], (1.0, 0.5), rtol=1e-6)  # nearest covered: (1, 1)
    np.testing.assert_allclose(out[2, 2], (1.0, 0.5), rtol=1e-6)  # (1, 1) at distance sqrt 2 beats (1, 4) at sqrt 5
    np.testing.assert_allclose(out[2, 4], (0.2, 0.6), rtol=1e-6)
    assert not out[~covered].any()
    # nothing to fill from: the splat buffers come back as they are
    same = fill_coverage(colors, alphas, np.zeros((4, 6), bool) | (alphas[..., 0] == 0), impl)
    assert same[0] is colors and same[1] is alphas


@pytest.mark.parametrize("seed", range(4))
def test_the_fill_kernel_matches_its_numpy_reference_bit_for_bit(seed):
    """fill_coverage's numba pass against the numpy reference on a random premultiplied G-buffer (thin, empty and
    below-the-floor pixels inside the coverage, a fringe outside it), into a new array and into `colors` itself."""
    rng = np.random.default_rng(seed)
    H, W = 48, 64
    alphas = (rng.random((H, W, 1)) ** 3).astype(np.float32)
    alphas[rng.random((H, W)) < 0.2] = 0.0
    alphas[rng.random((H, W)) < 0.05] = MIN_SPLAT_ALPHA * 0.5
    colors = ((rng.random((H, W, GBUFFER_CHANNELS)) - 0.3) * alphas).astype(np.float32)  # premultiplied: 0 where alpha is
    covered = np.zeros((H, W), bool)
    covered[6:40, 9:55] = rng.random((34, 46)) < 0.95
    ref = fill_coverage(colors, alphas, covered, "numpy")
    assert ref[0] is not colors and (covered & (alphas[..., 0] < MIN_SPLAT_ALPHA)).any()
    fast = fill_coverage(colors, alphas, covered, "numba")
    own = colors.copy()
    in_place = fill_coverage(own, alphas, covered, "numba", out=own)
    assert in_place[0] is own
    for out, a in (fast, in_place):
        np.testing.assert_array_equal(out, ref[0])
        np.testing.assert_array_equal(a, ref[1])


def test_mesh_coverage_matches_the_mesh_rasterizer(slab):
    """The coverage pass (visibility only) covers exactly the pixels the full rasterizer finds a triangle for."""
    asset, _ = slab
    view = camera_to_asset(grazing_camera(asset), asset.model_matrix)
    rast, _ = rasterize(to_clip(asset.vertices, clip_from_camera(view)), asset.faces, (view.height, view.width),
                        grad_db=False)  # fmt: skip
    np.testing.assert_array_equal(mesh_coverage(view, asset.vertices, asset.faces), rast[0, ..., 3].numpy() > 0)


@pytest.mark.parametrize("density", [0.3, 0.02, 0.0005])
def test_nearest_pixels_are_as_near_as_the_distance_transform_says(density):
    """The local search (and its fallback) against scipy's exact Euclidean distance transform: the pixel found
    is on the mask and exactly as far as the nearest one (ties may pick another)."""
    rng = np.random.default_rng(int(density * 1e4))
    mask = rng.random((60, 80)) < density
    mask[rng.integers(60), rng.integers(80)] = True
    ys, xs = np.nonzero(~mask)
    ny, nx = nearest_pixels(mask, ys, xs)
    assert mask[ny, nx].all()
    dist = distance_transform_edt(~mask)
    np.testing.assert_allclose(np.hypot(ny - ys, nx - xs), dist[ys, xs], rtol=1e-12)


@pytest.mark.parametrize("settings", [PREVIEW, FINAL], ids=["preview", "final"])
@pytest.mark.parametrize("shift", [0.0, 0.45], ids=["centred", "half_out"])
def test_only_the_silhouettes_box_is_rendered_and_the_frame_is_unchanged(slab, monkeypatch, settings, shift):
    """The G-buffer is rasterized, filled and shaded over coverage_window's box only. (a) The box holds every pixel
    the mesh covers, from the cull's own z-buffer (preview) or from the projected vertices (final, whose G-buffer
    is finer than that z-buffer), also with the slab partly out of the frame; (b) the frame equals the one rendered
    over the whole G-buffer: alpha exactly, the shading to float32 rounding (the window's camera has its principal
    point moved by an integer, which rounds the pixels' rays differently: ~1e-7 relative, carried through the
    shader, and 8-bit values at most one level apart where that rounding straddles a level). One exception: the
    projection clamps its Jacobian at the camera's frame plus 30 % (gsplat's), and the window's frame is narrower,
    so a Gaussian centred well beyond the window's side that still reaches in (an edge-on surfel) has a slightly
    different footprint there: a few pixels at the window's side, 1e-4 relative when measured; bound 1e-3."""
    from relight.render import frame as frame_module
    from relight.render.coverage_window import coverage_window

    asset, _ = slab
    camera = grazing_camera(asset)
    K = camera.K.copy()
    K[0, 2] += shift * SIZE  # the slab's centre moves right by that share of the frame
    camera = Camera(camera.viewmat, K, SIZE, SIZE)
    ss = settings.supersample
    fine = camera.resized(SIZE * ss, SIZE * ss)
    view = camera_to_asset(fine, asset.model_matrix)
    covered = mesh_coverage(view, asset.vertices, asset.faces)  # [H * ss, W * ss] the mesh's exact coverage
    window = coverage_window(view, asset.vertices, covered if ss == 1 else None)
    assert window is not None, "the slab covers part of the frame"
    x0, y0, x1, y1 = window
    inside = np.zeros_like(covered)
    inside[y0:y1, x0:x1] = True
    assert covered.any() and not (covered & ~inside).any(), "every covered pixel lies in the window"
    assert (x1 - x0) * (y1 - y0) < 0.75 * covered.size, "the window leaves part of the frame out"
    if shift:
        assert x1 == fine.width, "the slab runs off the frame's right edge"

    env = Environment.from_file(builtin_hdris()["studio"])
    cropped = render(asset, camera, env, settings)
    monkeypatch.setattr(frame_module, "coverage_window", lambda *a, **k: None)
    whole = render(asset, camera, env, settings)
    np.testing.assert_array_equal(cropped.alpha, whole.alpha)
    scale = max(float(whole.hdr.max()), 1e-3)
    err = np.abs(cropped.hdr - whole.hdr).max(-1) / scale  # [H, W]
    assert err.max() < 1e-3, f"largest difference {err.max():.2e} of the peak"
    assert (err > 1e-5).mean() < 0.01, f"{(err > 1e-5).sum()} pixels differ by more than float32 rounding"
    assert np.abs(cropped.rgba8.astype(int) - whole.rgba8).max() <= 1
    assert set(cropped.passes) == set(whole.passes)
    for k in whole.passes:
        np.testing.assert_allclose(cropped.passes[k], whole.passes[k], rtol=0, atol=1e-3, err_msg=k)


def test_a_window_the_size_of_the_culls_z_buffer_still_gets_its_own_coverage(slab, monkeypatch):
    """At FINAL (2x supersampled) the cull's z-buffer is the output frame's size, and a window of the G-buffer can be
    exactly that size by chance: the asset filling the middle half of the frame. The window's coverage must come from
    its own view, not from that z-buffer because the shapes agree. The defect: `relight eval relight --quick` at
    64 px, where the sphere fills half the frame, rendered the scene provider's assets a quarter covered and black
    (its baseline fell from 23.69 to 14.30 dB). Here any window that holds the silhouette is forced to the central half
    of the G-buffer, whose size is the frame's, and the frame must equal the one rendered over the whole G-buffer."""
    from relight.render import frame as frame_module
    from relight.render.coverage_window import coverage_window

    asset, _ = slab
    camera = grazing_camera(asset)
    K = camera.K.copy()
    K[:2, :2] *= 0.4  # zoomed out: the slab fits in the frame's middle half
    camera = Camera(camera.viewmat, K, SIZE, SIZE)
    ss = FINAL.supersample
    assert ss == 2
    fine = camera.resized(SIZE * ss, SIZE * ss)
    half = (SIZE // 2, SIZE // 2, SIZE // 2 + SIZE, SIZE // 2 + SIZE)  # [x0, y0, x1, y1): SIZE x SIZE in the middle

    def middle_half(view, vertices, covered=None):
        found = coverage_window(view, vertices, covered)
        assert found is not None and (view.width, view.height) == (fine.width, fine.height)
        assert found[0] >= half[0] and found[1] >= half[1] and found[2] <= half[2] and found[3] <= half[3], found
        return half

    env = Environment.from_file(builtin_hdris()["studio"])
    monkeypatch.setattr(frame_module, "coverage_window", middle_half)
    windowed = render(asset, camera, env, FINAL)
    monkeypatch.setattr(frame_module, "coverage_window", lambda *a, **k: None)
    whole = render(asset, camera, env, FINAL)
    assert whole.alpha.sum() > 0.02 * SIZE * SIZE, "the slab is in view"
    np.testing.assert_array_equal(windowed.alpha, whole.alpha)
    scale = max(float(whole.hdr.max()), 1e-3)
    err = np.abs(windowed.hdr - whole.hdr).max(-1) / scale  # [H, W]
    assert err.max() < 1e-3, f"largest difference {err.max():.2e} of the peak"
