"""Normals as the artist set them: a flat-shaded box's per-corner normals reach the Gaussians (each on a face points
exactly along it), where smooth normals recomputed from its 8 shared corners would bend them by tens of degrees;
the split keeps smooth corners welded."""

import numpy as np
import trimesh

from relight.core.camera import Camera
from relight.core.input_image import InputImage
from relight.core.surface import split_by_normals
from relight.generate.pipeline import GenerateInputs, generate


def _box():
    box = trimesh.creation.box((1.0, 0.8, 0.6))  # 8 shared vertices, 12 triangles
    v, f = np.asarray(box.vertices, np.float32), np.asarray(box.faces, np.int32)
    fn = np.asarray(box.face_normals, np.float32)
    return v, f, np.repeat(fn[:, None], 3, 1)  # flat shading: every corner takes its face's normal


def test_split_by_normals_splits_sharp_corners_and_welds_smooth_ones():
    v, f, flat = _box()
    v2, f2, vn = split_by_normals(v, f, flat)
    assert len(v2) == 24  # each corner of the box on its 3 faces: 8 x 3
    np.testing.assert_allclose(v2[f2], v[f])  # the same triangles in the same places
    np.testing.assert_allclose(vn[f2], flat, atol=1e-6)
    smooth = np.asarray(trimesh.Trimesh(v, f).vertex_normals, np.float32)[f]
    v3, _, _ = split_by_normals(v, f, smooth)
    assert len(v3) == 8  # nothing to split


def _picture(camera: Camera, v, f) -> InputImage:
    from relight.reconstruct.synthetic import render_gbuffers

    g = render_gbuffers(v, f, [camera])
    rgba = np.zeros((camera.height, camera.width, 4), np.float32)
    rgba[..., :3] = 0.5 + 0.4 * g.normal[0]  # any shading: the test is about geometry
    rgba[..., 3] = g.mask[0]
    return InputImage.from_pixels(rgba, "linear")


def test_the_gaussians_take_the_mesh_s_own_normals():
    v, f, flat = _box()
    cam = Camera.look_at((2.0, -2.5, 1.5), (0, 0, 0), 35.0, 96, 96)
    image = _picture(cam, v, f)
    errors = {}
    for name, corner in (("flat", flat), ("smooth", None)):
        asset = generate(GenerateInputs(image=image, mesh=(v, f), corner_normals=corner, camera=cam, delight=False,
                                        n_gaussians=4000))  # fmt: skip
        g = asset.gaussians
        # the true normal of each Gaussian: the face of the box its centre lies on (the axis it is most outside on)
        half = np.abs(asset.vertices).max(0)
        rel = np.abs(g.means) / half
        axis = rel.argmax(1)
        truth = np.zeros_like(g.normals)
        truth[np.arange(len(axis)), axis] = np.sign(g.means[np.arange(len(axis)), axis])
        errors[name] = np.degrees(np.arccos(np.clip((g.normals * truth).sum(1), -1, 1)))
    assert errors["flat"].max() < 1.0
    assert errors["smooth"].mean() > 10.0  # what recomputing smooth normals did to a flat-shaded box
