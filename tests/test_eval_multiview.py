"""`relight eval multiview`: the Cycles ground truth's passes against the project's rasterizer on the same mesh and
cameras, the geometry metrics against analytic answers, the degradations, the albedo lookup, and the --quick run."""

import importlib.util
import json

import numpy as np
import pytest
from relight.evaluate import multiview_metrics as mm

SMALL = 128  # px: the pass tests' own small views (cached apart from the eval's 320^2 ones)


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


@pytest.fixture(scope="module")
def sphere_truth():
    """Cycles passes of the textured sphere at 2 input views and 1 held-out view (128^2), and the project
    rasterizer's exact G-buffers of the same mesh from the same cameras, with Blender's smooth normals and flat."""
    pytest.importorskip("bpy")
    from relight.evaluate import multiview_scenes as ms
    from relight.evaluate.cycles_scenes import shape_mesh
    from relight.reconstruct.synthetic import render_gbuffers

    cams_in, cams_out = ms.input_cameras(SMALL)[:2], ms.held_out_cameras(SMALL)[:1]
    gt = ms.ground_truth("sphere", cams_in, cams_out)
    _, _, n = shape_mesh("sphere")  # Blender's vertex normals; normalisation is a scale + shift: unchanged
    t = gt.texture
    fields = (ms.albedo_field(t), ms.roughness_field(t), ms.metallic_field(t))
    smooth = render_gbuffers(gt.vertices, gt.faces, cams_in + cams_out, *fields, smooth_normals=n)
    flat = render_gbuffers(gt.vertices, gt.faces, cams_in + cams_out, *fields)
    cyc = {k: np.concatenate([getattr(gt.inputs, k), getattr(gt.held_out, k)])
           for k in ("mask", "normal", "depth", "albedo", "roughness", "metallic")}  # fmt: skip
    return gt, cyc, smooth, flat, n


def test_cycles_masks_match_the_rasterizer(sphere_truth):
    _, cyc, smooth, _, _ = sphere_truth
    for i in range(len(cyc["mask"])):
        a, b = cyc["mask"][i], smooth.mask[i]
        assert a.sum() > 0.1 * a.size * 0.25  # the object is in view
        assert (a & b).sum() / (a | b).sum() >= 0.98


def test_cycles_world_normals_match_the_rasterizer(sphere_truth):
    gt, cyc, smooth, flat, n = sphere_truth
    # against the same interpolated vertex normals: the same surface normal up to float noise
    # against flat face normals: bounded by the faceting, the mean over faces of the largest angle between a face's
    # normal and its vertex normals (a smooth normal cannot stray further from its face's)
    tri = gt.vertices[gt.faces]  # [F, 3, 3]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    fn /= np.linalg.norm(fn, axis=1, keepdims=True)
    facet = float(np.mean(np.max(_angles(fn[:, None, :], n[gt.faces].astype(np.float64)), 1)))
    for i in range(len(cyc["mask"])):
        both = cyc["mask"][i] & smooth.mask[i]
        assert np.abs(np.linalg.norm(cyc["normal"][i][both], axis=-1) - 1).max() < 1e-4  # unit
        assert _angles(cyc["normal"][i][both], smooth.normal[i][both]).mean() < 0.1
        assert _angles(cyc["normal"][i][both], flat.normal[i][both]).mean() <= facet, facet


def test_cycles_depth_is_camera_space_z(sphere_truth):
    """views.py's depth is the distance along the optical axis: Cycles' Z pass matches the rasterizer's z to a
    small fraction of a hull voxel (1/128 of the unit cube), and the ray-length reading is measurably worse."""
    gt, cyc, smooth, _, _ = sphere_truth
    cams = gt.inputs.cameras + gt.held_out.cameras
    for i, cam in enumerate(cams):
        both = cyc["mask"][i] & smooth.mask[i]
        err = np.abs(cyc["depth"][i] - smooth.depth[i])[both]
        assert np.median(err) < 1e-4 and np.percentile(err, 99) < 0.1 / 128
        assert (cyc["depth"][i][~cyc["mask"][i]] == 0).all()
        _, d = cam.rays()  # [H, W, 3] unit world rays
        cos = d @ cam.viewmat[2, :3]  # cos of the angle to the optical axis
        as_ray_length = (smooth.depth[i] / cos)[both]
        assert np.abs(cyc["depth"][i][both] - as_ray_length).max() > 20 * np.percentile(err, 99)


def test_cycles_material_aovs_read_back_the_material(sphere_truth):
    from scipy.ndimage import binary_erosion

    _, cyc, smooth, _, _ = sphere_truth
    for i in range(len(cyc["mask"])):
        both = cyc["mask"][i] & smooth.mask[i]
        # albedo: exactly the base colour on the stripes' flat parts (every pixel of a 3x3 neighbourhood alike)
        a = smooth.albedo[i]
        same = np.ones_like(both)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                same &= (np.abs(np.roll(a, (dy, dx), (0, 1)) - a).max(-1) == 0)
        flat = binary_erosion(both, iterations=1) & same
        assert flat.sum() > 0.8 * both.sum() * 0.5
        assert np.abs(cyc["albedo"][i][flat] - a[flat]).max() < 1e-3
        assert (np.abs(cyc["albedo"][i][both] - a[both]).max(-1) > 1e-3).mean() < 0.01  # stripe edges only
        assert np.abs(cyc["roughness"][i][both] - smooth.roughness[i][both]).max() < 1e-3
        assert np.array_equal(cyc["metallic"][i][both], smooth.metallic[i][both])


def test_the_metal_region_reads_back_as_metal():
    """bevel_box's top (z > 0.15) is metal: the metallic AOV is 1 there, 0 elsewhere, against the rasterizer."""
    pytest.importorskip("bpy")
    from relight.evaluate import multiview_scenes as ms
    from relight.reconstruct.synthetic import render_gbuffers

    cams = ms.input_cameras(SMALL)[:1]
    gt = ms.ground_truth("bevel_box", cams, cams)
    t = gt.texture
    ref = render_gbuffers(gt.vertices, gt.faces, cams, ms.albedo_field(t), ms.roughness_field(t), ms.metallic_field(t))
    both = gt.inputs.mask[0] & ref.mask[0]
    metal = ref.metallic[0][both]
    assert 0.05 < metal.mean() < 0.95  # both regions in view
    assert (gt.inputs.metallic[0][both] == metal).mean() > 0.995
    assert gt.relit.shape == (1, SMALL, SMALL, 4) and gt.relit[0, ..., 3].max() > 0.99


# ------------------------------------------------------------------------------------------- geometry metrics


def _sphere(r: float):
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=5, radius=r)
    return np.asarray(s.vertices), np.asarray(s.faces)


def test_chamfer_of_a_mesh_against_itself_is_zero():
    v, f = _sphere(0.5)
    r = mm.chamfer_fscore(v, f, v, f)
    assert r["chamfer"] < 1e-4 and r["fscore"] == 1.0


@pytest.mark.parametrize("d", [0.004, 0.02])
def test_chamfer_against_a_larger_sphere_is_the_radius_gap(d):
    """Concentric spheres r and r + d (the unit-cube frame of the first: r = 0.5) are d apart everywhere: Chamfer d
    (to the icosphere's faceting, < 0.1 % of r), F-score 1 below the threshold and 0 above it."""
    v, f = _sphere(0.5)
    v2 = v * (0.5 + d) / 0.5
    r = mm.chamfer_fscore(v, f, v2, f)
    assert abs(r["chamfer"] - d) < 0.05 * d
    assert r["fscore"] == (1.0 if d < mm.FSCORE_TAU else 0.0)


def test_the_scoring_frame_is_the_true_mesh_unit_cube():
    """Both meshes scaled by the transform that puts the TRUE mesh in the unit cube: a 2x larger world doubles
    nothing."""
    v, f = _sphere(0.5)
    r1 = mm.chamfer_fscore(v, f, v * 1.01, f, n=20_000)
    r2 = mm.chamfer_fscore(2 * v + 3, f, 2 * v * 1.01 + 3, f, n=20_000)
    assert abs(r1["chamfer"] - r2["chamfer"]) < 1e-4


# ------------------------------------------------------------------------------------------- albedo and degradations


def _quad_mesh():
    """A unit square facing -Y at y = 0 with glTF uvs ((0, 0) top-left: u along +X, v down -Z) and a texture red
    on its left half (u < 0.5) and blue on its right."""
    from relight.reconstruct.views import ReconstructedMesh

    v = np.array([[-0.5, 0, 0.5], [0.5, 0, 0.5], [0.5, 0, -0.5], [-0.5, 0, -0.5]], np.float32)
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    f = np.array([[0, 2, 1], [0, 3, 2]], np.uint32)
    tex = np.zeros((64, 64, 3), np.float32)
    tex[:, :32] = (1, 0, 0)
    tex[:, 32:] = (0, 0, 1)
    tex[:8, :] = (0, 1, 0)  # the top rows green: v = 0 is the top
    n = np.tile([[0, -1, 0]], (4, 1)).astype(np.float32)
    return ReconstructedMesh(v, n, np.zeros((4, 4), np.float32), uv, f, tex, np.ones((64, 64), np.float32),
                             np.zeros((64, 64), np.float32), np.zeros((64, 64, 3), np.float32))  # fmt: skip


def test_render_albedo_follows_the_gltf_uv_convention():
    from relight.core.camera import Camera

    cam = Camera.look_at((0, -3, 0), (0, 0, 0), 30.0, 96, 96)
    col, cov = mm.render_albedo(_quad_mesh(), cam)
    ys, xs = np.nonzero(cov)
    cy, cx = int(ys.mean()), int(xs.mean())
    assert np.allclose(col[cy, cx - 10], (1, 0, 0)) and np.allclose(col[cy, cx + 10], (0, 0, 1))  # left red
    assert np.allclose(col[ys.min() + 1, cx - 10], (0, 1, 0))  # top green
    assert (col[~cov] == 0).all()


def _synthetic_views():
    import trimesh
    from relight.evaluate.multiview_scenes import TEXTURES, albedo_field, input_cameras
    from relight.reconstruct.synthetic import render_gbuffers

    s = trimesh.creation.icosphere(subdivisions=4, radius=0.45)
    return render_gbuffers(np.asarray(s.vertices), np.asarray(s.faces), input_cameras(96),
                           albedo_field(TEXTURES["sphere"]), smooth_normals=np.asarray(s.vertex_normals))  # fmt: skip


def test_degradations_are_seeded_and_sized_as_stated():
    views = _synthetic_views()
    a = mm.degrade(views, mm.DEGRADATIONS, seed=3)
    b = mm.degrade(views, mm.DEGRADATIONS, seed=3)
    c = mm.degrade(views, mm.DEGRADATIONS, seed=4)
    assert np.array_equal(a.normal, b.normal) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.normal, c.normal)
    info = a.meta["degraded"]
    assert abs(info["normal_tilt_deg"] - mm.NORMAL_TILT_DEG) < 0.5
    assert all(abs(s - 1) <= mm.DEPTH_SCALE for s in info["depth_scales"])
    # one kind at a time leaves the other domains untouched
    n = mm.degrade(views, ("normal",), seed=3)
    assert np.array_equal(n.depth, views.depth) and np.array_equal(n.mask, views.mask)
    tilt = _angles(n.normal[views.mask], views.normal[views.mask])
    assert 3.0 < tilt.mean() < 7.0 and tilt.max() < 30.0
    d = mm.degrade(views, ("depth",), seed=3)
    ratio = d.depth[views.mask] / views.depth[views.mask]
    assert np.allclose(ratio.reshape(-1), np.repeat(info["depth_scales"], views.mask.sum((1, 2))), atol=1e-5)
    m = mm.degrade(views, ("mask",), seed=3)
    for i, op in enumerate(m.meta["degraded"]["mask_ops"]):
        grew = m.mask[i].sum() > views.mask[i].sum()
        assert grew == (op == "dilate")
        assert (m.depth[i][m.mask[i]] > 0).all() and (m.depth[i][~m.mask[i]] == 0).all()
    al = mm.degrade(views, ("albedo",), seed=3)
    assert np.array_equal(al.mask, views.mask) and (al.albedo[~views.mask] == 0).all()
    assert not np.array_equal(al.albedo, views.albedo)


def test_albedo_degradation_keeps_flat_colour_and_softens_edges():
    """Blur + JPEG: a flat colour comes back within 8-bit sRGB steps; a hard edge spreads over more than a pixel."""
    views = _synthetic_views()
    img = np.zeros((1, 64, 64, 3), np.float32)
    img[0, :, :] = (0.6, 0.3, 0.1)
    img[0, :, 32:] = (0.1, 0.2, 0.7)
    views.albedo, views.mask = img, np.ones((1, 64, 64), bool)
    views.cameras = views.cameras[:1]
    for k in ("rgb", "normal", "depth", "roughness", "metallic"):
        setattr(views, k, None)
    out = mm.degrade(views, ("albedo",), seed=0).albedo[0]
    assert np.abs(out[:, 4:20] - img[0, :, 4:20]).max() < 0.02  # far from the edge
    row = out[32, :, 2]  # the blue channel across the edge
    ramp = np.count_nonzero((row > 0.1 + 0.1 * 0.6) & (row < 0.7 - 0.1 * 0.6))  # 10 %..90 % of the step
    assert ramp >= 2


# ------------------------------------------------------------------------------------------- the --quick run


def _pipeline_importable() -> bool:
    try:
        return importlib.util.find_spec("relight.reconstruct.pipeline") is not None and \
            importlib.import_module("relight.reconstruct.pipeline") is not None  # fmt: skip
    except Exception:  # noqa: BLE001 - any import failure means the product is not there yet
        return False


@pytest.mark.skipif(not _pipeline_importable(), reason="relight.reconstruct.pipeline cannot be imported yet: the "
                                                       "multi-view eval has no product to evaluate")  # fmt: skip
def test_quick_multiview_eval_writes_a_report(tmp_path):
    pytest.importorskip("bpy")
    import argparse

    from relight.evaluate.multiview import add_multiview_eval

    ap = argparse.ArgumentParser()
    add_multiview_eval(ap.add_subparsers(dest="kind"))
    out = tmp_path / "mv"
    args = ap.parse_args(["multiview", "--quick", "--out", str(out)])
    assert args.func(args) == 0
    rep = json.loads((out / "report.json").read_text())
    assert [o["object"] for o in rep["objects"]] == ["bowl"]
    row = rep["objects"][0]
    assert not row.get("errors"), row.get("errors")
    e = row["exact"]
    assert 0.0 <= e["chamfer"] < 0.05 and 0.5 < e["fscore"] <= 1.0  # sanity, not the bars: those are reported
    assert len(e["albedo_views"]) == 2 and np.isfinite(e["albedo_psnr"]) and e["albedo_iou"] > 0.8
    assert len(row["relit_views"]) == 2 and row["relit_psnr"] > 15.0
    assert row["seconds"] > 0 and row["maxrss_mb"] > 0 and row["stage_seconds"]
    s = rep["summary"]
    assert any(k.startswith("exact: mean Chamfer") for k in s["bars"])
    md = (out / "report.md").read_text()
    assert "| bowl |" in md and "## Bars" in md
    assert (out / "contact_sheet.png").stat().st_size > 1000
