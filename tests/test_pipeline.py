"""The in-process pipeline end to end on the shipped sample, plus the asset store, GLB and PLY formats."""

import numpy as np
import pytest

from relight.core.camera import Camera
from relight.core.envmap import Environment, builtin_hdris
from relight.core.frames import camera_to_world
from relight.export.gltf import read_glb_json
from relight.core.input_image import InputImage
from relight.export.bake import bake_glb
from relight.export.ply import read_ply, splats_ply
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
from relight.render.settings import RenderSettings
from relight.service.store import AssetStore
from relight_protocol.errors import UnknownAsset

SAMPLE = __import__("relight.demo", fromlist=["SAMPLE"]).SAMPLE


@pytest.fixture(scope="module")
def sample_image():
    return InputImage.from_file(SAMPLE)


@pytest.fixture(scope="module")
def sample_rgba(sample_image):
    return sample_image.linear


@pytest.fixture(scope="module")
def asset(sample_image):
    stages = []
    a = generate(GenerateInputs(image=sample_image, name="sample", n_gaussians=40_000),
                 lambda s, f, m="": stages.append((s, f)))
    fr = [f for _, f in stages]
    assert fr == sorted(fr) and fr[-1] == 1.0  # progress is monotone and finishes
    assert {"segment", "geometry", "delight", "gaussians"} <= {s for s, _ in stages}
    return a


def test_asset_contents(asset):
    g = asset.gaussians
    assert 35_000 < len(g) < 45_000
    assert np.all(np.abs(g.means) <= 0.5 + 1e-4)  # unit cube
    np.testing.assert_allclose(np.linalg.norm(g.normals, axis=1), 1.0, atol=1e-4)
    assert (g.voxel >= 0).mean() > 0.99 and asset.voxels.max() < 64
    assert 0.2 < asset.meta["seen_fraction"] < 0.8  # one view sees the front, not the back
    assert g.visibility.min() >= 0 and g.visibility.max() <= 1 and g.visibility.mean() > 0.6
    # the unseen side was completed: no black, no NaN
    assert np.isfinite(g.albedo).all() and (g.albedo.sum(1) > 0.05).mean() > 0.99


def test_delit_albedo_keeps_colour_and_drops_shading(asset, sample_rgba):
    """The object is a warm orange (see tools/make_sample.py): the albedo stays warm. Shading is a smooth function
    of the normal, so how much of the brightness the normal explains (R^2 of an order-2 SH fit) must drop."""
    from relight.generate.delight.unseen import sample_image, visible_points
    from relight.core.prefilter import sh9_basis
    from relight.generate.segment import segment

    g = asset.gaussians
    assert np.median(g.albedo[:, 0]) > 1.5 * np.median(g.albedo[:, 2])
    mask = segment(sample_rgba)
    seen, xy = visible_points(asset.input_camera, asset.vertices, asset.faces, g.means, g.normals, mask)
    lum_w = np.array([0.2126, 0.7152, 0.0722])
    lum_in = sample_image(sample_rgba[..., :3], xy[seen]) @ lum_w
    lum_alb = g.albedo[seen] @ lum_w

    def r2(y):
        Y = sh9_basis(g.normals[seen])
        c, *_ = np.linalg.lstsq(Y, y, rcond=None)
        return 1 - np.var(y - Y @ c) / np.var(y)

    assert r2(lum_alb) < 0.5 * r2(lum_in), (r2(lum_alb), r2(lum_in))


def test_render_covers_the_silhouette_and_follows_the_light(asset, sample_rgba):
    cam = camera_to_world(asset.input_camera, asset.model_matrix)
    hdris = builtin_hdris()
    night = render(asset, cam, Environment.from_file(hdris["night"]))
    studio = render(asset, cam, Environment.from_file(hdris["studio"]))
    assert night.rgba8.shape == (cam.height, cam.width, 4)
    cov = night.rgba8[..., 3] > 127
    m = sample_rgba[..., 3] > 0.5
    assert (cov & m).sum() / (cov | m).sum() > 0.9
    # brighter world -> brighter asset, the same coverage
    lum = lambda r: r.rgba8[..., :3][cov].mean()  # noqa: E731
    assert lum(studio) > lum(night) + 20
    assert np.array_equal(night.rgba8[..., 3], studio.rgba8[..., 3])
    bg = render(asset, cam.resized(64, 64), Environment.from_file(hdris["forest"]), background=True)
    assert (bg.rgba8[..., 3] == 255).all() and bg.rgba8[..., :3].std() > 5


def test_store_survives_a_restart(asset, tmp_path):
    AssetStore(tmp_path).put(asset)
    again = AssetStore(tmp_path)  # a new process would see exactly this
    assert again.ids() == [asset.asset_id]
    b = again.get(asset.asset_id)
    np.testing.assert_array_equal(b.gaussians.albedo, asset.gaussians.albedo)
    np.testing.assert_array_equal(b.input_camera.viewmat, asset.input_camera.viewmat)
    with pytest.raises(UnknownAsset, match="generate it again"):
        again.get("0123456789abcdef")
    with pytest.raises(UnknownAsset):
        again.get("../../etc")


def test_glb_is_metallic_roughness_and_imports_into_blender(asset, tmp_path):
    data = bake_glb(asset, texture_size=256)
    doc = read_glb_json(data)
    pbr = doc["materials"][0]["pbrMetallicRoughness"]
    assert "baseColorTexture" in pbr and "metallicRoughnessTexture" in pbr
    assert {im["mimeType"] for im in doc["images"]} == {"image/png"}
    path = tmp_path / "a.glb"
    path.write_bytes(data)
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(path))
    obj = next(o for o in bpy.data.objects if o.type == "MESH")
    dims = np.array(obj.dimensions)
    assert dims.max() == pytest.approx(1.0, rel=0.02)  # unit cube, Z up preserved: tallest axis is not Y
    assert dims[2] > dims[1]
    bsdf = next(n for n in obj.active_material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    for name in ("Base Color", "Roughness", "Metallic"):
        assert bsdf.inputs[name].is_linked, name


def test_ply_has_3dgs_and_pbr_fields(asset):
    rec = read_ply(splats_ply(asset))
    for f in ("x", "y", "z", "f_dc_0", "opacity", "scale_0", "rot_0", "albedo_0", "roughness", "metallic"):
        assert f in rec.dtype.names
    assert len(rec) == len(asset.gaussians)
    np.testing.assert_allclose(rec["albedo_0"], asset.gaussians.albedo[:, 0])
    q = np.stack([rec[f"rot_{i}"] for i in range(4)], 1)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)


def test_bad_inputs_get_clear_errors(sample_image):
    with pytest.raises(ValueError, match="no object"):
        generate(GenerateInputs(image=InputImage.from_pixels(np.zeros((64, 64, 4), np.float32), "linear")))
    with pytest.raises(ValueError, match="light_hint"):
        generate(GenerateInputs(image=sample_image, light_hint="sunny"))
    with pytest.raises(ValueError, match="no world"):
        generate(GenerateInputs(image=sample_image, light_hint="world"))
    with pytest.raises(ValueError, match="needs a mesh"):
        generate(GenerateInputs(image=sample_image, provider="scene"))


def test_shadows_are_reused_while_the_light_stays_and_recomputed_when_it_turns(asset):
    from relight.render import shadows as S

    cam = camera_to_world(asset.input_camera, asset.model_matrix).resized(64, 64)
    env = Environment.from_file(builtin_hdris()["sunset"])
    S._SHADOWS.clear()
    first = render(asset, cam, env, RenderSettings(supersample=1, specular_samples=0))
    assert len(S._SHADOWS) == 1
    orbit = render(asset, cam.resized(48, 48), env, RenderSettings(supersample=1, specular_samples=0))  # camera moves, light stays
    assert len(S._SHADOWS) == 1 and orbit.rgba8.shape == (48, 48, 4)
    again = render(asset, cam, env, RenderSettings(supersample=1, specular_samples=0))
    np.testing.assert_array_equal(first.rgba8, again.rgba8)
    turned = render(asset, cam, env.with_transform(2.0, 1.0), RenderSettings(supersample=1, specular_samples=0))
    assert len(S._SHADOWS) == 2
    assert not np.array_equal(first.passes["shadow"], turned.passes["shadow"])


def test_local_albedo_and_residual_score_tell_the_right_material():
    """Synthetic affine responses: the photo is made with one (c0, c1); the same pair re-renders it almost exactly,
    a pair that puts a highlight where the photo has none, or one that would need an albedo above 1, does not."""
    from relight.generate.delight.materials import local_albedo, regularised_inverse, residual_score

    rng = np.random.default_rng(0)
    H = W = 48
    yy, xx = np.mgrid[:H, :W] / H
    albedo = np.stack([0.5 + 0.3 * np.sin(6 * xx), 0.3 + 0.2 * np.cos(5 * yy), np.full((H, W), 0.2)], -1)
    shade = (0.4 + 0.6 * xx)[..., None] * np.ones(3)  # [H, W, 3] smooth irradiance
    spot = 0.6 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.4) ** 2) / 0.005)[..., None] * np.ones(3)  # a highlight
    photo = spot + shade * albedo
    ok = np.ones((H, W), bool)
    # a constant albedo under any response is recovered exactly, whatever the weights
    const = np.full((H, W, 3), 0.4)
    w = rng.random((H, W))
    np.testing.assert_allclose(local_albedo(spot + shade * const, spot, shade, w, 2.0), const, atol=1e-9)
    right = residual_score(photo, spot, shade, ok, 1.5)
    no_spot = residual_score(photo, 0 * spot, shade, ok, 1.5)
    moved = residual_score(photo, np.roll(spot, 15, axis=1), shade, ok, 1.5)
    too_dark = residual_score(photo, spot, 0.3 * shade, ok, 1.5)  # would need albedo > 1 to reach the photo
    assert right < 0.5 * min(no_spot, moved, too_dark), (right, no_spot, moved, too_dark)
    # a metal's albedo is bounded below: a response far too bright for the photo cannot be darkened away
    assert residual_score(photo, spot, 20 * shade, ok, 1.5, lo=0.3) > 3 * right
    # the regularised inverse is the exact inverse where the response is strong, the local estimate where it is not
    c1 = shade.copy()
    c1[:, : W // 2] *= 1e-3  # left half: the pixel says almost nothing about its albedo
    obs = spot + c1 * albedo + rng.normal(0, 1e-3, (H, W, 3))  # noise as large as the left half's whole signal
    inv = regularised_inverse(obs, spot, c1, ok, 2.0)
    np.testing.assert_allclose(inv[:, W // 2 + 4 :], albedo[:, W // 2 + 4 :], atol=0.03)
    naive = (obs - spot) / c1
    left = np.s_[:, : W // 2 - 4]
    assert np.abs(naive[left] - albedo[left]).mean() > 0.3  # the exact inverse is noise there
    assert np.abs(inv[left] - albedo[left]).mean() < 0.15  # the regularised one stays near the object's albedo


def test_completion_continues_the_seam_and_fades_to_the_mean_far_from_it():
    from relight.core.camera import Camera
    from relight.generate.delight.unseen import complete_unseen

    rng = np.random.default_rng(1)
    pts = rng.normal(size=(4000, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)  # unit sphere
    seen = pts[:, 1] < 0  # the camera at -Y sees one half
    vals = np.where(pts[seen, :1] > 0, [[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]])  # [S, 3] red right, blue left
    cam = Camera.look_at((0, -4, 0), (0, 0, 0), 40.0, 64, 64)
    out = complete_unseen(pts, seen, vals, cam, 0.05, mirror=False, smooth_steps=2, fade=True)
    near = ~seen & (pts[:, 1] < 0.05) & (pts[:, 0] > 0.5)  # just past the seam on the red side
    far = ~seen & (pts[:, 1] > 0.95)  # the pole opposite the camera
    assert out[near, 0].mean() > 0.7 and out[near, 2].mean() < 0.3
    np.testing.assert_allclose(out[far].mean(0), vals.mean(0), atol=0.1)
    np.testing.assert_array_equal(out[seen], vals)


def test_nearest_seen_is_exact_within_its_reach_and_bounded_beyond():
    """The completion's nearest seen point against a brute-force search, on seeded random surfaces (a sphere and a
    lumpy blob, half seen): the same distance wherever the nearest lies within the reach, and at most 1 + FAR_EPS
    times the nearest distance beyond it."""
    from scipy.spatial import cKDTree

    from relight.generate.delight.unseen import FAR_EPS, nearest_seen

    rng = np.random.default_rng(7)
    for lumpy in (0.0, 0.3):
        d = rng.normal(size=(3000, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        pts = d * (1.0 + lumpy * np.sin(3 * d[:, :1]) * np.cos(2 * d[:, 2:]))  # [N, 3]
        seen = pts[:, 1] < rng.uniform(-0.3, 0.3)
        q = pts[~seen]
        truth = np.sqrt(((q[:, None, :] - pts[seen][None]) ** 2).sum(-1)).min(1)  # [U] brute force
        reach = 0.5
        dist, idx = nearest_seen(cKDTree(pts[seen]), q, reach)
        np.testing.assert_allclose(dist, np.linalg.norm(pts[seen][idx] - q, axis=1), rtol=1e-9)  # honest distances
        inside = truth < reach * (1 - 1e-9)
        assert inside.any() and (~inside).any()
        np.testing.assert_allclose(dist[inside], truth[inside], rtol=1e-9)
        assert (dist[~inside] <= (1 + FAR_EPS) * truth[~inside] * (1 + 1e-9)).all()


def _courtyard_sphere(roughness, metallic, hdri="courtyard"):
    """A textureless sphere (base colour (0.8, 0.5, 0.3)) rendered by our own renderer under the courtyard HDRI
    (or `hdri`) from a 64x64 camera -> (truth asset, camera, linear image [H, W, 3], mask [H, W], colour,
    environment)."""
    from relight.evaluate.cycles_scenes import shape_mesh
    from relight.core.surface import vertex_normals
    from relight.evaluate.reference_assets import asset_from_mesh

    v, f, _ = shape_mesh("sphere")
    cam = Camera.look_at((0.0, -5.6, 1.5), (0.0, 0.0, 0.0), 40.0, 64, 64)
    colour = np.array([0.8, 0.5, 0.3])
    truth = asset_from_mesh(v, f, vertex_normals(v, f), colour, roughness, metallic, n_gaussians=20_000, camera=cam)
    env = Environment.from_file(builtin_hdris()[hdri])
    r = render(truth, cam, env)
    return truth, cam, r.hdr / np.maximum(r.alpha, 1e-6), r.alpha[..., 0] > 0.5, colour, env


@pytest.mark.parametrize("roughness, metallic", [(0.25, 1.0), (0.3, 0.0)])
def test_delighting_with_the_world_given_recovers_metal_or_dielectric(roughness, metallic):
    """A textureless sphere rendered by our own renderer under a known HDRI: delighting must tell a polished metal
    from a glossy dielectric (the slope test), find the roughness on its grid, and return the albedo."""
    from relight.generate.delight.homogenize import delight

    truth, cam, image, mask, colour, env = _courtyard_sphere(roughness, metallic)
    mats = delight(image, mask, truth, cam, "world", env, ceiling=np.inf)  # a float render: nothing clips
    assert mats.metallic[0] == metallic, mats.scores
    assert abs(mats.roughness[0] - roughness) <= 0.1, mats.scores
    np.testing.assert_allclose(np.median(mats.albedo[mats.seen], 0), colour, atol=0.08)


@pytest.mark.parametrize("roughness, metallic", [(0.25, 1.0), (0.3, 0.0)])
def test_delighting_with_an_unknown_light_tells_a_metal_by_the_albedo_contrast_it_would_need(roughness, metallic):
    """The same textureless sphere, now with the light unknown: a dielectric's albedo would have to span the
    reflected courtyard (tens to one) to explain a metal, so the metal is chosen, with the prior roughness and a
    light fitted through its reflection; a glossy dielectric stays one. The albedo keeps the object's hue."""
    from relight.generate.delight.homogenize import METAL_CONTRAST, METAL_PRIOR_ROUGHNESS, delight

    truth, cam, image, mask, _, _ = _courtyard_sphere(roughness, metallic)
    mats = delight(image, mask, truth, cam, "unknown", ceiling=np.inf)  # a float render: nothing clips
    assert mats.metallic[0] == metallic, mats.scores
    assert (mats.scores["albedo_contrast"] > METAL_CONTRAST) == bool(metallic), mats.scores
    if metallic:
        assert mats.roughness[0] == pytest.approx(METAL_PRIOR_ROUGHNESS)
    a = np.median(mats.albedo[mats.seen], 0)
    assert a[0] > a[1] > a[2], a


def test_an_unknown_light_keeps_a_metal_at_or_above_its_reflectance_floor():
    """Under the studio HDRI the metal sphere mostly reflects a dark room with a few bright panels the fitted lobes
    leave partly unexplained; putting the 95th-percentile albedo at 0.8 would take the rest below any metal's
    normal-incidence reflectance (the inverse's own lower bound). The floor holds instead."""
    from relight.core.colour import LUMINANCE as LUM
    from relight.generate.delight.homogenize import delight
    from relight.generate.delight.materials import METAL_MIN_ALBEDO

    truth, cam, image, mask, _, _ = _courtyard_sphere(0.25, 1.0, "studio")
    mats = delight(image, mask, truth, cam, "unknown", ceiling=np.inf)  # a float render: nothing clips
    assert mats.metallic[0] == 1.0, mats.scores
    y = mats.albedo[mats.seen] @ LUM
    assert np.percentile(y, 5) >= 0.95 * METAL_MIN_ALBEDO, np.percentile(y, [5, 50, 95])


def test_environments_made_in_memory_never_share_cached_shadows(asset):
    """Lobe lights (built in memory, not read from a file) each have their own identity, so the shadows remembered
    for one are never served for another: every render equals the same render with the caches emptied."""
    from relight.core.envmap import lobe_environments
    from relight.core.visibility_rays import sphere_directions
    from relight.render import shadows as S

    lobes = lobe_environments(sphere_directions(6), 3.0, 16, 32)
    assert len({e.identity for e in lobes}) == len(lobes) and all(e.identity for e in lobes)
    cam = camera_to_world(asset.input_camera, asset.model_matrix).resized(48, 48)
    settings = RenderSettings(supersample=1, specular_samples=0)
    warm = [render(asset, cam, e, settings).passes["shadow"] for e in lobes]
    for e, shadow in zip(lobes, warm):
        S._SHADOWS.clear()
        np.testing.assert_array_equal(shadow, render(asset, cam, e, settings).passes["shadow"])
    assert not np.array_equal(warm[0], warm[-1])


def test_self_check_measures_how_well_the_asset_reproduces_its_photo(asset, sample_image):
    """Every delit asset carries its reproduction figure: rendered under the light it was solved under, from the
    input camera, against the photo. Materials that are wrong for the photo score clearly lower, and a poor figure
    becomes a plain-language warning."""
    from dataclasses import replace

    from relight.core.envmap import Environment
    from relight.generate.segment import segment
    from relight.generate.self_check import POOR_REPRODUCTION_DB, reproduction_psnr, warnings_for

    good = asset.meta["reproduction_psnr"]
    assert good is not None and np.isfinite(good) and 10.0 < good < 60.0
    readings = asset.meta["material_readings"]  # what was solved and checked; the kept one is the asset's
    (kept,) = [r for r in readings if r["chosen"]]
    assert kept["reproduction_psnr"] == pytest.approx(good, abs=0.01) and kept["metallic"] == asset.meta["metallic"]
    assert len(readings) == 1 or readings[0]["reproduction_psnr"] < POOR_REPRODUCTION_DB  # others only after a poor one
    assert asset.meta["warnings"] == warnings_for(good, "unknown", readings)
    cam = camera_to_world(asset.input_camera, asset.model_matrix)
    light = Environment.constant([1.0, 1.0, 1.0])
    mask = segment(sample_image.srgb)
    img = sample_image.linear[..., :3]
    wrong = replace(asset, gaussians=replace(asset.gaussians, albedo=(1.0 - asset.gaussians.albedo).astype(np.float32)))
    assert reproduction_psnr(wrong, cam, light, img, mask) < reproduction_psnr(asset, cam, light, img, mask) - 3.0
    assert warnings_for(POOR_REPRODUCTION_DB + 1.0, "world") == []
    (message,) = warnings_for(POOR_REPRODUCTION_DB - 5.0, "world")
    assert "reproduces the photo poorly" in message and "scene's world" in message
    assert "could not be checked" in warnings_for(float("nan"), "unknown")[0]
