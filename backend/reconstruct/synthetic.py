"""Exact G-buffers of a known mesh, drawn by the project's own mesh rasterizer: the tests' input, and the shipped
sample's. Materials are functions of the world position, so hard-edged textures stay hard at every view."""

from collections.abc import Callable

import numpy as np
import torch

from ..core.camera import Camera
from ..render.mesh_raster import clip_from_camera, interpolate, rasterize, to_clip
from .views import MultiViewSet

Field = Callable[[np.ndarray], np.ndarray]  # world points [P, 3] -> values [P, C] (or [P])


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[F, 3] unit face normals (counter-clockwise winding seen from outside)."""
    v = vertices[faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def render_gbuffers(
    vertices: np.ndarray,  # [V, 3] world
    faces: np.ndarray,  # [F, 3]
    cameras: list[Camera],  # all of one size
    albedo: Field = lambda p: np.full((len(p), 3), 0.6),
    roughness: Field = lambda p: np.full(len(p), 0.5),
    metallic: Field = lambda p: np.zeros(len(p)),
    smooth_normals: np.ndarray | None = None,  # [V, 3] vertex normals to interpolate; None: flat face normals
) -> MultiViewSet:
    """One exact G-buffer per camera (no antialiasing: a pixel belongs to the triangle its centre falls in). rgb is
    left None (a shaded image needs a light: the evaluation renders it with Cycles)."""
    H, W = cameras[0].height, cameras[0].width
    V = len(cameras)
    mask = np.zeros((V, H, W), bool)
    normal = np.zeros((V, H, W, 3), np.float32)
    depth = np.zeros((V, H, W), np.float32)
    alb = np.zeros((V, H, W, 3), np.float32)
    rough = np.zeros((V, H, W), np.float32)
    metal = np.zeros((V, H, W), np.float32)
    fn = face_normals(vertices, faces)
    tri = torch.as_tensor(np.asarray(faces, np.int64))
    for i, cam in enumerate(cameras):
        with torch.no_grad():
            rast, _ = rasterize(to_clip(vertices, clip_from_camera(cam)), tri, (H, W), grad_db=False)
            pts, _ = interpolate(torch.as_tensor(vertices, dtype=torch.float32), rast, tri)
            if smooth_normals is not None:
                nrm, _ = interpolate(torch.as_tensor(smooth_normals, dtype=torch.float32), rast, tri)
        tid = rast[0, ..., 3].numpy().astype(np.int64)  # [H, W] triangle id + 1
        m = tid > 0
        p = pts[0].numpy()[m].astype(np.float64)  # [P, 3]
        n = nrm[0].numpy()[m] if smooth_normals is not None else fn[tid[m] - 1]
        mask[i] = m
        normal[i][m] = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        depth[i][m] = p @ cam.viewmat[2, :3] + cam.viewmat[2, 3]
        alb[i][m] = np.asarray(albedo(p)).reshape(-1, 3)
        rough[i][m] = np.asarray(roughness(p)).reshape(-1)
        metal[i][m] = np.asarray(metallic(p)).reshape(-1)
    return MultiViewSet(list(cameras), mask, None, normal, depth, alb, rough, metal, {"source": "synthetic"})
