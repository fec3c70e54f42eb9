"""`relight serve` end to end: a real subprocess, real ZeroMQ sockets on 127.0.0.1, a temp store; plus Job unit tests."""

import json
import os
import signal
import threading
import time
import uuid

import numpy as np
import pytest
import zmq

from relight.service.jobs import Cancelled, Job, JobWorker
from relight_protocol import limits
from relight_protocol.envelope import deserialize, serialize
from relight_protocol.messages import make_request
from relight_protocol.version import PROTOCOL_VERSION
from server_fixture import relight_server_module as server  # noqa: F401  (module-scoped fixture)
from server_fixture import start_server

TIMEOUT = 60.0  # seconds for any single reply (generous: 2 shared cores)


# ---------------------------------------------------------------------------------------------- helpers

def header(msg_type="ping_request", **over) -> tuple[str, bytes]:
    msg_id = uuid.uuid4().hex
    h = {"msg_id": msg_id, "msg_type": msg_type, "protocol_version": PROTOCOL_VERSION, "parent_id": None,
         "date": "2026-01-01T00:00:00+00:00"}
    h.update(over)
    return msg_id, json.dumps(h).encode()


class RawDealer:
    """A bare DEALER socket, to send frame sets the Client would never produce."""

    def __init__(self, endpoint: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def exchange(self, frames: list, timeout: float = TIMEOUT):
        """Send raw frames; return the first non-progress reply, decoded."""
        self.sock.send_multipart(frames)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sock.poll(100):
                reply = self.sock.recv_multipart()
                assert reply[0] == b"", "replies start with the empty delimiter"
                msg = deserialize(reply[1:], peer="client")
                if msg.msg_type != "progress":
                    return msg
        raise TimeoutError("no reply from relight serve")

    def ping_ok(self) -> bool:
        msg_id, h = header("ping_request")
        reply = self.exchange([b"", h, b"{}"])
        return reply.msg_type == "ping_reply" and reply.parent_id == msg_id and reply.content["status"] == "ok"

    def close(self):
        self.sock.close()
        self.ctx.term()


def disc_image(size=64, seed=0, shape="disc") -> np.ndarray:
    """[size, size, 4] uint8 sRGB: a shaded coloured disc (or square) on transparent black."""
    yy, xx = (np.mgrid[:size, :size] + 0.5) / size - 0.5
    inside = (np.hypot(yy, xx) < 0.38) if shape == "disc" else (np.maximum(abs(yy), abs(xx)) < 0.3)
    rng = np.random.default_rng(seed)
    colour = rng.uniform(0.2, 0.9, 3)
    shade = np.clip(0.6 + xx - yy, 0.2, 1.0)[..., None]
    rgba = np.zeros((size, size, 4), np.float32)
    rgba[..., :3] = colour * shade
    rgba[..., 3] = inside
    return (rgba * 255).round().astype(np.uint8)


def test_camera(size=48) -> dict:
    from relight.core.camera import Camera

    return Camera.look_at((0.0, -4.0, 0.5), (0.0, 0.0, 0.0), 35.0, size, size).to_dict()


test_camera.__test__ = False  # a helper, not a test


def collect(client, msg_id: str, timeout: float = TIMEOUT, settle: float = 0.3) -> tuple[list, object]:
    """All progress for msg_id, then its reply; keeps polling `settle` seconds after the reply to catch strays."""
    progress, reply = [], None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in client.poll(timeout_ms=50):
            if m.parent_id != msg_id:
                continue
            if m.msg_type == "progress":
                assert reply is None, f"progress {m.content} arrived after the reply"
                progress.append(m)
            else:
                assert reply is None, "two replies to one request"
                reply = m
                deadline = time.monotonic() + settle
    assert reply is not None, f"no reply to {msg_id} within {timeout} s"
    return progress, reply


# ---------------------------------------------------------------------------------------------- protocol paths

def test_hello_and_ping(server):
    c = server.client()
    hello = c.call("hello_request", timeout=TIMEOUT)
    assert hello.msg_type == "hello_reply" and hello.status == "ok"
    assert hello.content["protocol_version"] == PROTOCOL_VERSION
    assert hello.content["device"] == "cpu"  # no GPU on these machines
    assert set(hello.content["capabilities"]) == {"generate", "reconstruct", "match_photo", "render", "bake", "cancel"}
    assert set(hello.content["providers"]) == {"inflate", "scene"}
    assert hello.content["limits"] == limits.as_dict()
    assert isinstance(hello.content["server_version"], str)
    t0 = time.time()
    ping = c.call("ping_request", timeout=TIMEOUT)
    assert ping.msg_type == "ping_reply" and ping.status == "ok"
    assert abs(ping.content["time"] - t0) < 60
    assert not c.pending


def _image_frames(shape, buffer: bytes, msg_type="generate_request"):
    msg_id, h = header(msg_type)
    content = json.dumps({"image": {"buffer": 0, "dtype": "uint8", "shape": list(shape)}, "name": "x"}).encode()
    return msg_id, [b"", h, content, buffer]


def _case(name):
    """(frames, expected msg_type, parent id or None, ename, evalue fragment) for one malformed input."""
    if name == "no_delimiter":
        _, h = header()
        return [h, b"{}"], "error_reply", None, "MalformedMessage", "empty delimiter frame"
    if name == "missing_content":
        _, h = header()
        return [b"", h], "error_reply", None, "MalformedMessage", "expected [header, content"
    if name == "garbage_header":
        return [b"", b"\x89PNG not json", b"{}"], "error_reply", None, "MalformedMessage", "header frame is not"
    if name == "header_not_object":
        return [b"", b"[1, 2, 3]", b"{}"], "error_reply", None, "MalformedMessage", "header must be a JSON object"
    if name == "garbage_content":
        msg_id, h = header()
        return [b"", h, b"{'single': quotes}"], "ping_reply", msg_id, "MalformedMessage", "content frame is not valid JSON"
    if name == "missing_field":
        msg_id, h = header("render_request")
        return [b"", h, b"{}"], "render_reply", msg_id, "InvalidRequest", "missing the required field 'asset_id'"
    if name == "wrong_type":
        msg_id, h = header("bake_request")
        body = json.dumps({"asset_id": "0123456789abcdef", "texture_size": "big"}).encode()
        return [b"", h, body], "bake_reply", msg_id, "InvalidRequest", "texture_size must be an integer"
    if name == "wrong_major":
        msg_id, h = header(protocol_version="2.0")
        return ([b"", h, b"{}"], "ping_reply", msg_id, "VersionMismatch",
                "protocol version 2.0 is not supported by this server (speaks 1.x); update the Relight add-on")
    if name == "unknown_msg_type":
        msg_id, h = header("frobnicate_request")
        return [b"", h, b"{}"], "frobnicate_reply", msg_id, "UnknownMessageType", "unknown message type 'frobnicate_request'"
    if name == "image_too_large":
        msg_id, frames = _image_frames((4097, 2, 4), bytes(4097 * 2 * 4))
        return frames, "generate_reply", msg_id, "LimitExceeded", "image is 2x4097 pixels; the limit MAX_IMAGE_SIDE is 4096"
    if name == "array_bytes_claim":
        msg_id, frames = _image_frames((65536, 65536, 4), bytes(16))
        return frames, "generate_reply", msg_id, "LimitExceeded", "the limit MAX_ARRAY_BYTES is 536870912"
    if name == "array_byte_mismatch":
        msg_id, frames = _image_frames((4, 4, 4), bytes(60))
        return frames, "generate_reply", msg_id, "MalformedMessage", "needs 64 bytes but buffer 0 has 60"
    if name == "bad_dtype":
        msg_id, h = header("generate_request")
        body = json.dumps({"image": {"buffer": 0, "dtype": "complex128", "shape": [1]}}).encode()
        return [b"", h, body, bytes(16)], "generate_reply", msg_id, "MalformedMessage", "allowed dtypes are"
    if name == "too_many_buffers":
        msg_id, h = header()
        return [b"", h, b"{}"] + [b"x"] * 17, "ping_reply", msg_id, "LimitExceeded", "the limit MAX_BUFFERS is 16"
    if name == "content_too_large":
        msg_id, h = header()
        body = json.dumps({"pad": "x" * (limits.MAX_CONTENT_BYTES + 1)}).encode()
        return [b"", h, body], "ping_reply", msg_id, "LimitExceeded", "the limit MAX_CONTENT_BYTES is 1048576"
    if name == "header_too_large":
        _, h = header(pad="y" * limits.MAX_HEADER_BYTES)
        return [b"", h, b"{}"], "error_reply", None, "LimitExceeded", "the limit MAX_HEADER_BYTES is 16384"
    if name == "unknown_asset":
        msg_id, h = header("render_request")
        body = json.dumps({"asset_id": "0123456789abcdef0123", "camera": test_camera()}).encode()
        return [b"", h, body], "render_reply", msg_id, "UnknownAsset", "asset '0123456789abcdef0123' is not in this server's store"
    raise KeyError(name)


MALFORMED = ["no_delimiter", "missing_content", "garbage_header", "header_not_object", "garbage_content",
             "missing_field", "wrong_type", "wrong_major", "unknown_msg_type", "image_too_large", "array_bytes_claim",
             "array_byte_mismatch", "bad_dtype", "too_many_buffers", "content_too_large", "header_too_large",
             "unknown_asset"]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_input_gets_a_named_error_and_serving_continues(server, case):
    frames, msg_type, parent, ename, fragment = _case(case)
    raw = RawDealer(server.endpoint)
    try:
        reply = raw.exchange(frames)
        assert reply.msg_type == msg_type
        assert reply.parent_id == parent
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == ename, reply.content
        assert fragment in reply.content["evalue"], reply.content["evalue"]
        assert raw.ping_ok()
    finally:
        raw.close()
    assert server.proc.poll() is None, "the server must survive every malformed request"


def test_replies_go_to_the_client_that_asked(server):
    clients = [server.client() for _ in range(3)]
    ids = [c.request("ping_request") for c in clients]
    for c, msg_id in zip(clients, ids):
        reply = c.wait(msg_id, timeout=TIMEOUT)
        assert reply.parent_id == msg_id
        assert c.poll(timeout_ms=100) == []  # nobody receives another client's reply


def test_cancel_of_unknown_job(server):
    reply = server.client().call("cancel_request", {"job_id": "no-such-job"}, timeout=TIMEOUT)
    assert reply.msg_type == "cancel_reply" and reply.status == "ok"
    assert reply.content["cancelled"] is False and "no unfinished job" in reply.content["message"]


def test_client_poll_never_blocks_without_timeout(server):
    c = server.client()
    t = time.perf_counter()
    assert c.poll() == []
    assert time.perf_counter() - t < 0.5


# ---------------------------------------------------------------------------------------------- pipeline jobs

@pytest.fixture(scope="module")
def generated(server):
    """(request msg_id, progress messages, reply) of one real generate on the module's server."""
    c = server.client()
    msg_id = c.request("generate_request", {"image": disc_image(), "name": "test disc", "colorspace": "srgb"})
    progress, reply = collect(c, msg_id, timeout=180)
    return msg_id, progress, reply


def test_generate_streams_progress_then_reply(server, generated):
    msg_id, progress, reply = generated
    assert reply.msg_type == "generate_reply" and reply.status == "ok", reply.content
    assert reply.parent_id == msg_id
    assert reply.content["name"] == "test disc"
    stats = reply.content["stats"]
    assert stats["reused"] is False and stats["faces"] > 0 and stats["gaussians"] > 0
    check = reply.content["self_check"]  # how sure the backend is: shown to the artist
    assert 5.0 < check["reproduction_psnr"] < 60.0 and isinstance(check["warnings"], list)
    assert 0.0 <= check["roughness"] <= 1.0 and check["metallic"] in (0.0, 1.0)
    (kept,) = [r for r in check["readings"] if r["chosen"]]  # the readings of the material solved and checked
    assert kept["reproduction_psnr"] == pytest.approx(check["reproduction_psnr"], abs=0.01)
    assert (kept["roughness"], kept["metallic"]) == pytest.approx((check["roughness"], check["metallic"]), abs=1e-3)
    assert len(progress) >= 3
    assert all(p.parent_id == msg_id for p in progress)
    assert progress[0].content["stage"] == "start"
    fractions = [p.content["fraction"] for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(set(p.content) >= {"stage", "fraction", "message"} for p in progress)
    assert reply.content["asset_id"] in os.listdir(server.store_dir)


def test_generate_with_same_inputs_reuses_the_stored_asset(server, generated):
    _, _, first = generated
    again = server.client().call("generate_request", {"image": disc_image(), "name": "test disc"}, timeout=TIMEOUT)
    assert again.status == "ok", again.content
    assert again.content["asset_id"] == first.content["asset_id"]
    assert again.content["stats"]["reused"] is True


def test_render_stored_asset(server, generated):
    asset_id = generated[2].content["asset_id"]
    c = server.client()
    reply = c.call("render_request", {"asset_id": asset_id, "camera": test_camera(48), "world": None},
                   timeout=TIMEOUT)
    assert reply.msg_type == "render_reply" and reply.status == "ok", reply.content
    img = reply.content["image"]
    assert img.dtype == np.uint8 and img.shape == (48, 48, 4)
    alpha = img[..., 3]
    assert 0 < (alpha > 0).sum() < alpha.size, "object covers part of the frame, transparent elsewhere"
    assert img[..., :3][alpha > 128].mean() > 5, "lit object is not black"
    assert set(reply.content["timings"]) >= {"server_total"}

    world = {"equirect": np.full((8, 16, 3), 0.5, np.float32), "rotation_z": 0.3, "strength": 1.5}
    reply = c.call("render_request", {"asset_id": asset_id, "camera": test_camera(32), "world": world,
                                      "background": True}, timeout=TIMEOUT)
    assert reply.status == "ok", reply.content
    img = reply.content["image"]
    assert img.shape == (32, 32, 4) and (img[..., 3] == 255).all(), "background=True fills every pixel"


def test_render_quality_presets(server, generated):
    """Preview (the default) and final quality cover the same silhouette; an unknown quality is refused by name."""
    asset_id = generated[2].content["asset_id"]
    c = server.client()
    imgs = {}
    for q in ("preview", "final"):
        reply = c.call("render_request", {"asset_id": asset_id, "camera": test_camera(40), "quality": q},
                       timeout=TIMEOUT)
        assert reply.status == "ok", reply.content
        imgs[q] = reply.content["image"].astype(float)
    a, b = imgs["preview"][..., 3] > 128, imgs["final"][..., 3] > 128
    assert (a & b).sum() / (a | b).sum() > 0.85
    assert abs(imgs["preview"][..., :3][a & b].mean() - imgs["final"][..., :3][a & b].mean()) < 25
    reply = c.call("render_request", {"asset_id": asset_id, "camera": test_camera(40), "quality": "ultra"},
                   timeout=TIMEOUT)
    assert reply.status == "error" and "quality" in reply.content["evalue"]


def test_cancel_running_and_queued_jobs(server):
    c = server.client()
    before = set(os.listdir(server.store_dir))
    running = c.request("generate_request", {"image": disc_image(seed=1, shape="square"), "name": "run"})
    queued = c.request("generate_request", {"image": disc_image(seed=2, shape="square"), "name": "queued"})
    seen = []
    while not any(m.parent_id == running and m.content.get("stage") not in (None, "start") for m in seen):
        seen += c.poll(timeout_ms=100)  # wait until the pipeline itself reports progress
        assert not any(m.msg_type == "generate_reply" for m in seen), "job finished before it could be cancelled"

    cancel_q = c.call("cancel_request", {"job_id": queued}, timeout=TIMEOUT)
    assert cancel_q.status == "ok" and cancel_q.content["cancelled"] is True
    progress_q, reply_q = collect(c, queued)
    assert reply_q.content["ename"] == "Cancelled" and "before it started" in reply_q.content["evalue"]
    assert progress_q == [] and not any(m.parent_id == queued for m in seen)

    cancel_r = c.call("cancel_request", {"job_id": running}, timeout=TIMEOUT)
    assert cancel_r.content["cancelled"] is True
    _, reply_r = collect(c, running)
    assert reply_r.msg_type == "generate_reply" and reply_r.parent_id == running
    assert reply_r.content["status"] == "error" and reply_r.content["ename"] == "Cancelled"
    assert set(os.listdir(server.store_dir)) == before, "a cancelled generate stores nothing"

    again = c.call("cancel_request", {"job_id": running}, timeout=TIMEOUT)
    assert again.content["cancelled"] is False  # finished jobs cannot be cancelled
    assert c.call("ping_request", timeout=TIMEOUT).status == "ok"


def test_restarted_server_serves_stored_asset_and_stops_on_sigint(server, generated):
    asset_id = generated[2].content["asset_id"]
    second = start_server(server.store_dir)  # a new process over the same store folder
    try:
        reply = second.client().call("render_request", {"asset_id": asset_id, "camera": test_camera(32)},
                                     timeout=TIMEOUT)
        assert reply.status == "ok", reply.content
        assert reply.content["image"].shape == (32, 32, 4) and reply.content["image"][..., 3].max() > 0
    finally:
        code = second.stop(signal.SIGINT)
    assert code == 0, second.stderr
    assert second.stdout[-1] == "relight serve: stopped"


def test_bake_returns_glb_bytes(server, generated):
    asset_id = generated[2].content["asset_id"]
    c = server.client()
    msg_id = c.request("bake_request", {"asset_id": asset_id, "texture_size": 64})
    progress, reply = collect(c, msg_id, timeout=300)
    assert reply.status == "ok", reply.content
    data = reply.content["data"]
    assert data.dtype == np.uint8 and bytes(data[:4]) == b"glTF"
    assert reply.content["filename"] == "test_disc.glb"
    assert progress and progress[0].content["stage"] == "start"


# ---------------------------------------------------------------------------------------------- jobs.py

def _job(fn, **kw):
    events, done = [], threading.Event()

    def on_finish(job, content, error):
        events.append(("finish", content, error))
        done.set()

    job = Job("j1", "test", fn, on_progress=lambda job, *a: events.append(("progress", *a)), on_finish=on_finish, **kw)
    return job, events, done


def test_job_runs_reports_progress_and_finishes_once():
    def work(progress):
        for i in range(5):
            progress("step", i / 4, f"{i}")
        return {"answer": 42}

    job, events, _ = _job(work, min_interval=10.0)
    job.run()
    assert events[0] == ("progress", "start", 0.0, "test started")
    # throttled within the stage: fraction 0 and 1 always go out, the others within min_interval do not
    assert [e[2] for e in events if e[0] == "progress" and e[1] == "step"] == [0.0, 1.0]
    assert events[-1] == ("finish", {"answer": 42}, None)
    assert job.state == "done" and job.cancel() is False


def test_job_cancelled_while_running_raises_at_next_progress():
    started, release = threading.Event(), threading.Event()

    def work(progress):
        started.set()
        release.wait(5)
        progress("after", 0.5)
        raise AssertionError("progress must raise Cancelled")

    job, events, done = _job(work)
    worker = JobWorker("test")
    worker.submit(job)
    assert started.wait(5)
    assert job.cancel() is True
    release.set()
    assert done.wait(5)
    kind, content, error = events[-1]
    assert kind == "finish" and content is None and isinstance(error, Cancelled)
    assert worker.stop()


def test_job_cancelled_while_queued_finishes_at_once_and_never_runs():
    ran = []
    job, events, done = _job(lambda progress: ran.append(1) or {})
    assert job.cancel() is True and done.is_set()
    assert isinstance(events[-1][2], Cancelled) and "before it started" in str(events[-1][2])
    job.run()
    assert ran == [] and len([e for e in events if e[0] == "finish"]) == 1


def test_job_error_is_reported_not_raised():
    def work(progress):
        raise ValueError("the image has no visible object; give it an alpha channel")

    job, events, _ = _job(work)
    job.run()
    assert isinstance(events[-1][2], ValueError)


def test_serialized_reply_roundtrip_of_render_image():
    """The exact frames a render reply travels as decode to the same pixels."""
    img = np.random.default_rng(3).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    msg = make_request("render_reply", {"status": "ok", "image": img, "timings": {"shade": 0.1}})
    out = deserialize([bytes(memoryview(f)) for f in serialize(msg)], peer="client")
    np.testing.assert_array_equal(out.content["image"], img)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_server_sleeps_after_a_job(server):
    """Once a job has finished (its reply wakes the socket thread) the idle server uses no CPU: the socket thread
    must drain its wake-up pipe, or it spins a core and halves the speed of every later preview."""
    c = server.client()
    reply = c.call("render_request", {"asset_id": "0123456789abcdef0123", "camera": test_camera(16)}, timeout=TIMEOUT)
    assert reply.status == "error" and reply.content["ename"] == "UnknownAsset"  # a job ran and finished
    time.sleep(0.5)
    before = _cpu_seconds(server.proc.pid)
    time.sleep(2.0)
    used = _cpu_seconds(server.proc.pid) - before
    assert used < 0.3, f"idle server used {used:.2f} s of CPU in 2 s"


def test_request_worlds_are_kept_per_image_and_transformed_per_request(tmp_path):
    """The same equirect in two requests is one prefiltered environment; rotation and strength still apply."""
    from relight.service.handlers import environment
    from relight_protocol.messages import validate_world

    eq = np.random.default_rng(0).uniform(0, 2, (16, 32, 3)).astype(np.float32)
    a = environment(validate_world({"equirect": eq, "rotation_z": 0.0, "strength": 1.0}))
    b = environment(validate_world({"equirect": eq.copy(), "rotation_z": 1.2, "strength": 2.0}))
    assert a._data is b._data and (b.rotation_z, b.strength) == (1.2, 2.0)
    d = np.array([[1.0, 0.0, 0.2]])
    np.testing.assert_allclose(b.radiance(d), 2.0 * a.with_transform(1.2, 1.0).radiance(d), rtol=1e-6)
    other = eq.copy()
    other[3, 5] += 1.0  # one pixel changed: another image
    assert environment(validate_world({"equirect": other}))._data is not a._data
    with pytest.raises(ValueError, match="equirect"):
        environment({"equirect": np.zeros((4, 4), np.float32), "rotation_z": 0.0, "strength": 1.0})


def test_a_pipeline_that_cannot_import_gives_every_job_a_named_error(tmp_path):
    """A broken install (here scipy, which the pipeline needs and the socket loop does not, shadowed by a package
    that fails to import) leaves the service answering: hello says the pipeline is not loaded, and generate, render
    and bake each get an error reply naming the failed import instead of a traceback, while ping still works."""
    broken = tmp_path / "broken_site"
    (broken / "scipy").mkdir(parents=True)
    (broken / "scipy" / "__init__.py").write_text('raise ImportError("scipy is broken in this install")\n')
    path = os.pathsep.join([str(broken), os.environ.get("PYTHONPATH", "")])
    srv = start_server(tmp_path / "store", env={"PYTHONPATH": path})
    try:
        c = srv.client()
        hello = c.call("hello_request", {}, timeout=30).content
        assert hello["pipeline_ok"] is False
        for msg_type, content in (("generate_request", {"image": np.zeros((8, 8, 4), np.uint8)}),
                                  ("render_request", {"asset_id": "0123456789abcdef01234567", "camera": test_camera()}),
                                  ("bake_request", {"asset_id": "0123456789abcdef01234567"})):  # fmt: skip
            reply = c.call(msg_type, content, timeout=60)
            assert reply.status == "error", (msg_type, reply.content)
            assert "pipeline could not be loaded" in reply.content["evalue"]
            assert "scipy is broken in this install" in reply.content["evalue"]
            assert reply.content["ename"] == "PipelineUnavailable" and "traceback" not in reply.content
        assert c.call("ping_request", {}, timeout=30).status == "ok"
        c.close()
    finally:
        srv.stop()
