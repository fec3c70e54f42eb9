"""The add-on on Blender 4.2 LTS and 5.0 (4.5 is this venv's bpy): each bpy lives in its own venv (README, Setup), and
the Generate -> Preview -> Import flow runs there against a `relight serve` from this venv. Each version gets a fresh
server (an empty store): the same image on the same store would reuse the asset instead of generating it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from blender_fixture import addon_zip, object_image_path  # noqa: F401  (fixtures)
from server_fixture import relight_server  # noqa: F401  (fixture: a fresh `relight serve` per test)

REPO = Path(__file__).resolve().parent.parent
FLOW = Path(__file__).resolve().parent / "blender_version_flow.py"
FLOW_TIMEOUT = 600.0  # seconds; the flow took 1.5 min per version on a loaded 2-core machine (below the
# 900 s pytest-timeout, so a hang is reported with the flow's output)

# Blender version -> (venv folder in the checkout, the pip requirements README's Setup installs into it)
VENVS = {
    "4.2": (".venv-blender42", '"bpy==4.2.*" "numpy<2" pytest pytest-timeout'),
    "5.0": (".venv-blender50", '"bpy==5.0.*" pytest pytest-timeout'),
}


def venv_python(folder: str) -> Path:
    bin_dir = "Scripts" if sys.platform == "win32" else "bin"
    return REPO / folder / bin_dir / ("python.exe" if sys.platform == "win32" else "python")


def setup_command(folder: str, requirements: str) -> str:
    return f"python3 -m venv {folder} && {folder}/bin/pip install {requirements}"


def test_readme_and_ci_create_these_venvs():
    """The venvs this test looks for are the ones README's Setup makes, and CI runs those very lines."""
    readme, ci = (REPO / "README.md").read_text(), (REPO / ".ci" / "run").read_text()
    for version, (folder, requirements) in VENVS.items():
        line = setup_command(folder, requirements)
        assert line in readme.splitlines(), f"README's Setup lacks the bpy {version} venv line: {line}"
        assert line in ci.splitlines(), f".ci/run lacks the bpy {version} venv line: {line}"


@pytest.mark.parametrize("version", sorted(VENVS))
def test_generate_preview_import_on_blender(version, addon_zip, object_image_path, request):
    folder, requirements = VENVS[version]
    python = venv_python(folder)
    if not python.is_file():
        pytest.fail(f"no bpy {version} venv at {REPO / folder}; create it as README's Setup says: "
                    f"{setup_command(folder, requirements)}")
    server = request.getfixturevalue("relight_server")  # only once the venv is there
    env = dict(os.environ, RELIGHT_FLOW_BLENDER=version, RELIGHT_FLOW_ZIP=str(addon_zip),
               RELIGHT_FLOW_IMAGE=str(object_image_path), RELIGHT_FLOW_ENDPOINT=server.endpoint)
    env.pop("PYTHONPATH", None)  # only that venv's packages: bpy, numpy, pytest (and the add-on's bundled pyzmq)
    # -c os.devnull: not the repo's pytest settings, whose two xdist workers are for the whole suite (that venv has
    # no xdist); FLOW_TIMEOUT bounds the run instead of pytest-timeout
    cmd = [str(python), "-m", "pytest", "-c", os.devnull, "--rootdir", str(REPO), "-q", "-s", "-p", "no:cacheprovider",
           str(FLOW)]
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=FLOW_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        pytest.fail(f"the add-on flow on bpy {version} did not finish within {FLOW_TIMEOUT:.0f} s:\n{out[-3000:]}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the add-on flow failed on bpy {version}:\n{output[-6000:]}"
    assert "1 passed" in proc.stdout and f"bpy {version}." in proc.stdout, output[-3000:]
    print("\n" + next(line for line in proc.stdout.splitlines() if line.startswith(f"bpy {version}.")))
