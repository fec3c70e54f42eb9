"""Match photo (generate.geometry.camera_fit): a mesh in a random pose and scale, its silhouette rendered by the
project's rasterizer from a random camera into a mask, and the camera found again from the mask alone."""

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from relight.core.camera import Camera
from relight.core.frames import camera_to_world
from relight.generate.geometry.camera_fit import MATCH_IOU, fit_camera
from relight.generate.geometry.camera_pose import ObjectFrame, Pose, iou, look_from, roll_matrix, rotation_angle_deg
from relight.generate.geometry.camera_search import CANVAS_PX, RENDER_PX, moments, render_silhouette, to_canvas, turned
from relight.generate.geometry.scene import REFIT_IOU, scene_geometry
from relight.render.mesh_coverage import mesh_coverage

SHAPES = ("blocks", "mug", "duck", "bracket")


def _part(mesh: trimesh.Trimesh, at, rot=None) -> trimesh.Trimesh:
    if rot is not None:
        mesh.apply_transform(trimesh.transformations.rotation_matrix(np.radians(rot[0]), rot[1]))
    mesh.apply_translation(at)
    return mesh


def asymmetric_mesh(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A shape with no rotational or mirror symmetry (the parts are concatenated, not unioned: the silhouette is
    the same), moved by a seeded random rotation, uniform scale in [0.2, 5] and offset -> (vertices [V, 3],
    faces [F, 3])."""
    c = trimesh.creation
    if kind == "blocks":  # a box, an upright post off one corner, a ball off another
        parts = [c.box((1.0, 0.6, 0.4)), _part(c.cylinder(0.15, 0.9, sections=32), (0.35, 0.1, 0.5)),
                 _part(c.icosphere(3, 0.25), (-0.4, -0.25, 0.25))]  # fmt: skip
    elif kind == "mug":  # a lathed, tapering cup, a handle, and a spout-like cone that breaks the mirror symmetry
        profile = [[0.0, -0.5], [0.35, -0.5], [0.42, 0.4], [0.45, 0.5], [0.0, 0.5]]
        parts = [c.revolve(profile, sections=48), _part(c.torus(0.25, 0.06), (0.45, 0.0, 0.0), (90, (1, 0, 0))),
                 _part(c.cone(0.08, 0.35, sections=24), (-0.2, -0.35, 0.3), (70, (0, 1, 1)))]  # fmt: skip
    elif kind == "duck":  # an ellipsoid body, a head off-centre, a beak, a tail fin
        body = c.icosphere(3, 0.5)
        body.apply_scale((1.0, 0.6, 0.5))
        parts = [body, _part(c.icosphere(3, 0.22), (0.35, 0.1, 0.35)),
                 _part(c.cone(0.07, 0.3, sections=24), (0.5, 0.12, 0.35), (90, (0, 1, 0))),
                 _part(c.box((0.25, 0.05, 0.2)), (-0.55, -0.1, 0.15), (30, (0, 1, 0)))]  # fmt: skip
    elif kind == "bracket":  # an L of two slabs with a rod through one of them and a knob
        parts = [c.box((1.0, 0.3, 0.15)), _part(c.box((0.15, 0.3, 0.7)), (0.42, 0.0, 0.42)),
                 _part(c.cylinder(0.05, 0.8, sections=24), (-0.2, 0.0, 0.0), (90, (1, 0, 0))),
                 _part(c.icosphere(2, 0.12), (-0.35, 0.3, 0.1))]  # fmt: skip
    else:
        raise ValueError(kind)
    m = trimesh.util.concatenate(parts)
    rng = np.random.default_rng(seed)
    R = Rotation.random(random_state=seed).as_matrix()
    v = m.vertices @ R.T * rng.uniform(0.2, 5.0) + rng.uniform(-3, 3, 3)
    return np.asarray(v), np.asarray(m.faces, np.int64)


def random_view(vertices: np.ndarray, seed: int, size: int = 256) -> Camera:
    """A camera looking at the mesh from a random direction, rolled within +-20 degrees, with a random field of view
    (25 to 60 degrees), the object filling 45 to 80 % of the frame and up to 10 % off centre."""
    rng = np.random.default_rng(seed + 1000)
    lo, hi = vertices.min(0), vertices.max(0)
    c, r = 0.5 * (lo + hi), float(np.linalg.norm(hi - lo)) / 2
    d = rng.normal(size=3)
    fov = rng.uniform(25, 60)
    f = 0.5 * size / np.tan(np.radians(fov) / 2)
    dist = r * f / (rng.uniform(0.45, 0.8) * 0.5 * size)
    cam = Camera.look_at(c + dist * d / np.linalg.norm(d), c, fov, size, size)
    cam.viewmat[:3] = roll_matrix(np.radians(rng.uniform(-20, 20))) @ cam.viewmat[:3]
    cam.viewmat[:2, 3] += rng.uniform(-0.1, 0.1, 2) * dist * size / (2 * f)
    return cam


def rotation_tolerance_deg(camera: Camera, vertices: np.ndarray) -> float:
    """How far a fit's rotation may be from the truth: a turn by angle a moves the silhouette of an object of image
    radius r_px by up to a * r_px pixels; edges placed to about a pixel, and out-of-plane turns moving the outline
    less than in-plane ones (by the cosine of the tilt of the turned surface: allow 4x), give 4 px / r_px."""
    r_px = camera.K[0, 0] * np.linalg.norm(vertices.max(0) - vertices.min(0)) / 2 / np.linalg.norm(
        camera.position - 0.5 * (vertices.min(0) + vertices.max(0)))  # fmt: skip
    return float(np.degrees(4.0 / r_px))


def test_a_turned_canvas_is_a_rolled_camera():
    """The search's convention: turning the canonical silhouette by +a (camera_search.turned on the render's side)
    gives the silhouette of the camera rolled by roll_matrix(a)."""
    v, f = asymmetric_mesh("blocks", 3)
    unit = ObjectFrame.of(v, f).unit
    R = look_from(np.array([0.3, -0.8, 0.5]))
    a = np.radians(35.0)
    base = render_silhouette(unit, f, R, 3.2, 120.0, RENDER_PX).astype(np.float32)
    rolled = render_silhouette(unit, f, roll_matrix(a) @ R, 3.2, 120.0, RENDER_PX).astype(np.float32)
    canvas_b, canvas_r = to_canvas(base, *moments(base)), to_canvas(rolled, *moments(rolled))
    # render turned by +a against the rolled render, scored as the render against the rolled one turned back
    back = turned(canvas_r, np.array([a, -a]))
    score = [iou(canvas_b > 0.5, b > 0.5) for b in back]
    assert score[0] > 0.9 > score[1], score  # bilinear resampling twice at ~24 px scale: a pixel of edge is lost
    assert canvas_b.shape == (CANVAS_PX, CANVAS_PX)


def test_pose_and_camera_round_trip():
    v, f = asymmetric_mesh("duck", 5)
    cam = random_view(v, 5)
    frame = ObjectFrame.of(v, f)
    back = Pose.of_camera(cam, frame).camera(frame, cam.width, cam.height)
    np.testing.assert_allclose(back.viewmat, cam.viewmat, atol=1e-9)
    np.testing.assert_allclose(back.K, cam.K, atol=1e-9)


# (shape, seed): each fit ~1-2 s on the 2-core test machine; the report's script runs 30+ cases
CASES = [("blocks", 0), ("mug", 1), ("duck", 2), ("bracket", 3), ("blocks", 4), ("duck", 5)]


@pytest.mark.parametrize("kind,seed", CASES)
def test_fit_finds_the_camera_with_a_free_focal_length(kind, seed):
    v, f = asymmetric_mesh(kind, seed)
    truth = random_view(v, seed)
    mask = mesh_coverage(truth, v, f)
    fit = fit_camera(v, f, mask, seed=seed)
    assert (fit.camera.width, fit.camera.height) == (truth.width, truth.height)
    assert fit.iou >= 0.95 and fit.warning is None, (fit.iou, fit.warning)
    assert fit.iou == pytest.approx(iou(mesh_coverage(fit.camera, v, f), mask))  # the reported IoU is the camera's
    assert fit.candidates[0][1] is fit.camera and len(fit.candidates) >= 2


@pytest.mark.parametrize("kind,seed", [("blocks", 10), ("bracket", 11), ("duck", 12)])
def test_fit_keeps_a_given_focal_length_and_finds_the_rotation(kind, seed):
    v, f = asymmetric_mesh(kind, seed)
    truth = random_view(v, seed)
    mask = mesh_coverage(truth, v, f)
    fit = fit_camera(v, f, mask, focal_px=truth.K[0, 0], seed=seed)
    assert fit.camera.K[0, 0] == truth.K[0, 0] and fit.camera.K[1, 1] == truth.K[1, 1]
    assert fit.iou >= 0.95, fit.iou
    err = rotation_angle_deg(fit.camera.viewmat[:3, :3], truth.viewmat[:3, :3])
    assert err <= rotation_tolerance_deg(truth, v), (err, rotation_tolerance_deg(truth, v))
    # with the focal length known, the distance is fixed too: the camera centre within the same relative tolerance
    dist = np.linalg.norm(truth.position - 0.5 * (v.min(0) + v.max(0)))
    assert np.linalg.norm(fit.camera.position - truth.position) <= dist * np.radians(
        rotation_tolerance_deg(truth, v)) * 2  # fmt: skip


def test_a_mesh_that_does_not_match_the_photo_is_reported():
    """A ball cannot have an L-shaped outline: the best fit stays below MATCH_IOU and says so."""
    mask = np.zeros((256, 256), bool)
    mask[40:220, 60:110] = True
    mask[170:220, 60:200] = True
    sphere = trimesh.creation.icosphere(3, 2.0)
    fit = fit_camera(np.asarray(sphere.vertices), np.asarray(sphere.faces), mask)
    assert fit.iou < MATCH_IOU
    assert fit.warning == f"the mesh does not match the photo's outline (silhouette IoU {fit.iou:.2f})"


def _asset_silhouette_iou(geo, mask):
    return iou(mesh_coverage(geo.camera, geo.vertices.astype(np.float64), geo.faces.astype(np.int64)), mask)


def test_generate_with_a_mesh_and_no_camera_fits_the_input_camera():
    """Through the pipeline: the scene provider, given no camera, fits one to the photo's mask; the asset's input
    camera (asset space) sees the mesh with the photo's outline, and asset.meta records the fit."""
    from relight.core.input_image import InputImage
    from relight.generate.pipeline import GenerateInputs, generate
    from relight.generate.segment import segment

    v, f = asymmetric_mesh("duck", 40)
    truth = random_view(v, 40)
    rgba = np.zeros((256, 256, 4), np.float32)
    rgba[..., :3], rgba[..., 3] = 0.5, mesh_coverage(truth, v, f)  # the object's alpha: what segment() reads
    image = InputImage.from_pixels(rgba, "linear")
    mask = segment(image.srgb)  # the mask the pipeline fits to
    asset = generate(GenerateInputs(image=image, mesh=(v, f), n_gaussians=3000, delight=False))
    info = asset.meta["camera_fit"]
    assert info["done"] and info["reason"] == "no camera" and info["iou"] >= 0.95, info
    seen = mesh_coverage(asset.input_camera, asset.vertices.astype(np.float64), asset.faces.astype(np.int64))
    assert iou(seen, mask) == pytest.approx(info["iou"], abs=0.01)  # asset space sees what world space saw
    assert asset.meta["warnings"] == []


def test_the_scene_provider_keeps_a_matching_camera_and_refits_a_wrong_one():
    v, f = asymmetric_mesh("bracket", 22)
    truth = random_view(v, 22)
    mask = mesh_coverage(truth, v, f)
    kept = scene_geometry(v, f, truth, mask)
    assert not kept.meta["camera_fit"]["done"] and kept.meta["camera_fit"]["iou"] == 1.0
    np.testing.assert_allclose(camera_to_world(kept.camera, kept.model_matrix).viewmat, truth.viewmat, atol=1e-9)
    c = 0.5 * (v.min(0) + v.max(0))
    wrong = Camera.look_at(2 * c - truth.position + np.array([0.0, 0.0, 1e-3]), c, 39.6, 256, 256)  # other side
    refit = scene_geometry(v, f, wrong, mask)
    info = refit.meta["camera_fit"]
    assert info["done"] and info["reason"].startswith("camera IoU ") and info["reason"].endswith(f"< {REFIT_IOU}")
    assert _asset_silhouette_iou(refit, mask) >= 0.95


def test_front_and_back_of_a_flat_outline_are_both_kept():
    """A thin L-shaped slab with equal arms seen face-on: from behind its outline is the mirror image, which for this
    L is the same outline turned by 90 degrees. Both poses explain the mask; the search keeps both and the fit
    returns them as candidates, half a turn apart, instead of collapsing them early."""
    slab = trimesh.util.concatenate([_part(trimesh.creation.box((0.3, 1.0, 0.04)), (-0.35, 0.0, 0.0)),
                                     _part(trimesh.creation.box((1.0, 0.3, 0.04)), (0.0, -0.35, 0.0))])  # fmt: skip
    v, f = np.asarray(slab.vertices), np.asarray(slab.faces)
    truth = Camera.look_at(np.array([0.05, 0.1, 4.0]), np.zeros(3), 30.0, 256, 256, up=(0.0, 1.0, 0.0))
    mask = mesh_coverage(truth, v, f)
    fit = fit_camera(v, f, mask, focal_px=truth.K[0, 0])
    good = [c for s, c in fit.candidates if s >= 0.95]
    assert len(good) >= 2, [s for s, _ in fit.candidates]
    facing = [np.sign(c.viewmat[2, :3] @ np.array([0.0, 0.0, -1.0])) for c in good]  # +1: looks at the front (+z)
    assert set(facing) == {-1.0, 1.0}, facing
