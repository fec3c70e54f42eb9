"""Start a real `relight serve` subprocess on a free loopback port (temp store) for tests, and stop it.

Use from a test module:  `from server_fixture import relight_server  # noqa: F401`  (a fresh server per test)
or `relight_server_module` (one per module), or call `start_server(store_dir)` yourself; each yields a
ServerProcess with .endpoint, .store_dir, .client() and .stop().
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from relight_protocol.client import Client

READY = "relight serve: listening on "
START_TIMEOUT = 120.0  # seconds; startup imports torch and the pipeline


class ServerProcess:
    """A running `python -m relight.cli serve` child; stdout and stderr are collected line by line."""

    def __init__(self, proc: subprocess.Popen, store_dir: Path):
        self.proc = proc
        self.store_dir = store_dir
        self.endpoint: str | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._clients: list[Client] = []
        for stream, sink, forward in ((proc.stdout, self.stdout, True), (proc.stderr, self.stderr, False)):
            threading.Thread(target=self._read, args=(stream, sink, forward), daemon=True).start()

    def _read(self, stream, sink: list, forward: bool) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))
            if forward:
                self._lines.put(line.rstrip("\n"))
        if forward:
            self._lines.put(None)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"relight serve did not become ready (exit code {self.proc.poll()}):\n"
                                   + "\n".join(self.stdout + self.stderr))
            if line.startswith(READY):
                self.endpoint = line[len(READY):].strip()
                return self.endpoint

    def client(self) -> Client:
        """A Client connected to this server, closed by stop()."""
        c = Client(self.endpoint)
        self._clients.append(c)
        return c

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig`, wait for exit; return the exit code (kills after `timeout` seconds)."""
        for c in self._clients:
            c.close()
        self._clients.clear()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_server(store_dir: Path, bind: str = "tcp://127.0.0.1:0", extra_args: tuple = (),
                 env: dict | None = None, timeout: float = START_TIMEOUT) -> ServerProcess:  # fmt: skip
    """Start `relight serve` on `bind` (port 0: a free port the server picks and prints) and wait until ready.
    `env`: variables added to this process's environment."""
    store_dir = Path(store_dir)
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    cmd = [sys.executable, "-m", "relight.cli", "serve", "--bind", bind, "--store", str(store_dir), *extra_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    server = ServerProcess(proc, store_dir)
    server.wait_ready(timeout)
    return server


@pytest.fixture
def relight_server(tmp_path):
    """A fresh `relight serve` with an empty temp store, stopped after the test."""
    server = start_server(tmp_path / "store")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def relight_server_module(tmp_path_factory):
    """One `relight serve` shared by a test module (temp store), stopped after the module."""
    server = start_server(tmp_path_factory.mktemp("relight-store"))
    yield server
    server.stop()
