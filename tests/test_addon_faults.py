"""The add-on when its backend dies: the heartbeat notices within 3 s, ends the running job with a clear error, never
blocks an operator while the backend is down, reconnects by itself, and Retry sends the job again. Against a
scripted ROUTER (the session alone) and a real `relight serve` killed with SIGKILL during a real generate (bpy)."""

import signal
import time

import numpy as np
import pytest
from blender_fixture import (  # noqa: F401  (fixtures)
    addon_prefs,
    addon_tree,
    addon_zip,
    free_port,
    image_pixels,
    object_image_path,
    relight_addon,
    tick_until,
    tick_until_idle,
)
from server_fixture import start_server
from test_addon import ScriptedBackend, poll_until, without_blender  # noqa: F401  (without_blender: a fixture)

import bpy  # after conftest set the Blender user folders


class PortBackend(ScriptedBackend):
    """A ScriptedBackend bound to a given loopback port, so that it can die and come back where it was."""

    def __init__(self, port: int):
        import queue
        import threading

        import zmq

        self.hello, self.hellos = "ok", 0
        self.requests, self._outbox = queue.Queue(), queue.Queue()
        self._identities, self._errors = {}, []
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._socket.bind(self.endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="port-backend", daemon=True)
        self._thread.start()


@pytest.fixture
def silent_backend():
    """A ScriptedBackend that answers hello but never a ping: a backend whose Python is busy for a long time."""
    server = ScriptedBackend()
    yield server
    server.close()


def _next_job_request(backend, timeout: float = 5.0):
    """The next request other than the session's heartbeat pings."""
    deadline = time.monotonic() + timeout
    while True:
        request = backend.next_request(max(0.01, deadline - time.monotonic()))
        if request.msg_type != "ping_request":
            return request


def test_heartbeat_constants_notice_a_dead_backend_within_3_s(without_blender):
    conn, _ = without_blender
    from relight_protocol import client

    transport = (client.TRANSPORT_HEARTBEAT_IVL_MS + client.TRANSPORT_HEARTBEAT_TIMEOUT_MS) / 1000.0
    assert transport <= conn.HEARTBEAT_LIVENESS < 3.0  # a dead link is closed by then; a killed one at once
    assert conn.RECONNECT_INTERVAL <= 1.0 and conn.HEARTBEAT_INTERVAL <= 1.0


def test_a_busy_backend_that_answers_no_ping_is_not_taken_for_dead(without_blender, silent_backend):
    """Its connection lives (libzmq answers the transport heartbeats without Python), so the job goes on."""
    conn, make_session = without_blender
    session, events = make_session()
    session.say_hello(silent_backend.endpoint, 5.0)
    session.start_job("bake", {}, "Scene")
    deadline = time.monotonic() + 2 * conn.HEARTBEAT_LIVENESS
    while time.monotonic() < deadline:
        session.poll_once()
        time.sleep(0.01)
    assert session.state == "up" and session.running_job() is not None, events
    assert _next_job_request(silent_backend).msg_type == "bake_request"
    assert silent_backend.next_request().msg_type == "ping_request"  # the heartbeat pings went out


def _connected(without_blender, port: int):
    """(connection module, a session that has said hello to a PortBackend on `port`, its events, that backend)."""
    conn, make_session = without_blender
    backend = PortBackend(port)
    session, events = make_session()
    session.say_hello(backend.endpoint, 5.0)
    assert session.state == "up"
    return conn, session, events, backend


def test_session_notices_a_dead_backend_ends_the_job_reconnects_and_retries(without_blender, free_port):
    conn, session, events, backend = _connected(without_blender, free_port)
    try:
        job = session.start_job("generate", {"name": "lost one"}, "Scene")
        assert _next_job_request(backend).msg_id == job.msg_id
        backend.close()  # the backend's process ends: its connection closes

        poll_until(session, lambda: session.state == "down", timeout=10)  # not the 900 s silence timeout
        lost = conn.lost_job_message(backend.endpoint, "generate")
        assert conn.Finished("generate", "backend lost", lost) in events
        assert "(the connection dropped); the job is lost: click Retry once the backend is back" in lost
        assert isinstance(events[-1], conn.BackendState) and not events[-1].up
        assert session.running_job() is None and session.retry_job is job and job.content == {"name": "lost one"}
        for _ in range(3):
            session.poll_once()
        assert session.state == "down"

        backend = PortBackend(free_port)  # back on the same port
        poll_until(session, lambda: session.state == "up", timeout=10)
        assert events[-1] == conn.BackendState(True, f"Reconnected to the Relight backend at {backend.endpoint}",
                                               {"status": "ok", "server_version": "9.9", "device": "cpu"})
        again = session.retry()
        request = _next_job_request(backend)
        assert (request.msg_type, request.msg_id, request.content) == ("generate_request", again.msg_id,
                                                                       {"name": "lost one"})
        assert again.msg_id != job.msg_id and session.retry_job is None
        session.close()
        with pytest.raises(conn.BackendUnavailable, match="no failed Relight job"):
            session.retry()
    finally:
        backend.close()


def test_a_heartbeat_with_no_connection_to_go_on_marks_the_backend_lost(without_blender, free_port):
    """The idle heartbeat's ping, sent after the connection was torn down but before any event said so (a refused
    handshake does that), once raised ConnectionError out of poll_once: in Blender that ends the timer, and with it
    the heartbeat and every reconnection, while the panel still says the backend is up. Here the socket's only
    connection is dropped (zmq reports no event for that, so the ping is what finds out)."""
    conn, session, events, backend = _connected(without_blender, free_port)
    try:
        session.client._socket.disconnect(backend.endpoint)
        session._next_ping = 0.0  # the ping is due now
        session.poll_once()
        assert session.state == "down"
        assert events[-1] == conn.BackendState(False, "Backend lost (the connection dropped): reconnecting to "
                                                      f"{backend.endpoint}...")
        poll_until(session, lambda: session.state == "up", timeout=10)  # the reconnection goes on by itself
    finally:
        session.close()
        backend.close()


def _fresh_image(path) -> "bpy.types.Image":
    """The test photo, flipped upside down: content this server's store has not seen."""
    image = bpy.data.images.load(str(path))
    px = image_pixels(image)  # row 0 = top; pixels are stored bottom-up, so writing it as is flips it
    image.pixels.foreach_set(np.ascontiguousarray(px).ravel())
    return image


def test_backend_killed_during_generate_then_back_on_the_same_port(object_image_path, relight_addon, free_port,
                                                                  tmp_path):
    """SIGKILL `relight serve` in a generate's visibility stage: the job ends with a clear error within seconds
    (not the 900 s silence timeout), Generate is enabled again, operators fail at once while the backend is down
    (even with a 600 s request timeout), the add-on reconnects by itself when the server is back on the same port
    and store, and Retry generates the asset."""
    endpoint = f"tcp://127.0.0.1:{free_port}"
    store = tmp_path / "store"
    server = start_server(store, bind=endpoint)
    session = relight_addon.session
    status = bpy.context.window_manager.relight
    prefs = addon_prefs()
    prefs.endpoint = endpoint
    prefs.request_timeout = 600.0  # an operator that waited for a hello while the backend is down would hang here
    prefs.job_timeout = 900.0
    try:
        assert bpy.ops.relight.check_backend() == {"FINISHED"} and status.connected
        bpy.context.scene.relight.image = _fresh_image(object_image_path)
        assert bpy.ops.relight.generate() == {"FINISHED"}
        tick_until(session, lambda: status.stage == "visibility", timeout=300)
        server.proc.send_signal(signal.SIGKILL)
        assert server.proc.wait(30) == -signal.SIGKILL
        assert bpy.ops.relight.cancel() == {"FINISHED"}  # queued on the socket; nobody will answer it
        assert status.message == "cancelling..."

        tick_until(session, lambda: session.SESSION.running_job() is None, timeout=30)
        assert status.message == "" and session.SESSION.results[-1][1] == "backend lost"
        assert status.last_error.startswith(f"The Relight backend at {endpoint} stopped answering during the "
                                            "generate job"), status.last_error
        assert status.job_action == "" and status.stage == "" and not status.connected
        assert session.SESSION.state == "down" and status.status_message.startswith("Backend lost")
        assert bpy.ops.relight.generate.poll() and bpy.ops.relight.retry.poll()
        with pytest.raises(RuntimeError, match="No Relight backend answered .*retrying by itself"):
            bpy.ops.relight.check_backend()  # at once: the heartbeat knows it is down
        with pytest.raises(RuntimeError, match="No Relight backend answered"):
            bpy.ops.relight.retry()
        assert session.SESSION.retry_job is not None and session.SESSION.retry_job.action == "generate"

        server = start_server(store, bind=endpoint)  # back, same port and store
        tick_until(session, lambda: status.connected, timeout=60)
        assert status.status_message == f"Reconnected to the Relight backend at {endpoint}"
        assert bpy.ops.relight.retry() == {"FINISHED"}
        assert status.job_action == "generate"
        tick_until_idle(session, timeout=600)
        assert status.last_error == "", status.last_error
        assert bpy.context.scene.relight.asset_id and session.SESSION.results[-1][1].startswith("Asset ")
    finally:
        server.stop()
