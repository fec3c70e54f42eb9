"""The view a request is seen from: a 3D viewport's own (its matrices -> the wire camera) or the scene's active camera.
choose_view() decides which from plain values; the live preview, Show Passes and Render Turntable all go through it."""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from .scene_io import SceneIOError, blender_camera_to_viewmat, camera_to_dict

DEFAULT_MAX_SIDE = 512  # a viewport's render's longer side when no preference says otherwise (live_max_side)
VIEWPORT, CAMERA = "viewport", "camera"  # what choose_view() picks
SOURCE_LABELS = {VIEWPORT: "the 3D viewport's view", CAMERA: "the active camera"}


class NoView(SceneIOError):
    """Neither a 3D viewport nor an active camera to render from: a warning, not an error."""

    level = "WARNING"


NO_VIEW = ("Nothing to render from: run this from a 3D viewport, or add a camera and make it active "
           "(Ctrl+Numpad 0)")  # fmt: skip


@dataclass(frozen=True)
class Viewport:
    """A 3D viewport as its region shows it, in plain values."""

    view: tuple  # [4][4] RegionView3D.view_matrix: world -> view, OpenGL (looks down -Z)
    window: tuple  # [4][4] RegionView3D.window_matrix: the projection
    width: int  # pixels of the region (its WINDOW region)
    height: int
    camera_view: bool  # looking through the scene's active camera (Numpad 0)


def choose_view(viewport: Viewport | None, has_camera: bool) -> str | None:
    """Which view to render from: VIEWPORT when there is a viewport that is not in camera view; else CAMERA when the
    scene has an active camera (camera view, or no viewport: headless, a script); None when neither."""
    if viewport is not None and not viewport.camera_view:
        return VIEWPORT
    return CAMERA if has_camera else None


def viewport_from(region, rv3d) -> Viewport:
    """A WINDOW region of a 3D view and its RegionView3D -> Viewport (the matrices as Blender last drew them)."""
    return Viewport(view=tuple(tuple(r) for r in rv3d.view_matrix), window=tuple(tuple(r) for r in rv3d.window_matrix),
                    width=int(region.width), height=int(region.height),
                    camera_view=rv3d.view_perspective == "CAMERA")  # fmt: skip


def viewport_of(context) -> Viewport | None:
    """The 3D viewport an operator runs for: context.area when it is a 3D view (its sidebar's buttons, a shortcut
    over it), else the first 3D view of the window; None without one. Blender in background mode draws no viewport
    (a 3D view's matrices are those the file was saved with), so there only an area named by context.area counts."""
    area = context.area if context.area is not None and context.area.type == "VIEW_3D" else None
    if area is None and not bpy.app.background and context.window is not None:
        area = next((a for a in context.window.screen.areas if a.type == "VIEW_3D"), None)
    if area is None:
        return None
    region, rv3d = context.region, context.region_data
    if region is None or region.type != "WINDOW" or rv3d is None or context.area != area:
        rv3d = area.spaces.active.region_3d  # the sidebar's button: the view's own (quad view: its camera region)
        region = next((r for r in reversed(area.regions) if r.type == "WINDOW"), None)  # quad views: equal sizes
    if region is None or rv3d is None or min(region.width, region.height) < 1:
        return None
    return viewport_from(region, rv3d)


def view_to_camera(view_matrix, window_matrix, width: int, height: int) -> dict:
    """A 3D viewport's view (RegionView3D.view_matrix: world -> view, OpenGL; window_matrix: the perspective
    projection) at width x height pixels -> {viewmat [4, 4] world-to-camera (OpenCV), K [3, 3], width, height}."""
    P = np.asarray(window_matrix, dtype=np.float64)
    if abs(P[3, 3]) > 1e-9 or abs(P[3, 2] + 1.0) > 1e-6:
        raise SceneIOError("Relight needs a perspective view: toggle the viewport's projection with Numpad 5")
    V = np.asarray(view_matrix, dtype=np.float64)
    viewmat = blender_camera_to_viewmat(np.linalg.inv(V))  # GL_TO_CV @ V: one conversion, in conventions
    K = np.array([[0.5 * width * P[0, 0], 0.0, 0.5 * width * (1.0 - P[0, 2])],
                  [0.0, 0.5 * height * P[1, 1], 0.5 * height * (1.0 + P[1, 2])],
                  [0.0, 0.0, 1.0]])  # fmt: skip
    return {"viewmat": viewmat.tolist(), "K": K.tolist(), "width": int(width), "height": int(height)}


def capped_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled down to at most max_side pixels on the longer side, aspect kept."""
    k = min(1.0, max_side / max(width, height, 1))
    return max(1, round(width * k)), max(1, round(height * k))


def _resized(cam: dict, width: int, height: int) -> dict:
    """A wire camera at width x height pixels instead (the same view: K scaled with the width)."""
    if (width, height) == (cam["width"], cam["height"]):
        return cam
    k = width / cam["width"]
    K = cam["K"]
    return {**cam, "K": [[K[0][0] * k, 0.0, K[0][2] * k], [0.0, K[1][1] * k, K[1][2] * k], [0.0, 0.0, 1.0]],
            "width": width, "height": height}  # fmt: skip


def request_camera(scene, viewport: Viewport | None, max_side: int, cap_camera: bool = True) -> tuple[dict, str]:
    """(the wire camera, VIEWPORT or CAMERA) to render from, as choose_view() picks it: the viewport's view at its
    region's size, or the active camera at the render size; at most max_side pixels on the longer side (the active
    camera's only when cap_camera). Raises NoView when there is neither, SceneIOError for a view Relight cannot
    use (orthographic)."""
    source = choose_view(viewport, scene.camera is not None)
    if source is None:
        raise NoView(NO_VIEW)
    if source == VIEWPORT:
        w, h = capped_size(viewport.width, viewport.height, max_side)
        return view_to_camera(viewport.view, viewport.window, w, h), source
    cam = camera_to_dict(scene.camera, scene)
    return (_resized(cam, *capped_size(cam["width"], cam["height"], max_side)) if cap_camera else cam), source


def max_side_preference() -> int:
    """The preferences' live_max_side: the longer side of what is rendered from a viewport."""
    try:
        prefs = bpy.context.preferences.addons[__package__].preferences
        return int(getattr(prefs, "live_max_side", DEFAULT_MAX_SIDE))
    except (KeyError, AttributeError):
        return DEFAULT_MAX_SIDE
