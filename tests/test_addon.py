"""The Relight extension inside real headless bpy: scene I/O, operators, and the full flow against `relight serve`.

bpy as a module has no event loop, so timers never fire: the tests call the add-on's own tick() in a loop.
"""

import queue
import re
import threading
import time

import numpy as np
import pytest
import zmq
from addon_flow import generate_preview_import
from addon_flow import principled_input_source as _principled_input_source
from blender_fixture import (  # noqa: F401  (fixtures)
    addon_prefs,
    addon_tree,
    addon_zip,
    cached_object_render,
    free_port,
    image_pixels,
    import_without_blender,
    make_camera,
    make_hdri_world,
    make_plain_world,
    make_sphere_with_material,
    object_image_path,
    relight_addon,
    tick_until_idle,
)
from relight_protocol import envelope, messages
from server_fixture import relight_server_module  # noqa: F401  (fixture: one `relight serve` for this module)

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


@pytest.mark.parametrize("width,height", [(160, 120), (90, 150)])
def test_a_camera_sent_back_becomes_the_same_blender_camera(relight_addon, width, height):
    """camera_from_dict (Match Photo's result) is the inverse of camera_to_dict: the created camera, at the render
    size it sets, sends the very viewmat and K it was made from; the photo becomes its background."""
    from relight.core.camera import Camera

    scene = bpy.context.scene
    cam = Camera.look_at((2.0, -3.0, 1.0), (0.1, 0.2, 0.3), 42.0, width, height)
    cam.K[0, 2] += 7.0  # an off-centre principal point: lens shift
    cam.K[1, 2] -= 4.0
    photo = bpy.data.images.new("photo", width, height)
    obj = relight_addon.scene_io.camera_from_dict(cam.to_dict(), scene, image=photo)
    bpy.context.view_layer.update()
    assert scene.camera == obj and obj.data.background_images[0].image == photo
    d = relight_addon.scene_io.camera_to_dict(obj, scene)
    assert (d["width"], d["height"]) == (width, height)
    np.testing.assert_allclose(d["K"], cam.K, atol=1e-4)
    np.testing.assert_allclose(d["viewmat"], cam.viewmat, atol=1e-5)
    again = relight_addon.scene_io.camera_from_dict(cam.to_dict(), scene)
    assert again == obj  # updated, not duplicated


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


def test_plain_colour_world_is_a_constant_environment_and_no_world_is_black(relight_addon):
    io = relight_addon.scene_io
    env = io.world_to_env(make_plain_world((0.2, 0.3, 0.4), strength=2.0))
    assert env["fallback"] is False and env["strength"] == 1.0
    np.testing.assert_allclose(env["equirect"].reshape(-1, 3), np.tile([0.4, 0.6, 0.8], (16 * 32, 1)), rtol=1e-6)
    none = io.world_to_env(None)
    assert none["fallback"] is True and none["equirect"].max() == 0.0


def test_node_world_is_rendered_to_an_equirect_by_cycles(relight_addon):
    """A world shader that is not a bare Environment Texture (here the HDRI through a Mix node and a Mapping
    rotation) is rendered with a Cycles panoramic camera; the result is the HDRI along our equirect directions."""
    from relight.core.envmap import Environment
    from relight.core.equirect import equirect_pixel_dirs
    from relight.core.hdri_io import read_hdr_image

    io = relight_addon.scene_io
    world = make_hdri_world("courtyard", rotation_z=0.8, strength=1.5)
    nt = world.node_tree
    env_node, bg = nt.nodes["Environment Texture"], nt.nodes["Background"]
    mix = nt.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.inputs["Factor"].default_value = 0.0  # all A: the HDRI unchanged, but no longer a bare texture
    nt.links.new(env_node.outputs["Color"], mix.inputs["A"])
    nt.links.new(mix.outputs["Result"], bg.inputs["Color"])
    h, w = io.BAKED_ENV_SIZE
    env = io.world_to_env(world)
    assert env["fallback"] is False and env["rotation_z"] == 0.0 and env["strength"] == 1.0
    baked = env["equirect"]
    assert baked.shape == (h, w, 3) and baked.dtype == np.float32
    from blender_fixture import hdri_path

    ours = Environment(read_hdr_image(hdri_path("courtyard")), rotation_z=0.8, strength=1.5).radiance(equirect_pixel_dirs(h, w))
    err = np.abs(ours - baked)
    assert np.median(err) < 2e-3 * baked.mean() and err.mean() < 0.02 * baked.mean(), (np.median(err), err.mean(), baked.mean())
    unturned = Environment(read_hdr_image(hdri_path("courtyard")), strength=1.5).radiance(equirect_pixel_dirs(h, w))
    assert np.abs(unturned - baked).mean() > 5 * err.mean()  # the check can fail: the rotation is in the bake
    assert io.world_to_env(world)["equirect"] is baked  # unchanged world: no second render
    mix.inputs["Factor"].default_value = 1.0  # now all B (the Mix node's default colour): a new render
    assert not np.allclose(io.world_to_env(world)["equirect"], baked)


def test_sky_texture_world_is_rendered(relight_addon):
    io = relight_addon.scene_io
    world = make_plain_world((0.0, 0.0, 0.0), strength=1.0)
    sky = world.node_tree.nodes.new("ShaderNodeTexSky")
    world.node_tree.links.new(sky.outputs["Color"], world.node_tree.nodes["Background"].inputs["Color"])
    env = io.world_to_env(world)
    eq = env["equirect"]
    assert env["fallback"] is False and np.isfinite(eq).all()
    h = eq.shape[0]
    assert eq[: h // 2 - 4].mean() > 10 * eq[h // 2 + 4 :].mean() + 1e-6  # a lit sky above a dark ground
    assert eq[: h // 2 - 4].std() > 0.01 * eq[: h // 2 - 4].mean()  # not a constant colour


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


def test_mesh_to_arrays_sends_the_shading_the_artist_set(relight_addon):
    """Flat faces send their face normal at every corner; shaded smooth, the corners of a face differ."""
    bpy.ops.mesh.primitive_cube_add(size=2.0)
    cube = bpy.context.object
    d = relight_addon.scene_io.mesh_to_arrays(cube, bpy.context.evaluated_depsgraph_get())
    v, f, n = d["vertices"], d["faces"], d["corner_normals"]
    assert n.shape == (len(f), 3, 3) and n.dtype == np.float32
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    face_n /= np.linalg.norm(face_n, axis=1, keepdims=True)
    np.testing.assert_allclose(n, np.repeat(face_n[:, None], 3, 1), atol=1e-5)
    bpy.ops.object.shade_smooth()
    n = relight_addon.scene_io.mesh_to_arrays(cube, bpy.context.evaluated_depsgraph_get())["corner_normals"]
    np.testing.assert_allclose(np.abs(n), 1 / np.sqrt(3), atol=1e-5)  # smooth: every corner points out diagonally


def test_write_preview_and_import_glb(relight_addon, tmp_path):
    io = relight_addon.scene_io
    rgba = np.zeros((24, 40, 4), dtype=np.uint8)
    rgba[..., 0] = np.arange(40, dtype=np.uint8)[None, :] * 6
    rgba[:12, :, 3] = 255  # top half opaque
    image = io.write_preview(rgba)
    assert image.name == "Relight Preview" and tuple(image.size) == (40, 24)
    px = image_pixels(image)  # row 0 = top
    np.testing.assert_allclose(px * 255.0, rgba.astype(np.float32), atol=0.51)
    assert image.packed_file is not None and image.use_fake_user  # survives saving the .blend
    again = io.write_preview(rgba[::-1].copy())  # same size: the datablock is reused
    assert again == image
    np.testing.assert_allclose(image_pixels(again) * 255.0, rgba[::-1].astype(np.float32), atol=0.51)
    image2 = io.write_preview(rgba[:10, :20])  # a new size replaces the datablock
    assert tuple(image2.size) == (20, 10) and len([i for i in bpy.data.images if i.name.startswith("Relight")]) == 1

    bpy.ops.mesh.primitive_cube_add()
    glb = tmp_path / "cube.glb"
    bpy.ops.export_scene.gltf(filepath=str(glb), export_format="GLB")
    bpy.data.objects.remove(bpy.context.object)
    new = io.import_glb(glb)
    assert [o.type for o in new] == ["MESH"]


# ------------------------------------------------------------------------------------ connection and local backend, no bpy


def test_connection_and_local_backend_import_without_blender(addon_tree):
    """The job bookkeeping and the local backend process import from the installed tree with no bpy (nor zmq)."""
    import subprocess
    import sys

    code = (
        "import importlib, sys, types\n"
        f"pkg = types.ModuleType('addon'); pkg.__path__ = [{str(addon_tree)!r}]; sys.modules['addon'] = pkg\n"
        "importlib.import_module('addon.connection'); importlib.import_module('addon.local_backend')\n"
        "bad = {'bpy', 'zmq', 'torch', 'relight'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


class ScriptedBackend:
    """Plays the backend for a Session: a ZeroMQ ROUTER bound on a free loopback port, served by a thread.

    The thread answers hello as `hello` says ("ok": server 9.9 on cpu, "refuse": an error reply, None: no answer) and
    puts every other request it receives in `requests`; answer(request, msg) sends a message built with
    relight_protocol's constructors to the client that sent `request`. Every wait has a timeout, so nothing hangs.
    """

    def __init__(self, hello: str | None = "ok"):
        self.hello = hello
        self.hellos = 0  # hello requests received
        self.requests: queue.Queue = queue.Queue()  # requests other than hello, as relight_protocol Messages
        self._outbox: queue.Queue = queue.Queue()  # (identities, frames) for the thread to send
        self._identities: dict[str, list] = {}  # request msg_id -> the ROUTER identities of its client
        self._errors: list[BaseException] = []
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        port = self._socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="scripted-backend", daemon=True)
        self._thread.start()  # from here on only the thread touches the socket

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                if self._socket.poll(10, zmq.POLLIN):
                    identities, parts = envelope.split_identities(self._socket.recv_multipart())
                    request = envelope.deserialize(parts)
                    self._identities[request.msg_id] = identities
                    if request.msg_type != "hello_request":
                        self.requests.put(request)
                    else:
                        self.hellos += 1
                        if self.hello == "ok":
                            self.answer(request, messages.make_reply(request, {"server_version": "9.9",
                                                                               "device": "cpu"}))
                        elif self.hello == "refuse":
                            self.answer(request, messages.make_error_reply(request, "VersionMismatch", "speaks 2.x"))
                while True:
                    try:
                        identities, frames = self._outbox.get_nowait()
                    except queue.Empty:
                        break
                    self._socket.send_multipart([*identities, b"", *frames])
            except Exception as e:  # noqa: BLE001 - reported by close()
                self._errors.append(e)
                return

    def next_request(self, timeout: float = 5.0):
        """The next request (not hello) the Session sent."""
        try:
            return self.requests.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no request reached the scripted backend within {timeout} s "
                                 f"(thread errors: {self._errors})") from None

    def answer(self, request, msg) -> None:
        """Send `msg` (a relight_protocol Message) to the client that sent `request`."""
        self._outbox.put((self._identities[request.msg_id], envelope.serialize(msg)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive(), "the scripted backend's thread did not stop"
        self._socket.close(linger=0)
        self._context.term()
        assert not self._errors, self._errors


@pytest.fixture
def backend():
    """A ScriptedBackend on a free loopback port, closed after the test."""
    server = ScriptedBackend()
    yield server
    server.close()


@pytest.fixture
def without_blender(addon_tree):
    """(connection module, make_session) from the installed tree, imported without bpy.

    make_session(apply_reply=None) -> (a Session with its real relight_protocol Client, its events list); every
    session is closed after the test."""
    conn = import_without_blender(addon_tree, "connection")
    sessions = []

    def make_session(apply_reply=None):
        events = []
        apply_reply = apply_reply or (lambda job, content: f"applied {job.action} to {job.scene_name}")
        sessions.append(conn.Session(apply_reply, events.append))
        return sessions[-1], events

    yield conn, make_session
    for session in sessions:
        session.close()


def poll_until(session, done, timeout: float = 5.0) -> None:
    """Call session.poll_once() (what tick() does) until done() holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not done after {timeout} s of polling"
        session.poll_once()
        time.sleep(0.005)


def test_session_turns_progress_and_replies_into_events(without_blender, backend):
    conn, make_session = without_blender
    applied = []
    session, events = make_session(lambda job, content: applied.append((job, content)) or "shown")
    assert session.say_hello(backend.endpoint, 5.0)["server_version"] == "9.9" and backend.hellos == 1
    job = session.start_job("render", {"asset_id": "a1"}, "Scene")
    request = backend.next_request()
    assert (request.msg_type, request.msg_id, request.content) == ("render_request", job.msg_id, {"asset_id": "a1"})
    assert events == [conn.Started("render", "render sent to the backend")]
    with pytest.raises(conn.BackendUnavailable, match="A Relight render job is still running"):
        session.start_job("bake", {}, "Scene")

    backend.answer(request, messages.make_progress("someone-else", "x", 0.5))  # not this job's: ignored
    # Built by hand, as a faulty backend might send it: the session clamps the fraction and cuts the message.
    backend.answer(request, messages.Message("progress", {"stage": "shade", "fraction": 1.7, "message": "m" * 300},
                                             parent_id=job.msg_id))  # fmt: skip
    poll_until(session, lambda: len(events) > 1)
    assert events[1:] == [conn.Progress("shade", 1.0, "m" * conn.PROGRESS_MESSAGE_CHARS)]

    session.cancel_running()
    cancel = backend.next_request()
    assert cancel.msg_type == "cancel_request" and cancel.content == {"job_id": job.msg_id}
    assert job.cancel_requested and events[-1] == conn.Cancelling("render", "cancelling...")

    image = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    backend.answer(cancel, messages.make_reply(cancel, {"cancelled": False}))  # too late to cancel: ignored
    backend.answer(request, messages.make_reply(request, {"image": image, "seconds": 0.5}))
    poll_until(session, lambda: session.running_job() is None)
    assert applied[0][0] is job and np.array_equal(applied[0][1]["image"], image)
    assert events[-1] == conn.Finished("render", "shown", "")
    assert session.results == [("render", "shown")]
    assert session.last_reply == {"status": "ok", "seconds": 0.5}  # arrays left out


def _raising(exc_of_conn):
    """make_apply for the parametrization: an apply_reply that raises exc_of_conn(connection module)."""

    def make_apply(conn):
        def apply(job, content):
            raise exc_of_conn(conn)

        return apply

    return make_apply


@pytest.mark.parametrize(
    "reply,make_apply,outcome,error",
    [
        (("error", "Cancelled", "stopped"), None, "generate cancelled", ""),
        (("error", "UnknownAsset", "no asset 42"), None, "generate failed", "generate failed: no asset 42"),
        (("ok",), _raising(lambda conn: KeyError("asset_id")), "generate failed",
         "Applying the generate result failed: 'asset_id'"),
        (("ok",), _raising(lambda conn: conn.ResultDiscarded("The scene 'Scene' is gone")), "generate finished",
         "The scene 'Scene' is gone"),
    ],
)
def test_session_job_outcomes(without_blender, backend, reply, make_apply, outcome, error):
    conn, make_session = without_blender
    session, events = make_session(make_apply(conn) if make_apply else None)
    session.say_hello(backend.endpoint, 5.0)
    session.start_job("generate", {}, "Scene")
    request = backend.next_request()
    if reply[0] == "error":
        backend.answer(request, messages.make_error_reply(request, reply[1], reply[2]))
    else:
        backend.answer(request, messages.make_reply(request, {"asset_id": "a"}))
    poll_until(session, lambda: session.running_job() is None)
    assert events[-1] == conn.Finished("generate", outcome, error)
    assert session.results == [("generate", outcome)]


def test_session_gives_up_silent_and_lost_backends(without_blender, backend):
    conn, make_session = without_blender
    session, events = make_session()
    session.say_hello(backend.endpoint, 5.0)
    session.job_timeout = 0.05
    session.start_job("bake", {}, "Scene")
    assert backend.next_request().msg_type == "bake_request"  # received, never answered
    time.sleep(0.1)
    session.poll_once()
    assert events[-1].outcome == "timed out" and "raise 'Job Silence Timeout'" in events[-1].error

    session.start_job("bake", {}, "Scene")  # then hello goes unanswered: the job is dropped with the socket
    client = session.client
    backend.hello = None
    with pytest.raises(conn.BackendUnavailable, match=re.escape(f"No Relight backend answered at {backend.endpoint}")):
        session.say_hello(backend.endpoint, 0.2)
    assert events[-1] == conn.Finished("bake", "backend lost", f"The Relight backend at {backend.endpoint} stopped "
                                       "answering; the job was dropped")
    assert not client.connected and session.client is None and session.hello is None

    backend.hello = "ok"
    session.say_hello(backend.endpoint, 5.0)  # a new socket
    assert session.client is not client and backend.hellos == 3
    session.start_job("render", {}, "Scene")
    session.close()
    session.poll_once()
    assert events[-1] == conn.Finished("render", "backend lost", "The connection to the Relight backend was closed")
    session.poll_once()  # nothing running, no socket: nothing happens
    assert len(session.results) == 3


def test_session_reports_a_refused_hello(without_blender, backend):
    conn, make_session = without_blender
    session, _events = make_session()
    backend.hello = "refuse"
    with pytest.raises(conn.BackendUnavailable, match="refused hello: speaks 2.x"):
        session.say_hello(backend.endpoint, 5.0)
    assert backend.hellos == 1


def test_local_backend_needs_an_existing_python(addon_tree, tmp_path):
    """LocalBackend refuses to start without a Python, or with one that is not there (nothing is run)."""
    local = import_without_blender(addon_tree, "local_backend")
    conn = import_without_blender(addon_tree, "connection")
    backend = local.LocalBackend()
    with pytest.raises(conn.BackendUnavailable, match="Set 'Backend Python'"):
        backend.start("", "tcp://127.0.0.1:1", str(tmp_path))
    with pytest.raises(conn.BackendUnavailable, match="does not exist"):
        backend.start(str(tmp_path / "no-python"), "tcp://127.0.0.1:1", str(tmp_path))
    assert backend.process is None and not backend.running()


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
    assert "progress" in bpy.types.UILayout.bl_rna.functions  # the progress bar the panel draws (Blender 4.0+)
    prefs = addon_prefs()
    assert prefs.endpoint == "tcp://127.0.0.1:5557"
    assert relight_addon.prefs.RELIGHT_AP_preferences.bl_idname == "bl_ext.user_default.relight"


def test_properties_take_the_shared_vocabulary(relight_addon):
    """The panel's choices and defaults are the protocol's words (relight_protocol.vocabulary), not a copy."""
    from relight_protocol import vocabulary as v

    rna = bpy.context.scene.relight.bl_rna.properties
    for name, values, labels, default in (("light_hint", v.LIGHT_HINTS, v.LIGHT_HINT_LABELS, "unknown"),
                                          ("preview_quality", v.RENDER_QUALITIES, v.RENDER_QUALITY_LABELS, "preview")):
        items = [(i.identifier, i.name, i.description) for i in rna[name].enum_items]
        assert items == v.enum_items(values, labels), name
        assert rna[name].default == default and default in values
    assert rna["texture_size"].default == v.DEFAULT_TEXTURE_SIZE
    assert bpy.context.scene.relight.texture_size == v.DEFAULT_TEXTURE_SIZE
    assert addon_prefs().endpoint == v.DEFAULT_ENDPOINT


# ------------------------------------------------------------------------------------ against `relight serve`


def _use_server(server) -> None:
    prefs = addon_prefs()
    prefs.endpoint = server.endpoint
    prefs.request_timeout = 10.0


def test_the_provider_menu_offers_what_the_backend_has(relight_addon, relight_server_module, tmp_path):
    import sys

    from server_fixture import start_server

    def offered():
        items = [i[0] for i in relight_addon.ui.props.provider_items(bpy.context.scene.relight, bpy.context)]
        bpy.context.scene.relight.provider = items[-1]  # Blender takes it: the menu really holds it
        return items

    _use_server(relight_server_module)
    assert bpy.ops.relight.check_backend() == {"FINISHED"}
    assert offered() == ["auto", "inflate", "scene"]
    (tmp_path / "gen.py").write_text("import sys, trimesh; trimesh.creation.box().export(sys.argv[2])")
    other = start_server(tmp_path / "store", extra_args=("--generator-cmd", f"{sys.executable} {tmp_path / 'gen.py'} "
                                                         "{image} {mesh.glb}"))
    try:
        _use_server(other)
        assert bpy.ops.relight.check_backend() == {"FINISHED"}
        assert offered() == ["auto", "inflate", "scene", "command"]
    finally:
        other.stop()
        _use_server(relight_server_module)
        bpy.ops.relight.check_backend()


def test_status_check_shows_connected_version_device(relight_addon, relight_server_module):
    _use_server(relight_server_module)
    status = bpy.context.window_manager.relight
    assert status.connected is False
    assert bpy.ops.relight.check_backend() == {"FINISHED"}
    assert status.connected is True
    import relight

    assert status.server_version == relight.__version__
    assert status.device == "cpu"  # no GPU on these machines
    assert relight_addon.session.SESSION.hello["protocol_version"].split(".")[0] == "1"


def test_scene_without_world_warns_and_backend_errors_are_shown(relight_addon, relight_server_module):
    _use_server(relight_server_module)
    make_camera(width=32, height=24)
    bpy.context.scene.world = None
    bpy.context.scene.relight.asset_id = "0123456789abcdef01234567"  # no such asset in the server's store
    assert bpy.ops.relight.preview() == {"FINISHED"}  # a warning, not an error: the preview still runs
    status = bpy.context.window_manager.relight
    assert status.last_warning == relight_addon.scene_io.NO_HDRI_WARNING and "previewing under black" in status.last_warning
    assert status.job_action == "render"
    tick_until_idle(relight_addon.session, timeout=60)
    assert status.job_action == ""
    assert status.last_error.startswith("render failed:") and "0123456789abcdef01234567" in status.last_error
    assert "Relight Preview" not in bpy.data.images


def test_generate_preview_import_full_flow(object_image_path, relight_addon, relight_server_module):
    """Image -> Generate (tick) -> Preview under the scene world (tick) -> Import PBR mesh (tick); the same flow runs
    on bpy 4.2 and 5.0 in test_blender_versions.py."""
    t = generate_preview_import(relight_addon, relight_server_module.endpoint, object_image_path)
    print(f"\nadd-on full flow: generate {t['generate']:.1f} s, preview {t['preview']:.1f} s, "
          f"import {t['import']:.1f} s")


def test_import_from_multiview_gbuffers(relight_addon, relight_server_module, tmp_path):
    """A folder of G-buffers in MAGE's tiled layout -> Import from Multi-View G-Buffers (tick) -> an asset that
    previews, and an imported mesh whose Principled BSDF has every map connected, the normal map included."""
    import trimesh

    from relight.reconstruct.inputs import write_views
    from relight.reconstruct.synthetic import render_gbuffers
    from relight.reconstruct.zero123 import zero123_cameras

    _use_server(relight_server_module)
    session = relight_addon.session
    scene, status = bpy.context.scene, bpy.context.window_manager.relight
    box = trimesh.creation.box((0.9, 0.7, 0.8))
    views = render_gbuffers(np.asarray(box.vertices, np.float32), np.asarray(box.faces), zero123_cameras(96),
                            albedo=lambda p: np.where(p[:, :1] > 0, [[0.8, 0.2, 0.1]], [[0.1, 0.2, 0.8]]))
    write_views(views, tmp_path / "mug_views", form="zero123pp")
    scene.relight.texture_size = 256

    before = set(bpy.data.objects)
    assert bpy.ops.relight.reconstruct(directory=str(tmp_path / "mug_views"), optimise=False) == {"FINISHED"}
    assert status.job_action == "reconstruct"
    tick_until_idle(session)
    assert status.last_error == "", status.last_error
    assert scene.relight.asset_id and scene.relight.asset_name == "mug_views"
    meshes = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    assert len(meshes) == 1
    bsdf = next(n for n in meshes[0].active_material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    for name in ("Base Color", "Roughness", "Metallic", "Normal"):
        node = _principled_input_source(bsdf, name)
        assert node.type == "TEX_IMAGE" and tuple(node.image.size) == (256, 256), name
    make_hdri_world("forest")
    make_camera(location=(3.5, 1.0, 1.0), target=(0.0, 0.0, 0.0), width=64, height=64)
    assert bpy.ops.relight.preview() == {"FINISHED"}
    tick_until_idle(session)
    assert status.last_error == "", status.last_error
    alpha = image_pixels(bpy.data.images["Relight Preview"])[..., 3]
    assert 0.02 < (alpha > 0.5).mean() < 0.9


def test_reconstruct_from_a_folder_that_is_not_one_reports_clearly(relight_addon, tmp_path):
    status = bpy.context.window_manager.relight
    with pytest.raises(RuntimeError, match="Not a folder"):
        bpy.ops.relight.reconstruct(directory=str(tmp_path / "missing"))
    assert "Not a folder" in status.last_error
    with pytest.raises(RuntimeError, match="no files in it"):  # an empty folder
        bpy.ops.relight.reconstruct(directory=str(tmp_path))
    assert "G-buffer" in status.last_error
    assert relight_addon.session.SESSION.running_job() is None


def test_match_photo_places_a_camera_that_sees_the_mesh_as_the_photo_does(object_image_path, relight_addon,
                                                                         relight_server_module):  # fmt: skip
    """Photo + mesh (no camera) -> Match Photo (tick) -> 'Relight Match Camera', active, the photo behind it, and
    the mesh's silhouette through it covers the photo's object."""
    from relight.core.camera import Camera
    from relight.reconstruct.synthetic import render_gbuffers

    _use_server(relight_server_module)
    session = relight_addon.session
    scene, status = bpy.context.scene, bpy.context.window_manager.relight
    sphere = make_sphere_with_material()
    sphere.location = (2.0, 1.0, -0.5)  # not where the photo's sphere stood: only the camera can make up for it
    bpy.context.view_layer.update()
    scene.relight.image = bpy.data.images.load(str(object_image_path))
    scene.relight.mesh_object = sphere
    assert bpy.ops.relight.match_photo() == {"FINISHED"}
    tick_until_idle(session)
    assert status.last_error == "", status.last_error
    cam_obj = scene.camera
    assert cam_obj.name == "Relight Match Camera" and cam_obj.data.background_images[0].image == scene.relight.image
    assert "silhouette IoU" in status.status_message
    cam = Camera.from_dict(relight_addon.scene_io.camera_to_dict(cam_obj, scene))
    assert (cam.width, cam.height) == tuple(scene.relight.image.size)
    d = relight_addon.scene_io.mesh_to_arrays(sphere, bpy.context.evaluated_depsgraph_get())
    m = np.array(d["matrix_world"])
    v = (d["vertices"] @ m[:3, :3].T + m[:3, 3]).astype(np.float32)
    seen = render_gbuffers(v, d["faces"], [cam]).mask[0]
    photo = image_pixels(scene.relight.image)[..., 3] > 0.5
    assert (seen & photo).sum() / (seen | photo).sum() > 0.9


def test_cancel_generate(object_image_path, relight_addon, relight_server_module):
    _use_server(relight_server_module)
    session = relight_addon.session
    status = bpy.context.window_manager.relight
    # An image this server has not seen: a stored asset with the same content id would come back at once.
    image = bpy.data.images.load(str(object_image_path))
    px = image_pixels(image)[:, ::-1]  # mirrored
    image.pixels.foreach_set(np.ascontiguousarray(px[::-1]).ravel())
    bpy.context.scene.relight.image = image
    assert bpy.ops.relight.generate() == {"FINISHED"}
    with pytest.raises(RuntimeError, match="poll"):  # one job at a time; the buttons are disabled meanwhile
        bpy.ops.relight.generate()
    # Cancel at once: the backend checks between pipeline steps, so the job stops at its first check.
    assert bpy.ops.relight.cancel() == {"FINISHED"}
    assert status.message == "cancelling..."
    tick_until_idle(session, timeout=120)
    assert session.SESSION.results[-1] == ("generate", "generate cancelled"), session.SESSION.results[-1]
    assert status.status_message == "generate cancelled" and status.job_action == ""
    assert status.last_error == ""
    assert not bpy.context.scene.relight.asset_id


def test_start_and_stop_local_backend(relight_addon, free_port, tmp_path):
    """'Start a local backend' spawns `<python> -m relight.cli serve --bind <endpoint> --store <store>` with its
    output in the store's log, the status check then connects to it, and 'Stop' ends the process."""
    import sys

    endpoint, store = f"tcp://127.0.0.1:{free_port}", tmp_path / "store"
    prefs = addon_prefs()
    prefs.endpoint = endpoint
    prefs.start_local = True
    prefs.python_path = sys.executable  # the test environment's Python, which has the backend installed
    prefs.store_dir = str(store)
    status = bpy.context.window_manager.relight
    session = relight_addon.session
    local = session.LOCAL_BACKEND
    try:
        assert bpy.ops.relight.check_backend() == {"FINISHED"}
        assert status.connected and status.device == "cpu" and status.local_backend_running
        assert local.running()
        process = local.process
        assert process.args == [sys.executable, "-m", "relight.cli", "serve", "--bind", endpoint, "--store", str(store)]
        log = store / relight_addon.local_backend.LOG_NAME
        assert local.log_path == str(log) and f"relight serve: listening on {endpoint}" in log.read_text()
        assert bpy.ops.relight.stop_local_backend() == {"FINISHED"}
        assert not local.running() and local.process is None and not status.connected
        assert process.poll() is not None  # the child has exited (and was reaped)
    finally:
        session.stop_local_backend()


def test_start_local_backend_needs_a_python(relight_addon, free_port):
    prefs = addon_prefs()
    prefs.endpoint = f"tcp://127.0.0.1:{free_port}"
    prefs.start_local = True
    prefs.python_path = ""
    with pytest.raises(RuntimeError, match="Set 'Backend Python' in the Relight add-on preferences"):
        bpy.ops.relight.check_backend()


def test_generate_from_scene_mesh_camera_and_world(object_image_path, relight_addon, relight_server_module):
    """Mesh picked: provider 'scene' with the active camera as the image camera and the world as the input light."""
    _use_server(relight_server_module)
    session = relight_addon.session
    scene = bpy.context.scene
    status = bpy.context.window_manager.relight
    # The very scene the input image was rendered from (see blender_fixture.cached_object_render).
    make_hdri_world("forest")
    make_camera(width=128, height=128)
    sphere = make_sphere_with_material()
    scene.relight.image = bpy.data.images.load(str(object_image_path))
    scene.relight.mesh_object = sphere
    scene.relight.light_hint = "world"
    assert bpy.ops.relight.generate() == {"FINISHED"}
    tick_until_idle(session)
    assert status.last_error == "", status.last_error
    assert status.last_warning == ""
    assert scene.relight.asset_id and status.status_message.startswith("Asset '")
    stats = session.SESSION.last_reply["stats"]
    assert stats["faces"] > 0 and stats["gaussians"] > 0


def test_bundled_pyzmq_wheel_is_installed_by_blender(relight_addon):
    """Blender unpacked the add-on's own pyzmq wheel (the one a user's Blender, with no pyzmq, will import)."""
    import os
    from pathlib import Path

    site = Path(os.environ["BLENDER_USER_RESOURCES"]) / "extensions" / ".local" / "lib" / "python3.11" / "site-packages"
    assert (site / "zmq" / "__init__.py").is_file(), f"no zmq unpacked under {site}"
    assert list(site.glob("pyzmq-*.dist-info")), "pyzmq wheel metadata missing"


def test_open_image_sets_the_input(object_image_path, relight_addon):
    assert bpy.ops.relight.open_image(filepath=str(object_image_path)) == {"FINISHED"}
    image = bpy.context.scene.relight.image
    assert image is not None and tuple(image.size) == (128, 128)
    arr, space = relight_addon.scene_io.image_to_array(image)
    assert space == "srgb" and arr.dtype == np.uint8 and 0 < (arr[..., 3] > 127).mean() < 1  # a cut-out object
    with pytest.raises(RuntimeError, match="Could not open image"):
        bpy.ops.relight.open_image(filepath=str(object_image_path) + ".missing")
