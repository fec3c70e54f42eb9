"""The add-on's connection to the backend, its running job, and tick(): the one function bpy.app.timers calls.

tick() polls the DEALER socket without blocking, applies progress and finished replies to the scene, and returns
the next interval (None when nothing is running). Nothing here blocks for longer than the hello timeout.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import bpy

ADDON_PACKAGE = __package__  # "bl_ext.<repo>.relight"
TICK_INTERVAL = 0.1  # seconds between polls while a job runs
LOCAL_START_TIMEOUT = 60.0  # seconds a freshly started local backend gets to answer hello (it imports torch)


class BackendUnavailable(Exception):
    """No usable backend; the message tells the artist what to do."""


def unreachable_message(endpoint: str) -> str:
    return (
        f"No Relight backend answered at {endpoint}: start one with `relight serve` "
        "or enable 'Start a local backend' in the add-on preferences"
    )


@dataclass
class Job:
    """One request in flight: generate, render or bake."""

    action: str
    msg_id: str
    scene_name: str
    started: float = field(default_factory=time.monotonic)
    last_heard: float = field(default_factory=time.monotonic)
    cancel_requested: bool = False


class Session:
    """The DEALER client, the hello info of the backend, and the running job (at most one)."""

    def __init__(self):
        self.client = None
        self.endpoint: str | None = None
        self.hello: dict | None = None
        self.job: Job | None = None
        self.job_timeout = 900.0  # seconds of silence after which a job is given up (from the preferences)
        self.results: list[tuple[str, str]] = []  # (action, outcome) of finished jobs, newest last
        self.last_reply: dict = {}  # content of the last successful job reply, arrays left out

    # -------------------------------------------------------------------------------- connection

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None
        self.hello = None

    def _connect(self, endpoint: str):
        if self.client is None or self.endpoint != endpoint:
            self.close()
            from .relight_protocol.client import Client  # imports zmq from the bundled wheel

            self.client = Client(endpoint)
            self.endpoint = endpoint
        return self.client

    def say_hello(self, endpoint: str, timeout: float) -> dict:
        """hello round trip with `timeout` seconds; returns the reply content or raises BackendUnavailable.

        Progress or replies of a running job that arrive meanwhile are applied as tick() would.
        """
        from .relight_protocol.errors import RemoteError

        client = self._connect(endpoint)
        msg_id = client.request("hello_request", {})
        deadline = time.monotonic() + timeout
        while True:
            for msg in client.poll(timeout_ms=50):
                if msg.parent_id == msg_id:
                    try:
                        msg.raise_for_status()
                    except RemoteError as e:
                        raise BackendUnavailable(f"The Relight backend at {endpoint} refused hello: {e.evalue}")
                    self.hello = dict(msg.content)
                    return self.hello
                self._dispatch(msg)
            if time.monotonic() > deadline:
                # Lazy Pirate: a socket with an unanswered request is dropped, so nothing stale comes back later.
                self._drop_job_for_lost_backend(endpoint)
                self.close()
                raise BackendUnavailable(unreachable_message(endpoint))

    # -------------------------------------------------------------------------------- jobs

    def running_job(self) -> Job | None:
        return self.job

    def start_job(self, action: str, content: dict, scene) -> Job:
        """Send `<action>_request` and start ticking. The caller has just said hello successfully."""
        if self.job is not None:
            raise BackendUnavailable(f"A Relight {self.job.action} job is still running")
        msg_id = self.client.request(f"{action}_request", content)
        self.job = Job(action, msg_id, scene.name)
        status = _status()
        if status is not None:
            status.job_action, status.stage, status.fraction = action, "queued", 0.0
            status.message = f"{action} sent to the backend"
        if not bpy.app.timers.is_registered(tick):
            bpy.app.timers.register(tick, first_interval=TICK_INTERVAL)
        return self.job

    def cancel_running(self) -> None:
        if self.job is None or self.client is None:
            return
        self.client.cancel(self.job.msg_id)
        self.job.cancel_requested = True
        status = _status()
        if status is not None:
            status.message = "cancelling..."

    def _finish(self, outcome: str, error: str = "") -> None:
        job, self.job = self.job, None
        self.results.append((job.action if job else "", outcome))
        status = _status()
        if status is not None:
            status.job_action = ""
            status.stage = ""
            status.fraction = 0.0
            status.message = ""
            status.status_message = outcome
            if error:
                status.last_error = error.strip().splitlines()[0][:300]  # the panel shows one line
        if error:
            print(f"Relight: {error}")

    def _drop_job_for_lost_backend(self, endpoint: str) -> None:
        if self.job is not None:
            self._finish("backend lost", f"The Relight backend at {endpoint} stopped answering; the job was dropped")

    def _dispatch(self, msg) -> None:
        """Apply one incoming message: progress of, or the reply to, the running job. Others are ignored."""
        job = self.job
        if job is None or msg.parent_id != job.msg_id:
            return  # e.g. a cancel reply, or a late message of a job already given up
        job.last_heard = time.monotonic()
        if msg.msg_type == "progress":
            status = _status()
            if status is not None:
                status.stage = str(msg.content.get("stage", ""))
                status.fraction = min(1.0, max(0.0, float(msg.content.get("fraction", 0.0))))
                status.message = str(msg.content.get("message", ""))[:200]
            return
        if msg.is_error:
            ename = str(msg.content.get("ename", "Error"))
            if ename == "Cancelled":
                self._finish(f"{job.action} cancelled")
            else:
                self._finish(f"{job.action} failed", f"{job.action} failed: {msg.content.get('evalue', ename)}")
            return
        scene = bpy.data.scenes.get(job.scene_name)
        if scene is None:
            self._finish(f"{job.action} finished", f"The scene '{job.scene_name}' of this job no longer exists")
            return
        self.last_reply = {k: v for k, v in msg.content.items() if k not in ("image", "data")}
        try:
            outcome = _APPLY[job.action](scene, msg.content)
        except Exception as e:  # a bad reply must not kill the timer; show it instead
            self._finish(f"{job.action} failed", f"Applying the {job.action} result failed: {e}")
            return
        self._finish(outcome)

    def poll_once(self) -> None:
        if self.client is None:
            if self.job is not None:
                self._finish("backend lost", "The connection to the Relight backend was closed")
            return
        for msg in self.client.poll():
            self._dispatch(msg)
        if self.job is not None and time.monotonic() - self.job.last_heard > self.job_timeout:
            self._finish(
                "timed out", f"The Relight backend sent nothing about the {self.job.action} job for "
                f"{self.job_timeout:.0f} s; the job was given up (raise 'Job Silence Timeout' in the preferences)"
            )


# ------------------------------------------------------------------------------------ applying replies

def _apply_generate(scene, content: dict) -> str:
    props = scene.relight
    props.asset_id = str(content["asset_id"])
    props.asset_name = str(content.get("name", props.asset_id))
    stats = content.get("stats") or {}
    seconds = f" in {stats['seconds']:.1f} s" if isinstance(stats.get("seconds"), (int, float)) else ""
    return f"Asset '{props.asset_name}' ready{seconds}"


def _apply_render(scene, content: dict) -> str:
    from . import scene_io

    image = scene_io.write_preview(content["image"])
    _show_image(image)
    return f"Preview written to image '{image.name}'"


def glb_output_dir() -> str:
    """Folder for baked .glb files: //relight/ beside a saved .blend, else a temp folder."""
    if bpy.data.filepath:
        path = bpy.path.abspath("//relight")
    else:
        path = os.path.join(tempfile.gettempdir(), "relight")
    os.makedirs(path, exist_ok=True)
    return path


def _apply_bake(scene, content: dict) -> str:
    from . import scene_io

    data = content["data"]  # [nbytes] uint8, the .glb file
    name = os.path.basename(str(content.get("filename") or "relight_asset.glb")) or "relight_asset.glb"
    if not name.lower().endswith(".glb"):
        name += ".glb"
    path = os.path.join(glb_output_dir(), name)
    with open(path, "wb") as f:
        f.write(memoryview(data).cast("B"))
    with _context_for(scene):
        objects = scene_io.import_glb(path)
    return f"Imported {len(objects)} object(s) from {path}"


_APPLY = {"generate": _apply_generate, "render": _apply_render, "bake": _apply_bake}


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


def _status():
    wm = bpy.context.window_manager
    return getattr(wm, "relight", None) if wm is not None else None


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in (wm.windows if wm else ()):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


# ------------------------------------------------------------------------------------ the timer function

SESSION = Session()


def tick() -> float | None:
    """Poll the backend once, apply what arrived; the next interval in seconds, or None when no job runs.

    bpy.app.timers calls this in Blender; headless tests call it in a loop (bpy as a module has no event loop).
    """
    SESSION.poll_once()
    _redraw()
    return TICK_INTERVAL if SESSION.job is not None else None


# ------------------------------------------------------------------------------------ hello and local backend

class LocalBackend:
    """A `relight serve` child process started by the add-on."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.log_path: str | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, python: str, endpoint: str, store: str) -> None:
        if self.running():
            return
        if not python:
            raise BackendUnavailable(
                "Set 'Backend Python' in the Relight add-on preferences to the Python of an environment "
                "with the relight backend installed"
            )
        if not os.path.isfile(python):
            raise BackendUnavailable(f"Backend Python {python} does not exist")
        store = store or os.path.join(tempfile.gettempdir(), "relight-store")
        os.makedirs(store, exist_ok=True)
        self.log_path = os.path.join(store, "relight-serve.log")
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [python, "-m", "relight.cli", "serve", "--bind", endpoint, "--store", store],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


LOCAL_BACKEND = LocalBackend()


def _apply_hello(hello: dict) -> None:
    status = _status()
    if status is None:
        return
    status.connected = True
    status.server_version = str(hello.get("server_version", "?"))
    status.device = str(hello.get("device", "?"))
    status.local_backend_running = LOCAL_BACKEND.running()


def _mark_disconnected() -> None:
    status = _status()
    if status is not None:
        status.connected = False
        status.server_version = status.device = ""
        status.local_backend_running = LOCAL_BACKEND.running()


def ensure_backend(prefs) -> dict:
    """hello the backend at the preferences' endpoint; start a local one first if asked and none answers.

    Returns the hello reply content; raises BackendUnavailable with an actionable message.
    """
    SESSION.job_timeout = float(prefs.job_timeout)
    timeout = float(prefs.request_timeout)
    if prefs.start_local and not LOCAL_BACKEND.running():
        timeout = min(timeout, 1.0)  # a local backend answers fast; don't make the artist wait before starting one
    try:
        hello = SESSION.say_hello(prefs.endpoint, timeout)
    except BackendUnavailable:
        if not prefs.start_local:
            _mark_disconnected()
            raise
        start_local_backend(prefs)
        try:
            hello = SESSION.say_hello(prefs.endpoint, max(LOCAL_START_TIMEOUT, float(prefs.request_timeout)))
        except BackendUnavailable as e:
            _mark_disconnected()
            raise BackendUnavailable(f"{e} (the local backend did not answer; see {LOCAL_BACKEND.log_path})")
    _apply_hello(hello)
    return hello


def start_local_backend(prefs) -> None:
    LOCAL_BACKEND.start(bpy.path.abspath(prefs.python_path), prefs.endpoint, bpy.path.abspath(prefs.store_dir))
    status = _status()
    if status is not None:
        status.local_backend_running = True


def stop_local_backend() -> None:
    SESSION.close()
    LOCAL_BACKEND.stop()
    _mark_disconnected()


def shutdown() -> None:
    """On unregister: stop ticking, close the socket, stop a backend we started."""
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    SESSION.job = None
    SESSION.close()
    LOCAL_BACKEND.stop()
