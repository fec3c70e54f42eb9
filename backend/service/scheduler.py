"""Fair, bounded job queues: per lane a pool of worker threads taking jobs round-robin between clients, a bound on
each client's unfinished jobs and on all of them (over either: a Busy error naming the limit)."""

import collections
import threading
from dataclasses import dataclass

from relight_protocol.errors import Busy

from .jobs import Job, run_guarded

LONG, RENDER = "long", "render"  # the lanes: generate / reconstruct / match_photo / bake, and render


@dataclass(frozen=True)
class QueueSettings:
    max_jobs_per_client: int = 4
    """Unfinished (queued or running) jobs one client may have; one more gets a Busy reply."""
    max_jobs: int = 64
    """Unfinished jobs of all clients together; one more gets a Busy reply."""
    long_threads: int = 1
    """Threads running generate / reconstruct / match_photo / bake (each uses every core: more only queue)."""
    render_threads: int = 2
    """Threads running renders: a cheap preview overlaps a slow one instead of waiting behind it."""

    def as_dict(self) -> dict:
        return {"max_jobs_per_client": self.max_jobs_per_client, "max_jobs": self.max_jobs,
                "long_threads": self.long_threads, "render_threads": self.render_threads}


def lane_of(action: str) -> str:
    return RENDER if action == "render" else LONG


class FairQueue:
    """Jobs by client; get() takes the oldest job of the next client in turn (round-robin), so one client's
    burst waits behind its own jobs only. Thread-safe; get() blocks until a job or close()."""

    def __init__(self):
        self._by_peer: collections.OrderedDict[bytes, collections.deque] = collections.OrderedDict()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, peer: bytes, job: Job) -> None:
        with self._cond:
            self._by_peer.setdefault(peer, collections.deque()).append(job)
            self._cond.notify()

    def get(self) -> Job | None:
        with self._cond:
            while not self._by_peer and not self._closed:
                self._cond.wait()
            if not self._by_peer:
                return None
            peer, jobs = next(iter(self._by_peer.items()))
            job = jobs.popleft()
            del self._by_peer[peer]
            if jobs:  # the client goes to the back of the turn
                self._by_peer[peer] = jobs
            return job

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Lane:
    """A FairQueue served by `threads` worker threads (stop() as JobWorker's)."""

    def __init__(self, name: str, threads: int):
        self.name = name
        self.queue = FairQueue()
        self._threads = [threading.Thread(target=self._loop, name=f"relight-{name}-{i}", daemon=True)
                         for i in range(max(1, threads))]
        for t in self._threads:
            t.start()

    def _loop(self) -> None:
        while (job := self.queue.get()) is not None:
            run_guarded(job)

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the threads to exit after their current job; True if they all did within `timeout` seconds."""
        self.queue.close()
        for t in self._threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self._threads)


class Scheduler:
    """The server's lanes and its bounds. submit() is called from the socket thread, release() from whichever
    thread finishes a job."""

    def __init__(self, settings: QueueSettings | None = None):
        self.settings = settings or QueueSettings()
        self.lanes = {LONG: Lane(LONG, self.settings.long_threads), RENDER: Lane(RENDER, self.settings.render_threads)}
        self._lock = threading.Lock()
        self._unfinished: collections.Counter[bytes] = collections.Counter()  # peer -> unfinished jobs

    def admit(self, peer: bytes) -> None:
        """Count one more unfinished job of `peer`, or raise Busy naming the bound it would cross."""
        s = self.settings
        with self._lock:
            if self._unfinished[peer] >= s.max_jobs_per_client:
                raise Busy(f"busy: this client already has {self._unfinished[peer]} unfinished jobs; the limit "
                           f"max_jobs_per_client is {s.max_jobs_per_client}; wait for one to finish or cancel one")
            total = sum(self._unfinished.values())
            if total >= s.max_jobs:
                raise Busy(f"busy: the server has {total} unfinished jobs; the limit max_jobs is {s.max_jobs}; "
                           "try again in a moment")
            self._unfinished[peer] += 1

    def release(self, peer: bytes) -> None:
        with self._lock:
            self._unfinished[peer] -= 1
            if self._unfinished[peer] <= 0:
                del self._unfinished[peer]

    def submit(self, job: Job) -> None:
        """Queue an admitted job on its lane (job.peer is its client)."""
        self.lanes[lane_of(job.action)].queue.put(job.peer, job)

    def queued(self) -> int:
        with self._lock:
            return sum(self._unfinished.values())
