"""Axis and camera conventions, checked against Blender's own camera projection."""

import math

import numpy as np

from relight.core import axes
from relight.core.camera import Camera


def test_gltf_round_trip_and_up_axis():
    p = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_allclose(axes.gltf_to_blender_points(axes.blender_to_gltf_points(p)), p)
    np.testing.assert_allclose(axes.blender_to_gltf_points(np.array([0.0, 0.0, 1.0])), [0.0, 1.0, 0.0])  # Z up -> Y up
    np.testing.assert_allclose(axes.BLENDER_TO_GLTF[:3, :3] @ p.T, axes.blender_to_gltf_points(p).T)


def test_look_at_camera_sees_target_at_centre():
    cam = Camera.look_at((3.0, -4.0, 2.0), (0.0, 0.0, 0.5), 40.0, 64, 48)
    x = cam.viewmat @ np.array([0.0, 0.0, 0.5, 1.0])
    assert x[2] > 0  # in front (+z)
    np.testing.assert_allclose(x[:2], 0.0, atol=1e-9)
    up = cam.viewmat[:3, :3] @ np.array([0.0, 0.0, 1.0])
    assert up[1] < 0  # world up is image up (OpenCV y down)
    np.testing.assert_allclose(cam.position, [3.0, -4.0, 2.0], atol=1e-9)


def test_blender_camera_projection_matches_bpy():
    """A world point projects to the pixel Blender's own world_to_camera_view reports."""
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 320, 240
    data = bpy.data.cameras.new("c")
    data.lens = 35.0
    cam = bpy.data.objects.new("c", data)
    scene.collection.objects.link(cam)
    cam.location = (2.0, -5.0, 1.5)
    cam.rotation_euler = (math.radians(75), 0.0, math.radians(20))
    bpy.context.view_layer.update()
    W, H = 320, 240
    f = data.lens / data.sensor_width * W  # sensor fit AUTO on a landscape frame: width
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    viewmat = axes.blender_camera_to_viewmat(np.array(cam.matrix_world))
    np.testing.assert_allclose(axes.viewmat_to_blender_camera(viewmat), np.array(cam.matrix_world), atol=1e-9)
    for p in [(0.0, 0.0, 0.0), (0.5, 0.3, 0.2), (-0.4, 1.0, 0.9)]:
        ndc = world_to_camera_view(scene, cam, Vector(p))  # x right, y UP in [0, 1], z depth
        x = viewmat @ np.array([*p, 1.0])
        px = K @ (x[:3] / x[2])
        np.testing.assert_allclose(px[0], ndc.x * W, atol=1e-3)
        np.testing.assert_allclose(px[1], (1 - ndc.y) * H, atol=1e-3)  # OpenCV rows grow downwards
        np.testing.assert_allclose(x[2], ndc.z, atol=1e-6)


def test_camera_convention_is_the_shared_one():
    """The camera frame is part of the wire contract: relight.core.axes re-exports relight_protocol.conventions."""
    from relight_protocol import conventions

    assert axes.GL_TO_CV is conventions.GL_TO_CV
    assert axes.blender_camera_to_viewmat is conventions.blender_camera_to_viewmat
    assert axes.viewmat_to_blender_camera is conventions.viewmat_to_blender_camera
