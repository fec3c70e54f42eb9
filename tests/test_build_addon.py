"""build_addon.py: the extension zip has a valid manifest, unmodified pyzmq wheels for every target, the protocol."""

import hashlib
import importlib.metadata
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from blender_fixture import addon_zip  # noqa: F401  (session fixture)

import build_addon

# (Blender's Python, Blender platform) pairs the extension must cover: cp311 = Blender 4.2-5.0, cp313 = 5.1+.
TARGETS = [(py, plat) for py in ("3.11", "3.13") for plat in ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")]


def _manifest(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as z:
        return tomllib.loads(z.read("blender_manifest.toml").decode())


def _wheel_covers(name: str, py: str, plat: str) -> bool:
    """Whether the wheel file `name` installs on CPython `py` on Blender platform `plat` (by its tags)."""
    _dist, _ver, py_tag, abi_tag, plat_tag = name[:-4].split("-")
    major, minor = (int(x) for x in py.split("."))
    if abi_tag == "abi3":  # stable ABI: any CPython >= the tagged version
        ok_py = py_tag.startswith("cp3") and int(py_tag[3:]) <= minor
    else:
        ok_py = py_tag == f"cp{major}{minor}"
    tags = plat_tag.split(".")
    ok_plat = {
        "linux-x64": any(t.startswith("manylinux") and t.endswith("_x86_64") for t in tags),
        "windows-x64": "win_amd64" in tags,
        "macos-arm64": any(t.startswith("macosx") and t.endswith(("_arm64", "_universal2")) for t in tags),
        "macos-x64": any(t.startswith("macosx") and t.endswith(("_x86_64", "_universal2")) for t in tags),
    }[plat]
    return ok_py and ok_plat


def test_manifest_fields(addon_zip):
    m = _manifest(addon_zip)
    assert m["schema_version"] == "1.0.0"
    assert m["id"] == "relight"
    assert m["name"] == "Relight"
    assert m["type"] == "add-on"
    assert m["blender_version_min"] == "4.2.0"
    assert m["license"] == ["SPDX:GPL-3.0-or-later"]
    assert m["tagline"] and m["maintainer"] and m["version"]
    assert m["permissions"]["network"] == "Talks to the Relight compute backend over ZeroMQ"
    assert "files" in m["permissions"]
    assert sorted(m["platforms"]) == sorted(["linux-x64", "windows-x64", "macos-arm64", "macos-x64"])


def test_bundled_wheels_cover_every_target_and_are_unmodified(addon_zip, repo_root):
    m = _manifest(addon_zip)
    version = importlib.metadata.version("pyzmq")
    with zipfile.ZipFile(addon_zip) as z:
        names = set(z.namelist())
        listed = [w.removeprefix("./") for w in m["wheels"]]
        for w in listed:
            assert w in names, f"manifest lists {w} but the zip lacks it"
        wheel_files = [Path(w).name for w in listed]
        assert all(n.startswith(f"pyzmq-{version}-") for n in wheel_files), wheel_files
        # All 8 (Python, platform) targets are covered; universal2 and abi3 wheels may serve several of them.
        for py, plat in TARGETS:
            covering = [n for n in wheel_files if _wheel_covers(n, py, plat)]
            assert covering, f"no bundled wheel installs on Python {py} / {plat}: {wheel_files}"
        # Unmodified: byte-identical to what pip downloaded into the cache.
        for w in listed:
            cached = repo_root / "wheels" / Path(w).name
            assert hashlib.sha256(z.read(w)).digest() == hashlib.sha256(cached.read_bytes()).digest()
            with zipfile.ZipFile(cached) as wz:
                assert wz.testzip() is None
    index = json.loads((repo_root / "wheels" / build_addon.INDEX_NAME).read_text())
    assert len([k for k in index if k.startswith(version + " ")]) == 8


def test_protocol_is_vendored_with_relative_imports(addon_zip, repo_root):
    with zipfile.ZipFile(addon_zip) as z:
        names = set(z.namelist())
        for src in sorted((repo_root / "shared").glob("*.py")):
            inside = f"relight_protocol/{src.name}"
            assert inside in names, f"{inside} missing from the zip"
            assert z.read(inside) == src.read_bytes()
        for name in names:
            if name.endswith(".py"):
                text = z.read(name).decode()
                for line in text.splitlines():
                    stripped = line.strip()
                    assert not stripped.startswith(("import relight", "from relight")), f"{name}: {line}"
                    assert "import torch" not in stripped, f"{name} imports torch: {line}"
        for required in ("__init__.py", "scene_io.py", "session.py", "connection.py", "local_backend.py", "ui/ops.py",
                         "ui/panel.py", "ui/props.py", "ui/prefs.py"):
            assert required in names
        assert not any("__pycache__" in n for n in names)


def test_extension_cli_validates_the_zip(addon_zip):
    cli = build_addon.blender_ext_cli()
    proc = subprocess.run([sys.executable, str(cli), "validate", str(addon_zip)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout or "success" in proc.stdout.lower(), proc.stdout


def test_rebuild_reuses_the_wheel_cache(addon_zip, tmp_path, repo_root):
    before = {p.name: p.stat().st_mtime_ns for p in (repo_root / "wheels").glob("*.whl")}
    out = build_addon.build(tmp_path, repo_root / "wheels")
    after = {p.name: p.stat().st_mtime_ns for p in (repo_root / "wheels").glob("*.whl")}
    assert before == after  # nothing downloaded again
    with zipfile.ZipFile(out) as a, zipfile.ZipFile(addon_zip) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())


def test_command_line_prints_zip_path_and_size(tmp_path, repo_root):
    proc = subprocess.run([sys.executable, str(repo_root / "build_addon.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    (zip_path,) = tmp_path.glob("relight-*.zip")
    assert str(zip_path) in proc.stdout and str(zip_path.stat().st_size) in proc.stdout
