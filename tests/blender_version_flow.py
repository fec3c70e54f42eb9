"""Run by test_blender_versions.py inside another bpy's venv (4.2, 5.0): install the add-on zip and run the Generate ->
Preview -> Import flow against the `relight serve` it names. Not collected by the main suite (no test_ prefix).

Inputs (environment): RELIGHT_FLOW_BLENDER (the expected version, "4.2"), RELIGHT_FLOW_ZIP, RELIGHT_FLOW_IMAGE,
RELIGHT_FLOW_ENDPOINT.
"""

import os
from pathlib import Path

import pytest
from addon_flow import generate_preview_import
from blender_fixture import relight_addon  # noqa: F401  (fixture)

import bpy  # after conftest set the Blender user folders

# An API this Blender deprecates, used by the add-on, fails the flow: it would break on the next release.
pytestmark = pytest.mark.filterwarnings(r"error::DeprecationWarning:bl_ext\.user_default\.relight")


@pytest.fixture(scope="session")
def addon_zip() -> Path:
    """The zip the main venv built (build_addon.py needs the main venv's pip and wheel cache)."""
    return Path(os.environ["RELIGHT_FLOW_ZIP"])


def test_generate_preview_import_on_this_blender(relight_addon):
    expected = os.environ["RELIGHT_FLOW_BLENDER"]
    running = "{}.{}".format(*bpy.app.version[:2])
    assert running == expected, f"this venv runs bpy {bpy.app.version_string}, not {expected}"
    image = Path(os.environ["RELIGHT_FLOW_IMAGE"])
    t = generate_preview_import(relight_addon, os.environ["RELIGHT_FLOW_ENDPOINT"], image)

    import zmq  # this venv has no pyzmq: the add-on talked through the wheel it bundles, which Blender unpacked here

    site = Path(os.environ["BLENDER_USER_RESOURCES"]) / "extensions" / ".local" / "lib" / "python3.11" / "site-packages"
    assert Path(zmq.__file__).is_relative_to(site), f"zmq came from {zmq.__file__}, not the add-on's wheel"
    print(f"\nbpy {bpy.app.version_string}: generate {t['generate']:.1f} s, preview {t['preview']:.1f} s, "
          f"import {t['import']:.1f} s")
