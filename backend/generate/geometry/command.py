"""A mesh generator that runs as another program (TRELLIS, SF3D, Hunyuan3D's own scripts, a studio's tool): a command
template receives the object's image and writes a mesh file, which the one mesh-file reader then loads.

The template is split like a shell line (shlex, no shell is started) and its placeholders are replaced per run:
  {image}  the path of a PNG of the object (RGBA, sRGB, background transparent: alpha is the object's mask);
  {mesh}   the path the program must write, ending .glb unless the template says otherwise ({mesh.obj}, {mesh.ply},
           {mesh.stl}, {mesh.glb}).
Example: `python /opt/sf3d/run.py --input {image} --output {mesh.glb}`. The program runs in a fresh temporary folder
(its working directory) with a time limit; a non-zero exit, a timeout or a missing output is a GeneratorError that
quotes the end of the program's error output.
"""

import re
import shlex
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ...core.imageio import write_rgba
from .mesh_file import MeshFileError, read_mesh_file

DEFAULT_TIMEOUT = 900.0  # seconds one generator run may take
_MESH = re.compile(r"\{mesh(?:\.(glb|obj|ply|stl))?\}")


class GeneratorError(ValueError):
    """A generator that could not produce a usable mesh; the message says what to fix."""


def check_template(template: str) -> str:
    """The template if it names both {image} and a {mesh} output; GeneratorError otherwise."""
    if not isinstance(template, str) or "{image}" not in template or not _MESH.search(template):
        raise GeneratorError(f"generator command {template!r} must contain {{image}} (the input picture) and "
                             "{mesh} or {mesh.glb|.obj|.ply|.stl} (the mesh file it writes)")
    try:
        shlex.split(template)
    except ValueError as e:
        raise GeneratorError(f"generator command {template!r} cannot be split into arguments: {e}") from None
    return template


def run_command(template: str, rgba: np.ndarray, timeout: float = DEFAULT_TIMEOUT) -> tuple[np.ndarray, np.ndarray]:
    """Run the generator on rgba [H, W, 4] uint8 (sRGB, alpha = the object's mask) -> (vertices [V, 3] float32,
    faces [F, 3] int32) in the generator's own frame, as the mesh-file reader turns it to Z up."""
    check_template(template)
    with tempfile.TemporaryDirectory(prefix="relight-generator-") as tmp:
        folder = Path(tmp)
        image = folder / "object.png"
        write_rgba(image, np.asarray(rgba, np.uint8))
        ext = (_MESH.search(template).group(1) or "glb")
        mesh = folder / f"mesh.{ext}"
        argv = [_MESH.sub(str(mesh), a).replace("{image}", str(image)) for a in shlex.split(template)]
        try:
            done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise GeneratorError(f"generator program {argv[0]!r} was not found; check the command "
                                 f"{template!r} (an absolute path is safest)") from None
        except subprocess.TimeoutExpired:
            raise GeneratorError(f"generator command {argv[0]!r} did not finish within {timeout:.0f} s") from None
        tail = (done.stderr or done.stdout or "").strip()[-800:]
        if done.returncode != 0:
            raise GeneratorError(f"generator command {argv[0]!r} failed (exit {done.returncode}): {tail or 'no output'}")
        if not mesh.is_file():
            raise GeneratorError(f"generator command {argv[0]!r} exited without writing {{mesh}} ({mesh.name}); "
                                 f"its output: {tail or 'none'}")
        try:
            return read_mesh_file(mesh)
        except MeshFileError as e:
            raise GeneratorError(f"generator command {argv[0]!r} wrote a mesh that cannot be used: {e}") from None
