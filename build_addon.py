"""Build the installable Relight Blender extension zip (id "relight").

Downloads unmodified pyzmq wheels (cp311 for Blender 4.2-5.0, cp313/abi3 for 5.1+) for linux-x64, windows-x64,
macos-arm64 and macos-x64 into a cache folder, vendors shared/ as the add-on's `relight_protocol` sub-package,
writes the manifest's `wheels` and `platforms`, then builds and validates with Blender's own extension CLI.

    python build_addon.py [--out dist] [--wheels wheels]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent
ADDON_SRC = REPO / "blender_addon"
PROTOCOL_SRC = REPO / "shared"
EXTENSION_ID = "relight"

# The Python versions of the Blender releases the extension supports: 4.2-5.0 ship 3.11, 5.1+ ship 3.13.
PYTHON_VERSIONS = ("3.11", "3.13")
# pip platform tag asked for -> Blender's platform name in the manifest.
PLATFORMS = {
    "manylinux_2_28_x86_64": "linux-x64",
    "win_amd64": "windows-x64",
    "macosx_11_0_arm64": "macos-arm64",
    "macosx_10_15_x86_64": "macos-x64",
}
INDEX_NAME = "index.json"  # in the wheel cache: "<version> <python> <platform>" -> wheel file name


def blender_ext_cli() -> Path:
    """Path of blender_ext.py, the extension CLI inside the installed bpy wheel."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")  # locate without importing bpy (slow, and not needed)
    if spec is None or spec.origin is None:
        raise SystemExit("bpy is not installed in this Python; it carries the extension CLI (pip install bpy==4.5.*)")
    bpy_dir = Path(spec.origin).parent
    found = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit(f"blender_ext.py not found under {bpy_dir}")
    return found[-1]


def pyzmq_version() -> str:
    """The pyzmq version of this venv: the add-on bundles exactly the version the tests run against."""
    return importlib.metadata.version("pyzmq")


def fetch_wheels(cache: Path, version: str) -> dict[tuple[str, str], Path]:
    """Download (or reuse from `cache`) one pyzmq wheel per (python, platform). Returns {(py, plat): wheel path}.

    Files are exactly what pip picked from the registry; pip may choose a universal2 or abi3 wheel, so several
    (python, platform) pairs can share one file.
    """
    cache.mkdir(parents=True, exist_ok=True)
    index_path = cache / INDEX_NAME
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    picked: dict[tuple[str, str], Path] = {}
    for py in PYTHON_VERSIONS:
        for plat in PLATFORMS:
            key = f"{version} {py} {plat}"
            name = index.get(key)
            if name and (cache / name).is_file():
                picked[(py, plat)] = cache / name
                continue
            with tempfile.TemporaryDirectory(prefix="relight-wheel-") as tmp:
                cmd = [
                    sys.executable, "-m", "pip", "download", f"pyzmq=={version}",
                    "--only-binary=:all:", "--no-deps", "--disable-pip-version-check", "--quiet",
                    "--python-version", py, "--platform", plat, "--dest", tmp,
                ]  # fmt: skip
                print(f"downloading pyzmq {version} for Python {py} on {plat}", flush=True)
                subprocess.run(cmd, check=True)
                wheels = list(Path(tmp).glob("*.whl"))
                if len(wheels) != 1:
                    raise SystemExit(f"pip download for {py}/{plat} gave {len(wheels)} wheels: {wheels}")
                dest = cache / wheels[0].name
                if not dest.exists():
                    shutil.copy2(wheels[0], dest)
            index[key] = dest.name
            index_path.write_text(json.dumps(index, indent=1, sort_keys=True))
            picked[(py, plat)] = dest
    return picked


def write_manifest(src_manifest: Path, dst_manifest: Path, wheel_names: list[str]) -> dict:
    """Copy the manifest, adding `platforms` and `wheels` among the top-level keys. Returns the parsed result."""
    text = src_manifest.read_text()
    data = tomllib.loads(text)
    for key in ("wheels", "platforms"):
        if key in data:
            raise SystemExit(f"{src_manifest} must not set '{key}': build_addon.py writes it")
    lines = text.splitlines()
    first_table = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    generated = [
        "# Written by build_addon.py",
        "platforms = [" + ", ".join(json.dumps(p) for p in PLATFORMS.values()) + "]",
        "wheels = [",
        *(f'  "./wheels/{name}",' for name in wheel_names),
        "]",
        "",
    ]
    out = "\n".join(lines[:first_table] + generated + lines[first_table:]) + "\n"
    dst_manifest.write_text(out)
    return tomllib.loads(out)


def stage(staging: Path, wheels: list[Path]) -> dict:
    """Assemble the extension source tree in `staging`. Returns the manifest written."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    shutil.copytree(ADDON_SRC, staging, ignore=ignore)
    # The protocol package travels inside the add-on: `from .relight_protocol import ...`.
    shutil.copytree(PROTOCOL_SRC, staging / "relight_protocol", ignore=ignore)
    (staging / "wheels").mkdir()
    for w in wheels:
        shutil.copy2(w, staging / "wheels" / w.name)
    return write_manifest(ADDON_SRC / "blender_manifest.toml", staging / "blender_manifest.toml",
                          [w.name for w in wheels])


def run_cli(cli: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(cli), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"blender_ext {args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def build(out_dir: Path, cache: Path) -> Path:
    """Build the extension zip into `out_dir`; returns its path."""
    cli = blender_ext_cli()
    picked = fetch_wheels(cache, pyzmq_version())
    wheels = sorted(set(picked.values()))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="relight-addon-") as tmp:
        staging = Path(tmp) / EXTENSION_ID
        manifest = stage(staging, wheels)
        if manifest["id"] != EXTENSION_ID:
            raise SystemExit(f"manifest id is {manifest['id']!r}, expected {EXTENSION_ID!r}")
        run_cli(cli, "validate", str(staging))
        zip_path = out_dir / f"{EXTENSION_ID}-{manifest['version']}.zip"
        zip_path.unlink(missing_ok=True)
        run_cli(cli, "build", "--source-dir", str(staging), "--output-filepath", str(zip_path))
    run_cli(cli, "validate", str(zip_path))
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output folder for the zip")
    parser.add_argument("--wheels", type=Path, default=REPO / "wheels", help="wheel download cache")
    args = parser.parse_args(argv)
    zip_path = build(args.out.resolve(), args.wheels.resolve())
    size = zip_path.stat().st_size
    print(f"{zip_path} ({size / 1e6:.2f} MB, {size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
