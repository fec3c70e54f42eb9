"""Segmentation, silhouette inflation and the mesh rasterizer."""

import numpy as np
import pytest
import torch

from relight.core.surface import vertex_normals
from relight.generate.geometry.inflate import inflate
from relight.render.mesh_raster import clip_from_camera, interpolate, rasterize, to_clip
from relight.generate.segment import NoObjectError, segment


def disc(h=200, w=240, r=60, cx=120, cy=100):
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 < r * r


def test_segment_uses_alpha():
    m = disc()
    rgba = np.zeros((*m.shape, 4), np.float32)
    rgba[..., :3] = 0.3
    rgba[..., 3] = m
    assert (segment(rgba) == m).all()


def test_segment_grabcut_on_opaque_image():
    m = disc()
    rgba = np.ones((*m.shape, 4), np.float32)
    rgba[..., :3] = 0.9  # plain light backdrop
    rgba[m, :3] = [0.6, 0.1, 0.1]
    rng = np.random.default_rng(0)
    rgba[..., :3] += rng.normal(0, 0.02, rgba[..., :3].shape)
    got = segment(np.clip(rgba, 0, 1))
    iou = (got & m).sum() / (got | m).sum()
    assert iou > 0.95


def test_segment_rejects_empty_image():
    rgba = np.zeros((64, 64, 4), np.float32)
    with pytest.raises(NoObjectError, match="no object"):
        segment(rgba)


def _edges(f):
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1)
    return np.unique(e, axis=0, return_counts=True)[1]


def test_inflate_disc_is_closed_round_and_matches_silhouette():
    m = disc()
    g = inflate(m, grid=64)
    assert np.all(_edges(g.faces.astype(np.int64)) == 2)  # watertight, manifold
    v = g.vertices.astype(np.float64)
    vol = np.einsum("ij,ij->i", v[g.faces[:, 0]], np.cross(v[g.faces[:, 1]], v[g.faces[:, 2]])).sum() / 6
    assert vol > 0  # outward orientation
    # a disc inflates to a ball: depth extent close to the width, volume close to the sphere's
    ext = np.ptp(v, axis=0)
    assert ext[1] / ext[0] == pytest.approx(1.0, abs=0.15)
    assert vol == pytest.approx(4 / 3 * np.pi * 0.5**3, rel=0.2)
    # seen from its camera, the mesh covers the silhouette
    cam = g.camera
    rast, _ = rasterize(to_clip(g.vertices, clip_from_camera(cam)), g.faces, (cam.height, cam.width))
    cov = rast[0, ..., 3].numpy() > 0
    assert (cov & m).sum() / (cov | m).sum() > 0.93


def test_rasterizer_depth_and_gradients():
    # one quad facing the camera at depth 2: interpolated camera depth is 2 everywhere it covers
    from relight.core.camera import Camera

    cam = Camera.look_at((0, -2.0, 0), (0, 0, 0), 60.0, 48, 32)
    v = np.array([[-0.5, 0, -0.5], [0.5, 0, -0.5], [0.5, 0, 0.5], [-0.5, 0, 0.5]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    pos = to_clip(v, clip_from_camera(cam)).requires_grad_(True)
    rast, _ = rasterize(pos, f, (32, 48))
    cov = rast[0, ..., 3] > 0
    f_px = 0.5 * 48 / np.tan(np.radians(30))
    expect_w = f_px * 1.0 / 2.0  # a 1-unit-wide quad at depth 2
    assert abs(cov[16].sum().item() - expect_w) <= 2
    depth = torch.tensor([[2.0], [2.0], [2.0], [2.0]])
    d, _ = interpolate(depth, rast, f)
    assert torch.allclose(d[0][cov], torch.tensor(2.0), atol=1e-4)
    colour = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    c, _ = interpolate(colour, rast, f)
    c.sum().backward()
    assert pos.grad is not None and torch.isfinite(pos.grad).all() and pos.grad.abs().sum() > 0


def test_vertex_normals_point_outward_on_inflated_shape():
    g = inflate(disc(), grid=48)
    n = vertex_normals(g.vertices, g.faces)
    c = g.vertices - g.vertices.mean(0)
    assert (np.sum(n * c, 1) > 0).mean() > 0.97


@pytest.mark.parametrize("shape", ["bevel_box", "suzanne"])
def test_vertex_normals_are_the_ones_blender_shades_with(shape):
    """Blender (bpy) reads back its own smooth vertex normals for the same triangles: ours agree, so a mesh sent
    from a scene is shaded as Cycles shades it. (Area weighting differs by up to 6 degrees on the bevelled box.)"""
    from relight.evaluate.cycles_scenes import shape_mesh

    v, f, blender = shape_mesh(shape)
    cos = (vertex_normals(v, f) * blender).sum(1)
    assert np.degrees(np.arccos(np.clip(cos.min(), -1, 1))) < 0.1
