"""Zero123++ v1.2's fixed camera rig and its tiled 3 x 2 image layout: the cameras of MAGE's multi-view G-buffers.

The convention, as Zero123++'s README (SUDO-AI-3D/zero123plus, v1.2 notes) and the code that consumes its output
(TencentARC/InstantMesh, src/utils/camera_util.py `get_zero123plus_input_cameras` and run.py) give it:

- Six views, tiled row-major into one image of 3 rows x 2 columns, 320 x 320 pixels each: view k sits at row k // 2,
  column k % 2 (InstantMesh splits the 960 x 640 sheet with `c (n h) (m w) -> (n m) c h w`, n=3, m=2).
- Azimuths 30, 90, 150, 210, 270, 330 degrees, relative to the input photo's view; elevations alternate 20 and -10
  degrees, starting with 20. Vertical and horizontal field of view 30 degrees, principal point at the centre.
- World frame: Z up (the project's, as in views.py). Azimuth a, elevation e put the camera at
  r (cos e cos a, cos e sin a, sin e): azimuth 0 is the input photo's camera, on the +X axis looking towards -X;
  azimuth grows counter-clockwise seen from above (+X towards +Y). Every camera looks at the origin with +Z up on
  screen (no roll).
- Radius r = 4.0 (InstantMesh's `radius=4.0` for Zero123++'s outputs). Zero123++ v1.2 renders "a normalised object
  size" whatever the input; at r = 4 and 30 degrees the frame holds the sphere of radius 4 sin 15 deg = 1.035 about the
  origin, so the object is taken to lie inside the unit sphere (its bounding box inside [-1, 1]^3 but touching the frame
  only if it fills the sphere). Reconstructions come out in these units.
"""

import numpy as np

from ..core.camera import Camera

AZIMUTHS_DEG = (30.0, 90.0, 150.0, 210.0, 270.0, 330.0)  # per view, from +X towards +Y
ELEVATIONS_DEG = (20.0, -10.0, 20.0, -10.0, 20.0, -10.0)  # per view, above the XY plane
FOV_DEG = 30.0  # horizontal = vertical (square views)
RADIUS = 4.0  # world units, camera centre to origin
VIEW_SIZE = 320  # pixels per view in Zero123++ v1.2's output
ROWS, COLS = 3, 2  # the sheet's tiling, row-major


class TileLayoutError(ValueError):
    """A sheet or a view stack that does not fit the 3 x 2 tiling."""


def camera_position(azimuth_deg: float, elevation_deg: float, radius: float = RADIUS) -> np.ndarray:
    """[3] world position of the rig camera at this azimuth / elevation (degrees)."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    return radius * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


def zero123_cameras(size: int = VIEW_SIZE) -> list[Camera]:
    """The six rig cameras (OpenCV world-to-camera, square `size` x `size` views), in tile order."""
    return [Camera.look_at(camera_position(a, e), (0.0, 0.0, 0.0), FOV_DEG, size, size)
            for a, e in zip(AZIMUTHS_DEG, ELEVATIONS_DEG)]


def split_tiles(img: np.ndarray) -> np.ndarray:
    """[3S, 2S, ...] sheet -> [6, S, S, ...] views in tile order (row-major)."""
    img = np.asarray(img)
    if img.ndim < 2 or img.shape[0] % ROWS or img.shape[1] % COLS or img.shape[0] // ROWS != img.shape[1] // COLS:
        raise TileLayoutError(f"a Zero123++ sheet is 3 rows x 2 columns of square views (e.g. 960 x 640), "
                              f"got {img.shape[:2]}")
    S = img.shape[0] // ROWS
    rest = img.shape[2:]
    t = img.reshape(ROWS, S, COLS, S, *rest)
    return np.ascontiguousarray(np.moveaxis(t, 2, 1).reshape(ROWS * COLS, S, S, *rest))


def tile_views(views: np.ndarray) -> np.ndarray:
    """[6, S, S, ...] views in tile order -> [3S, 2S, ...] sheet (the inverse of split_tiles)."""
    views = np.asarray(views)
    if views.ndim < 3 or views.shape[0] != ROWS * COLS or views.shape[1] != views.shape[2]:
        raise TileLayoutError(f"tile_views expects [6, S, S, ...] square views, got {views.shape}")
    S = views.shape[1]
    rest = views.shape[3:]
    t = np.moveaxis(views.reshape(ROWS, COLS, S, S, *rest), 1, 2)
    return np.ascontiguousarray(t.reshape(ROWS * S, COLS * S, *rest))
