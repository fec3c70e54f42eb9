"""A `relight serve` child process for the benchmarks that go through the real service: started on a free loopback
port (its endpoint read from its log), its output drained so it never blocks on a full pipe, and stopped."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

START_TIMEOUT_S = 120.0  # startup imports torch and the pipeline


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


def stop_serve(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
