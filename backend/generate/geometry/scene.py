"""The `scene` geometry provider: the mesh sent with the request (world space), normalised into the unit cube; the
image's camera is the given one, else a front view framing the mesh."""

import numpy as np

from ...core.camera import Camera
from ...core.frames import camera_to_asset, normalise
from .base import GeometryResult

DEFAULT_FOV_DEG = 39.6  # Blender's default 50 mm lens on its 36 mm sensor
FRAMING_DISTANCE = 3.2  # camera distance in units of the mesh's bounding radius


def scene_geometry(vertices: np.ndarray, faces: np.ndarray, camera: Camera | None, image_hw) -> GeometryResult:
    """World vertices [V, 3], faces [F, 3], the image's world camera or None, image (H, W) -> GeometryResult."""
    if camera is None:
        # no camera: look at the mesh from -Y (Blender's front view) with the default lens, framing it
        lo, hi = vertices.min(0), vertices.max(0)
        c, r = 0.5 * (lo + hi), float(np.linalg.norm(hi - lo)) / 2
        H, W = image_hw
        camera = Camera.look_at(c + np.array([0, -FRAMING_DISTANCE * r, 0]), c, DEFAULT_FOV_DEG, W, H)
    v_a, M = normalise(np.asarray(vertices, np.float64))
    return GeometryResult(v_a, np.asarray(faces, np.int32), camera_to_asset(camera, M), M, "scene")
