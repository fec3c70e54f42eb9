"""The backend's axis and camera-convention conversions.

World space everywhere in the backend is Blender's: right-handed, Z up, metres.
Cameras are stored OpenCV-style (gsplat's convention): x right, y down, looking down +Z. That camera frame is part
of the wire contract, so GL_TO_CV and the Blender camera <-> viewmat conversions live in relight_protocol.conventions
(shared with the add-on) and are re-exported here.
"""

import numpy as np

from relight_protocol.conventions import (GL_TO_CV, blender_camera_to_viewmat,  # noqa: F401 (re-exported)
                                          viewmat_to_blender_camera)

# [4, 4] Blender world (Z up) -> glTF world (Y up): (x, y, z) -> (x, z, -y).
BLENDER_TO_GLTF = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def blender_to_gltf_points(p: np.ndarray) -> np.ndarray:
    """[..., 3] Blender (Z up) positions or directions -> glTF (Y up)."""
    p = np.asarray(p)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def gltf_to_blender_points(p: np.ndarray) -> np.ndarray:
    """[..., 3] glTF (Y up) positions or directions -> Blender (Z up)."""
    p = np.asarray(p)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def look_at_viewmat(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """[4, 4] world-to-camera (OpenCV) for a camera at `eye` looking at `target`, world `up` on screen."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight along `up`
        right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    rot = np.stack([right, down, fwd])  # rows: camera x, y, z in world
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = -rot @ eye
    return m
