"""`relight serve --workers ray`: a real local Ray cluster with two workers behind the real ZeroMQ gateway. Concurrent
jobs spread over the workers, renders go to the worker holding the asset, progress and cancel cross the cluster,
and a worker killed with SIGKILL in the middle of a job costs neither the job nor any stored asset."""

import os
import re
import signal
import threading
import time

import pytest

from relight.service.cluster import parse_workers
from server_fixture import start_server
from test_server import collect, disc_image, test_camera

ray = pytest.importorskip("ray", reason="the cluster extra: pip install -e '.[cluster]'")  # installed in CI

JOB_S = 400.0  # seconds for one generate on a loaded 2-core machine with one thread per worker
START_S = 300.0  # the gateway starts Ray and waits until both workers have imported the pipeline


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("relight-store"), extra_args=("--workers", "ray", "--ray-workers", "2"),
                          timeout=START_S)
    yield server
    assert server.stop(timeout=60.0) == 0, "\n".join(server.stderr[-20:])


def _worker_of(progress) -> tuple[int, int]:
    """(worker index, pid) from a job's "cluster" progress message (the last one: a retried job names its new one)."""
    found = [re.search(r"worker (\d+) \(pid (\d+)\)", p.content["message"]) for p in progress
             if p.content["stage"] == "cluster"]
    assert found and found[-1], [p.content for p in progress]
    return int(found[-1].group(1)), int(found[-1].group(2))


def _generate(server, seed: int, shape: str = "disc"):
    c = server.client()
    msg_id = c.request("generate_request", {"image": disc_image(seed=seed, shape=shape), "name": f"ray {seed}",
                                            "colorspace": "srgb"})
    return collect(c, msg_id, timeout=JOB_S)


def _stored(server) -> set:
    return {p for p in os.listdir(server.store_dir) if os.path.exists(os.path.join(server.store_dir, p, "asset.json"))}


def test_workers_spec_is_parsed_and_refused_clearly():
    assert parse_workers("local") is None
    assert parse_workers("ray").address is None
    assert parse_workers("ray:10.0.0.5:6379", 3).address == "10.0.0.5:6379"
    with pytest.raises(ValueError, match="expected local, ray or ray:ADDRESS"):
        parse_workers("dask")
    with pytest.raises(ValueError, match="at least 1"):
        parse_workers("ray", 0)


def test_hello_names_the_cluster_s_workers(cluster_server):
    hello = cluster_server.client().call("hello_request", {}, timeout=60).content
    workers = hello["cluster"]["workers"]
    assert hello["cluster"]["engine"] == "ray" and len(workers) == 2
    pids = {w["pid"] for w in workers}
    assert len(pids) == 2 and cluster_server.proc.pid not in pids  # two processes of their own
    warm = hello["warm"]  # each worker warms the renderer itself (the gateway renders nothing)
    assert len(warm["workers"]) == 2 and warm["state"] in ("warming", "ready"), warm


def test_concurrent_jobs_spread_over_the_workers_and_renders_follow_the_asset(cluster_server):
    results = {}
    threads = [threading.Thread(target=lambda s=s: results.__setitem__(s, _generate(cluster_server, s))) for s in (11, 12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    workers, ids = {}, set()
    for seed, (progress, reply) in results.items():
        assert reply.status == "ok", reply.content
        assert reply.content["name"] == f"ray {seed}"  # no reply crossed to the other job
        assert all(p.parent_id == reply.parent_id for p in progress)
        stages = [p.content["stage"] for p in progress]
        assert stages[0] == "start" and "cluster" in stages and {"segment", "visibility", "delight"} <= set(stages)
        workers[reply.content["asset_id"]] = _worker_of(progress)[0]
        ids.add(reply.content["asset_id"])
    assert len(ids) == 2 and sorted(workers.values()) == [0, 1]  # both workers ran one each, at once
    assert ids <= _stored(cluster_server)  # home in the gateway's store
    c = cluster_server.client()
    for asset_id, worker in workers.items():
        msg_id = c.request("render_request", {"asset_id": asset_id, "camera": test_camera(40), "world": None})
        progress, reply = collect(c, msg_id, timeout=JOB_S)
        assert reply.status == "ok", reply.content
        assert reply.content["image"].shape == (40, 40, 4) and (reply.content["image"][..., 3] > 0).any()
        assert _worker_of(progress)[0] == worker  # rendered where the asset already was


def test_cancel_reaches_the_worker(cluster_server):
    c = cluster_server.client()
    msg_id = c.request("generate_request", {"image": disc_image(seed=13, shape="square"), "name": "cancelled"})
    deadline, reply = time.monotonic() + JOB_S, None
    cancelled = False
    while reply is None and time.monotonic() < deadline:
        for m in c.poll(200):
            if m.msg_type == "progress" and m.content["stage"] == "segment" and not cancelled:
                c.cancel(msg_id)
                cancelled = True
            elif m.parent_id == msg_id and m.msg_type != "progress":
                reply = m
    assert cancelled and reply is not None
    assert reply.status == "error" and reply.content["ename"] == "Cancelled", reply.content


def test_a_worker_killed_mid_job_loses_neither_the_job_nor_a_stored_asset(cluster_server):
    before = _stored(cluster_server)
    assert before, "the earlier tests stored assets"
    c = cluster_server.client()
    msg_id = c.request("generate_request", {"image": disc_image(seed=14, shape="square"), "name": "survivor"})
    deadline, reply, killed = time.monotonic() + 2 * JOB_S, None, None
    progress = []
    while reply is None and time.monotonic() < deadline:
        for m in c.poll(200):
            if m.msg_type == "progress" and m.parent_id == msg_id:
                progress.append(m)
                if m.content["stage"] == "voxelize" and killed is None:  # mid-job: after segmentation and geometry
                    killed = _worker_of(progress)[1]
                    os.kill(killed, signal.SIGKILL)
            elif m.parent_id == msg_id:
                reply = m
    assert killed is not None and reply is not None
    stages = [p.content["stage"] for p in progress]
    if reply.status == "ok":  # retried once, to the end
        assert "retry" in stages and _worker_of(progress)[1] != killed
        assert reply.content["asset_id"] in _stored(cluster_server)
    else:  # or a clear error, never a hang
        assert reply.content["ename"] == "WorkerLost" and "submit it again" in reply.content["evalue"], reply.content
    assert before <= _stored(cluster_server)  # nothing stored was lost
    for asset_id in sorted(before):  # and every stored asset still renders, wherever its worker went
        r = c.call("render_request", {"asset_id": asset_id, "camera": test_camera(32), "world": None}, timeout=JOB_S)
        assert r.status == "ok", r.content
    assert c.call("ping_request", {}, timeout=60).status == "ok"
