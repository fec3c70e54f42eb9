"""Asset space <-> world space: the similarity each asset carries (`model_matrix`, asset -> world) and the cameras
seen through it. Asset space is the unit cube every geometry provider normalises into."""

import numpy as np

from .camera import Camera


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


def camera_to_world(camera: Camera, model_matrix: np.ndarray) -> Camera:
    """Asset-space camera -> the same camera in world space (inverse of camera_to_asset)."""
    s = similarity_scale(model_matrix)
    V = camera.viewmat @ np.linalg.inv(model_matrix)
    out = np.eye(4)
    out[:3] = V[:3] * s
    return Camera(out, camera.K.copy(), camera.width, camera.height)
