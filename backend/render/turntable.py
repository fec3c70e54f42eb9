"""Turntables: the frames of one full turn of the camera about the asset (orbit) or of the world about the vertical
axis (spin_world), rendered by render.frame."""

import math
from collections.abc import Iterator

import numpy as np

from ..core.asset import RelightableAsset
from ..core.camera import Camera
from ..core.envmap import Environment
from ..core.progress import no_progress
from .frame import render
from .settings import PREVIEW, RenderSettings


def asset_centre(asset: RelightableAsset) -> np.ndarray:
    """[3] world-space centre of the asset's mesh bounds: what an orbit turns about."""
    lo, hi = asset.vertices.min(0).astype(np.float64), asset.vertices.max(0).astype(np.float64)
    c = (lo + hi) / 2
    return asset.model_matrix[:3, :3] @ c + asset.model_matrix[:3, 3]


def orbit_camera(camera: Camera, pivot: np.ndarray, angle: float) -> Camera:
    """`camera` turned by `angle` radians about the world Z axis through `pivot` (counter-clockwise seen from +Z):
    its position and its orientation turn together, so the asset stays where it was in the frame."""
    c, s = math.cos(angle), math.sin(angle)
    turn = np.eye(4)  # world -> world: T(pivot) Rz(angle) T(-pivot)
    turn[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    turn[:3, 3] = pivot - turn[:3, :3] @ pivot
    return Camera(camera.viewmat @ np.linalg.inv(turn), camera.K.copy(), camera.width, camera.height)


def turntable_frames(asset: RelightableAsset, camera: Camera, env: Environment, frames: int, mode: str = "orbit",
                     settings: RenderSettings = PREVIEW, background: bool = True,
                     progress=no_progress) -> Iterator[np.ndarray]:  # fmt: skip
    """Yield `frames` [H, W, 4] uint8 AgX sRGB frames of one full turn (frame k at 2π k / frames: the last frame
    is one step short of the first, so the video loops). mode "orbit" turns the camera about the asset's centre,
    "spin_world" adds the turn to the world's Z rotation. progress(stage, fraction, message) is called per frame
    (and raises when the job is cancelled)."""
    if mode not in ("orbit", "spin_world"):
        raise ValueError(f"turntable mode must be 'orbit' or 'spin_world', got {mode!r}")
    pivot = asset_centre(asset)
    for k in range(frames):
        angle = 2 * math.pi * k / frames
        progress("turntable", k / frames, f"frame {k + 1} of {frames}")
        if mode == "orbit":
            cam, light = orbit_camera(camera, pivot, angle), env
        else:
            cam, light = camera, env.with_transform(env.rotation_z + angle, env.strength)
        yield render(asset, cam, light, settings, background=background, passes=False).rgba8
