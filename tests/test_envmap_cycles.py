"""The equirect orientation, Mapping-node Z rotation and Background strength equal Blender's, proven against
Cycles: a panoramic equirectangular camera at the origin renders each bpy HDRI world, and every pixel must
equal Environment(..., rotation_z, strength).radiance along the ray Cycles traced for it."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from relight.core.envmap import Environment, builtin_hdris
from relight.core.equirect import equirect_pixel_dirs
from relight.core.hdri_io import read_hdr_image
from relight_protocol.conventions import EQUIRECT_PANO_EULER

bpy = pytest.importorskip("bpy")

RES = (32, 64)  # (h, w) of the panoramic renders
STRENGTH = 1.5
ROTATIONS = [0.0, 0.9, -2.3]  # radians; 0.0 uses Blender's default world (no Mapping node)
HDRIS = sorted(builtin_hdris())


def _cache_path(kind: str, **params) -> Path:
    key = hashlib.sha1(repr(sorted(params.items())).encode()).hexdigest()[:16]
    root = Path(os.environ.get("RELIGHT_CACHE_DIR", Path.home() / ".cache" / "relight")) / "cycles_envmap"
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{kind}_{key}.npy"


def _file_id(p: Path) -> str:
    return hashlib.sha1(p.read_bytes()).hexdigest()[:16]


def _scene_with_pano_camera(tmp: Path):
    """Fresh scene, Cycles at 1 sample with a ~zero-width pixel filter (rays through pixel centres), and an
    equirectangular panoramic camera at the origin. Returns (scene, world node tree, output, background)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.filter_width = 0.01
    scene.cycles.seed = 0
    scene.render.film_transparent = False
    scene.render.resolution_x, scene.render.resolution_y = RES[1], RES[0]
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.color_mode = "RGB"
    cam_data = bpy.data.cameras.new("pano")
    cam_data.type = "PANO"
    cam_data.panorama_type = "EQUIRECTANGULAR"  # full sphere: latitude +-90, longitude +-180 by default
    cam = bpy.data.objects.new("pano", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.location = (0.0, 0.0, 0.0)
    cam.rotation_euler = EQUIRECT_PANO_EULER  # image centre looks along +X, top row at +Z
    world = bpy.data.worlds.new("world")
    scene.world = world
    world.use_nodes = True
    world.cycles.sampling_method = "NONE"  # no light importance map: only camera rays matter here
    nt = world.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputWorld")
    bg = nt.nodes.new("ShaderNodeBackground")
    nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
    return scene, nt, bg


def _render(scene, path: Path) -> np.ndarray:
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return read_hdr_image(path)


@pytest.fixture(scope="module")
def ray_dirs(tmp_path_factory) -> np.ndarray:
    """[h, w, 3] the world direction Cycles traces through each pixel, rendered as the world's colour
    (Texture Coordinate 'Generated' in a world shader is the ray direction)."""
    cache = _cache_path("dirs", res=RES, bpy=bpy.app.version_string)
    if cache.is_file():
        return np.load(cache)
    scene, nt, bg = _scene_with_pano_camera(tmp_path_factory.mktemp("dirs"))
    tc = nt.nodes.new("ShaderNodeTexCoord")
    nt.links.new(tc.outputs["Generated"], bg.inputs["Color"])
    bg.inputs["Strength"].default_value = 1.0
    d = _render(scene, tmp_path_factory.mktemp("dirs_out") / "dirs.exr")
    np.save(cache, d)
    return d


def cycles_world_render(name: str, rotation: float, tmp: Path) -> np.ndarray:
    """[h, w, 3] linear Cycles render of the world Environment Texture(HDRI) <- Mapping(Z rotation) with
    Background strength STRENGTH, cached by parameters."""
    path = builtin_hdris()[name]
    cache = _cache_path("world", hdri=name, file=_file_id(path), rot=rotation, strength=STRENGTH, res=RES,
                        bpy=bpy.app.version_string)  # fmt: skip
    if cache.is_file():
        return np.load(cache)
    scene, nt, bg = _scene_with_pano_camera(tmp)
    env = nt.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(path))
    env.interpolation = "Linear"
    env.projection = "EQUIRECTANGULAR"
    nt.links.new(env.outputs["Color"], bg.inputs["Color"])
    bg.inputs["Strength"].default_value = STRENGTH
    if rotation != 0.0:
        tc = nt.nodes.new("ShaderNodeTexCoord")
        mapping = nt.nodes.new("ShaderNodeMapping")
        mapping.vector_type = "POINT"
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, rotation)
        nt.links.new(tc.outputs["Generated"], mapping.inputs["Vector"])
        nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    img = _render(scene, tmp / f"{name}_{rotation}.exr")
    np.save(cache, img)
    return img


def test_pano_camera_rays_follow_the_equirect_grid(ray_dirs):
    """The camera set-up really looks along our equirect pixel grid (so pixel (j, i) = texel centre (j, i))."""
    assert ray_dirs.shape == (*RES, 3)
    np.testing.assert_allclose(np.linalg.norm(ray_dirs, axis=-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(ray_dirs, equirect_pixel_dirs(*RES), atol=2e-3)


@pytest.fixture(scope="module")
def sources():
    return {name: read_hdr_image(p) for name, p in builtin_hdris().items()}


@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("name", HDRIS)
def test_environment_matches_cycles_world(name, rotation, ray_dirs, sources, tmp_path):
    cycles = cycles_world_render(name, rotation, tmp_path)
    env = Environment(sources[name], rotation_z=rotation, strength=STRENGTH)
    ours = env.radiance(ray_dirs)
    scale = cycles.mean()
    err = np.abs(ours - cycles)
    # Cycles uses the HDRI's tiny negative (DWA-compression) values as they are; Environment clamps them to 0
    assert np.median(err) < 1e-3 * scale, (np.median(err), scale)
    assert err.mean() < 0.01 * scale, (err.mean(), scale)
    # the check can fail: the opposite rotation sense (or a mirrored u) is far off
    if rotation != 0.0:
        wrong = np.abs(env.with_transform(-rotation, STRENGTH).radiance(ray_dirs) - cycles).mean()
        assert wrong > 10 * err.mean() and wrong > 0.02 * scale
    mirrored = np.abs(env.radiance(ray_dirs * np.array([1.0, -1.0, 1.0], np.float32)) - cycles).mean()
    assert mirrored > 10 * err.mean()
