"""The live preview's logic without bpy: a scene state snapshot -> a render request, at most one frame in flight
(the latest state wins, nothing queues up), the world sent once and named by its world_id afterwards, and the
step up to `final` quality once the state has been still for a moment. live.py is the Blender side.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

WORLD_ID_CHARS = 40  # a world_id is the first this many hex digits of the SHA-1 of the world's key


@dataclass
class LiveSettings:
    """How the live preview renders."""

    still_seconds: float = 0.4  # after this long without a change, the frame is rendered again at `final`
    reply_timeout: float = 10.0  # seconds a frame may stay unanswered before the backend counts as lost
    final_quality: bool = True  # step up to `final` when still (off: `preview` only)


@dataclass
class LiveState:
    """What a frame depends on, as the wire carries it (plain lists and floats; no bpy)."""

    asset_id: str
    camera: dict  # {viewmat, K, width, height}
    world_key: str  # names the world's light without its rotation and strength ("" = no world: default light)
    rotation_z: float = 0.0
    strength: float = 1.0
    lights: list = field(default_factory=list)  # lamps (relight_protocol.messages.validate_lamp fields)
    asset_matrix: list | None = None  # [4][4] the placement object's matrix relative to where the asset was made

    def key(self) -> str:
        """A digest of everything the frame depends on: equal keys, equal frames."""
        body = {"a": self.asset_id, "c": self.camera, "w": self.world_key, "r": round(self.rotation_z, 7),
                "s": round(self.strength, 7), "l": self.lights, "m": self.asset_matrix}  # fmt: skip
        return hashlib.sha1(json.dumps(body, sort_keys=True, default=_plain).encode()).hexdigest()


def _plain(x):
    """JSON for numpy values in a state."""
    return x.tolist() if isinstance(x, np.ndarray) else float(x)


def world_id_for(world_key: str) -> str:
    return hashlib.sha1(world_key.encode()).hexdigest()[:WORLD_ID_CHARS]


@dataclass
class Frame:
    """A finished frame: its pixels and where its time went."""

    image: np.ndarray  # [H, W, 4] uint8 AgX sRGB, straight alpha, row 0 = top
    state_key: str
    quality: str
    changed_at: float  # time.monotonic() of the state change this frame shows
    sent_at: float
    received_at: float
    decode_s: float  # the client's poll() that received and decoded the reply
    server: dict  # the reply's timings (render stages, server_total), seconds


class LivePreview:
    """At most one render request in flight. submit() records the newest state; pump() polls the client without
    blocking, and when nothing is in flight sends the newest state not yet shown (or the same state at `final`
    once it has been still for LiveSettings.still_seconds). A final frame overtaken by a new state is cancelled, so
    moving again never waits for it. Returns the Frame that arrived, if any.

    `equirect_for(world_key)` -> [h, w, 3] float32 is called only when the server does not hold that world yet."""

    def __init__(self, equirect_for: Callable[[str], np.ndarray], settings: LiveSettings | None = None):
        self.equirect_for = equirect_for
        self.settings = settings or LiveSettings()
        self.state: LiveState | None = None
        self.state_key = ""
        self.changed_at = 0.0
        self.in_flight: dict | None = None  # {msg_id, key, quality, sent_at, changed_at}
        self.shown: tuple[str, str] | None = None  # (state key, quality) of the last frame shown
        self.worlds_sent: set[str] = set()  # world keys the server holds (as far as we know)
        self.error = ""  # the last error, for the panel ("" when frames arrive)
        self.cancelled: list[str] = []  # msg_ids of final frames cancelled because the state moved on
        self.cancel_requests: list[str] = []  # msg_ids of the cancel requests that did so
        self.frames = 0

    # ---------------------------------------------------------------------------------------- state

    def submit(self, state: LiveState, now: float | None = None) -> bool:
        """Record the newest state; True when it differs from the previous one."""
        key = state.key()
        if key == self.state_key:
            return False
        self.state, self.state_key = state, key
        self.changed_at = time.monotonic() if now is None else now
        return True

    def _wanted(self, now: float) -> str | None:
        """The quality to send now for the newest state, or None when nothing needs sending."""
        if self.state is None:
            return None
        if self.shown is None or self.shown[0] != self.state_key:
            return "preview"
        if (self.settings.final_quality and self.shown[1] != "final"
                and now - self.changed_at >= self.settings.still_seconds):  # fmt: skip
            return "final"
        return None

    def request(self, quality: str) -> dict:
        """The render_request content for the newest state (the equirect only when the server lacks the world)."""
        s = self.state
        content = {"asset_id": s.asset_id, "camera": s.camera, "quality": quality, "background": False,
                   "lights": s.lights}  # fmt: skip
        if s.asset_matrix is not None:
            content["asset_matrix"] = s.asset_matrix
        if s.world_key:
            world = {"world_id": world_id_for(s.world_key), "rotation_z": float(s.rotation_z),
                     "strength": float(s.strength)}  # fmt: skip
            if s.world_key not in self.worlds_sent:
                world["equirect"] = np.ascontiguousarray(self.equirect_for(s.world_key), dtype=np.float32)
            content["world"] = world
        return content

    # ---------------------------------------------------------------------------------------- the loop

    def pump(self, client, now: float | None = None) -> Frame | None:
        """One non-blocking step: receive the in-flight reply if it came, then send the next request if one is
        due. The client is a relight_protocol Client of its own (not the job Session's)."""
        frame = None
        if self.in_flight is not None:
            t = time.perf_counter()
            msgs = client.poll()
            decode = time.perf_counter() - t
            for msg in msgs:
                if msg.parent_id == self.in_flight["msg_id"] and msg.msg_type != "progress":
                    frame = self._reply(msg, decode)
                    break
            now = time.monotonic() if now is None else now
            if self.in_flight is not None and now - self.in_flight["sent_at"] > self.settings.reply_timeout:
                self.error = f"the backend did not answer a frame within {self.settings.reply_timeout:.0f} s"
                self.in_flight = None
                client.reconnect()  # Lazy Pirate: drop the socket, so the late reply never arrives
                self.worlds_sent.clear()  # perhaps another server now
        now = time.monotonic() if now is None else now
        if (self.in_flight is not None and self.in_flight["quality"] == "final"
                and self.in_flight["key"] != self.state_key):  # fmt: skip
            # a final frame (seconds) of a state already left behind: cancel it (the server stops it between
            # shading bands) and send the new state now; its reply, if any, is ignored
            self.cancel_requests.append(client.cancel(self.in_flight["msg_id"]))
            self.cancelled.append(self.in_flight["msg_id"])
            del self.cancelled[:-100], self.cancel_requests[:-100]
            self.in_flight = None
        if self.in_flight is None:
            quality = self._wanted(now)
            if quality is not None:
                content = self.request(quality)
                msg_id = client.request("render_request", content)
                if "equirect" in content.get("world", {}):
                    self.worlds_sent.add(self.state.world_key)
                self.in_flight = {"msg_id": msg_id, "key": self.state_key, "quality": quality,
                                  "sent_at": time.monotonic(), "changed_at": self.changed_at}  # fmt: skip
        return frame

    def _reply(self, msg, decode_s: float) -> Frame | None:
        sent, self.in_flight = self.in_flight, None
        if msg.content.get("status") != "ok":
            ename = str(msg.content.get("ename", "Error"))
            if ename == "UnknownWorld":  # the server dropped it (or restarted): the next request carries it again
                self.worlds_sent.clear()
                return None
            self.error = f"{ename}: {msg.content.get('evalue', '')}"[:300]
            self.shown = (sent["key"], sent["quality"])  # do not retry the same failing state in a loop
            return None
        self.error = ""
        self.shown = (sent["key"], sent["quality"])
        self.frames += 1
        return Frame(msg.content["image"], sent["key"], sent["quality"], sent["changed_at"], sent["sent_at"],
                     time.monotonic(), decode_s, dict(msg.content.get("timings") or {}))  # fmt: skip

    def renders_pending(self, client) -> int:
        """Render requests sent and not answered, less the cancelled ones (at most 1: the one in flight)."""
        gone = set(self.cancelled) | set(self.cancel_requests)
        return sum(1 for m in client.pending if m not in gone)
