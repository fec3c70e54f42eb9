"""The optional `relight serve` child process the add-on starts on this machine (no bpy: paths come in absolute)."""

from __future__ import annotations

import os
import subprocess
import tempfile

from .connection import BackendUnavailable

LOCAL_START_TIMEOUT = 60.0  # seconds a freshly started local backend gets to answer hello (it imports torch)
LOG_NAME = "relight-serve.log"  # in the store folder: the child's stdout and stderr


class LocalBackend:
    """A `relight serve` child process started by the add-on."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.log_path: str | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, python: str, endpoint: str, store: str) -> None:
        """Run `<python> -m relight.cli serve --bind <endpoint> --store <store>` unless one already runs.

        `store` "" means a folder in the temp directory. Raises BackendUnavailable when `python` is unset or missing.
        """
        if self.running():
            return
        if not python:
            raise BackendUnavailable(
                "Set 'Backend Python' in the Relight add-on preferences to the Python of an environment "
                "with the relight backend installed"
            )
        if not os.path.isfile(python):
            raise BackendUnavailable(f"Backend Python {python} does not exist")
        store = store or os.path.join(tempfile.gettempdir(), "relight-store")
        os.makedirs(store, exist_ok=True)
        self.log_path = os.path.join(store, LOG_NAME)
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [python, "-m", "relight.cli", "serve", "--bind", endpoint, "--store", store],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the child (kill it after `timeout` seconds); nothing when none was started."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
