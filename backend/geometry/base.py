"""The geometry-provider interface: every provider returns a mesh normalised to the unit cube plus the input camera."""

from dataclasses import dataclass

import numpy as np

from ..camera import Camera


@dataclass
class GeometryResult:
    vertices: np.ndarray  # [V, 3] float32, asset space: centred, longest side 1 (inside [-0.5, 0.5]^3)
    faces: np.ndarray  # [F, 3] int32, counter-clockwise seen from outside
    camera: Camera  # the input image's camera, in asset space
    model_matrix: np.ndarray  # [4, 4] asset -> world similarity (uniform scale, rotation, translation)
    provider: str


def normalise(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[V, 3] world -> ([V, 3] asset space in the unit cube, [4, 4] asset -> world)."""
    lo, hi = vertices.min(0), vertices.max(0)
    centre = 0.5 * (lo + hi)
    s = 1.0 / max(float((hi - lo).max()), 1e-9)
    M = np.eye(4)
    M[:3, :3] *= 1.0 / s
    M[:3, 3] = centre
    return ((vertices - centre) * s).astype(np.float32), M


def similarity_scale(model_matrix: np.ndarray) -> float:
    """Uniform scale of a [4, 4] similarity transform."""
    return float(np.cbrt(np.linalg.det(model_matrix[:3, :3])))


def camera_to_asset(camera: Camera, model_matrix: np.ndarray) -> Camera:
    """World camera -> the same camera in asset space (model_matrix maps asset -> world, uniform scale)."""
    s = similarity_scale(model_matrix)
    V = camera.viewmat @ model_matrix  # [R s, t]: rescale to keep the view matrix rigid (projection is scale-free)
    out = np.eye(4)
    out[:3, :3] = V[:3, :3] / s
    out[:3, 3] = V[:3, 3] / s
    return Camera(out, camera.K.copy(), camera.width, camera.height)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3], [F, 3] -> [V, 3] unit vertex normals, each face's normal weighted by its angle at the vertex.

    Blender's smooth shading weights the same way, so a mesh sent from Blender is shaded with the normals Cycles
    and the viewport use (area weighting tilts a bevelled box's big flat faces by up to 6 degrees)."""
    v = vertices.astype(np.float64)
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])  # [F, 3]
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-30)
    n = np.zeros_like(v)
    for k in range(3):
        e1 = v[faces[:, (k + 1) % 3]] - v[faces[:, k]]  # [F, 3] the two edges leaving corner k
        e2 = v[faces[:, (k + 2) % 3]] - v[faces[:, k]]
        angle = np.arctan2(np.linalg.norm(np.cross(e1, e2), axis=1), (e1 * e2).sum(1))  # [F] radians
        np.add.at(n, faces[:, k], fn * angle[:, None])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)


def camera_to_world(camera: Camera, model_matrix: np.ndarray) -> Camera:
    """Asset-space camera -> the same camera in world space (inverse of camera_to_asset)."""
    s = similarity_scale(model_matrix)
    V = camera.viewmat @ np.linalg.inv(model_matrix)
    out = np.eye(4)
    out[:3] = V[:3] * s
    return Camera(out, camera.K.copy(), camera.width, camera.height)
