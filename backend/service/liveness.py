"""Heartbeats, the server's side: which clients heartbeat (send ping_request every HEARTBEAT_INTERVAL_S) and which
of them went silent; the settings of the keepalive progress for a job silent in one long step."""

import time
from dataclasses import dataclass

HEARTBEAT_INTERVAL_S = 1.0  # a heartbeating client pings this often; the ping reply is the server's heartbeat
HEARTBEAT_LIVENESS_S = 2.5  # a dead backend's link drops within this (ZMTP heartbeats, relight_protocol.client)


@dataclass(frozen=True)
class LivenessSettings:
    keepalive_s: float = 1.0
    """A running job that has reported nothing for this long gets its last progress again ("still working")."""
    client_timeout_s: float = 30.0
    """A client that heartbeats and then goes silent this long is gone: its unfinished jobs are cancelled. Long
    enough for a Blender busy saving a big file, which runs no timers meanwhile."""

    def as_dict(self) -> dict:
        return {"interval_s": HEARTBEAT_INTERVAL_S, "liveness_s": HEARTBEAT_LIVENESS_S,
                "keepalive_s": self.keepalive_s, "client_timeout_s": self.client_timeout_s}


class Peers:
    """When each client (ROUTER identity) was last heard; the ones that heartbeat are expired when silent."""

    def __init__(self, settings: LivenessSettings | None = None):
        self.settings = settings or LivenessSettings()
        self._seen: dict[bytes, float] = {}  # heartbeating peer -> last message time (monotonic)

    def seen(self, peer: bytes, heartbeat: bool = False, now: float | None = None) -> None:
        if heartbeat or peer in self._seen:
            self._seen[peer] = time.monotonic() if now is None else now

    def expired(self, now: float | None = None) -> list[bytes]:
        """Heartbeating peers silent for client_timeout_s, forgotten from here on."""
        now = time.monotonic() if now is None else now
        gone = [p for p, t in self._seen.items() if now - t > self.settings.client_timeout_s]
        for p in gone:
            del self._seen[p]
        return gone
