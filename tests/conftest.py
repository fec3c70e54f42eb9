"""Shared test setup: keep bpy and torch extension builds out of the real home directory."""

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports bpy: Blender writes user resources, caches and thumbnails under these.
_HOME = Path(tempfile.mkdtemp(prefix="relight-test-home-"))
for var, sub in (
    ("BLENDER_USER_RESOURCES", "blender"),
    ("BLENDER_USER_SCRIPTS", "blender/scripts"),
    ("BLENDER_USER_CONFIG", "blender/config"),
    ("XDG_CACHE_HOME", "cache"),
    ("TORCH_EXTENSIONS_DIR", "torch_extensions"),
):
    os.environ[var] = str(_HOME / sub)
    (_HOME / sub).mkdir(parents=True, exist_ok=True)

# Expensive ground truth (Cycles renders, BRDF tables) survives between runs here.
os.environ.setdefault("RELIGHT_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".cache"))

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


# ------------------------------------------------------------------------------------------ a prompt exit
# bpy as a module can hang in its own exit handler (its GlobalState destructor waits on a delayed-close thread), which
# turned a finished run into a CI time-out. Once pytest has reported everything, leave at once with its status.

_EXIT_STATUS = {"code": None}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import sys

    import shutil

    shutil.rmtree(_HOME, ignore_errors=True)  # the temp home of this run (os._exit below skips atexit handlers)
    if "bpy" in sys.modules and _EXIT_STATUS["code"] is not None and not hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["code"])
