"""A `relight serve` child process for the benchmarks that go through the real service: started on a free loopback
port (its endpoint read from its log), its output drained so it never blocks on a full pipe, and stopped."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

START_TIMEOUT_S = 120.0  # startup imports torch and the pipeline
WARM_TIMEOUT_S = 300.0  # start-up warming (service/warm.py): ~14 s on 2 idle cores, the default HDRI's prefilter


def start_serve(store_dir: Path, serve_args: tuple = (), timeout: float = START_TIMEOUT_S):
    """-> (process, endpoint, seconds until it listened). RuntimeError (the child killed) if it does not start."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "relight.cli", "serve", "--bind", "tcp://127.0.0.1:0", "--store", str(store_dir),
           *serve_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on " in line:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep it drained
            return proc, line.split("listening on ", 1)[1].split()[0], time.perf_counter() - t0
    proc.kill()
    raise RuntimeError(f"relight serve did not start (exit code {proc.poll()})")


def wait_warm(endpoint: str, timeout: float = WARM_TIMEOUT_S) -> float:
    """Block until the server's start-up warming (service/warm.py, reported by hello) has ended -> seconds waited.

    A timed leg must not start before: warming prefilters the default HDRI on both cores in the background (~14 s
    after the server listens), and a frame rendered meanwhile shares the cores with it (the orbit's frames took 82
    ms instead of 56 in the server, measured interleaved with the same frames rendered in-process).
    RuntimeError if warming has not ended within `timeout` seconds."""
    from relight_protocol.client import Client

    t0 = time.perf_counter()
    client = Client(endpoint)
    try:
        while True:
            warm = client.call("hello_request", timeout=60).content.get("warm") or {}
            if warm.get("state") == "ready":
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"relight serve was still warming after {timeout:.0f} s: {warm}")
            time.sleep(0.2)
    finally:
        client.close()


def stop_serve(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
