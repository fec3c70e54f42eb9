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
HEARTBEAT_INTERVAL = 1.0  # seconds between pings (heartbeats) while connected; the ping reply is the backend's
# The connection itself carries ZMTP heartbeats (relight_protocol.client: PING every 1 s, closed 1.5 s after one goes
# unanswered), which libzmq answers even while the backend's Python is busy: a dead or unreachable backend drops the
# connection within this many seconds (a killed one at once), and the session then counts it down
HEARTBEAT_LIVENESS = 2.5
HUNG_LIVENESS = 60.0  # seconds a backend whose connection lives may answer nothing (not even pings) before it is down
RECONNECT_INTERVAL = 1.0  # seconds between hellos (each on a fresh socket) while the backend is down


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
    content: dict | None = None  # the request's content, kept so that Retry can send it again


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


@dataclass(frozen=True)
class BackendState:
    """The heartbeat found the backend down, or back (then with its new hello)."""

    up: bool
    message: str
    hello: dict | None = None


def lost_job_message(endpoint: str, action: str, why: str = "the connection dropped") -> str:
    return (f"The Relight backend at {endpoint} stopped answering during the {action} job ({why}); the job is "
            "lost: click Retry once the backend is back")


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
        # heartbeat: "unknown" (no hello yet), "up", "down" (reconnecting by itself), "closed" (close() was called)
        self.state = "unknown"
        self.retry_job: Job | None = None  # the last job that did not end well, for Retry
        self._last_heard = 0.0  # monotonic time of the last message from the backend
        self._next_ping = 0.0
        self._next_reconnect = 0.0
        self._hello_id: str | None = None  # the hello sent by a background reconnect
        self._transport: bool | None = None  # the connection's state from its monitor (see _connect)
        self.curve = None  # the CURVE keys the socket uses (relight_protocol.curve_keys.CurveKeys), or None

    # -------------------------------------------------------------------------------- connection

    def close(self) -> None:
        self._drop_socket()
        self.state = "closed"

    def _drop_socket(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None
        self.hello = None
        self._hello_id = None
        self._transport = None

    def abandon(self) -> None:
        """Forget the running job without a Finished event and close the socket (the add-on is unregistering)."""
        self.job = None
        self.close()

    def _connect(self, endpoint: str, curve=None):
        if self.client is None or self.endpoint != endpoint or self.client.curve != curve:
            self._drop_socket()
            # Imported here: it imports zmq (the add-on's bundled wheel), and this module must import without it.
            from .relight_protocol.client import Client

            self.client = Client(endpoint, curve=curve)  # its monitor reports handshakes and disconnections
            self.curve = curve  # kept for the heartbeat's reconnects
            self.endpoint = endpoint
            self._transport = None  # None: no event yet; True: handshake done; False: dropped
        return self.client

    def _refused(self, endpoint: str) -> None:
        """Raise AuthenticationFailed (and drop the socket) when the backend refused our handshake."""
        refused = self.client.handshake_failure() if self.client is not None else None
        if refused:
            if self.job is not None:
                self._finish("backend refused", f"The Relight backend at {endpoint} refused this machine: {refused}")
            self.close()
            raise AuthenticationFailed(f"Relight backend at {endpoint}: {refused}")

    def _request(self, msg_type: str, content: dict) -> str:
        """client.request for the calls that answer the artist (hello, a job): a request that cannot be queued raises
        BackendUnavailable, AuthenticationFailed when the backend refused this machine's keys (a refused handshake
        tears the connection down until zmq's next retry, and a request sent meanwhile has nothing to queue on)."""
        try:
            return self.client.request(msg_type, content)
        except ConnectionError as e:
            self._refused(self.endpoint)
            raise BackendUnavailable(str(e)) from None

    def say_hello(self, endpoint: str, timeout: float, curve=None) -> dict:
        """hello round trip with `timeout` seconds; returns the reply content or raises BackendUnavailable
        (AuthenticationFailed as soon as the socket monitor sees the backend refuse our keys).

        curve: relight_protocol.curve_keys.CurveKeys for a backend started with --keys, else None.
        Progress or replies of a running job that arrive meanwhile are dispatched as poll_once() would.
        """
        client = self._connect(endpoint, curve)
        msg_id = self._request("hello_request", {})
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
                    self._now_up(msg)
                    return self.hello
                self._dispatch(msg)
            if time.monotonic() > deadline:
                self._refused(endpoint)
                # Lazy Pirate: a socket with an unanswered request is dropped, so nothing stale comes back later.
                if self.job is not None:
                    self.retry_job = self.job
                    self._finish("backend lost",
                                 f"The Relight backend at {endpoint} stopped answering; the job was dropped")
                self._drop_socket()
                self.state, self._next_reconnect = "down", time.monotonic() + RECONNECT_INTERVAL
                raise BackendUnavailable(unreachable_message(endpoint))

    def _now_up(self, hello_reply) -> None:
        """A hello reply came: the backend is up; heartbeats start."""
        now = time.monotonic()
        self.hello = dict(hello_reply.content)
        self.state, self._hello_id = "up", None
        self._last_heard, self._next_ping = now, now + HEARTBEAT_INTERVAL

    def backend_up(self, endpoint: str, curve=None) -> bool:
        """True while the backend at `endpoint` answers heartbeats on a socket with these CURVE keys (no round
        trip needed before a job)."""
        return self.state == "up" and self.endpoint == endpoint and self.client is not None and self.curve == curve

    def backend_down(self, endpoint: str) -> bool:
        """True while the heartbeat finds the backend at `endpoint` down (it reconnects by itself meanwhile)."""
        return self.state == "down" and self.endpoint == endpoint

    # -------------------------------------------------------------------------------- jobs

    def running_job(self) -> Job | None:
        return self.job

    def start_job(self, action: str, content: dict, scene_name: str) -> Job:
        """Send `<action>_request`; its result goes to the scene `scene_name`. The caller has just said hello.
        Raises BackendUnavailable when the request cannot be queued (see _request)."""
        if self.job is not None:
            raise BackendUnavailable(f"A Relight {self.job.action} job is still running")
        if self.client is None:
            raise BackendUnavailable("Not connected to a Relight backend")
        msg_id = self._request(f"{action}_request", content)
        self.job = Job(action, msg_id, scene_name, content=content)
        self.on_event(Started(action, f"{action} sent to the backend"))
        return self.job

    def cancel_running(self) -> None:
        if self.job is None or self.client is None:
            return
        self.client.cancel(self.job.msg_id)
        self.job.cancel_requested = True
        self.on_event(Cancelling(self.job.action, "cancelling..."))

    def retry(self) -> Job:
        """Send the last job that did not end well again (a fresh request, same content and scene)."""
        job = self.retry_job
        if job is None or job.content is None:
            raise BackendUnavailable("There is no failed Relight job to retry")
        started = self.start_job(job.action, job.content, job.scene_name)
        self.retry_job = None
        return started

    def _finish(self, outcome: str, error: str = "") -> None:
        job, self.job = self.job, None
        if error and job is not None:
            self.retry_job = job
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
        """Dispatch what has arrived without blocking; heartbeat (the backend is down when its connection drops, or
        after HUNG_LIVENESS without an answer to the pings sent every HEARTBEAT_INTERVAL; then a hello on a fresh
        socket every RECONNECT_INTERVAL until one is answered); give the job up after `job_timeout` seconds without
        news of it."""
        now = time.monotonic()
        if self.client is None:
            if self.job is not None:
                self._finish("backend lost", "The connection to the Relight backend was closed")
            if self.state == "down" and self.endpoint and now >= self._next_reconnect:
                self._reconnect(now)
            return
        for event in self.client.transport_events():
            self._transport = event == "connected"
        for msg in self.client.poll():
            self._last_heard = now
            if self._hello_id is not None and msg.parent_id == self._hello_id:
                self._on_reconnect_hello(msg)
            elif msg.msg_type == "ping_reply":
                self._on_heartbeat(msg)
            else:
                self._dispatch(msg)
        refused = self.client.handshake_failure() if self.client is not None and self.job is not None else None
        if refused:  # e.g. reconnecting after the backend restarted with this machine's key no longer listed
            self._finish(f"{self.job.action} failed", f"The Relight backend at {self.endpoint} refused this machine: "
                                                       f"{refused}")
            return
        if self.state == "up" and self.client is not None:
            if self._transport is False:
                self._lost(now, "the connection dropped")
            elif now - self._last_heard > HUNG_LIVENESS:
                self._lost(now, f"nothing heard for {HUNG_LIVENESS:g} s")
            elif now >= self._next_ping:
                try:
                    self.client.request("ping_request", {})
                except ConnectionError:  # no connection to queue it on (torn down before its event came in):
                    self._lost(now, "the connection dropped")  # a Blender timer must not raise: it would stop
                    return
                self._next_ping = now + HEARTBEAT_INTERVAL
        elif self.state == "down" and now >= self._next_reconnect and not self._transport:
            self._reconnect(now)  # (a connected socket keeps its hello queued: the backend is there, maybe busy)
        if self.job is not None and time.monotonic() - self.job.last_heard > self.job_timeout:
            self._finish(
                "timed out", f"The Relight backend sent nothing about the {self.job.action} job for "
                f"{self.job_timeout:.0f} s; the job was given up (raise 'Job Silence Timeout' in the preferences)"
            )

    # -------------------------------------------------------------------------------- heartbeat

    def _on_heartbeat(self, msg) -> None:
        """A ping reply: a restarted backend (another instance than the hello's) has lost the running job."""
        instance = msg.content.get("instance")
        known = (self.hello or {}).get("instance")
        if instance and known and instance != known:
            self._lost(time.monotonic(), "it restarted")

    def _lost(self, now: float, why: str) -> None:
        """The backend is down (or restarted): end the running job with an error (Retry sends it again), say so,
        and reconnect on a fresh socket from now on."""
        endpoint = self.endpoint or "?"
        if self.job is not None:
            self._finish("backend lost", lost_job_message(endpoint, self.job.action, why))
        self._drop_socket()
        self.state, self._next_reconnect = "down", now
        self.on_event(BackendState(False, f"Backend lost ({why}): reconnecting to {endpoint}..."))

    def _reconnect(self, now: float) -> None:
        """Lazy Pirate: a fresh socket and a hello on it; an unanswered one is dropped at the next try."""
        self._drop_socket()
        client = self._connect(self.endpoint, self.curve)
        self._next_reconnect = now + RECONNECT_INTERVAL
        try:
            self._hello_id = client.request("hello_request", {})
        except ConnectionError:  # nothing to queue it on yet: the next try makes a fresh socket again
            self._hello_id = None

    def _on_reconnect_hello(self, msg) -> None:
        try:
            msg.raise_for_status()
        except RemoteError as e:
            self._hello_id = None
            self.on_event(BackendState(False, f"The Relight backend at {self.endpoint} refused hello: {e.evalue}"))
            return
        self._now_up(msg)
        self.on_event(BackendState(True, f"Reconnected to the Relight backend at {self.endpoint}", self.hello))
