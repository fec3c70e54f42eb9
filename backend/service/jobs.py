"""Jobs: one cancellable unit of work with throttled progress, and the worker thread that runs them in order."""

import queue
import threading
import time
from typing import Callable

from ..core.progress import ProgressFn  # raises Cancelled from a job once the job was cancelled


class Cancelled(Exception):
    """Raised inside a job (by its progress callable) after cancel() was requested."""


class Job:
    """A request's work: fn(progress) -> reply content dict.

    States go queued -> running -> done (or queued -> done when cancelled before starting). on_progress(job,
    stage, fraction, message) and on_finish(job, content | None, error | None) are called from the thread that
    runs or cancels the job; on_finish is called exactly once.
    """

    def __init__(self, job_id: str, action: str, fn: Callable[[ProgressFn], dict], *,
                 on_progress: Callable, on_finish: Callable, min_interval: float = 0.1):
        self.id = job_id
        self.action = action
        self.state = "queued"
        self._fn = fn
        self._on_progress = on_progress
        self._on_finish = on_finish
        self._min_interval = min_interval  # seconds between progress messages of one stage
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._last = (None, -1.0, 0.0)  # (stage, fraction, time) of the last emitted progress

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        """Report progress; raises Cancelled if the job was cancelled. Messages within one stage are throttled
        to one per min_interval, but a new stage, fraction 0 and fraction 1 always go out."""
        if self._cancel.is_set():
            raise Cancelled(f"{self.action} job {self.id} was cancelled at stage {stage!r}")
        now = time.monotonic()
        last_stage, _, last_t = self._last
        if stage != last_stage or fraction <= 0.0 or fraction >= 1.0 or now - last_t >= self._min_interval:
            self._last = (stage, fraction, now)
            self._on_progress(self, stage, fraction, message)

    def cancel(self) -> bool:
        """Request cancellation. True if the job had not finished: a queued job finishes at once with
        Cancelled; a running one raises Cancelled at its next progress call (or when fn returns)."""
        with self._lock:
            if self.state == "done":
                return False
            self._cancel.set()
            was_queued = self.state == "queued"
            if was_queued:
                self.state = "done"
        if was_queued:
            self._on_finish(self, None, Cancelled(f"{self.action} job {self.id} was cancelled before it started"))
        return True

    def run(self) -> None:
        """Run fn on this thread (a no-op for a job cancelled while queued). Leaving the queue is reported as
        progress stage "start" at fraction 0."""
        with self._lock:
            if self.state != "queued":
                return
            self.state = "running"
        content, error = None, None
        try:
            self._last = ("start", 0.0, time.monotonic())
            self._on_progress(self, "start", 0.0, f"{self.action} started")
            content = self._fn(self.progress)
        except Exception as e:  # the job's error becomes its error reply
            error = e
        with self._lock:
            if error is None and self._cancel.is_set():
                error = Cancelled(f"{self.action} job {self.id} was cancelled")
                content = None
            self.state = "done"
        self._on_finish(self, content, error)


class JobWorker:
    """One thread running submitted jobs in order (the server has one for generate/bake, one for render)."""

    def __init__(self, name: str):
        self.name = name
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=f"relight-{name}", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._queue.put(job)

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            job.run()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to exit after the current job; True if it did within `timeout` seconds."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()
