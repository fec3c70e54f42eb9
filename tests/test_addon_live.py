"""The live viewport preview in real headless bpy against a real `relight serve`: turning Live on installs a timer
and a draw handler; each change of the view, the world's rotation, a lamp or the asset's placement object gives a
new frame in the image "Relight Preview" that differs accordingly; one frame at most is in flight; the quality
steps up to final when still; Live off and disabling the add-on leave no handler, timer or socket behind.

bpy as a module has no event loop and no GPU: the tests call live.step() (what the timer calls) in a loop; only the
GPU draw itself is not exercised here."""

import math
import time

import numpy as np
import pytest
from blender_fixture import (  # noqa: F401  (fixtures)
    addon_prefs,
    addon_zip,
    image_pixels,
    make_camera,
    make_hdri_world,
    relight_addon,
)
from server_fixture import start_server

import bpy  # after conftest set the Blender user folders

FRAME_TIMEOUT = 300.0  # seconds: the first frame compiles the backend's kernels on a cold cache


@pytest.fixture(scope="module")
def sphere_server(tmp_path_factory):
    """A real `relight serve` whose store holds the small sphere asset of test_bench."""
    from relight.service.store import AssetStore
    from test_bench import sphere_asset

    store_dir = tmp_path_factory.mktemp("live-store")
    asset = sphere_asset()
    AssetStore(store_dir).put(asset)
    server = start_server(store_dir)
    yield server, asset.asset_id
    server.stop()


def live_module():
    import importlib

    from blender_fixture import EXTENSION_MODULE

    return importlib.import_module(EXTENSION_MODULE + ".live")


def next_frame(live, quality: str = "preview", in_flight_seen: list | None = None):
    """Step the live preview until a frame of `quality` arrives; -> (frame, [H, W, 4] pixels of the image)."""
    deadline = time.monotonic() + FRAME_TIMEOUT
    while time.monotonic() < deadline:
        frame = live.step()
        if in_flight_seen is not None:
            in_flight_seen.append(live.LIVE.preview.renders_pending(live.LIVE.client))
        if frame is not None and frame.quality == quality:
            return frame, image_pixels(bpy.data.images["Relight Preview"])
        time.sleep(0.005)
    raise AssertionError(f"no {quality} frame within {FRAME_TIMEOUT} s: {live.LIVE.preview.error}")


def centroid_x(px: np.ndarray) -> float:
    return float(np.nonzero(px[..., 3].max(0) > 0.5)[0].mean())


def test_viewport_view_becomes_the_same_camera_as_the_camera_object(relight_addon):
    """A 3D viewport's view and projection matrices (here: a camera's own, as Blender computes them for camera view)
    give the same request camera as the camera object does."""
    views, scene_io = relight_addon.views, relight_addon.scene_io
    cam = make_camera(location=(1.0, -3.0, 1.5), width=160, height=120, lens=42)
    cam.data.shift_x = 0.05
    depsgraph = bpy.context.evaluated_depsgraph_get()
    window = cam.calc_matrix_camera(depsgraph, x=160, y=120)
    got = views.view_to_camera(cam.matrix_world.inverted(), window, 160, 120)
    want = scene_io.camera_to_dict(cam, bpy.context.scene)
    np.testing.assert_allclose(got["viewmat"], want["viewmat"], atol=1e-5)
    np.testing.assert_allclose(got["K"], want["K"], rtol=1e-5, atol=1e-3)
    cam.data.type = "ORTHO"
    ortho = cam.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(), x=160, y=120)
    with pytest.raises(scene_io.SceneIOError, match="needs a perspective view"):
        views.view_to_camera(cam.matrix_world.inverted(), ortho, 160, 120)
    assert views.capped_size(1920, 1080, 512) == (512, 288) and views.capped_size(300, 200, 512) == (300, 200)


def test_live_follows_view_world_lamps_and_placement(relight_addon, sphere_server):
    live_scene = relight_addon.live_scene
    server, asset_id = sphere_server
    live = live_module()
    scene = bpy.context.scene
    status = bpy.context.window_manager.relight
    addon_prefs().endpoint = server.endpoint
    world = make_hdri_world("forest", rotation_z=0.0)
    make_camera(location=(0.0, -3.0, 0.4), target=(0.0, 0.0, 0.0), width=64, height=64)
    scene.relight.asset_id = asset_id

    status.live = True
    assert live.running() and live.handlers_installed()
    assert bpy.app.timers.is_registered(live.tick)
    in_flight = []
    first, px0 = next_frame(live, in_flight_seen=in_flight)
    assert px0.shape == (64, 64, 4) and px0[32, 32, 3] > 0.99 and px0[2, 2, 3] == 0, "the sphere, over nothing"
    np.testing.assert_allclose(px0, first.image.astype(np.float32) / 255.0, atol=1e-6)
    assert first.server["server_total"] > 0 and live.LIVE.timings[-1]["upload"] >= 0
    sent_equirect = live.LIVE.preview.worlds_sent.copy()
    assert len(sent_equirect) == 1

    def changed(a, b) -> float:
        return float(np.abs(a[..., :3] - b[..., :3]).max())

    # the view: the camera turns about the sphere
    scene.camera.location = (1.5, -2.6, 0.4)
    scene.camera.rotation_euler = (math.radians(82), 0.0, math.radians(30))
    bpy.context.view_layer.update()
    _, px1 = next_frame(live, in_flight_seen=in_flight)
    assert changed(px1, px0) > 0.05

    # the world turns: the same world travels no more (the server holds it)
    world.node_tree.nodes["Mapping"].inputs["Rotation"].default_value[2] = 2.0
    frame, px2 = next_frame(live, in_flight_seen=in_flight)
    assert changed(px2, px1) > 0.05
    assert live.LIVE.preview.worlds_sent == sent_equirect

    # a lamp: a strong sun from the camera's side brightens the sphere
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.data.energy = 5.0
    scene.collection.objects.link(sun)
    sun.rotation_euler = (math.radians(90), 0.0, math.radians(30))  # shines along the camera's view
    bpy.context.view_layer.update()
    _, px3 = next_frame(live, in_flight_seen=in_flight)
    assert px3[24:40, 24:40, :3].mean() > px2[24:40, 24:40, :3].mean() + 0.05

    # the asset's placement object moves: the sphere moves in the image
    bpy.ops.relight.add_placement()
    placement = [o for o in scene.objects if o.get(live_scene.LIVE_ASSET_PROP) == asset_id]
    assert len(placement) == 1
    placement[0].location = (0.25, 0.0, 0.0)
    bpy.context.view_layer.update()
    _, px4 = next_frame(live, in_flight_seen=in_flight)
    assert abs(centroid_x(px4) - centroid_x(px3)) > 2

    # still for a moment: the same state again at final quality
    live.LIVE.preview.settings.still_seconds = 0.1
    final, px5 = next_frame(live, quality="final", in_flight_seen=in_flight)
    assert final.state_key == live.LIVE.preview.state_key
    assert max(in_flight) == 1, "never more than one frame in flight"

    # a final frame overtaken by a new view is cancelled at once: the new view does not wait for it
    scene.camera.location = (1.4, -2.7, 0.5)
    bpy.context.view_layer.update()
    _, px5 = next_frame(live, in_flight_seen=in_flight)
    deadline = time.monotonic() + FRAME_TIMEOUT
    while not (live.LIVE.preview.in_flight and live.LIVE.preview.in_flight["quality"] == "final"):
        live.step()
        assert time.monotonic() < deadline
    final_id = live.LIVE.preview.in_flight["msg_id"]
    scene.camera.location = (1.3, -2.8, 0.5)
    bpy.context.view_layer.update()
    live.step()
    assert live.LIVE.preview.cancelled[-1] == final_id and live.LIVE.preview.in_flight["quality"] == "preview"
    _, px5 = next_frame(live, in_flight_seen=in_flight)

    # a world the server has never seen, though the client thinks it sent it: UnknownWorld, then sent again
    world.node_tree.nodes["Environment Texture"].image = bpy.data.images.load(
        bpy.utils.system_resource("DATAFILES") + "/studiolights/world/sunset.exr")
    key = live_scene.world_reference(scene.world)[0]
    live.LIVE.preview.worlds_sent.add(key)
    _, px6 = next_frame(live)
    assert key in live.LIVE.preview.worlds_sent and changed(px6, px5) > 0.02 and not live.LIVE.preview.error

    status.live = False
    assert not live.running() and not live.handlers_installed()
    assert not bpy.app.timers.is_registered(live.tick) and live.LIVE.client is None
    assert live.step() is None


def test_live_reports_what_it_needs_and_disabling_the_addon_leaves_nothing(relight_addon, sphere_server):
    server, _ = sphere_server
    live = live_module()
    status = bpy.context.window_manager.relight
    addon_prefs().endpoint = server.endpoint
    make_camera(width=32, height=32)
    status.live = True
    assert live.step() is None
    assert "Generate an asset first" in status.live_message
    relight_addon.unregister()  # what disabling the add-on runs
    assert not live.handlers_installed() and live.LIVE.client is None
    relight_addon.register()
    assert bpy.context.window_manager.relight.live is False, "the toggle does not claim Live is on after re-enabling"
