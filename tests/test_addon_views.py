"""Which view Show Passes and Render Turntable render from (issue 16): the 3D viewport's own view, the active camera
in camera view and without a viewport, a warning with neither; in real headless bpy against a real `relight serve`.

bpy as a module draws no viewport, but its factory screen has a real 3D view whose RegionView3D keeps the matrices
the startup file was saved with (a view from +X, -Y, +Z, far out): the operators run in that area's context
(temp_override(area=...)), as the sidebar's button runs them, and the tests read the expected view from the same
RegionView3D. The decision itself (views.choose_view, views.request_camera) is driven with explicit matrices."""

import numpy as np
import pytest
from asset_fixture import seeded_server
from blender_fixture import (  # noqa: F401  (fixtures)
    addon_prefs,
    addon_zip,
    image_pixels,
    make_camera,
    make_hdri_world,
    make_plain_world,
    relight_addon,
    tick_until_idle,
)

import bpy  # after conftest set the Blender user folders

TIMEOUT = 300.0  # seconds for one job on two shared cores
FRONT = (0.0, -3.0, 0.8)  # the active camera's place in every test: in front of the asset (at the origin)


@pytest.fixture(scope="module")
def views_server(tmp_path_factory):
    """A `relight serve` whose store holds the real disc asset (about 1 unit across, at the origin)."""
    yield from seeded_server(tmp_path_factory, "addon-views-store")


def _viewport_area():
    """The factory screen's 3D view, its WINDOW region and RegionView3D (real Blender data, never drawn here)."""
    area = next(a for a in bpy.context.window.screen.areas if a.type == "VIEW_3D")
    region = next(r for r in area.regions if r.type == "WINDOW")
    return area, region, area.spaces.active.region_3d


def _eye(view_matrix) -> np.ndarray:
    """[3] world position of a view's eye: the translation of view_matrix^-1."""
    return np.linalg.inv(np.asarray(view_matrix, np.float64))[:3, 3]


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def _project(camera: dict, point) -> np.ndarray:
    """[2] pixel (x right, y down, row 0 = top) of a world point seen by a wire camera."""
    p = np.asarray(camera["viewmat"], np.float64) @ np.append(np.asarray(point, np.float64), 1.0)
    uv = np.asarray(camera["K"], np.float64) @ (p[:3] / p[2])
    return uv[:2]


def _start(session, op, area=None) -> str:
    """Run `op` (in the 3D view's context when `area` is given) and return the status line it left while its job
    runs; then tick until the job is done and check it went well."""
    if area is None:
        assert op() == {"FINISHED"}
    else:
        with bpy.context.temp_override(area=area):
            assert op() == {"FINISHED"}
    status = bpy.context.window_manager.relight
    note = status.status_message
    tick_until_idle(session, timeout=TIMEOUT)
    assert status.last_error == "", status.last_error
    return note


# ------------------------------------------------------------------------------------ the decision, plain values


def test_the_view_decision_from_plain_matrices(relight_addon):
    """A viewport from the side wins over an active camera in front; in camera view, and with no viewport, the
    active camera (at the render size, or capped like Live); with neither, NoView, reported as a warning."""
    views = relight_addon.views
    scene = bpy.context.scene
    side = make_camera(location=(3.0, 0.0, 0.8), target=(0.0, 0.0, 0.0), width=400, height=300)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    side_view, side_window = side.matrix_world.inverted(), side.calc_matrix_camera(depsgraph, x=400, y=300)
    side_wire = relight_addon.scene_io.camera_to_dict(side, scene)
    front = make_camera(location=FRONT, target=(0.0, 0.0, 0.0), width=48, height=40)
    viewport = views.Viewport(view=tuple(map(tuple, side_view)), window=tuple(map(tuple, side_window)), width=400,
                              height=300, camera_view=False)  # fmt: skip
    in_camera_view = views.Viewport(viewport.view, viewport.window, 400, 300, camera_view=True)

    assert views.choose_view(viewport, has_camera=True) == views.VIEWPORT
    assert views.choose_view(viewport, has_camera=False) == views.VIEWPORT
    assert views.choose_view(in_camera_view, has_camera=True) == views.CAMERA
    assert views.choose_view(None, has_camera=True) == views.CAMERA
    assert views.choose_view(in_camera_view, has_camera=False) is None
    assert views.choose_view(None, has_camera=False) is None

    camera, source = views.request_camera(scene, viewport, max_side=200)
    assert source == views.VIEWPORT and (camera["width"], camera["height"]) == (200, 150)
    np.testing.assert_allclose(camera["viewmat"], side_wire["viewmat"], atol=1e-5)  # the side view, not the front
    np.testing.assert_allclose(np.asarray(camera["K"])[:2] * 2, np.asarray(side_wire["K"])[:2], rtol=1e-5,
                               atol=1e-3)  # the same field of view at half the pixels  # fmt: skip
    want_front = relight_addon.scene_io.camera_to_dict(front, scene)
    for vp in (in_camera_view, None):
        camera, source = views.request_camera(scene, vp, max_side=24, cap_camera=False)
        assert source == views.CAMERA and camera == want_front
    camera, _ = views.request_camera(scene, None, max_side=24)  # Live caps the camera too
    assert (camera["width"], camera["height"]) == (24, 20)
    np.testing.assert_allclose(camera["K"][0][0], want_front["K"][0][0] / 2)

    scene.camera = None
    with pytest.raises(views.NoView, match="Nothing to render from") as caught:
        views.request_camera(scene, None, max_side=512)
    assert caught.value.level == "WARNING"
    assert views.request_camera(scene, viewport, max_side=512)[1] == views.VIEWPORT  # no camera needed


# ------------------------------------------------------------------------------------ Show Passes


def test_show_passes_renders_from_the_viewport_then_the_camera(relight_addon, views_server):
    """In the 3D view's context the passes are seen from the viewport's eye (the normals face it, the images have its
    region's aspect at the preference's size); in camera view and without a viewport, from the active camera in
    front; with neither, a warning and nothing sent; the asset's placement object moves the asset in the passes."""
    server, asset_id = views_server
    session, views = relight_addon.session, relight_addon.views
    prefs = addon_prefs()
    prefs.endpoint, prefs.request_timeout, prefs.live_max_side = server.endpoint, 10.0, 320
    status = bpy.context.window_manager.relight
    make_hdri_world("sunset")
    make_camera(location=FRONT, target=(0.0, 0.0, 0.0), width=48, height=40)
    scene = bpy.context.scene
    scene.relight.asset_id = asset_id
    area, region, rv3d = _viewport_area()
    assert rv3d.view_perspective == "PERSP"
    eye_dir = _unit(_eye(rv3d.view_matrix))  # from the asset at the origin towards the viewport's eye
    camera_dir = _unit(FRONT)
    assert eye_dir @ camera_dir < 0.6, "the factory view must look from elsewhere than the camera"

    def passes():
        px = {k: image_pixels(bpy.data.images[f"Relight {k.title()}"]) for k in ("albedo", "normal")}
        inside = px["albedo"][..., 3] > 0.99
        mean = _unit((px["normal"][inside][:, :3] * 2 - 1).mean(0))
        return px["albedo"].shape[:2], inside, mean

    note = _start(session, bpy.ops.relight.show_passes, area)
    w, h = views.capped_size(region.width, region.height, 320)
    assert note == f"Show Passes from the 3D viewport's view ({w}x{h})"
    shape, inside, normal = passes()
    assert shape == (h, w) and inside.sum() > 30
    assert normal @ eye_dir > 0.8 > normal @ camera_dir + 0.2, (normal, eye_dir)  # it faces the viewport's eye

    rv3d.view_perspective = "CAMERA"
    try:
        note = _start(session, bpy.ops.relight.show_passes, area)
    finally:
        rv3d.view_perspective = "PERSP"
    assert note == "Show Passes from the active camera (48x40)"
    shape, inside, normal = passes()
    assert shape == (40, 48) and normal @ camera_dir > 0.8 > normal @ eye_dir + 0.2, normal
    centre_x = np.nonzero(inside)[1].mean()

    # no viewport (bpy in the background, no area given): the active camera; the placement moves the asset
    bpy.ops.relight.add_placement()
    placement = next(o for o in scene.objects if o.get(relight_addon.live_scene.LIVE_ASSET_PROP) == asset_id)
    placement.location = (0.4, 0.0, 0.0)
    bpy.context.view_layer.update()
    assert _start(session, bpy.ops.relight.show_passes) == "Show Passes from the active camera (48x40)"
    shape, inside, _ = passes()
    camera = relight_addon.scene_io.camera_to_dict(scene.camera, scene)
    expected = _project(camera, (0.4, 0.0, 0.0))[0] - _project(camera, (0.0, 0.0, 0.0))[0]  # pixels to the right
    moved = np.nonzero(inside)[1].mean() - centre_x
    assert shape == (40, 48) and abs(moved - expected) < 0.25 * expected, (moved, expected)

    scene.camera = None  # neither: a warning, no job
    assert bpy.ops.relight.show_passes() == {"CANCELLED"}
    assert status.last_warning.startswith("Nothing to render from") and status.last_error == ""
    assert session.SESSION.running_job() is None
    rv3d.view_perspective = "CAMERA"  # camera view without a camera is neither as well
    try:
        with bpy.context.temp_override(area=area):
            assert bpy.ops.relight.show_passes() == {"CANCELLED"}
    finally:
        rv3d.view_perspective = "PERSP"
    assert status.last_warning.startswith("Nothing to render from")


# ------------------------------------------------------------------------------------ Render Turntable


def test_render_turntable_starts_from_the_viewport_and_orbits_the_placed_asset(relight_addon, views_server):
    """In the 3D view's context the turntable's first frame is the viewport's view at its region's aspect, the asset
    where its placement object put it (found by colour: an orange asset under a blue-grey world)."""
    from relight.export.video import decode_video

    server, asset_id = views_server
    session, views = relight_addon.session, relight_addon.views
    prefs = addon_prefs()
    prefs.endpoint, prefs.request_timeout, prefs.live_max_side = server.endpoint, 10.0, 512
    make_plain_world((0.2, 0.3, 0.4), strength=2.0)
    make_camera(location=FRONT, target=(0.0, 0.0, 0.0), width=48, height=40)
    scene = bpy.context.scene
    scene.relight.asset_id = asset_id
    scene.relight_turntable.frames, scene.relight_turntable.fps = 3, 12
    bpy.ops.relight.add_placement()
    placement = next(o for o in scene.objects if o.get(relight_addon.live_scene.LIVE_ASSET_PROP) == asset_id)
    placement.location = (0.0, 0.0, 1.5)
    bpy.context.view_layer.update()
    area, region, rv3d = _viewport_area()

    with bpy.context.temp_override(area=area):
        assert bpy.ops.relight.render_turntable() == {"FINISHED"}
    sent = session.SESSION.running_job().content
    w, h = views.capped_size(region.width, region.height, 512)
    w, h = w - w % 2, h - h % 2
    want = views.view_to_camera(rv3d.view_matrix, rv3d.window_matrix, *views.capped_size(region.width, region.height,
                                                                                         512))  # fmt: skip
    want["width"], want["height"] = w, h  # made even: the same K (half a pixel of difference at most)
    np.testing.assert_allclose(sent["camera"]["viewmat"], want["viewmat"], atol=1e-6)
    np.testing.assert_allclose(np.asarray(sent["asset_matrix"])[:3, 3], (0.0, 0.0, 1.5), atol=1e-9)
    assert bpy.context.window_manager.relight.status_message == \
        f"Render Turntable from the 3D viewport's view ({w}x{h})"
    tick_until_idle(session, timeout=TIMEOUT)
    assert bpy.context.window_manager.relight.last_error == ""
    with open(bpy.context.window_manager.relight_library.last_video, "rb") as f:
        video = decode_video(f.read())
    assert video.shape == (3, h, w, 3)
    rgb = video[0].astype(np.float64)
    asset = rgb[..., 0] > rgb[..., 2] + 20  # orange over the blue-grey world
    assert asset.sum() > 30
    found = np.array([np.nonzero(asset)[1].mean(), np.nonzero(asset)[0].mean()])
    placed, unplaced = _project(want, (0.0, 0.0, 1.5)), _project(want, (0.0, 0.0, 0.0))
    shift = np.linalg.norm(placed - unplaced)
    assert shift > 10 and np.linalg.norm(found - placed) < 0.25 * shift, (found, placed, unplaced)


# ------------------------------------------------------------------------------------ Preview Relit


def test_preview_relit_shows_the_scenes_lamps_and_the_placed_asset(relight_addon, views_server):
    """Preview Relit renders what the live preview shows: under a black world the asset is lit by the scene's point
    lamp alone (black without it), and where its placement object moved it."""
    server, asset_id = views_server
    session = relight_addon.session
    prefs = addon_prefs()
    prefs.endpoint, prefs.request_timeout = server.endpoint, 10.0
    make_plain_world((0.0, 0.0, 0.0), 1.0)
    make_camera(location=FRONT, target=(0.0, 0.0, 0.0), width=48, height=40)
    scene = bpy.context.scene
    scene.relight.asset_id = asset_id
    scene.relight.preview_quality = "preview"

    def preview():
        _start(session, bpy.ops.relight.preview)
        px = image_pixels(bpy.data.images["Relight Preview"])
        inside = px[..., 3] > 0.99
        return px, inside

    px, inside = preview()
    assert inside.sum() > 30 and px[inside][:, :3].max() < 0.02, "a black world and no lamp: black"
    lamp = bpy.data.objects.new("Lamp", bpy.data.lights.new("Lamp", "POINT"))
    lamp.data.energy = 300.0
    lamp.location = (0.0, -1.5, 1.0)  # in front of the asset, above the camera's line
    scene.collection.objects.link(lamp)
    px, inside = preview()
    assert px[inside][:, :3].mean() > 0.1, "the point lamp lights it"
    centre_x = np.nonzero(inside)[1].mean()
    bpy.ops.relight.add_placement()
    placement = next(o for o in scene.objects if o.get(relight_addon.live_scene.LIVE_ASSET_PROP) == asset_id)
    placement.location = (0.4, 0.0, 0.0)
    bpy.context.view_layer.update()
    px, inside = preview()
    camera = relight_addon.scene_io.camera_to_dict(scene.camera, scene)
    expected = _project(camera, (0.4, 0.0, 0.0))[0] - _project(camera, (0.0, 0.0, 0.0))[0]
    moved = np.nonzero(inside)[1].mean() - centre_x
    assert abs(moved - expected) < 0.25 * expected, (moved, expected)
