"""The add-on's connection to the backend and its running job, without bpy: the DEALER client, the backend's hello,
the one job in flight, and what the job's progress and reply messages mean, as plain events.

session.py is the Blender side: it passes `apply_reply` (puts a finished job's result into the scene) and `on_event`
(shows events in the panel). Nothing here blocks for longer than the hello timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .relight_protocol.errors import RemoteError

PROGRESS_MESSAGE_CHARS = 200  # a progress message is cut to this many characters for the panel


class BackendUnavailable(Exception):
    """No usable backend; the message tells the artist what to do."""


class AuthenticationFailed(BackendUnavailable):
    """The backend is there but refused this machine's CURVE keys (wrong or missing): not "unreachable"."""


class ResultDiscarded(Exception):
    """Raised by `apply_reply` when a job's result has nowhere to go (e.g. its scene was deleted meanwhile): the job
    counts as finished, with this message as its error."""


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
    scene_name: str  # the scene its result goes to
    started: float = field(default_factory=time.monotonic)
    last_heard: float = field(default_factory=time.monotonic)
    cancel_requested: bool = False


# ------------------------------------------------------------------------------------ events (what the panel shows)

@dataclass(frozen=True)
class Started:
    """A job request was sent."""

    action: str
    message: str


@dataclass(frozen=True)
class Progress:
    """Progress of the running job."""

    stage: str
    fraction: float  # [0, 1]
    message: str  # at most PROGRESS_MESSAGE_CHARS


@dataclass(frozen=True)
class Cancelling:
    """Cancelling the running job was asked for."""

    action: str
    message: str


@dataclass(frozen=True)
class Finished:
    """The running job ended (done, failed, cancelled, given up or lost)."""

    action: str
    outcome: str  # the status line, e.g. "generate cancelled" or "Preview written to image 'Relight Preview'"
    error: str = ""  # why it did not go well, for the panel and the console; "" when it did


class Session:
    """The DEALER client, the hello info of the backend, and the running job (at most one).

    apply_reply(job, content) -> outcome: puts the ok reply of `job` into the scene (may raise; ResultDiscarded
    when the result has nowhere to go). on_event(event): every Started / Progress / Cancelling / Finished.
    """

    def __init__(self, apply_reply: Callable[[Job, dict], str], on_event: Callable[[object], None] | None = None):
        self.apply_reply = apply_reply
        self.on_event = on_event or (lambda event: None)
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

    def abandon(self) -> None:
        """Forget the running job without a Finished event and close the socket (the add-on is unregistering)."""
        self.job = None
        self.close()

    def _connect(self, endpoint: str, curve=None):
        if self.client is None or self.endpoint != endpoint or self.client.curve != curve:
            self.close()
            # Imported here: it imports zmq (the add-on's bundled wheel), and this module must import without it.
            from .relight_protocol.client import Client

            self.client = Client(endpoint, curve=curve)
            self.endpoint = endpoint
        return self.client

    def _refused(self, endpoint: str) -> None:
        """Raise AuthenticationFailed (and drop the socket) when the backend refused our handshake."""
        refused = self.client.handshake_failure() if self.client is not None else None
        if refused:
            if self.job is not None:
                self._finish("backend refused", f"The Relight backend at {endpoint} refused this machine: {refused}")
            self.close()
            raise AuthenticationFailed(f"Relight backend at {endpoint}: {refused}")

    def say_hello(self, endpoint: str, timeout: float, curve=None) -> dict:
        """hello round trip with `timeout` seconds; returns the reply content or raises BackendUnavailable
        (AuthenticationFailed as soon as the socket monitor sees the backend refuse our keys).

        curve: relight_protocol.curve_keys.CurveKeys for a backend started with --keys, else None.
        Progress or replies of a running job that arrive meanwhile are dispatched as poll_once() would.
        """
        client = self._connect(endpoint, curve)
        msg_id = client.request("hello_request", {})
        deadline = time.monotonic() + timeout
        while True:
            self._refused(endpoint)
            for msg in client.poll(timeout_ms=50):
                if msg.parent_id == msg_id:
                    try:
                        msg.raise_for_status()
                    except RemoteError as e:
                        if e.ename == "KeyNotAllowed":  # its key left the allow-list while we were connected
                            self.close()
                            raise AuthenticationFailed(f"Relight backend at {endpoint}: {e.evalue}") from None
                        raise BackendUnavailable(f"The Relight backend at {endpoint} refused hello: {e.evalue}")
                    self.hello = dict(msg.content)
                    return self.hello
                self._dispatch(msg)
            if time.monotonic() > deadline:
                self._refused(endpoint)
                # Lazy Pirate: a socket with an unanswered request is dropped, so nothing stale comes back later.
                if self.job is not None:
                    self._finish("backend lost",
                                 f"The Relight backend at {endpoint} stopped answering; the job was dropped")
                self.close()
                raise BackendUnavailable(unreachable_message(endpoint))

    # -------------------------------------------------------------------------------- jobs

    def running_job(self) -> Job | None:
        return self.job

    def start_job(self, action: str, content: dict, scene_name: str) -> Job:
        """Send `<action>_request`; its result goes to the scene `scene_name`. The caller has just said hello."""
        if self.job is not None:
            raise BackendUnavailable(f"A Relight {self.job.action} job is still running")
        if self.client is None:
            raise BackendUnavailable("Not connected to a Relight backend")
        msg_id = self.client.request(f"{action}_request", content)
        self.job = Job(action, msg_id, scene_name)
        self.on_event(Started(action, f"{action} sent to the backend"))
        return self.job

    def cancel_running(self) -> None:
        if self.job is None or self.client is None:
            return
        self.client.cancel(self.job.msg_id)
        self.job.cancel_requested = True
        self.on_event(Cancelling(self.job.action, "cancelling..."))

    def _finish(self, outcome: str, error: str = "") -> None:
        job, self.job = self.job, None
        action = job.action if job else ""
        self.results.append((action, outcome))
        self.on_event(Finished(action, outcome, error))

    def _dispatch(self, msg) -> None:
        """Handle one incoming message: progress of, or the reply to, the running job. Others are ignored."""
        job = self.job
        if job is None or msg.parent_id != job.msg_id:
            return  # e.g. a cancel reply, or a late message of a job already given up
        job.last_heard = time.monotonic()
        if msg.msg_type == "progress":
            self.on_event(Progress(
                str(msg.content.get("stage", "")),
                min(1.0, max(0.0, float(msg.content.get("fraction", 0.0)))),
                str(msg.content.get("message", ""))[:PROGRESS_MESSAGE_CHARS],
            ))
            return
        if msg.is_error:
            ename = str(msg.content.get("ename", "Error"))
            if ename == "Cancelled":
                self._finish(f"{job.action} cancelled")
            else:
                self._finish(f"{job.action} failed", f"{job.action} failed: {msg.content.get('evalue', ename)}")
            return
        self.last_reply = {k: v for k, v in msg.content.items() if k not in ("image", "data")}
        try:
            outcome = self.apply_reply(job, msg.content)
        except ResultDiscarded as e:
            self._finish(f"{job.action} finished", str(e))
            return
        except Exception as e:  # a bad reply must not kill the timer; show it instead
            self._finish(f"{job.action} failed", f"Applying the {job.action} result failed: {e}")
            return
        self._finish(outcome)

    def poll_once(self) -> None:
        """Dispatch what has arrived without blocking; give the job up after `job_timeout` seconds of silence."""
        if self.client is None:
            if self.job is not None:
                self._finish("backend lost", "The connection to the Relight backend was closed")
            return
        for msg in self.client.poll():
            self._dispatch(msg)
        refused = self.client.handshake_failure() if self.job is not None else None
        if refused:  # e.g. reconnecting after the backend restarted with this machine's key no longer listed
            self._finish(f"{self.job.action} failed", f"The Relight backend at {self.endpoint} refused this machine: "
                                                       f"{refused}")
            return
        if self.job is not None and time.monotonic() - self.job.last_heard > self.job_timeout:
            self._finish(
                "timed out", f"The Relight backend sent nothing about the {self.job.action} job for "
                f"{self.job_timeout:.0f} s; the job was given up (raise 'Job Silence Timeout' in the preferences)"
            )
