"""Faults and load on a real `relight serve`: a SIGKILL during a real generate loses no stored asset, a request that
fails inside a worker leaves the server serving, bounded queues answer "busy", the queue is fair between clients,
8 concurrent clients generating and rendering are all served with nothing lost or crossed, and a generate reports
progress often enough for the shortest silence timeout the add-on allows."""

import shutil
import signal
import threading
import time

import numpy as np

from relight.service.jobs import Job
from relight.service.scheduler import Lane
from relight_protocol.client import Client
from server_fixture import start_server
from test_bench import sphere_asset
from test_server import disc_image, test_camera

MIN_SILENCE_TIMEOUT = 5.0  # the add-on's smallest 'Job Silence Timeout' (ui/prefs.py job_timeout min)
GENERATE_TIMEOUT = 300.0  # seconds for one generate on 2 shared cores (healthy: 15-40 s)
PLUMBING_GAUSSIANS = 20_000  # the assets of tests about the service, not the asset: generated in about half the time


def _messages(client: Client, msg_id: str, timeout: float, on_message=None):
    """(progress messages, reply) of request msg_id; on_message(msg) sees each as it arrives."""
    progress, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in client.poll(timeout_ms=50):
            if m.parent_id != msg_id:
                continue
            if on_message is not None:
                on_message(m)
            if m.msg_type != "progress":
                return progress, m
            progress.append(m)
    raise AssertionError(f"no reply to {msg_id} within {timeout} s")


def _generate(client: Client, seed: int, name: str, on_message=None, size: int = 48, gaussians: int | None = None):
    """A generate of a seeded disc image; `gaussians` None: the server's default asset size."""
    content = {"image": disc_image(size, seed=seed), "name": name, "colorspace": "srgb"}
    if gaussians is not None:
        content["gaussians"] = gaussians
    msg_id = client.request("generate_request", content)
    return _messages(client, msg_id, GENERATE_TIMEOUT, on_message)


def _render(client: Client, asset_id: str, size: int = 24):
    msg_id = client.request("render_request", {"asset_id": asset_id, "camera": test_camera(size),
                                               "quality": "preview"})
    return _messages(client, msg_id, GENERATE_TIMEOUT)[1]


# ---------------------------------------------------------------------------------------------- SIGKILL

def test_sigkill_while_writing_an_asset_loses_no_stored_asset(tmp_path):
    """Kill -9 a real server at the moment its generate writes the asset into the store, restart it on the same
    port and store: every asset stored before is served, no half-written asset is listed, temp folders are gone."""
    store = tmp_path / "store"
    store.mkdir()
    kept = sphere_asset(asset_id="5ca1ab1e00000000000000bb")
    kept.save(store / kept.asset_id)  # stored by an earlier server
    stale = store / f".{kept.asset_id[:-2]}cc-x1y2z3"  # the temp folder of a write killed long ago
    stale.mkdir()
    (stale / "asset.npz").write_bytes(b"half")
    server = start_server(store)
    endpoint = server.endpoint
    try:
        c = server.client()
        _, first = _generate(c, 1, "first", gaussians=PLUMBING_GAUSSIANS)
        assert first.status == "ok", first.content
        stored_before = {first.content["asset_id"], kept.asset_id}

        msg_id = c.request("generate_request", {"image": disc_image(56, seed=2), "name": "second",
                                                "colorspace": "srgb", "gaussians": PLUMBING_GAUSSIANS})
        deadline = time.monotonic() + GENERATE_TIMEOUT
        while server.proc.poll() is None:  # the stage right before the write: the kill lands in it or just before
            assert time.monotonic() < deadline, "the second generate never reached its store stage"
            for m in c.poll(timeout_ms=5):
                assert m.msg_type == "progress", m.content
                if m.parent_id == msg_id and m.content["stage"] == "store":
                    server.proc.send_signal(signal.SIGKILL)
                    server.proc.wait(30)
        assert server.proc.returncode == -signal.SIGKILL
    finally:
        server.stop()
    restarted = start_server(store, bind=endpoint)
    try:
        assert not stale.exists(), "a stale temp folder of a killed write is cleaned at start"
        assert not [p.name for p in store.iterdir() if p.name.startswith(".") and p.is_dir()]
        c = restarted.client()
        for asset_id in stored_before:
            reply = _render(c, asset_id)
            assert reply.status == "ok", (asset_id, reply.content)
            assert reply.content["image"].shape == (24, 24, 4) and reply.content["image"][..., 3].max() > 0
        for folder in store.iterdir():  # whatever else is listed is whole: the second asset fully, or not at all
            if folder.is_dir() and not folder.name.startswith("."):
                assert _render(c, folder.name).status == "ok", folder.name
    finally:
        restarted.stop()


# ---------------------------------------------------------------------------------------------- a failing request

def test_a_request_failing_inside_its_worker_leaves_the_server_serving(tmp_path):
    """A render of an asset whose stored files are broken fails inside the render worker (numpy cannot read the
    archive): that request gets an error reply, the server answers ping, and the same workers serve the next
    requests. Twice as many failures as render threads, so a worker that died with its job would show."""
    store = tmp_path / "store"
    good, bad = sphere_asset(asset_id="5ca1ab1e00000000000000dd"), sphere_asset(asset_id="5ca1ab1e00000000000000ee")
    good.save(store / good.asset_id)
    bad.save(store / bad.asset_id)
    (store / bad.asset_id / "asset.npz").write_bytes(b"PK\x03\x04 not really a zip archive")
    server = start_server(store, extra_args=("--render-threads", "2"))
    try:
        c = server.client()
        for _ in range(4):
            reply = _render(c, bad.asset_id)
            assert reply.status == "error" and reply.content["evalue"], reply.content
        assert c.call("ping_request", timeout=30).status == "ok"
        for size in (20, 28):
            reply = _render(c, good.asset_id, size)
            assert reply.status == "ok", reply.content
            assert reply.content["image"].shape == (size, size, 4)
        assert server.proc.poll() is None
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------- bounds and fairness

def test_a_client_over_its_job_bound_gets_busy_and_others_are_still_served(tmp_path):
    server = start_server(tmp_path / "store", extra_args=("--max-jobs-per-client", "2", "--max-jobs", "3"))
    try:
        hello = server.client().call("hello_request", timeout=30).content
        assert hello["queue"]["max_jobs_per_client"] == 2 and hello["queue"]["max_jobs"] == 3
        assert hello["heartbeat"]["interval_s"] <= 1.0 and hello["heartbeat"]["liveness_s"] < 3.0
        assert set(hello["warm"]["items"]) >= {"default_environment", "brdf_lut"}
        a, b, c = server.client(), server.client(), server.client()
        sent = [a.request("generate_request", {"image": disc_image(48, seed=i), "name": f"a{i}",
                                               "colorspace": "srgb"}) for i in range(3)]  # fmt: skip
        busy = a.wait(sent[2], timeout=30)
        assert busy.status == "error" and busy.content["ename"] == "Busy"
        assert "max_jobs_per_client is 2" in busy.content["evalue"] and "busy" in busy.content["evalue"]
        other = b.request("generate_request", {"image": disc_image(48, seed=9), "name": "b", "colorspace": "srgb"})
        # b's job is admitted once its ping is answered (one client's messages are read in order); without this,
        # c's request on its own connection could overtake it and find the server one job short of full
        assert b.call("ping_request", timeout=30).status == "ok"
        full = c.call("generate_request", {"image": disc_image(48, seed=8), "name": "c", "colorspace": "srgb"},
                      timeout=30)
        assert full.status == "error" and full.content["ename"] == "Busy"
        assert "max_jobs is 3" in full.content["evalue"]
        assert c.call("ping_request", timeout=30).status == "ok"  # busy is about jobs: the server still answers
        for client, msg_id in ((a, sent[0]), (a, sent[1]), (b, other)):  # cancelled: the bound frees up again
            client.cancel(msg_id)
            assert client.wait(msg_id, timeout=GENERATE_TIMEOUT).content.get("ename") in ("Cancelled", None)
        again = c.request("bake_request", {"asset_id": "5ca1ab1e00000000000000ff"})
        assert c.wait(again, timeout=60).content["ename"] == "UnknownAsset"  # admitted (and failing on its own)
    finally:
        server.stop()


def test_the_queue_takes_clients_in_turn():
    """A real Lane with one worker thread: client A queues four jobs, then B one; B's runs second of the waiting
    ones, not after all of A's."""
    lane, order, gate, done = Lane("test", 1), [], threading.Event(), threading.Event()
    started = threading.Event()

    def job(name: str, last: bool = False) -> Job:
        def fn(progress):
            if name == "A0":
                started.set()
                gate.wait(10)
            order.append(name)
            return {}

        return Job(name, "test", fn, on_progress=lambda *a: None,
                   on_finish=lambda *a: done.set() if last else None)

    try:
        lane.queue.put(b"A", job("A0"))
        assert started.wait(10)  # A0 is running (held at the gate): the rest wait in the queue
        for i in (1, 2, 3):
            lane.queue.put(b"A", job(f"A{i}", last=i == 3))
        lane.queue.put(b"B", job("B0"))
        gate.set()
        assert done.wait(10)
        assert order == ["A0", "A1", "B0", "A2", "A3"]
    finally:
        gate.set()
        assert lane.stop()


# ---------------------------------------------------------------------------------------------- load and cadence

def test_eight_clients_generate_and_render_concurrently_nothing_lost_or_crossed(tmp_path):
    """8 threads, each its own DEALER: generate a distinct small image, then render the asset at a size of its
    own. Every reply answers its own request (parent id, name, asset, image size, the asset's own Gaussian count)."""
    server = start_server(tmp_path / "store")
    results, errors = {}, []

    def client_run(i: int) -> None:
        try:
            with Client(server.endpoint) as c:
                asked = PLUMBING_GAUSSIANS + 1000 * i
                progress, reply = _generate(c, 100 + i, f"client-{i}", gaussians=asked)
                assert reply.status == "ok", reply.content
                assert reply.content["name"] == f"client-{i}"
                assert asked // 2 < reply.content["stats"]["gaussians"] <= asked
                assert all(p.parent_id == reply.parent_id for p in progress)
                size = 16 + 2 * i
                render = _render(c, reply.content["asset_id"], size)
                assert render.status == "ok", render.content
                assert render.content["image"].shape == (size, size, 4)
                results[i] = reply.content["asset_id"]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))

    try:
        threads = [threading.Thread(target=client_run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(8 * GENERATE_TIMEOUT)
        assert not errors, errors
        assert sorted(results) == list(range(8)) and len(set(results.values())) == 8
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_generate_reports_progress_often_enough_for_the_shortest_silence_timeout(tmp_path):
    """A real generate through the server: no gap between two messages about the job reaches the add-on's
    smallest silence timeout (5 s), by the server's keepalive ("still working") and the stages' own progress
    (designed cadence: about 1 s; the bound leaves 5x for a loaded 2-core machine)."""
    server = start_server(tmp_path / "store")
    try:
        c = server.client()
        stamps = []
        progress, reply = _generate(c, 7, "cadence", on_message=lambda m: stamps.append(time.monotonic()), size=64)
        assert reply.status == "ok", reply.content
        gaps = np.diff(stamps)
        stages = [p.content["stage"] for p in progress]
        assert "visibility" in stages and "delight" in stages
        assert sum(p.content["stage"] == "visibility" for p in progress) >= 5, "visibility reports as it goes"
        assert gaps.max() < MIN_SILENCE_TIMEOUT, f"{gaps.max():.1f} s without a word about a healthy job"
        fractions = [p.content["fraction"] for p in progress]
        assert fractions == sorted(fractions), "keepalives repeat the last fraction, never an older one"
    finally:
        server.stop()


def test_store_write_is_atomic_and_leaves_no_temp_folder(tmp_path):
    """RelightableAsset.save through the store: the folder appears whole (its json and arrays), no temp
    folder is left, and an id already stored is not rewritten (no moment without it)."""
    from relight.service.store import AssetStore

    store = AssetStore(tmp_path / "s")
    a = sphere_asset(asset_id="5ca1ab1e0000000000000011")
    store.put(a)
    folder = tmp_path / "s" / a.asset_id
    stamp = (folder / "asset.npz").stat().st_mtime_ns
    store.put(a)
    assert (folder / "asset.npz").stat().st_mtime_ns == stamp
    assert store.ids() == [a.asset_id] and not [p for p in (tmp_path / "s").iterdir() if p.name.startswith(".")
                                                and p.is_dir()]  # fmt: skip
    shutil.rmtree(folder)
    assert not store.has(a.asset_id)


def test_the_jobs_of_a_client_that_stopped_heartbeating_are_cancelled(tmp_path):
    """Heartbeats the other way: a client that pinged (so it heartbeats) and then went silent longer than the
    server's --client-timeout has its unfinished jobs cancelled, so a dead Blender does not hold the queue."""
    server = start_server(tmp_path / "store", extra_args=("--client-timeout", "2"))
    try:
        gone, alive = server.client(), server.client()
        assert gone.call("ping_request", timeout=30).status == "ok"
        msg_id = gone.request("generate_request", {"image": disc_image(48, seed=3), "name": "orphan",
                                                   "colorspace": "srgb"})
        never_pinged = alive.request("generate_request", {"image": disc_image(48, seed=4), "name": "kept",
                                                          "colorspace": "srgb"})
        line = f"cancelled its generate job {msg_id}"
        deadline = time.monotonic() + GENERATE_TIMEOUT
        while not any(line in out for out in server.stdout):
            assert time.monotonic() < deadline, f"no {line!r} in the server's log:\n" + "\n".join(server.stdout)
            time.sleep(0.1)
        assert not any(never_pinged in out for out in server.stdout)  # a client that never pinged is not expired
        alive.cancel(never_pinged)
        assert alive.wait(never_pinged, timeout=GENERATE_TIMEOUT).status == "error"
        assert alive.call("ping_request", timeout=30).status == "ok"
    finally:
        server.stop()
