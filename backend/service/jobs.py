"""Jobs: one cancellable unit of work with throttled progress, and the worker thread that runs them in order."""

import queue
import sys
import threading
import time
import traceback
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
        self._progress_lock = threading.Lock()  # _last, last_message, _step_t: the worker's and keepalive's
        self._last = (None, -1.0, 0.0)  # (stage, fraction, time) of the last emitted progress
        self._step_t = 0.0  # when the last progress of the job's own came (keepalives repeat it)
        self.last_message = ""  # the message of the last emitted progress (repeated by keepalive())
        self.peer: bytes = b""  # the client that asked for it (its ROUTER identity; the scheduler's fairness key)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        """Report progress; raises Cancelled if the job was cancelled. Messages within one stage are throttled
        to one per min_interval, but a new stage, fraction 0 and fraction 1 always go out."""
        if self._cancel.is_set():
            raise Cancelled(f"{self.action} job {self.id} was cancelled at stage {stage!r}")
        now = time.monotonic()
        with self._progress_lock:
            last_stage, _, last_t = self._last
            emit = stage != last_stage or fraction <= 0.0 or fraction >= 1.0 or now - last_t >= self._min_interval
            if emit:
                self._last = (stage, fraction, now)
                self.last_message, self._step_t = message, now
                # posted under the lock: a keepalive never goes out between this update and its message
                self._on_progress(self, stage, fraction, message)

    def keepalive(self, now: float, silent_s: float) -> bool:
        """If this job runs and has reported nothing for `silent_s` seconds, report its last progress again with
        how long its step has run ("still working: N s"); True if it did. What the server does for a job in one
        long step (any thread; never raises Cancelled; in order with the job's own progress)."""
        with self._progress_lock:
            stage, fraction, last_t = self._last
            if self.state != "running" or now - last_t < silent_s:
                return False
            self._last = (stage, fraction, now)
            message = f"{self.last_message} (still working: {now - self._step_t:.0f} s)"
            self._on_progress(self, str(stage or "start"), max(0.0, fraction), message)
        return True

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
            self.last_message, self._step_t = f"{self.action} started", self._last[2]
            self._on_progress(self, "start", 0.0, f"{self.action} started")
            content = self._fn(self.progress)
        except Exception as e:  # the job's error becomes its error reply
            error = e
        except BaseException as e:  # noqa: BLE001 - SystemExit & co. from a handler end this job, not the worker
            error = RuntimeError(f"the {self.action} job stopped with {type(e).__name__}: {e}")
        with self._lock:
            if error is None and self._cancel.is_set():
                error = Cancelled(f"{self.action} job {self.id} was cancelled")
                content = None
            self.state = "done"
        self._on_finish(self, content, error)


def run_guarded(job: Job) -> None:
    """job.run(), and whatever escapes it (a failing on_finish, say) is logged: the worker thread lives on."""
    try:
        job.run()
    except BaseException:  # noqa: BLE001 - one job's failure must not end the thread that serves the others
        print(f"relight serve: {job.action} job {job.id} crashed its worker; the worker goes on:\n"
              + traceback.format_exc(), file=sys.stderr, flush=True)


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
            run_guarded(job)

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to exit after the current job; True if it did within `timeout` seconds."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()
