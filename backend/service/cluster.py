"""Scale-out on Ray: the ZeroMQ gateway keeps its protocol, its jobs and its store; the jobs' work runs on Ray actors
that keep the pipeline warm. Ray is the optional `cluster` extra and is imported only by `relight serve --workers ray`.

How a job travels: the gateway picks a worker (for a render or bake, one that already holds the asset), ships the
assets the request names that the worker lacks, and calls `PipelineWorker.run`. Progress comes back by polling the
worker every POLL_S; cancel is forwarded. The assets a job makes come back with its reply and go into the gateway's
content-addressed store, which stays the one source of truth. A worker that dies mid-job is restarted by Ray
(max_restarts) and the job is run once more; a second death ends it with WorkerLost.
"""

from __future__ import annotations

import collections
import os
import tempfile
import threading
import time
from dataclasses import dataclass

from relight_protocol.errors import ProtocolError, UnknownAsset
from relight_protocol.lru import LRU

POLL_S = 0.1  # seconds between the gateway's progress polls of a running job
HELD_ASSETS = 8  # assets a worker keeps in memory (its renders never reload them)
RETRIES = 1  # runs of a job after its worker died
RESTART_S = 180.0  # seconds to wait for a worker to answer again after one died


class WorkerLost(ProtocolError):
    """The cluster worker running a job died, and died again on the retry."""


class ClusterUnavailable(ProtocolError):
    """`--workers ray` was asked for but Ray is not installed or the cluster cannot be reached."""


@dataclass
class ClusterSettings:
    """What `--workers` asked for."""

    address: str | None = None
    """a running Ray cluster's address (`ray start --head` prints it); None: start a local one on this machine"""
    workers: int = 2
    """pipeline actors to start, each holding one CPU (and one GPU when the cluster has enough)"""


def parse_workers(spec: str, workers: int = 2) -> ClusterSettings | None:
    """`--workers` -> None for "local" (jobs run in the gateway's own threads), else the Ray cluster to use:
    "ray" (a local cluster) or "ray:ADDRESS" (e.g. ray:10.0.0.5:6379, or ray:auto for RAY_ADDRESS)."""
    if spec in ("", "local"):
        return None
    engine, _, address = spec.partition(":")
    if engine != "ray":
        raise ValueError(f"--workers {spec!r}: expected local, ray or ray:ADDRESS")
    if workers < 1:
        raise ValueError(f"--ray-workers must be at least 1, got {workers}")
    return ClusterSettings(address=address or None, workers=workers)


# ---------------------------------------------------------------------------------------------- on a worker

class _HeldStore:
    """What a handler sees as `server.store` on a worker: the assets it holds; put() also records what it made."""

    def __init__(self, held: LRU):
        self.held = held
        self.made: list = []

    def has(self, asset_id: str) -> bool:
        return self.held.get(asset_id) is not None

    def get(self, asset_id: str):
        asset = self.held.get(asset_id)
        if asset is None:
            raise UnknownAsset(f"asset {asset_id!r} is not on this cluster worker; the gateway ships it with the job")
        return asset

    def put(self, asset) -> str:
        self.held.put(asset.asset_id, asset)
        self.made.append(asset)
        return asset.asset_id


class _WorkerServer:
    """The part of the gateway's Server that handlers use (generators, store, asset), on a worker."""

    def __init__(self, generators, store: _HeldStore):
        self.generators = generators
        self.store = store

    def asset(self, asset_id: str):
        return self.store.get(asset_id)


class PipelineWorker:
    """A Ray actor (threaded: a job runs while the gateway polls and cancels): the pipeline imported once, the
    assets of its recent jobs in memory, the renderer's caches (compiled kernels, prefiltered worlds) warm."""

    def __init__(self, generators, threads: int):
        import torch

        torch.set_num_threads(max(int(threads), 1))
        from . import handlers  # the whole product: paid once, at start-up
        from .warm import Warmer

        self._handlers = handlers
        self._warmer = Warmer()  # the default HDRI's prefilter, the BRDF tables, the shading kernels: in the background
        self._warmer.start()
        self._generators = generators
        self._held = LRU(HELD_ASSETS)
        self._events: dict[str, collections.deque] = {}
        self._cancelled: set[str] = set()

    def info(self) -> dict:
        import socket

        return {"pid": os.getpid(), "node": socket.gethostname()}

    def warm_status(self) -> dict:
        return self._warmer.status()

    def holds(self, asset_id: str) -> bool:
        return asset_id in self._held

    def run(self, job_id: str, action: str, request: dict, assets: dict) -> tuple[dict, list]:
        """The handler of `action` on request -> (reply content, the assets it made). `assets`: id -> asset the
        gateway shipped (those this worker did not hold)."""
        from .jobs import Cancelled

        for asset_id, asset in assets.items():
            self._held.put(asset_id, asset)
        events = self._events.setdefault(job_id, collections.deque(maxlen=256))

        def progress(stage: str, fraction: float, message: str = "") -> None:
            if job_id in self._cancelled:
                raise Cancelled(f"{action} job {job_id} was cancelled at stage {stage!r}")
            events.append((stage, float(fraction), message))

        store = _HeldStore(self._held)
        try:
            content = self._handlers.JOB_HANDLERS[action](_WorkerServer(self._generators, store), request, progress)
        finally:
            self._cancelled.discard(job_id)
        return content, store.made

    def poll(self, job_id: str) -> list:
        """The progress events of job_id since the last poll: [(stage, fraction, message)]."""
        events = self._events.get(job_id)
        out = []
        while events:
            out.append(events.popleft())
        return out

    def forget(self, job_id: str) -> None:
        self._events.pop(job_id, None)

    def cancel(self, job_id: str) -> None:
        self._cancelled.add(job_id)


# ---------------------------------------------------------------------------------------------- on the gateway

class RayCluster:
    """The gateway's side: starts or joins the Ray cluster, owns the actors, routes jobs, brings assets home."""

    def __init__(self, settings: ClusterSettings, generators, log=print):
        try:
            import ray
        except ImportError as e:
            raise ClusterUnavailable("`--workers ray` needs Ray: pip install 'relight[cluster]'") from e
        self._ray = ray
        self.settings = settings
        self.log = log
        t = time.perf_counter()
        # Ray puts the driver's working directory first on its workers' sys.path: a folder there named like one of
        # ours (a checkout called relight/) would shadow the installed package. Connect from an empty one, kept until
        # shutdown: a local cluster's processes start in it, and a deleted working directory breaks torch's loading
        cwd, self._empty = os.getcwd(), tempfile.mkdtemp(prefix="relight-ray-")
        os.chdir(self._empty)
        try:
            if settings.address:
                ray.init(address=settings.address, log_to_driver=False, ignore_reinit_error=True)
            else:
                ray.init(num_cpus=settings.workers, include_dashboard=False, log_to_driver=False,
                         ignore_reinit_error=True)
        except Exception as e:  # noqa: BLE001 - Ray's own errors name the address and the cause
            raise ClusterUnavailable(f"cannot start or reach the Ray cluster ({type(e).__name__}: {e})") from None
        finally:
            os.chdir(cwd)
        gpus = ray.cluster_resources().get("GPU", 0.0)
        per_gpu = 1.0 if gpus >= settings.workers else 0.0  # a whole GPU per worker, or none
        actor = ray.remote(PipelineWorker).options(num_cpus=1, num_gpus=per_gpu, max_restarts=-1, max_task_retries=0,
                                                   max_concurrency=4)
        self.actors = [actor.remote(generators, 1) for _ in range(settings.workers)]
        self.infos = ray.get([a.info.remote() for a in self.actors])  # waits until every worker has imported
        self._holder: dict[str, int] = {}  # asset id -> the worker that holds it
        self._busy = [0] * len(self.actors)  # jobs each worker has been given and not finished
        self._lock = threading.Lock()
        self.log(f"ray: {len(self.actors)} workers ready in {time.perf_counter() - t:.1f} s "
                 f"({'1 GPU each' if per_gpu else 'CPU'}); nodes {sorted({i['node'] for i in self.infos})}")

    def describe(self) -> dict:
        """For the hello reply: the engine and each worker's node and pid (as last seen: a restarted worker's new
        pid shows once it has run a job)."""
        return {"engine": "ray", "workers": [{"node": i["node"], "pid": i["pid"]} for i in self.infos]}

    def warm_status(self, timeout: float = 0.5) -> dict:
        """For the hello reply: each worker's start-up warming (warm.Warmer.status); "unknown" for a worker that did
        not answer within `timeout` seconds (busy restarting)."""
        ray = self._ray
        refs = [a.warm_status.remote() for a in self.actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        workers = []
        for ref in refs:
            try:
                workers.append(ray.get(ref) if ref in ready else {"state": "unknown"})
            except Exception:  # noqa: BLE001 - a dead worker: Ray is restarting it
                workers.append({"state": "unknown"})
        state = "ready" if all(w["state"] == "ready" for w in workers) else "warming"
        return {"state": state, "workers": workers}

    def choose(self, request: dict) -> int:
        """The worker for a job: the one holding its asset, else the least busy. Counted busy until done()."""
        with self._lock:
            k = self._holder.get(request.get("asset_id", ""))
            if k is None:
                k = min(range(len(self.actors)), key=lambda i: self._busy[i])
            self._busy[k] += 1
            return k

    def done(self, k: int) -> None:
        with self._lock:
            self._busy[k] -= 1

    def run(self, k: int, job, request: dict, progress, store) -> dict:
        """Run `job` (its id and action) on worker k; forward its progress, its cancel and its assets. If the
        worker dies, the job runs once more on the first worker to answer (a restarted one, or another)."""
        from ray.exceptions import RayActorError, RayTaskError

        from .jobs import Cancelled

        ray = self._ray
        for attempt in range(RETRIES + 1):
            actor = self.actors[k]
            shipped = {}
            asset_id = request.get("asset_id")
            if asset_id and not ray.get(actor.holds.remote(asset_id)):
                shipped[asset_id] = store.get(asset_id)  # UnknownAsset here names the gateway's store
            where = self.infos[k]
            progress("cluster", 0.0, f"on {where['node']}, worker {k} (pid {where['pid']})")
            ref = actor.run.remote(job.id, job.action, request, shipped)
            try:
                content, made = self._wait(actor, job, ref, progress)
            except RayActorError:
                if attempt == RETRIES:
                    raise WorkerLost(f"the cluster worker running {job.action} job {job.id} died twice; the job was "
                                     "not finished (see the worker's log with `ray logs`), submit it again") from None
                self.log(f"warning: worker {k} died during {job.action} job {job.id}; running it again")
                progress("retry", 0.0, "a cluster worker died; running the job again")
                with self._lock:
                    self._holder = {a: w for a, w in self._holder.items() if w != k}  # its memory is gone
                k = self._first_alive()
                continue
            except RayTaskError as e:
                cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else None
                if isinstance(cause, Cancelled):
                    raise Cancelled(str(cause)) from None
                raise (cause or e) from None
            for asset in made:  # home: the gateway's store, written atomically
                store.put(asset)
            with self._lock:
                for a in [*made, *shipped.values()]:
                    self._holder[a.asset_id] = k
            return content
        raise AssertionError("unreachable")

    def _first_alive(self, timeout: float = RESTART_S) -> int:
        """The index of the first worker to answer (Ray restarts a dead one: that takes its imports, ~10-40 s);
        its info is refreshed. WorkerLost when none answers within `timeout` seconds."""
        ray = self._ray
        refs = {a.info.remote(): i for i, a in enumerate(self.actors)}
        deadline = time.monotonic() + timeout
        while refs and time.monotonic() < deadline:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=max(deadline - time.monotonic(), 0.01))
            for ref in ready:
                i = refs.pop(ref)
                try:
                    self.infos[i] = ray.get(ref)
                    return i
                except Exception:  # noqa: BLE001 - that one is down too; wait for another
                    pass
        raise WorkerLost(f"no cluster worker answered within {timeout:.0f} s after one died; check the cluster "
                         "with `ray status`")

    def _wait(self, actor, job, ref, progress):
        ray = self._ray
        try:
            while True:
                ready, _ = ray.wait([ref], timeout=POLL_S)
                for stage, fraction, message in ray.get(actor.poll.remote(job.id)):
                    progress(stage, fraction, message)
                if ready:
                    return ray.get(ref)
                if job.cancel_requested:
                    actor.cancel.remote(job.id)
                    progress("cancel", 0.0)  # raises Cancelled
        finally:
            actor.forget.remote(job.id)

    def shutdown(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
        self._ray.shutdown()
        try:
            os.rmdir(self._empty)
        except OSError:
            pass
