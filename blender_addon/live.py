"""The live preview, Blender side: while Live is on, a timer snapshots the view, world, lamps and the asset's placement,
live_state.LivePreview keeps one frame in flight on a socket of its own, and each frame goes into the image
"Relight Preview" and is drawn over the 3D viewport by a POST_PIXEL draw handler with the `gpu` module.

step() is the whole loop body; the timer calls it (bpy as a module has no event loop: tests and `relight bench
--addon` call it in a loop). Only draw() touches the GPU, and Blender calls it only where there is a viewport.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import bpy

from . import live_scene, scene_io, views
from .live_state import Frame, LivePreview, LiveSettings, LiveState

TICK_INTERVAL = 1.0 / 60.0  # seconds between live steps while Live is on
IN_FLIGHT_INTERVAL = 0.005  # seconds between steps while a frame is awaited: its pixels show sooner


@dataclass
class _Live:
    """The live preview's runtime state (one per Blender session); empty while Live is off."""

    preview: LivePreview | None = None
    client: object = None
    endpoint: str = ""
    draw_handle: object = None
    viewport: views.Viewport | None = None  # the view the draw handler saw last
    last_frame: Frame | None = None
    timings: list = field(default_factory=list)  # per frame: {latency, round_trip, decode, upload, server...}
    draw_rect: tuple | None = None


LIVE = _Live()


# ------------------------------------------------------------------------------------ on / off


def running() -> bool:
    return LIVE.preview is not None


def start(endpoint: str, settings: LiveSettings | None = None) -> None:
    """Turn Live on: a client of its own to `endpoint`, the timer and the draw handler."""
    from .relight_protocol.client import Client

    stop()
    LIVE.preview = LivePreview(_equirect_for, settings)
    LIVE.client = Client(endpoint)
    LIVE.endpoint = endpoint
    LIVE.timings = []
    LIVE.draw_handle = bpy.types.SpaceView3D.draw_handler_add(draw, (), "WINDOW", "POST_PIXEL")
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_INTERVAL)


def stop() -> None:
    """Turn Live off: remove the draw handler and the timer, close the socket. Safe to call at any time."""
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    if LIVE.draw_handle is not None:
        bpy.types.SpaceView3D.draw_handler_remove(LIVE.draw_handle, "WINDOW")
        LIVE.draw_handle = None
    if LIVE.client is not None:
        LIVE.client.close()
    LIVE.client = None
    LIVE.preview = None
    LIVE.viewport = None
    LIVE.last_frame = None
    status = getattr(bpy.context.window_manager, "relight", None)
    if status is not None and status.live:  # the toggle follows (its update calls stop() again: live is False then)
        status.live = False
    _tag_redraw()


def handlers_installed() -> bool:
    """True while any of Live's timer or draw handler is registered."""
    return LIVE.draw_handle is not None or bpy.app.timers.is_registered(tick)


# ------------------------------------------------------------------------------------ the loop


def view_camera(scene, max_side: int) -> dict:
    """The camera of the frame: the viewport's own view (as its draw handler saw it) or, in camera view and
    headless, the scene's active camera (views.request_camera); at most max_side pixels on the longer side."""
    return views.request_camera(scene, LIVE.viewport, max_side)[0]


def snapshot(scene, max_side: int | None = None) -> LiveState:
    """What the next frame depends on, read from the scene (no pixel is read). Raises scene_io.SceneIOError."""
    asset_id = scene.relight.asset_id
    if not asset_id:
        raise scene_io.SceneIOError("Generate an asset first: Live shows the current asset")
    key, rotation_z, strength = live_scene.world_reference(scene.world)
    active = bpy.context.view_layer.objects.active if bpy.context.view_layer else None
    camera = view_camera(scene, max_side or views.max_side_preference())
    return LiveState(asset_id=asset_id, camera=camera, world_key=key, rotation_z=rotation_z, strength=strength,
                     lights=live_scene.lamps_to_list(scene),
                     asset_matrix=live_scene.asset_placement(scene, asset_id, active))  # fmt: skip


def _equirect_for(world_key: str):
    """The current scene's world as an equirect (only called when the server does not hold it yet)."""
    return scene_io.world_to_env(bpy.context.scene.world)["equirect"]


def step(scene=None) -> Frame | None:
    """One live step: snapshot, send or receive (never blocks), and put an arrived frame into the image
    "Relight Preview" (and so into the viewport). Returns the frame that arrived, if any."""
    if LIVE.preview is None:
        return None
    scene = scene or bpy.context.scene
    status = getattr(bpy.context.window_manager, "relight", None)
    try:
        LIVE.preview.submit(snapshot(scene))
    except scene_io.SceneIOError as e:
        if status is not None:
            status.live_message = str(e)[:300]
        return None
    frame = LIVE.preview.pump(LIVE.client)
    if frame is not None:
        t = time.perf_counter()
        live_scene.write_live_image(frame.image)
        upload = time.perf_counter() - t
        LIVE.last_frame = frame
        done = time.monotonic()
        LIVE.timings.append({"latency": done - frame.changed_at, "round_trip": frame.received_at - frame.sent_at,
                             "decode": frame.decode_s, "upload": upload, "quality": frame.quality,
                             "server": frame.server})  # fmt: skip
        del LIVE.timings[:-1000]
        _tag_redraw()
    if status is not None:
        status.live_message = LIVE.preview.error or (f"{LIVE.preview.frames} frames" if LIVE.preview.frames else "")
    return frame


def tick() -> float | None:
    """The timer: one step; the next interval while Live is on, None (unregister) once it is off."""
    if LIVE.preview is None:
        return None
    step()
    return IN_FLIGHT_INTERVAL if LIVE.preview is not None and LIVE.preview.in_flight else TICK_INTERVAL


# ------------------------------------------------------------------------------------ drawing (needs a GPU)


def _tag_redraw() -> None:
    wm = bpy.context.window_manager
    for window in (wm.windows if wm else ()):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _camera_frame_rect(context) -> tuple | None:
    """(x0, y0, x1, y1) region pixels of the active camera's frame in camera view."""
    from bpy_extras.view3d_utils import location_3d_to_region_2d

    scene, cam = context.scene, context.scene.camera
    if cam is None:
        return None
    corners = [cam.matrix_world @ v for v in cam.data.view_frame(scene=scene)]
    pts = [location_3d_to_region_2d(context.region, context.region_data, c) for c in corners]
    if any(p is None for p in pts):
        return None
    xs, ys = [p.x for p in pts], [p.y for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def draw() -> None:
    """POST_PIXEL draw handler: remember the view for the next snapshot, then draw the latest frame over the
    viewport (or over the camera frame in camera view) with the builtin IMAGE shader."""
    context = bpy.context
    region, rv3d = context.region, context.region_data
    if LIVE.preview is None or region is None or rv3d is None:
        return
    LIVE.viewport = views.viewport_from(region, rv3d)
    image = bpy.data.images.get(scene_io.PREVIEW_IMAGE_NAME)
    if image is None or LIVE.last_frame is None:
        return
    rect = _camera_frame_rect(context) if LIVE.viewport.camera_view else (0, 0, region.width, region.height)
    if rect is None:
        return
    try:
        import gpu
        from gpu_extras.batch import batch_for_shader

        texture = gpu.texture.from_image(image)
        shader = gpu.shader.from_builtin("IMAGE")
        x0, y0, x1, y1 = rect
        batch = batch_for_shader(shader, "TRI_FAN", {"pos": ((x0, y0), (x1, y0), (x1, y1), (x0, y1)),
                                                     "texCoord": ((0, 0), (1, 0), (1, 1), (0, 1))})  # fmt: skip
        gpu.state.blend_set("ALPHA")
        shader.bind()
        shader.uniform_sampler("image", texture)
        batch.draw(shader)
        gpu.state.blend_set("NONE")
    except Exception as e:  # a draw handler must never raise into Blender's drawing
        print(f"Relight: drawing the live preview failed: {e}")
