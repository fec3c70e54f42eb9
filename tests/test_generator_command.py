"""A generator that runs as another program: a real script receives the image and writes a mesh; its failures come
back as named errors."""

import sys
import textwrap

import numpy as np
import pytest

from relight.generate.geometry.command import GeneratorError, check_template, run_command

SCRIPT = textwrap.dedent('''
    import sys, numpy as np, trimesh, cv2
    image, out = sys.argv[1], sys.argv[2]
    rgba = cv2.imread(image, cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4
    frac = float((rgba[..., 3] > 127).mean())  # the mask arrives as alpha: the sphere's radius follows it
    trimesh.creation.icosphere(subdivisions=2, radius=frac).export(out)
''')


def _image(frac_side: float = 0.5) -> np.ndarray:
    img = np.zeros((32, 32, 4), np.uint8)
    n = int(32 * frac_side)
    img[:n, :, :3], img[:n, :, 3] = 200, 255
    return img


@pytest.fixture
def script(tmp_path):
    p = tmp_path / "make_mesh.py"
    p.write_text(SCRIPT)
    return p


@pytest.mark.parametrize("ext", ["glb", "obj", "ply", "stl"])
def test_the_program_gets_the_image_and_its_mesh_is_read(script, ext):
    v, f = run_command(f"{sys.executable} {script} {{image}} {{mesh.{ext}}}", _image(0.5))
    assert len(f) == 320  # an icosphere of subdivision 2
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 0.5, atol=1e-3)  # radius = the mask's coverage


def test_failures_are_named(script, tmp_path):
    with pytest.raises(GeneratorError, match="must contain"):
        check_template("python make.py --out {mesh}")
    with pytest.raises(GeneratorError, match="was not found"):
        run_command("/no/such/generator {image} {mesh}", _image())
    with pytest.raises(GeneratorError, match=r"failed \(exit 3\).*out of memory"):
        run_command(f"{sys.executable} -c \"import sys; sys.stderr.write('out of memory'); sys.exit(3)\" {{image}} {{mesh}}",
                    _image())
    with pytest.raises(GeneratorError, match="without writing"):
        run_command(f"{sys.executable} -c pass {{image}} {{mesh}}", _image())
    empty = tmp_path / "empty.py"
    empty.write_text("import sys; open(sys.argv[2], 'w').write('solid e\\nendsolid e\\n')")
    with pytest.raises(GeneratorError, match="no triangles"):
        run_command(f"{sys.executable} {empty} {{image}} {{mesh.stl}}", _image())
    with pytest.raises(GeneratorError, match="did not finish"):
        run_command(f"{sys.executable} -c \"import time; time.sleep(30)\" {{image}} {{mesh}}", _image(), timeout=1.0)
