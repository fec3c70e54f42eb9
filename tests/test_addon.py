"""The Relight extension inside real headless bpy: scene I/O, operators, and the full flow against `relight serve`.

bpy as a module has no event loop, so timers never fire: the tests call the add-on's own tick() in a loop.
"""

import math

import numpy as np
import pytest
from blender_fixture import (  # noqa: F401  (fixtures)
    addon_prefs,
    addon_zip,
    cached_object_render,
    free_port,
    image_pixels,
    make_camera,
    make_hdri_world,
    make_plain_world,
    make_sphere_with_material,
    relight_addon,
    tick_until_idle,
)

import bpy  # after conftest set the Blender user folders

# ------------------------------------------------------------------------------------ scene_io


@pytest.mark.parametrize(
    "fit,width,height,shift",
    [
        ("AUTO", 160, 120, (0.0, 0.0)),
        ("AUTO", 90, 150, (0.1, -0.05)),
        ("HORIZONTAL", 120, 160, (0.0, 0.2)),
        ("VERTICAL", 160, 100, (-0.15, 0.0)),
    ],
)
def test_camera_projection_matches_blender(relight_addon, fit, width, height, shift):
    """Points projected with our viewmat and K land where Blender's own world_to_camera_view puts them."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene = bpy.context.scene
    cam = make_camera(location=(1.5, -3.0, 1.2), target=(0.2, 0.1, 0.4), lens=35.0, width=width * 2, height=height * 2)
    scene.render.resolution_percentage = 50  # the sent size is resolution x percentage
    cam.data.sensor_fit = fit
    cam.data.sensor_width, cam.data.sensor_height = 36.0, 20.0
    cam.data.shift_x, cam.data.shift_y = shift
    bpy.context.view_layer.update()

    d = relight_addon.scene_io.camera_to_dict(cam, scene)
    assert (d["width"], d["height"]) == (width, height)
    viewmat, K = np.array(d["viewmat"]), np.array(d["K"])
    rng = np.random.default_rng(0)
    for p in rng.uniform(-0.5, 0.5, size=(12, 3)) + np.array([0.2, 0.1, 0.4]):
        pc = viewmat @ np.append(p, 1.0)
        assert pc[2] > 0  # in front of the camera: OpenCV looks down +Z
        u, v = (K @ (pc[:3] / pc[2]))[:2]
        ndc = world_to_camera_view(scene, cam, Vector(p))
        np.testing.assert_allclose([u, v], [ndc.x * width, (1.0 - ndc.y) * height], atol=1e-3)


def test_camera_errors(relight_addon):
    scene = bpy.context.scene
    with pytest.raises(relight_addon.scene_io.SceneIOError, match="no active camera"):
        relight_addon.scene_io.camera_to_dict(scene.camera, scene)
    cam = make_camera()
    cam.data.type = "ORTHO"
    with pytest.raises(relight_addon.scene_io.SceneIOError, match="perspective"):
        relight_addon.scene_io.camera_to_dict(cam, scene)


def test_image_to_array_byte_and_float(relight_addon):
    io = relight_addon.scene_io
    img = bpy.data.images.new("byte", 4, 3, alpha=True)
    px = np.zeros((3, 4, 4), dtype=np.float32)  # Blender order: row 0 = bottom
    px[0, :, 0] = 1.0  # bottom row red
    px[2, :, 2] = 1.0  # top row blue
    px[..., 3] = 1.0
    px[1, 1, 3] = 0.0
    img.pixels.foreach_set(px.ravel())
    arr, space = io.image_to_array(img)
    assert space == "srgb" and arr.dtype == np.uint8 and arr.shape == (3, 4, 4)
    assert arr[0, 0].tolist() == [0, 0, 255, 255]  # row 0 = top = blue
    assert arr[2, 0].tolist() == [255, 0, 0, 255]
    assert arr[1, 1, 3] == 0

    fimg = bpy.data.images.new("float", 4, 3, alpha=True, float_buffer=True)
    fpx = px.copy()
    fpx[2, :, 2] = 3.5  # HDR survives
    fimg.pixels.foreach_set(fpx.ravel())
    farr, fspace = io.image_to_array(fimg)
    assert fspace == "linear" and farr.dtype == np.float32
    np.testing.assert_allclose(farr[0, :, 2], 3.5)
    np.testing.assert_allclose(farr[2, :, 0], 1.0)

    img.colorspace_settings.name = "Non-Color"
    assert io.image_to_array(img)[1] == "linear"


def test_world_hdri_to_equirect(relight_addon):
    io = relight_addon.scene_io
    world = make_hdri_world("forest", rotation_z=0.7, strength=1.8)
    env = io.world_to_env(world)
    assert env["fallback"] is False
    assert env["rotation_z"] == pytest.approx(0.7)
    assert env["strength"] == pytest.approx(1.8)
    eq = env["equirect"]
    image = world.node_tree.nodes["Environment Texture"].image
    w, h = image.size
    assert eq.shape == (h, w, 3) and eq.dtype == np.float32
    np.testing.assert_allclose(eq, image_pixels(image)[..., :3], rtol=1e-6)  # row 0 = top
    assert eq.max() > 1.0  # linear HDR, not clipped

    small = io.world_to_env(world, max_width=256)["equirect"]
    assert small.shape == (h // 4, w // 4, 3)
    np.testing.assert_allclose(small.mean(axis=(0, 1), dtype=np.float64), eq.mean(axis=(0, 1), dtype=np.float64), rtol=1e-5)


def test_world_without_hdri_falls_back_to_background_colour(relight_addon):
    io = relight_addon.scene_io
    env = io.world_to_env(make_plain_world((0.2, 0.3, 0.4), strength=2.0))
    assert env["fallback"] is True and env["strength"] == 1.0
    np.testing.assert_allclose(env["equirect"].reshape(-1, 3), np.tile([0.4, 0.6, 0.8], (16 * 32, 1)), rtol=1e-6)
    assert io.world_to_env(None)["fallback"] is True


def test_mesh_to_arrays_is_evaluated_and_triangulated(relight_addon):
    obj = make_sphere_with_material()
    obj.modifiers.new("subsurf", "SUBSURF").levels = 1
    obj.rotation_euler = (0.3, 0.0, 1.0)
    bpy.context.view_layer.update()
    d = relight_addon.scene_io.mesh_to_arrays(obj, bpy.context.evaluated_depsgraph_get())
    v, f = d["vertices"], d["faces"]
    assert v.dtype == np.float32 and v.shape[1] == 3 and f.dtype == np.int32 and f.shape[1] == 3
    assert len(v) > len(obj.data.vertices)  # the modifier was applied
    assert f.min() >= 0 and f.max() < len(v)
    assert np.allclose(np.linalg.norm(v, axis=1).max(), 0.8, atol=0.02)  # object space: centred, unrotated
    np.testing.assert_allclose(np.array(d["matrix_world"]), np.array(obj.matrix_world), atol=1e-6)


def test_write_preview_and_import_glb(relight_addon, tmp_path):
    io = relight_addon.scene_io
    rgba = np.zeros((24, 40, 4), dtype=np.uint8)
    rgba[..., 0] = np.arange(40, dtype=np.uint8)[None, :] * 6
    rgba[:12, :, 3] = 255  # top half opaque
    image = io.write_preview(rgba)
    assert image.name == "Relight Preview" and tuple(image.size) == (40, 24)
    px = image_pixels(image)  # row 0 = top
    np.testing.assert_allclose(px * 255.0, rgba.astype(np.float32), atol=0.51)
    image2 = io.write_preview(rgba[:10, :20])  # a new size replaces the datablock
    assert tuple(image2.size) == (20, 10) and len([i for i in bpy.data.images if i.name.startswith("Relight")]) == 1

    bpy.ops.mesh.primitive_cube_add()
    glb = tmp_path / "cube.glb"
    bpy.ops.export_scene.gltf(filepath=str(glb), export_format="GLB")
    bpy.data.objects.remove(bpy.context.object)
    new = io.import_glb(glb)
    assert [o.type for o in new] == ["MESH"]


# ------------------------------------------------------------------------------------ operators without a backend


def test_generate_without_image_reports_clearly(relight_addon):
    with pytest.raises(RuntimeError, match="No image selected"):
        bpy.ops.relight.generate()
    assert "No image selected" in bpy.context.window_manager.relight.last_error
    assert relight_addon.session.SESSION.running_job() is None


def test_preview_and_import_without_asset_report_clearly(relight_addon):
    make_camera()
    with pytest.raises(RuntimeError, match="No asset generated yet"):
        bpy.ops.relight.preview()
    with pytest.raises(RuntimeError, match="No asset generated yet"):
        bpy.ops.relight.import_mesh()


def test_backend_down_reports_clearly(relight_addon, free_port):
    prefs = addon_prefs()
    prefs.endpoint = f"tcp://127.0.0.1:{free_port}"  # nothing listens here
    prefs.request_timeout = 0.5
    bpy.context.scene.relight.image = bpy.data.images.new("input", 8, 8)
    expected = f"No Relight backend answered at tcp://127.0.0.1:{free_port}: start one with `relight serve`"
    with pytest.raises(RuntimeError, match=expected.replace(".", r"\.")):
        bpy.ops.relight.generate()
    assert "enable 'Start a local backend' in the add-on preferences" in bpy.context.window_manager.relight.last_error
    assert bpy.context.window_manager.relight.connected is False
    with pytest.raises(RuntimeError, match="No Relight backend answered"):
        bpy.ops.relight.check_backend()
    assert relight_addon.session.SESSION.running_job() is None


def test_preview_without_camera_reports_clearly(relight_addon):
    bpy.context.scene.relight.asset_id = "0123abcd"
    with pytest.raises(RuntimeError, match="no active camera"):
        bpy.ops.relight.preview()


def test_register_unregister_symmetric(relight_addon):
    relight_addon.unregister()
    assert not hasattr(bpy.types.Scene, "relight") and not hasattr(bpy.types.WindowManager, "relight")
    assert not hasattr(bpy.types, "RELIGHT_PT_main")
    relight_addon.register()
    assert hasattr(bpy.types.Scene, "relight") and hasattr(bpy.types, "RELIGHT_PT_main")


def test_panel_draws_in_sidebar(relight_addon):
    panel = bpy.types.RELIGHT_PT_main
    assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI", "Relight")
    prefs = addon_prefs()
    assert prefs.endpoint == "tcp://127.0.0.1:5557"
