"""The conventions both sides of the wire share, each written once: the camera frame (a Blender camera's
matrix_world <-> the OpenCV world-to-camera `viewmat` that requests carry) and the sRGB transfer curve.

Stdlib + numpy only: the add-on (Blender's numpy 1.26) and the backend (`relight.core.axes`, `relight.core.colour`)
both call these.
"""

import numpy as np

# [4, 4] flips a Blender/OpenGL camera frame (looks down -Z, +Y up) to OpenCV (looks down +Z, +Y down). Read-only.
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
GL_TO_CV.flags.writeable = False

# Euler XYZ rotation (radians) of a Cycles equirectangular panoramic camera at the origin whose pixel grid is the
# backend's equirect grid (Blender's Environment Texture mapping): the image centre looks along +X, the top row at
# +Z. tests/test_envmap_cycles.py proves it ray by ray. The add-on bakes worlds with it; the evaluation does too.
EQUIRECT_PANO_EULER = (1.5707963267948966, 0.0, -1.5707963267948966)


def blender_camera_to_viewmat(matrix_world) -> np.ndarray:
    """[4, 4] Blender camera matrix_world (camera to world, no scale) -> [4, 4] float64 world-to-camera, OpenCV
    convention: x right, y down, looking down +Z. This is the `viewmat` of a request's camera."""
    return GL_TO_CV @ np.linalg.inv(np.asarray(matrix_world, dtype=np.float64))


def viewmat_to_blender_camera(viewmat) -> np.ndarray:
    """[4, 4] world-to-camera (OpenCV) -> [4, 4] float64 Blender camera matrix_world."""
    return np.linalg.inv(GL_TO_CV @ np.asarray(viewmat, dtype=np.float64))


def srgb_to_linear(x) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear (IEC 61966-2-1 piecewise curve). Same shape, float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x) -> np.ndarray:
    """Linear values -> sRGB encoding (IEC 61966-2-1 piecewise curve); no clipping above 1. Same shape, float32."""
    x = np.asarray(x, dtype=np.float32)
    hi = 1.055 * np.maximum(x, 0.0031308) ** (1.0 / 2.4) - 0.055
    return np.where(x <= 0.0031308, x * 12.92, hi).astype(np.float32)
