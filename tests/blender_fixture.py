"""bpy test helpers: the extension zip built once per session, a clean scene with the add-on installed, scene builders.

Use from a test module with `from blender_fixture import addon_zip, relight_addon  # noqa: F401` (fixtures).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
EXTENSION_MODULE = "bl_ext.user_default.relight"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory) -> Path:
    """The extension zip, built once per test session by build_addon.py (wheels cached in <repo>/wheels)."""
    import build_addon

    out = tmp_path_factory.mktemp("addon-dist")
    return build_addon.build(out, REPO / "wheels")


def reset_scene() -> None:
    """Factory settings with an empty scene (this also resets preferences, disabling every extension)."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)


def install_addon(zip_path: Path):
    """Install and enable the zip in the user_default repository; returns the add-on's module."""
    import bpy

    result = bpy.ops.extensions.package_install_files(
        filepath=str(zip_path), repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}, result
    assert EXTENSION_MODULE in bpy.context.preferences.addons, "the extension was installed but not enabled"
    module = importlib.import_module(EXTENSION_MODULE)
    importlib.import_module(EXTENSION_MODULE + ".scene_io")  # the add-on imports it lazily; tests use it directly
    importlib.import_module(EXTENSION_MODULE + ".live_scene")
    importlib.import_module(EXTENSION_MODULE + ".views")
    return module


@pytest.fixture
def relight_addon(addon_zip):
    """A factory-fresh empty scene with the Relight extension installed and enabled; yields its module."""
    reset_scene()
    module = install_addon(addon_zip)
    yield module
    module.session.shutdown()


@pytest.fixture(scope="session")
def addon_tree(addon_zip, tmp_path_factory) -> Path:
    """The extension zip unpacked, as Blender installs it: the add-on's modules with relight_protocol/ inside."""
    import zipfile

    out = tmp_path_factory.mktemp("addon-tree")
    with zipfile.ZipFile(addon_zip) as z:
        z.extractall(out)
    return out


WITHOUT_BLENDER_PACKAGE = "relight_addon_without_blender"


def import_without_blender(tree: Path, name: str):
    """Import the add-on module `name` (e.g. "connection") from an unpacked `tree` without running the add-on's
    __init__ (which imports bpy): under a stand-in package, so its relative imports resolve inside the tree."""
    import types

    pkg = sys.modules.get(WITHOUT_BLENDER_PACKAGE)
    if pkg is None or list(pkg.__path__) != [str(tree)]:
        for mod in [m for m in sys.modules if m.startswith(WITHOUT_BLENDER_PACKAGE + ".")]:
            del sys.modules[mod]
        pkg = types.ModuleType(WITHOUT_BLENDER_PACKAGE)
        pkg.__path__ = [str(tree)]
        sys.modules[WITHOUT_BLENDER_PACKAGE] = pkg
    return importlib.import_module(f"{WITHOUT_BLENDER_PACKAGE}.{name}")


@pytest.fixture
def free_port() -> int:
    """A loopback TCP port nothing listens on (just released by the OS)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def addon_prefs():
    import bpy

    return bpy.context.preferences.addons[EXTENSION_MODULE].preferences


# ------------------------------------------------------------------------------------ scene builders

def hdri_path(name: str = "forest") -> str:
    import bpy

    path = os.path.join(bpy.utils.system_resource("DATAFILES"), "studiolights", "world", f"{name}.exr")
    assert os.path.isfile(path), f"bpy's bundled HDRI {path} is missing"
    return path


def use_nodes(idblock) -> None:
    """Make a World or Material render with its node tree (always so from Blender 5.0, which deprecates `use_nodes`)."""
    import bpy

    if bpy.app.version < (5, 0, 0):
        idblock.use_nodes = True


def uses_nodes(idblock) -> bool:
    """Whether a World or Material renders with its node tree."""
    import bpy

    return idblock.node_tree is not None and (bpy.app.version >= (5, 0, 0) or idblock.use_nodes)


def make_hdri_world(name: str = "forest", rotation_z: float = 0.0, strength: float = 1.0):
    """Scene world = Environment Texture (a bundled HDRI) <- Mapping (Z rotation) -> Background(strength)."""
    import bpy

    world = bpy.data.worlds.new("Relight Test World")
    use_nodes(world)
    nt = world.node_tree
    bg = nt.nodes["Background"]
    env = nt.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(hdri_path(name), check_existing=True)
    mapping = nt.nodes.new("ShaderNodeMapping")
    coord = nt.nodes.new("ShaderNodeTexCoord")
    mapping.inputs["Rotation"].default_value[2] = rotation_z
    nt.links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    nt.links.new(env.outputs["Color"], bg.inputs["Color"])
    bg.inputs["Strength"].default_value = strength
    bpy.context.scene.world = world
    return world


def make_plain_world(colour=(0.2, 0.3, 0.4), strength: float = 2.0):
    import bpy

    world = bpy.data.worlds.new("Plain World")
    use_nodes(world)
    bg = world.node_tree.nodes["Background"]
    bg.inputs["Color"].default_value = (*colour, 1.0)
    bg.inputs["Strength"].default_value = strength
    bpy.context.scene.world = world
    return world


def make_camera(location=(0.0, -4.0, 1.0), target=(0.0, 0.0, 0.3), lens: float = 50.0, width: int = 96,
                height: int = 96):
    """Active scene camera looking at `target`; render resolution width x height at 100 %."""
    import bpy
    from mathutils import Vector

    scene = bpy.context.scene
    cam_data = bpy.data.cameras.new("Relight Test Camera")
    cam_data.lens = lens
    cam = bpy.data.objects.new("Relight Test Camera", cam_data)
    scene.collection.objects.link(cam)
    cam.location = location
    direction = Vector(target) - Vector(location)
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    bpy.context.view_layer.update()
    return cam


def make_sphere_with_material(colour=(0.8, 0.25, 0.1), roughness: float = 0.4, name: str = "Relight Test Sphere"):
    import bpy

    mesh = bpy.data.meshes.new(name)
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    import bmesh

    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=0.8)
    bm.to_mesh(mesh)
    bm.free()
    for p in mesh.polygons:
        p.use_smooth = True
    obj.location = (0.0, 0.0, 0.3)
    mat = bpy.data.materials.new(name + " Material")
    use_nodes(mat)
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    mesh.materials.append(mat)
    return obj


def render_object_image(path: Path, samples: int = 16) -> None:
    """Cycles CPU render of the current scene with a transparent film to an 8-bit sRGB RGBA PNG at `path`."""
    import bpy

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.seed = 7
    scene.cycles.use_denoising = False
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.image_settings.color_depth = "8"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    assert path.is_file(), f"Cycles did not write {path}"


def cached_object_render(width: int = 96, height: int = 96, samples: int = 16) -> Path:
    """A Cycles render of an orange sphere under the forest HDRI, cached under RELIGHT_CACHE_DIR by its parameters.

    Rendering resets the scene (and so disables extensions): call it before installing the add-on.
    """
    cache = Path(os.environ["RELIGHT_CACHE_DIR"]) / "addon"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"sphere_forest_{width}x{height}_s{samples}_v1.png"
    if not path.is_file():
        reset_scene()
        make_hdri_world("forest")
        make_camera(width=width, height=height)
        make_sphere_with_material()
        render_object_image(path, samples=samples)
        reset_scene()
    return path


@pytest.fixture(scope="session")
def object_image_path() -> Path:
    """[128, 128] RGBA PNG of a sphere rendered by Cycles (cached); session scope so it runs before the add-on install."""
    return cached_object_render(128, 128, samples=16)


def image_pixels(image) -> np.ndarray:
    """[H, W, 4] float32 pixels of a bpy image, row 0 = top."""
    w, h = image.size
    buf = np.empty(w * h * image.channels, dtype=np.float32)
    image.pixels.foreach_get(buf)
    return buf.reshape(h, w, image.channels)[::-1]


def tick_until(session_module, done, timeout: float) -> None:
    """Call the add-on's tick() (what bpy.app.timers would call in Blender) until done() is true: the time that
    passes in a Blender with a UI, with its timer running, while the test waits for something."""
    import time

    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not done after {timeout} s of ticking"
        session_module.tick()
        time.sleep(0.02)


def tick_until_idle(session_module, timeout: float = 600.0, on_tick=None) -> float:
    """Call the add-on's tick() (what bpy.app.timers would call) until no job runs; returns the seconds taken.

    on_tick(), if given, runs after every tick (e.g. to record the progress shown in the panel).
    """
    import time

    start = time.monotonic()
    while session_module.SESSION.running_job() is not None:
        assert time.monotonic() - start < timeout, f"job still running after {timeout} s"
        interval = session_module.tick()
        if on_tick is not None:
            on_tick()
        if interval is not None:
            time.sleep(min(interval, 0.05))
    return time.monotonic() - start

