"""reconstruct/inputs.py: both input forms round-trip through real files, and every bad input gives its named error
(view and domain), with nothing written when writing fails."""

import json

import numpy as np
import pytest
import trimesh
from relight.core.camera import Camera
from relight.core.imageio import read_rgba, write_rgba
from relight.reconstruct import zero123
from relight.reconstruct.inputs import (
    ViewInputError,
    load_views,
    validate_views,
    write_views,
)
from relight.reconstruct.synthetic import render_gbuffers
from relight.reconstruct.zero123 import zero123_cameras

S = 64  # pixels per view: small, the files are what is tested

# 8-bit quantisation bounds: half a code value, times the steepest slope of each decode
Q = 0.5 / 255
SRGB_SLOPE = 2.4 / 1.055 * 1.055 ** 1.4  # d(srgb_to_linear)/dx at x = 1, the curve's steepest
NORMAL_TOL = 2 * Q * np.sqrt(3) * 1.01  # per component, after renormalising a vector quantised per channel


@pytest.fixture(scope="module")
def views():
    """Exact G-buffers of a sphere with a position-dependent albedo, seen by the Zero123++ rig at 64^2."""
    m = trimesh.creation.icosphere(3, 0.9)
    vs = render_gbuffers(m.vertices, m.faces, zero123_cameras(S),
                         albedo=lambda p: 0.5 + 0.4 * np.tanh(p),
                         roughness=lambda p: 0.5 + 0.4 * p[:, 2], metallic=lambda p: (p[:, 0] > 0).astype(float))
    vs.rgb = (vs.albedo * 0.8).astype(np.float32)
    return vs


def _check_round_trip(a, b):
    np.testing.assert_array_equal(a.mask, b.mask)
    m = a.mask
    np.testing.assert_allclose(b.albedo[m], a.albedo[m], atol=Q * SRGB_SLOPE)
    np.testing.assert_allclose(b.rgb[m], a.rgb[m], atol=Q * SRGB_SLOPE)
    np.testing.assert_allclose(b.roughness[m], a.roughness[m], atol=Q)
    np.testing.assert_array_equal(b.metallic[m], a.metallic[m])  # 0 and 1 are exact codes
    np.testing.assert_allclose(b.normal[m], a.normal[m], atol=NORMAL_TOL)
    np.testing.assert_allclose(b.depth, a.depth, rtol=1e-6)  # float32 EXR
    for ca, cb in zip(a.cameras, b.cameras):
        np.testing.assert_allclose(cb.viewmat, ca.viewmat, atol=1e-12)
        np.testing.assert_allclose(cb.K, ca.K, atol=1e-12)


@pytest.mark.parametrize("form", ["folder", "zero123pp"])
@pytest.mark.parametrize("normal_space", ["world", "view"])
def test_round_trip(views, tmp_path, form, normal_space):
    write_views(views, tmp_path / "v", form=form, normal_space=normal_space)
    back = load_views(tmp_path / "v")
    assert back.meta["source"] == form and back.meta["normal_space"] == normal_space
    _check_round_trip(views, back)


def test_view_space_normals_face_the_camera(views, tmp_path):
    """In view space a surface facing the camera is +z (towards the viewer), the image centre of a sphere."""
    write_views(views, tmp_path / "v", form="zero123pp", normal_space="view")
    sheet = read_rgba(tmp_path / "v" / "normal.png")
    centre = sheet[S // 2, S // 2, :3] * 2 - 1  # view 0's centre pixel
    np.testing.assert_allclose(centre, [0, 0, 1], atol=0.05)
    up = sheet[S // 8 + 4, S // 2, :3] * 2 - 1  # near the top of the sphere: +y (up) in OpenGL camera axes
    assert up[1] > 0.3


def test_mask_from_rgb_alpha_and_optional_domains(views, tmp_path):
    d = tmp_path / "v"
    write_views(views, d, form="zero123pp")
    for name in ("mask.png", "depth.exr", "normal.png", "roughness.png", "metallic.png"):
        (d / name).unlink()
    back = load_views(d)
    np.testing.assert_array_equal(back.mask, views.mask)
    assert back.depth is None and back.normal is None and back.roughness is None


def test_mask_from_normal_length_when_rgb_has_no_alpha(views, tmp_path):
    """Zero123++'s own sheets: opaque rgb on grey, normals grey (the zero vector) off the object."""
    d = tmp_path / "v"
    write_views(views, d, form="zero123pp")
    (d / "mask.png").unlink()
    write_rgba(d / "rgb.png", read_rgba(d / "rgb.png")[..., :3])  # no alpha
    back = load_views(d)
    np.testing.assert_array_equal(back.mask, views.mask)


def test_missing_required_domain_is_named(views, tmp_path):
    d = tmp_path / "v"
    write_views(views, d, form="zero123pp")
    (d / "albedo.png").unlink()
    with pytest.raises(ViewInputError, match="albedo: missing .*optional: rgb, normal, depth"):
        load_views(d)
    write_views(views, d, form="zero123pp")
    for name in ("mask.png", "rgb.png", "normal.png"):
        (d / name).unlink()
    with pytest.raises(ViewInputError, match="mask: missing"):
        load_views(d)


def _folder_with(views, tmp_path, view: int, domain: str, pixels: np.ndarray):
    """The views written in the per-view folder form, with one view's file of one domain replaced by `pixels`."""
    d = tmp_path / "v"
    write_views(views, d, form="folder")
    spec = json.loads((d / "cameras.json").read_text())
    write_rgba(d / spec["views"][view]["files"][domain], pixels)
    return d


def test_mismatched_size_names_view_and_domain(views, tmp_path):
    d = _folder_with(views, tmp_path, 3, "roughness", np.zeros((S // 2, S // 2, 3)))
    with pytest.raises(ViewInputError, match="view 3, roughness: size"):
        load_views(d)


def test_empty_mask_names_view(views, tmp_path):
    d = _folder_with(views, tmp_path, 2, "mask", np.zeros((S, S, 3)))
    with pytest.raises(ViewInputError, match="view 2, mask: the mask is empty"):
        load_views(d)


def test_nan_names_view_and_domain_and_nothing_is_written(views, tmp_path):
    bad = load_views(write_views(views, tmp_path / "ok", form="folder"))
    bad.depth = bad.depth.copy()
    bad.depth[4, S // 2, S // 2] = np.nan  # inside view 4's mask
    with pytest.raises(ViewInputError, match="view 4, depth: holds NaN"):
        write_views(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # the same through a file: depth.npy in the tiled form, infinite inside view 5's mask (outside is ignored)
    d = tmp_path / "z"
    write_views(views, d, form="zero123pp")
    (d / "depth.exr").unlink()
    sheet = np.where(zero123.tile_views(views.mask), 4.0, np.inf).astype(np.float32)  # inf background: ignored
    sheet[2 * S + S // 2, S + S // 2] = np.inf  # view 5's centre, inside its mask
    np.save(d / "depth.npy", sheet)
    with pytest.raises(ViewInputError, match="view 5, depth: holds NaN or infinite"):
        load_views(d)


def test_camera_that_sees_none_of_the_hull_is_named(views, tmp_path):
    d = tmp_path / "v"
    write_views(views, d, form="folder")
    spec = json.loads((d / "cameras.json").read_text())
    wrong = Camera.look_at((4.0, 0.0, 0.0), (0.0, 0.0, 0.0), 30.0, S, S)
    wrong.viewmat[:3, 3] += np.array([3.0, 0.0, 0.0])  # shifted sideways: the object leaves its frame
    spec["views"][1].update(wrong.to_dict())
    (d / "cameras.json").write_text(json.dumps(spec))
    with pytest.raises(ViewInputError, match="view 1, camera: the camera sees none of the hull"):
        load_views(d)


def test_zero123pp_form_needs_the_rig(views, tmp_path):
    moved = load_views(write_views(views, tmp_path / "ok", form="folder"))
    moved.cameras[0] = moved.cameras[0].resized(S, S)
    moved.cameras[0].viewmat[0, 3] += 0.01
    with pytest.raises(ViewInputError, match="view 0, camera: .*not the Zero123"):
        write_views(moved, tmp_path / "out", form="zero123pp")
    assert not (tmp_path / "out").exists()
    validate_views(views)  # the original is fine
