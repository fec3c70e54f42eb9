"""reconstruct.bake_maps / bake_normals and the reconstructed-mesh writers: exact synthetic G-buffers of known meshes
are baked onto those meshes and the maps are read back at surface points; the GLB and OBJ go through Blender's own
importers."""

import struct

import numpy as np
import pytest
import trimesh
from mesh_fixtures import icosphere
from relight.core import axes
from relight.core.camera import Camera
from relight.core.surface import vertex_normals
from relight.export.gltf import read_glb_json
from relight.export.reconstructed import glb_bytes, write_obj
from relight.reconstruct.bake_maps import (
    MIN_TANGENT_Z,
    bake_views,
    blend_views,
    mesh_depth,
    texel_surface,
)
from relight.reconstruct.bake_normals import tangent_to_world, vertex_tangents
from relight.reconstruct.synthetic import render_gbuffers
from scipy.spatial import cKDTree

VIEW = 320  # pixels, Zero123++'s view size
RADIUS, FOV = 4.0, 30.0  # the rig's radius and field of view (a unit cube fills about 0.8 of the frame)
PIXEL = RADIUS * 2 * np.tan(np.radians(FOV / 2)) / VIEW  # world size of a pixel at the rig's centre (0.0067)
RED, BLUE = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.2, 0.7])


def rig(views=range(6)) -> list[Camera]:
    """Zero123++-like cameras: azimuths 30..330 step 60 (from +X towards +Y), elevations 20 / -10 alternating."""
    cams = []
    for k in views:
        a, e = np.radians(30 + 60 * k), np.radians(20 if k % 2 == 0 else -10)
        eye = RADIUS * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
        cams.append(Camera.look_at(eye, (0, 0, 0), FOV, VIEW, VIEW))
    return cams


def edge_field(p):
    """Hard-edged two-colour albedo: red where x + 0.5 z > 0.1, blue elsewhere. [P, 3] -> [P, 3]."""
    return np.where((p[:, 0] + 0.5 * p[:, 2] > 0.1)[:, None], RED, BLUE)


def edge_distance(p):
    """[P] world distance (in the plane) of each point from edge_field's colour edge (an upper bound on the surface)."""
    return np.abs(p[:, 0] + 0.5 * p[:, 2] - 0.1) / np.hypot(1.0, 0.5)


def rough_field(p):
    return np.clip(0.5 + 0.4 * p[:, 2], 0, 1)  # linear in z: bilinear resampling reproduces it


def metal_field(p):
    return np.clip(0.5 + 0.4 * p[:, 1], 0, 1)


def unit_box(subdivide: int = 2):
    m = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    v, f = m.vertices, m.faces
    for _ in range(subdivide):
        v, f = trimesh.remesh.subdivide(v, f)
    return v.astype(np.float32), f.astype(np.int64)


def surface_samples(rm, n: int, seed: int = 0):
    """n area-uniform points on the baked mesh -> (points [n, 3], uvs [n, 2], face ids [n], barycentrics [n, 3])."""
    rng = np.random.default_rng(seed)
    tri = rm.vertices[rm.faces.astype(np.int64)].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    fid = rng.choice(len(area), n, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(n)), rng.random(n)
    bary = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], 1)
    pts = np.einsum("pk,pkc->pc", bary, tri[fid])
    uvs = np.einsum("pk,pkc->pc", bary, rm.uvs[rm.faces[fid].astype(np.int64)].astype(np.float64))
    return pts, uvs, fid, bary


def sample_map(img, uv):
    """Bilinear lookup of a [S, S, C] or [S, S] map at glTF uvs [P, 2] (texel centres at (i + 0.5) / S)."""
    S = img.shape[0]
    x, y = uv[:, 0] * S - 0.5, uv[:, 1] * S - 0.5
    x0, y0 = np.clip(np.floor(x).astype(int), 0, S - 2), np.clip(np.floor(y).astype(int), 0, S - 2)
    fx, fy = np.clip(x - x0, 0, 1), np.clip(y - y0, 0, 1)
    if img.ndim == 2:
        img = img[..., None]
    fx, fy = fx[:, None], fy[:, None]
    out = (img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x0 + 1] * fx * (1 - fy)
           + img[y0 + 1, x0] * (1 - fx) * fy + img[y0 + 1, x0 + 1] * fx * fy)
    return out[:, 0] if out.shape[1] == 1 else out


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


# ------------------------------------------------------------------------------------------------ the true box


@pytest.fixture(scope="module")
def box_bake():
    v, f = unit_box()
    views = render_gbuffers(v, f, rig(), albedo=edge_field, roughness=rough_field, metallic=metal_field)
    return v, f, bake_views(views, v, f, size=512)


def test_baked_maps_match_the_true_fields_at_surface_points(box_bake):
    _, _, rm = box_bake
    pts, uvs, _, _ = surface_samples(rm, 20000)
    albedo = sample_map(rm.albedo, uvs)
    # Away from the colour edge by the footprint of the two resamplings (a view pixel each side of the bilinear tap,
    # an atlas texel each side of the lookup) the baked colour is one of the two constants.
    margin = 2 * PIXEL + 2 * rm.meta["texel_size"]
    far = edge_distance(pts) > margin
    err = np.abs(albedo - edge_field(pts)).max(1)
    assert (err[far] < 0.01).mean() >= 0.98, (err[far] < 0.01).mean()
    # roughness / metallic are linear in position (slope 0.4 per unit): bilinear resampling keeps them up to
    # perspective, except where taps fall off the mask at a silhouette and the blend leans on the nearer taps: an
    # error up to slope x one pixel footprint. The bottom is seen only by the -10 degree views, at <= 10 degrees
    # (cos 0.17: a footprint of PIXEL / 0.17), the rest head-on enough for 0.01.
    bottom = pts[:, 2] < -0.5 + 1e-6
    for name, field in (("roughness", rough_field), ("metallic", metal_field)):
        e = np.abs(sample_map(getattr(rm, name), uvs) - field(pts))
        assert (e[~bottom] < 0.01).mean() >= 0.995, (name, (e[~bottom] < 0.01).mean())
        assert e[bottom].max() < 2 * 0.4 * PIXEL / np.sin(np.radians(10)), (name, e[bottom].max())
    assert psnr(albedo, edge_field(pts)) > 25.0  # all points, edges included
    # the bottom's far side is seen at under MIN_COS (3 degrees) by the -10 degree views, 0.19 below it: filled
    assert 0.98 < rm.meta["seen_fraction"] < 1.0


def test_the_result_follows_the_data_contract(box_bake):
    _, _, rm = box_bake
    S = rm.albedo.shape[0]
    assert rm.albedo.shape == (S, S, 3) and rm.roughness.shape == rm.metallic.shape == (S, S)
    assert rm.normal_map.shape == (S, S, 3) and rm.faces.dtype == np.uint32
    assert rm.tangents.shape == (len(rm.vertices), 4) and set(np.unique(rm.tangents[:, 3])) <= {-1.0, 1.0}
    np.testing.assert_allclose(np.linalg.norm(rm.tangents[:, :3], axis=1), 1, atol=1e-5)
    np.testing.assert_allclose((rm.tangents[:, :3] * rm.normals).sum(1), 0, atol=1e-5)
    assert rm.uvs.min() >= 0 and rm.uvs.max() <= 1
    # flat faces, flat (face-normal) G-buffers against smooth vertex normals: tilted near the edges, never flipped
    assert (rm.normal_map[..., 2] > 0).all()
    for key in ("unwrap_s", "texel_raster_s", "project_s", "fill_s", "bake_s"):
        assert rm.meta["timings"][key] >= 0


def test_the_depth_test_uses_the_meshs_exact_z_buffer():
    v, f = icosphere(3)
    v = v * 0.6
    views = render_gbuffers(v, f, rig(views=(0, 1)))
    for i, cam in enumerate(views.cameras):
        depth = mesh_depth(cam, v, f)
        assert ((depth < np.inf) == views.mask[i]).all()  # the same pixels as the rasterizer's coverage
        # ray-plane z against the rasterizer's perspective-correct interpolation (float32: ~1e-6 relative at z ~ 4)
        np.testing.assert_allclose(depth[views.mask[i]], views.depth[i][views.mask[i]], atol=1e-4)


def test_texels_no_view_sees_are_filled_from_the_surface_around_them():
    v, f = unit_box()
    views = render_gbuffers(v, f, rig(views=(0, 2, 4)), albedo=edge_field, roughness=rough_field,
                            metallic=metal_field)  # only the elevation-20 views: the bottom face is never seen
    rm = bake_views(views, v, f, size=256)
    assert 0.75 < rm.meta["seen_fraction"] < 0.9  # one face of six unseen (and grazing texels dropped)
    pts, uvs, _, _ = surface_samples(rm, 5000)
    bottom = pts[:, 2] < -0.5 + 1e-6
    top = ~bottom
    for name in ("albedo", "roughness", "metallic"):
        m = getattr(rm, name)
        assert np.isfinite(m).all()
        got = sample_map(m, uvs).reshape(len(pts), -1)
        lo, hi = got[top].min(0), got[top].max(0)
        assert (got[bottom] >= lo - 1e-6).all() and (got[bottom] <= hi + 1e-6).all(), name
    # the bottom takes the colours of the side faces' lowest rows around it: red and blue on the sides of the edge
    alb = sample_map(rm.albedo, uvs)[bottom]
    assert (np.abs(alb - RED).max(1) < 0.05).mean() > 0.2 and (np.abs(alb - BLUE).max(1) < 0.05).mean() > 0.2
    nm = sample_map(rm.normal_map, uvs)[bottom]
    np.testing.assert_allclose(nm, np.tile([0, 0, 1.0], (len(nm), 1)), atol=1e-6)  # unseen: flat


def test_the_fill_stays_on_its_side_of_a_thin_wall():
    # a 4 cm plate, red in front (y > 0) and blue behind, with a block 3 cm behind it that hides the middle of the
    # plate's back from every view: the nearest seen texels in 3D are the plate's red front, 4 cm away through the
    # plate; on the surface they are the blue back around the block
    plate = trimesh.creation.box(extents=(1.0, 0.04, 1.0))
    block = trimesh.creation.box(extents=(0.4, 0.1, 0.4))
    block.apply_translation((0, -0.10, 0))
    scene = trimesh.util.concatenate([trimesh.Trimesh(*trimesh.remesh.subdivide(m.vertices, m.faces))
                                      for m in (plate, block)])
    v, f = scene.vertices.astype(np.float32), scene.faces.astype(np.int64)
    eyes = [RADIUS * np.array([np.sin(a), np.cos(a), 0.25]) for a in np.radians([45, -45, 135, -135])]
    cams = [Camera.look_at(e, (0, 0, 0), FOV, VIEW, VIEW) for e in eyes]
    views = render_gbuffers(v, f, cams, albedo=lambda p: np.where((p[:, 1] > 0)[:, None], RED, BLUE))
    rm = bake_views(views, v, f, size=256)
    pts, uvs, _, _ = surface_samples(rm, 40000)
    hidden = (np.abs(pts[:, 1] + 0.02) < 1e-6) & (np.abs(pts[:, 0]) < 0.1) & (np.abs(pts[:, 2]) < 0.1)
    assert hidden.sum() > 100
    # the patch really is unseen: its texels get no weight from any view (so the colour there is the fill's)
    surf = texel_surface(rm.vertices, rm.normals, rm.tangents, rm.uvs, rm.faces.astype(np.int64), 256)
    _, wsum = blend_views(views, surf, v, f)
    patch = (np.abs(surf.points[:, 1] + 0.02) < 1e-6) & (np.abs(surf.points[:, 0]) < 0.1) \
        & (np.abs(surf.points[:, 2]) < 0.1)
    assert patch.sum() > 100 and (wsum[patch] == 0).all()
    np.testing.assert_allclose(sample_map(rm.albedo, uvs)[hidden], np.tile(BLUE, (hidden.sum(), 1)), atol=0.01)


def test_a_texel_hidden_in_a_view_takes_nothing_from_it():
    back = trimesh.creation.box(extents=(1.0, 0.3, 1.0))
    back.apply_translation((0, 0.4, 0))
    front = trimesh.creation.box(extents=(0.3, 0.3, 0.3))
    front.apply_translation((0, -0.5, 0))
    scene = trimesh.util.concatenate([trimesh.Trimesh(*trimesh.remesh.subdivide(m.vertices, m.faces))
                                      for m in (back, front)])
    v, f = scene.vertices.astype(np.float32), scene.faces.astype(np.int64)
    around = np.radians([-45, 45, 135, -135])
    eyes = [(0, -RADIUS, 0)] + [RADIUS * np.array([np.sin(a), -np.cos(a), 0.3]) for a in around]
    cams = [Camera.look_at(e, (0, 0, 0), FOV, VIEW, VIEW) for e in eyes]
    grey = lambda p: np.full((len(p), 3), 0.5)
    views = render_gbuffers(v, f, cams, albedo=grey)
    cam0 = cams[0]
    painted = views.mask[0] & (views.depth[0] < RADIUS - 0.3)  # view 0's pixels of the front box ...
    views.albedo[0][painted] = (0.0, 1.0, 0.0)  # ... painted green in view 0 only
    rm = bake_views(views, v, f, size=256)
    pts, uvs, _, _ = surface_samples(rm, 40000)
    alb = sample_map(rm.albedo, uvs)
    # points of the back box's front face inside the front box's shadow in view 0 (away from its outline)
    hidden = (np.abs(pts[:, 1] - 0.25) < 1e-6) & (np.abs(pts[:, 0]) < 0.1) & (np.abs(pts[:, 2]) < 0.1)
    cam = pts[hidden] @ cam0.viewmat[:3, :3].T + cam0.viewmat[:3, 3]
    px = (cam[:, :2] / cam[:, 2:] * cam0.K[0, 0] + cam0.K[0, 2]).astype(int)
    assert hidden.sum() > 50 and painted[px[:, 1], px[:, 0]].all()  # they do project onto green pixels
    np.testing.assert_allclose(alb[hidden], 0.5, atol=0.01)  # ... and took nothing from them
    facing = (np.abs(pts[:, 1] + 0.65) < 1e-6) & (np.abs(pts[:, 0]) < 0.1) & (np.abs(pts[:, 2]) < 0.1)
    assert facing.sum() > 5 and (alb[facing, 1] > 0.6).all()  # the front box's face, seen head-on, took the green


def test_missing_domains_get_defaults_and_progress_is_reported():
    v, f = unit_box(subdivide=0)
    views = render_gbuffers(v, f, rig())
    views.roughness = views.metallic = views.normal = None  # e.g. a G-buffer set of albedo only
    seen = []
    rm = bake_views(views, v, f, size=64, progress=lambda stage, frac, msg="": seen.append((stage, frac)))
    np.testing.assert_allclose(rm.albedo, 0.6, atol=1e-5)  # render_gbuffers' default albedo, baked back
    assert (rm.roughness == 0.5).all() and (rm.metallic == 0.0).all()
    assert (rm.normal_map == [0, 0, 1]).all()
    fracs = [fr for st, fr in seen]
    assert {st for st, _ in seen} == {"bake"} and fracs == sorted(fracs) and fracs[-1] == 1.0


def test_a_mesh_over_the_face_budget_is_decimated_before_unwrapping():
    v, f = icosphere(3)  # 1280 faces
    v = v * 0.5
    views = render_gbuffers(v, f, rig(), albedo=edge_field)
    rm = bake_views(views, v, f, size=256, max_faces=400)
    assert len(rm.faces) <= 400 and rm.meta["faces_in"] == 1280 and rm.meta["faces"] == len(rm.faces)
    pts, uvs, _, _ = surface_samples(rm, 5000)
    far = edge_distance(pts) > 2 * PIXEL + 2 * rm.meta["texel_size"]
    # the coarser mesh lies inside the sphere by up to its sagitta; its z-buffer still agrees with itself, and the
    # colours land where the views put them (the decimated surface's points project onto the true surface's pixels)
    assert (np.abs(sample_map(rm.albedo, uvs) - edge_field(pts)).max(1)[far] < 0.01).mean() > 0.95


def test_inputs_that_do_not_fit_get_clear_errors():
    v, f = unit_box(subdivide=0)
    views = render_gbuffers(v, f, rig(views=(0, 1)))
    with pytest.raises(ValueError, match="no faces"):
        bake_views(views, v, f[:0], size=32)
    views.cameras[1] = views.cameras[1].resized(160, 160)
    with pytest.raises(ValueError, match="camera 1 is 160x160 but the views are 320x320"):
        bake_views(views, v, f, size=32)


# ------------------------------------------------------------------------------------------------ normal maps


def test_tangents_follow_u_and_the_bitangent_points_up_the_image():
    # a unit quad in the XY plane facing +Z; glTF v grows down the image, so image-up is world +Y
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    n = np.tile([0, 0, 1.0], (4, 1))
    uv = np.stack([v[:, 0], 1 - v[:, 1]], 1)
    t = vertex_tangents(v, n, uv, f)
    np.testing.assert_allclose(t, np.tile([1, 0, 0, 1.0], (4, 1)), atol=1e-6)
    mirrored = vertex_tangents(v, n, np.stack([1 - v[:, 0], 1 - v[:, 1]], 1), f)  # u runs along -X
    np.testing.assert_allclose(mirrored, np.tile([-1, 0, 0, -1.0], (4, 1)), atol=1e-6)  # B still +Y


def test_map_normals_stay_in_front_of_the_surface():
    v, f = icosphere(2)
    views = render_gbuffers(v * 0.5, f, rig(), smooth_normals=-vertex_normals(v, f))  # G-buffer normals inside out
    rm = bake_views(views, v * 0.5, f, size=64)
    assert (rm.normal_map[..., 2] >= MIN_TANGENT_Z / np.hypot(1, MIN_TANGENT_Z) - 1e-6).all()
    np.testing.assert_allclose(np.linalg.norm(rm.normal_map, axis=-1), 1, atol=1e-5)


def sphere_normals_bake(perturb: float, seed: int = 1):
    v, f = icosphere(3)
    v = v * 0.5
    vn = vertex_normals(v, f)
    if perturb:
        rng = np.random.default_rng(seed)
        vn = vn + perturb * rng.normal(size=vn.shape)
        vn = (vn / np.linalg.norm(vn, axis=1, keepdims=True)).astype(np.float32)
    views = render_gbuffers(v, f, rig(), smooth_normals=vn)
    return v, vn, bake_views(views, v, f, size=512)


def interpolated(rm, fid, bary, values):
    return np.einsum("pk,pkc->pc", bary, values[rm.faces[fid].astype(np.int64)].astype(np.float64))


def angle_deg(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.degrees(np.arccos(np.clip((a * b).sum(1), -1, 1)))


def test_baking_the_meshs_own_smooth_normals_gives_a_flat_map():
    _, _, rm = sphere_normals_bake(0.0)
    _, uvs, _, _ = surface_samples(rm, 20000)
    nm = sample_map(rm.normal_map, uvs)
    # The G-buffer holds exactly the interpolated vertex normals the frame is built from; what remains is resampling:
    # half a view pixel and half a texel of displacement on a sphere of radius 0.5 turn the normal by under 1 degree.
    tilt = angle_deg(nm, np.tile([0, 0, 1.0], (len(nm), 1)))
    assert np.percentile(tilt, 99) < 1.0 and tilt.max() < 3.0, (np.percentile(tilt, 99), tilt.max())


def test_a_baked_normal_field_decodes_back_to_the_world_normals():
    v, vn, rm = sphere_normals_bake(0.3)
    _, uvs, fid, bary = surface_samples(rm, 20000)
    # the true (perturbed) normal at each point: the original mesh's vertex normals, by position
    orig = cKDTree(v).query(rm.vertices)[1]
    truth = interpolated(rm, fid, bary, vn[orig])
    decoded = tangent_to_world(sample_map(rm.normal_map, uvs), interpolated(rm, fid, bary, rm.normals),
                               interpolated(rm, fid, bary, rm.tangents))
    err = angle_deg(decoded, truth)
    flat = angle_deg(interpolated(rm, fid, bary, rm.normals), truth)  # what a flat map would get wrong
    assert np.median(flat) > 8.0  # the field really is perturbed
    assert np.median(err) < 1.0 and np.percentile(err, 95) < 3.0, (np.median(err), np.percentile(err, 95))


# ------------------------------------------------------------------------------------------------ GLB and OBJ


def source_image(socket):
    """The image texture node feeding `socket`, through Separate Color / Normal Map nodes."""
    node = socket.links[0].from_node
    while node.type != "TEX_IMAGE":
        node = next(s for s in node.inputs if s.is_linked).links[0].from_node
    return node


def principled(obj):
    return next(n for n in obj.active_material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")


def test_glb_and_obj_import_into_blender_with_every_map(box_bake, tmp_path):
    import bpy

    _, _, rm = box_bake
    arrays = {"vertices": rm.vertices, "normals": rm.normals, "uvs": rm.uvs, "faces": rm.faces, "albedo": rm.albedo,
              "roughness": rm.roughness, "metallic": rm.metallic, "normal_map": rm.normal_map}
    data = glb_bytes(tangents=rm.tangents, name="box", **arrays)
    doc = read_glb_json(data)
    prim = doc["meshes"][0]["primitives"][0]
    assert "TANGENT" in prim["attributes"] and "normalTexture" in doc["materials"][0]
    assert "occlusionTexture" not in doc["materials"][0]  # no AO baked: R of the ORM is 1, not advertised
    glb = tmp_path / "box.glb"
    glb.write_bytes(data)
    obj_path = write_obj(tmp_path / "obj", name="box", **arrays)
    assert {p.name for p in obj_path.parent.iterdir()} == {"box.obj", "box.mtl", "box_albedo.png",
                                                           "box_roughness.png", "box_metallic.png", "box_normal.png"}
    for kind in ("glb", "obj"):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        if kind == "glb":
            bpy.ops.import_scene.gltf(filepath=str(glb))
        else:
            bpy.ops.wm.obj_import(filepath=str(obj_path))
        obj = next(o for o in bpy.data.objects if o.type == "MESH")
        np.testing.assert_allclose(np.array(obj.dimensions), 1.0, rtol=1e-4)  # axes round-trip: the unit cube
        assert len(obj.data.polygons) == len(rm.faces)
        bsdf = principled(obj)
        images = {name: source_image(bsdf.inputs[name]).image for name in ("Base Color", "Roughness", "Metallic")}
        assert bsdf.inputs["Normal"].links[0].from_node.type == "NORMAL_MAP", kind
        images["Normal"] = source_image(bsdf.inputs["Normal"]).image
        assert images["Base Color"].colorspace_settings.name == "sRGB"
        if kind == "glb":
            for name in ("Roughness", "Metallic", "Normal"):
                assert images[name].colorspace_settings.name == "Non-Color", name
        else:
            # Blender's OBJ importer gives every map the default (sRGB) space and MTL cannot say otherwise (read in
            # source/blender/io/wavefront_obj/importer/obj_import_mtl.cc): the data must still be the right numbers.
            for name in ("Roughness", "Metallic", "Normal"):
                images[name].colorspace_settings.name = "Non-Color"
        for name, want in (("Roughness", rm.roughness), ("Metallic", rm.metallic)):
            px = np.asarray(images[name].pixels[:], np.float32).reshape(*want.shape, -1)[::-1]  # row 0 at the top
            channel = {"glb": {"Roughness": 1, "Metallic": 2}[name], "obj": 0}[kind]
            np.testing.assert_allclose(px[..., channel], want, atol=0.5 / 255 + 1e-6)


def glb_accessor(data: bytes, index: int) -> np.ndarray:
    """Float accessor `index` of a GLB (tightly packed, as write_glb writes them) -> [count, components]."""
    doc = read_glb_json(data)
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    start = 20 + struct.unpack_from("<I", data, 12)[0] + 8 + view.get("byteOffset", 0)
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[acc["type"]]
    return np.frombuffer(data, np.float32, acc["count"] * width, start).reshape(-1, width)


def test_the_glb_carries_the_tangents_in_gltf_axes(box_bake):
    _, _, rm = box_bake
    data = glb_bytes(rm.vertices, rm.normals, rm.tangents, rm.uvs, rm.faces, rm.albedo, rm.roughness, rm.metallic,
                     rm.normal_map)
    attrs = read_glb_json(data)["meshes"][0]["primitives"][0]["attributes"]
    tan = glb_accessor(data, attrs["TANGENT"])
    np.testing.assert_array_equal(tan[:, :3], axes.blender_to_gltf_points(rm.tangents[:, :3]))
    np.testing.assert_array_equal(tan[:, 3], rm.tangents[:, 3])  # a rotation keeps the handedness
    np.testing.assert_array_equal(glb_accessor(data, attrs["NORMAL"]), axes.blender_to_gltf_points(rm.normals))


@pytest.mark.parametrize("kind", ["glb", "obj"])
def test_blender_builds_the_same_tangent_frame_from_the_uvs(box_bake, tmp_path, kind):
    """Blender ignores imported tangents and computes MikkTSpace from the UVs: the map is only right if the frame it
    was baked against agrees (tangent direction and bitangent sign)."""
    import bpy

    _, _, rm = box_bake
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if kind == "glb":
        glb = tmp_path / "box.glb"
        glb.write_bytes(glb_bytes(rm.vertices, rm.normals, rm.tangents, rm.uvs, rm.faces, rm.albedo, rm.roughness,
                                  rm.metallic, rm.normal_map))
        bpy.ops.import_scene.gltf(filepath=str(glb))
    else:
        path = write_obj(tmp_path / "obj", rm.vertices, rm.normals, rm.uvs, rm.faces, rm.albedo, rm.roughness,
                         rm.metallic, rm.normal_map)
        bpy.ops.wm.obj_import(filepath=str(path))
    obj = next(o for o in bpy.data.objects if o.type == "MESH")
    mesh = obj.data
    mesh.calc_tangents()
    uv_layer = mesh.uv_layers.active.data
    n = len(mesh.loops)
    world = np.array(obj.matrix_world)  # the OBJ importer puts its axis conversion on the object, not the vertices
    pos = np.array([mesh.vertices[lp.vertex_index].co for lp in mesh.loops]) @ world[:3, :3].T + world[:3, 3]
    uv = np.array([uv_layer[i].uv for i in range(n)])
    tan = np.array([lp.tangent for lp in mesh.loops]) @ world[:3, :3].T  # a rotation: tangents stay unit
    sign = np.array([lp.bitangent_sign for lp in mesh.loops])
    key = np.concatenate([rm.vertices, np.stack([rm.uvs[:, 0], 1 - rm.uvs[:, 1]], 1)], 1)  # Blender's v is flipped
    d, idx = cKDTree(key).query(np.concatenate([pos, uv], 1))
    assert d.max() < 1e-4
    assert (sign == rm.tangents[idx, 3]).mean() > 0.99
    assert np.median((tan * rm.tangents[idx, :3]).sum(1)) > 0.99
