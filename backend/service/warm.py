"""Start-up warming in the background: what the first render would otherwise pay for (the default HDRI's
prefiltered levels and light split, the BRDF tables, the shading kernels), with a status for the hello reply."""

import sys
import threading
import time


def _default_environment():
    from . import handlers

    env = handlers.environment(None)  # the studio HDRI every request without a world gets (handlers caches it)
    env.prefilter()
    env.kernel_data()
    env.light_kernel_data()


def _brdf_tables():
    from ..render import brdf_lut

    brdf_lut.brdf_lut()
    brdf_lut.average_albedo()


def _shading_kernels():
    from ..render import shading  # noqa: F401 - compiles (or loads the cached) numba shading kernels


WARM_ITEMS = {"default_environment": _default_environment, "brdf_lut": _brdf_tables,
              "shading_kernels": _shading_kernels}  # name -> what warms it


class Warmer:
    """Runs WARM_ITEMS once on a daemon thread; status() says what is warm ("ready"), warming, or failed."""

    def __init__(self, items: dict | None = None):
        self._items = dict(items or WARM_ITEMS)
        self._state = {name: "pending" for name in self._items}
        self._seconds: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="relight-warm", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        t0 = time.perf_counter()
        for name, warm in self._items.items():
            self._state[name] = "warming"
            try:
                warm()
                self._state[name] = "ready"
            except Exception as e:  # noqa: BLE001 - a request will do (and report) the same work later
                self._state[name] = "failed"
                print(f"relight serve: warming {name} failed ({type(e).__name__}: {e}); the first request pays for "
                      "it instead", file=sys.stderr, flush=True)
        self._seconds = round(time.perf_counter() - t0, 2)

    def wait(self, timeout: float | None = None) -> bool:
        """True once warming has ended (for tests and the bench)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._seconds is not None

    def status(self) -> dict:
        """{"state": "warming" | "ready", "items": {name: pending | warming | ready | failed}, "seconds"}."""
        return {"state": "ready" if self._seconds is not None else "warming", "items": dict(self._state),
                "seconds": self._seconds}
