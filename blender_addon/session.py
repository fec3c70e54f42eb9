"""The Blender side of a backend job: the add-on's one Session and LocalBackend, tick() (the function bpy.app.timers
calls), and what puts a job's events and results into Blender (WindowManager.relight, the preview image, the GLB).

connection.py holds the connection and the job bookkeeping (no bpy), local_backend.py the `relight serve` child
process, scene_io.py the datablock conversions. tick() polls without blocking and returns the next interval (None
when nothing is running).
"""

from __future__ import annotations

import os

import bpy

from .connection import (AuthenticationFailed, BackendState, BackendUnavailable, Cancelling, Finished, Job,  # noqa: F401
                         Progress, ResultDiscarded, Session, Started, unreachable_message)
from .local_backend import LOCAL_START_TIMEOUT, LocalBackend

ADDON_PACKAGE = __package__  # "bl_ext.<repo>.relight"
TICK_INTERVAL = 0.1  # seconds between polls while a job runs
IDLE_TICK_INTERVAL = 0.25  # seconds between polls while connected and idle (heartbeats, reconnecting)
ERROR_LINE_CHARS = 300  # the panel shows the first line of an error, cut to this many characters


# ------------------------------------------------------------------------------------ the panel's status

def _status():
    wm = bpy.context.window_manager
    return getattr(wm, "relight", None) if wm is not None else None


def show_event(event) -> None:
    """Copy one job event into WindowManager.relight (the panel draws it); an error also goes to the console."""
    status = _status()
    if status is not None:
        if isinstance(event, Started):
            status.job_action, status.stage, status.fraction = event.action, "queued", 0.0
            status.message = event.message
        elif isinstance(event, Progress):
            status.stage, status.fraction, status.message = event.stage, event.fraction, event.message
        elif isinstance(event, Cancelling):
            status.message = event.message
        elif isinstance(event, Finished):
            status.job_action = status.stage = status.message = ""
            status.fraction = 0.0
            status.status_message = event.outcome
            if event.error:
                status.last_error = event.error.strip().splitlines()[0][:ERROR_LINE_CHARS]
    if isinstance(event, BackendState):
        _show_connected(event.hello if event.up else None)
        if status is not None:
            status.status_message = event.message
    if isinstance(event, Finished) and event.error:
        print(f"Relight: {event.error}")


def _show_connected(hello: dict | None, auth_failed: bool = False) -> None:
    """The backend's version and device after a hello; cleared when `hello` is None (auth_failed: because the
    backend refused this machine's keys)."""
    status = _status()
    if status is None:
        return
    connected = hello is not None
    status.connected = connected
    status.auth_failed = auth_failed
    status.server_version = str(hello.get("server_version", "?")) if connected else ""
    status.device = str(hello.get("device", "?")) if connected else ""
    if connected and isinstance(hello.get("providers"), list):
        from .ui import props

        props.BACKEND_PROVIDERS[:] = [str(p) for p in hello["providers"]]
    status.local_backend_running = LOCAL_BACKEND.running()


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in (wm.windows if wm else ()):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


# ------------------------------------------------------------------------------------ applying results

def _apply_generate(scene, content: dict) -> str:
    props = scene.relight
    props.asset_id = str(content["asset_id"])
    props.asset_name = str(content.get("name", props.asset_id))
    stats = content.get("stats") or {}
    seconds = f" in {stats['seconds']:.1f} s" if isinstance(stats.get("seconds"), (int, float)) else ""
    check = content.get("self_check") or {}  # how sure the backend is of the asset
    repro = check.get("reproduction_psnr")
    fit = f", reproduces the photo at {repro:.1f} dB" if isinstance(repro, (int, float)) else ""
    if isinstance(check.get("roughness"), (int, float)) and isinstance(check.get("metallic"), (int, float)):
        fit += f" (roughness {check['roughness']:.2f}, metallic {check['metallic']:.2f})"
    status = bpy.context.window_manager.relight
    status.last_warning = " ".join(str(w) for w in check.get("warnings") or [])[:300]
    return f"Asset '{props.asset_name}' ready{seconds}{fit}"


def _apply_render(scene, content: dict) -> str:
    from . import scene_io

    image = scene_io.write_preview(content["image"])
    _show_image(image)
    return f"Preview written to image '{image.name}'"


def glb_output_dir() -> str:
    """Folder for the files the add-on writes (.glb, .mp4): //relight/ beside a saved .blend, else this user's
    private temp folder (private_files.private_dir: mode 0700, never a shared one)."""
    from .private_files import private_dir

    if bpy.data.filepath:
        path = bpy.path.abspath("//relight")
        os.makedirs(path, exist_ok=True)
        return path
    return private_dir()


def _apply_reconstruct(scene, content: dict) -> str:
    """A reconstruction is an asset like a generated one (Preview Relit works on it) and comes with its own GLB,
    which is imported at once."""
    ready = _apply_generate(scene, content)
    return f"{ready}; {_apply_bake(scene, content)}"


def _apply_match_photo(scene, content: dict) -> str:
    from . import scene_io

    with _context_for(scene):
        cam = scene_io.camera_from_dict(content["camera"], scene, image=scene.relight.image)
    iou = content.get("iou")
    fit = f" (silhouette IoU {iou:.2f})" if isinstance(iou, (int, float)) else ""
    warning = content.get("warning")
    if warning:
        bpy.context.window_manager.relight.last_warning = str(warning)[:300]
    return f"Camera '{cam.name}' sees the mesh as the photo does{fit}"


def _apply_bake(scene, content: dict) -> str:
    from . import live_scene, placement, scene_io

    data = content["data"]  # [nbytes] uint8, the .glb file
    name = os.path.basename(str(content.get("filename") or "relight_asset.glb")) or "relight_asset.glb"
    if not name.lower().endswith(".glb"):
        name += ".glb"
    from .private_files import write_new_file

    path = write_new_file(glb_output_dir(), name, data)  # a new file: never follows nor replaces one planted there
    with _context_for(scene):
        anchor = placement.selection_anchor(scene)  # before the import, which selects what it creates
        objects = scene_io.import_glb(path)
        if content.get("provider") != "scene":  # a scene mesh's asset stays where the artist's mesh is
            placement.place_where_seen(objects, anchor, scene.cursor.location)
    for obj in objects:  # each imported object places the asset in the live preview
        if obj.parent is None and scene.relight.asset_id:
            live_scene.tag_placement(obj, scene.relight.asset_id)
    return f"Imported {len(objects)} object(s) from {path}"


_APPLY = {"generate": _apply_generate, "reconstruct": _apply_reconstruct, "match_photo": _apply_match_photo,
          "render": _apply_render, "bake": _apply_bake}


def apply_reply(job: Job, content: dict) -> str:
    """Put the ok reply of `job` into its scene; returns the status line. Session calls this."""
    scene = bpy.data.scenes.get(job.scene_name)
    if scene is None:
        raise ResultDiscarded(f"The scene '{job.scene_name}' of this job no longer exists")
    return _APPLY[job.action](scene, content)


def _context_for(scene):
    """A context override with a window (timers run without one) and the job's scene."""
    wm = bpy.context.window_manager
    kwargs = {"scene": scene}
    if wm is not None and wm.windows:
        window = wm.windows[0]
        kwargs.update(window=window, screen=window.screen)
    return bpy.context.temp_override(**kwargs)


def _show_image(image) -> None:
    """Show `image` in any open Image Editor (none in background mode)."""
    wm = bpy.context.window_manager
    for window in (wm.windows if wm else ()):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image


# ------------------------------------------------------------------------------------ the timer function

SESSION = Session(apply_reply, show_event)
LOCAL_BACKEND = LocalBackend()


def tick() -> float | None:
    """Poll the backend once, apply what arrived; the next interval in seconds, or None when no job runs.

    bpy.app.timers calls this in Blender; headless tests call it in a loop (bpy as a module has no event loop).
    """
    before = (SESSION.state, SESSION.job)
    SESSION.poll_once()
    if before[1] is not None or before != (SESSION.state, SESSION.job):  # idle heartbeats change nothing shown
        _redraw()
    if SESSION.job is not None:
        return TICK_INTERVAL
    return IDLE_TICK_INTERVAL if SESSION.state in ("up", "down") else None


def _ensure_ticking() -> None:
    """Keep tick() running: it heartbeats the backend and reconnects by itself."""
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_INTERVAL)


def start_job(action: str, content: dict, scene):
    """Send `<action>_request` for `scene` and start ticking. The caller has just said hello successfully."""
    job = SESSION.start_job(action, content, scene.name)
    _ensure_ticking()
    return job


def retry_job():
    """Send the last failed job again (Retry). The caller has just checked the backend."""
    job = SESSION.retry()
    _ensure_ticking()
    return job


# ------------------------------------------------------------------------------------ hello and local backend

def ensure_backend(prefs) -> dict:
    """hello the backend at the preferences' endpoint; start a local one first if asked and none answers.

    Returns the hello reply content; raises BackendUnavailable with an actionable message.
    """
    SESSION.job_timeout = float(prefs.job_timeout)
    curve = curve_keys(prefs)
    if SESSION.backend_up(prefs.endpoint, curve):  # the heartbeat vouches for it: no round trip, no wait
        return SESSION.hello
    if SESSION.backend_down(prefs.endpoint) and not (prefs.start_local and not LOCAL_BACKEND.running()):
        _ensure_ticking()  # the heartbeat is reconnecting: say so at once rather than block on another hello
        raise BackendUnavailable(f"{unreachable_message(prefs.endpoint)} (retrying by itself every second; the "
                                 "panel shows when it is back)")
    try:
        return _hello_first_contact(prefs, curve)
    finally:
        _ensure_ticking()


def _hello_first_contact(prefs, curve) -> dict:
    """The blocking hello of ensure_backend, only when the backend's state is not known yet."""
    timeout = float(prefs.request_timeout)
    if prefs.start_local and not LOCAL_BACKEND.running():
        timeout = min(timeout, 1.0)  # a local backend answers fast; don't make the artist wait before starting one
    try:
        hello = SESSION.say_hello(prefs.endpoint, timeout, curve)
    except AuthenticationFailed:
        _show_connected(None, auth_failed=True)
        raise
    except BackendUnavailable:
        if not prefs.start_local:
            _show_connected(None)
            raise
        start_local_backend(prefs)
        try:
            hello = SESSION.say_hello(prefs.endpoint, max(LOCAL_START_TIMEOUT, float(prefs.request_timeout)), curve)
        except BackendUnavailable as e:
            _show_connected(None)
            raise BackendUnavailable(f"{e} (the local backend did not answer; see {LOCAL_BACKEND.log_path})")
    _show_connected(hello)
    return hello


def curve_keys(prefs):
    """The preferences' CURVE keys (CurveKeys, read from the files or pasted text), None when none are set; a key that
    cannot be read raises BackendUnavailable saying which."""
    from .relight_protocol.curve_keys import CurveKeys, KeyFormatError

    try:
        return CurveKeys.from_settings(bpy.path.abspath(prefs.server_public_key) if _is_path(prefs.server_public_key)
                                       else prefs.server_public_key,
                                       bpy.path.abspath(prefs.client_key_pair) if _is_path(prefs.client_key_pair)
                                       else prefs.client_key_pair,
                                       prefs.client_public_key)
    except KeyFormatError as e:
        raise BackendUnavailable(f"Relight backend keys (add-on preferences): {e}") from None


def _is_path(setting: str) -> bool:
    """A Blender-relative path ('//keys/server.key') to make absolute; key text is left as it is."""
    return setting.strip().startswith("//")


def start_local_backend(prefs) -> None:
    LOCAL_BACKEND.start(bpy.path.abspath(prefs.python_path), prefs.endpoint, bpy.path.abspath(prefs.store_dir))
    status = _status()
    if status is not None:
        status.local_backend_running = True


def stop_local_backend() -> None:
    SESSION.close()
    LOCAL_BACKEND.stop()
    _show_connected(None)


def shutdown() -> None:
    """On unregister: stop ticking, close the socket, stop a backend we started."""
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    from . import live

    live.stop()  # the live preview's timer, draw handler and socket
    SESSION.abandon()
    LOCAL_BACKEND.stop()
