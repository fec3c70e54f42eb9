"""The live preview's render requests: a world sent once and named by world_id afterwards (protocol 1.2), the scene's
lamps (units as Cycles renders them) with their shadows, and the asset placed by its placement object's matrix."""

import numpy as np
import pytest

from relight.core.camera import Camera
from relight.core.envmap import Environment
from relight.render.frame import render
from relight.render.lamp_shadows import lamp_visibility
from relight.render.lamps import Lamp, lamp_light
from relight.render.placement import placed, placement_similarity
from relight.render.settings import PREVIEW
from relight.service.store import AssetStore
from relight_protocol import limits
from relight_protocol.errors import InvalidRequest, LimitExceeded
from relight_protocol.messages import make_request, validate_request
from relight_protocol.version import PROTOCOL_VERSION, parse_version

from server_fixture import start_server
from test_bench import sphere_asset

BLACK = np.zeros((16, 32, 3), np.float32)


def grey_sphere(roughness: float = 1.0):
    """sphere_asset with one albedo (0.5) and roughness: a known Lambertian."""
    a = sphere_asset()
    a.gaussians.albedo[:] = 0.5
    a.gaussians.roughness[:] = roughness
    return a


def front_camera(size: int = 64) -> Camera:
    return Camera.look_at((0.0, -3.0, 0.0), (0.0, 0.0, 0.0), 35.0, size, size)


# ------------------------------------------------------------------------------------------- protocol


def render_request(**over):
    content = {"asset_id": "abc", "camera": front_camera(8).to_dict()}
    content.update(over)
    return make_request("render_request", content)


def test_render_world_lamps_and_placement_validate():
    assert parse_version(PROTOCOL_VERSION) >= (1, 2)
    eq = np.ones((4, 8, 3), np.float32)
    _, req = validate_request(render_request(world={"equirect": eq, "world_id": "hdri-1", "rotation_z": 0.5}))
    assert req["world"]["world_id"] == "hdri-1" and req["world"]["equirect"].shape == (4, 8, 3)
    _, req = validate_request(render_request(world={"world_id": "hdri-1", "rotation_z": 0.5, "strength": 2}))
    assert req["world"] == {"equirect": None, "world_id": "hdri-1", "rotation_z": 0.5, "strength": 2.0}
    _, old = validate_request(render_request(world={"equirect": eq}))  # a 1.1 client: no world_id, no lamps
    assert old["world"]["world_id"] is None and old["lights"] == [] and old["asset_matrix"] is None
    with pytest.raises(InvalidRequest, match="world is missing the required field 'equirect'"):
        validate_request(render_request(world={"rotation_z": 0.5}))
    with pytest.raises(InvalidRequest, match="world.world_id 'a b' is not an id"):
        validate_request(render_request(world={"world_id": "a b"}))
    sun = {"type": "sun", "energy": 3.0, "direction": [0, 0, -2]}
    _, req = validate_request(render_request(lights=[sun], asset_matrix=np.eye(4).tolist()))
    np.testing.assert_allclose(req["lights"][0]["direction"], [0, 0, -1])
    assert req["lights"][0]["shadows"] is True and req["asset_matrix"].shape == (4, 4)
    for bad, match in (({"type": "laser", "energy": 1}, r"lights\[0\].type must be one of"),
                       ({"type": "point"}, r"lights\[0\] is missing the required field 'energy'"),
                       ({"type": "sun", "energy": -1}, r"lights\[0\].energy and lights\[0\].color must be >= 0"),
                       ({"type": "sun", "energy": 1, "direction": [0, 0, 0]}, "must not be the zero vector"),
                       ({"type": "spot", "energy": 1, "spot_size": 4.0}, r"spot_size in \(0, pi\]")):  # fmt: skip
        with pytest.raises(InvalidRequest, match=match):
            validate_request(render_request(lights=[bad]))
    with pytest.raises(LimitExceeded, match="MAX_LIGHTS"):
        validate_request(render_request(lights=[sun] * (limits.MAX_LIGHTS + 1)))
    singular = np.eye(4)
    singular[2, 2] = 0.0
    with pytest.raises(InvalidRequest, match="asset_matrix must be an invertible affine 4x4 matrix"):
        validate_request(render_request(asset_matrix=singular.tolist()))


# ------------------------------------------------------------------------------------------- lamps


def test_lamp_units_are_blenders():
    """Cycles, measured with a white diffuse plane: sun strength S -> irradiance S; point/spot P W at d m ->
    P / (4 pi d^2); area P W along its normal -> P / (pi d^2), cos-weighted off it; a spot's cone cuts it off."""
    p = np.zeros(3)
    l, e = lamp_light(Lamp("sun", (1, 0.5, 1), 2.0, (9, 9, 9), (0, 0, -1)), p)
    np.testing.assert_allclose(l, [0, 0, 1]) and np.testing.assert_allclose(e, [2, 1, 2])
    l, e = lamp_light(Lamp("point", (1, 1, 1), 1000.0, (0, 0, 2), (0, 0, -1)), p)
    np.testing.assert_allclose(e, 1000 / (4 * np.pi * 4))
    _, e = lamp_light(Lamp("spot", (1, 1, 1), 1000.0, (0, 0, 2), (0, 0, -1)), p)
    np.testing.assert_allclose(e, 1000 / (4 * np.pi * 4))
    _, e = lamp_light(Lamp("spot", (1, 1, 1), 1000.0, (0, 0, 2), (1, 0, 0)), p)  # pointing away: outside its cone
    assert e.max() == 0
    _, e = lamp_light(Lamp("area", (1, 1, 1), 1000.0, (0, 0, 2), (0, 0, -1)), p)
    np.testing.assert_allclose(e, 1000 / (np.pi * 4))
    _, e = lamp_light(Lamp("area", (1, 1, 1), 1000.0, (2, 0, 2), (0, 0, -1)), p)  # 45 degrees off its normal
    np.testing.assert_allclose(e, 1000 / np.pi * np.cos(np.pi / 4) / 8)


def test_a_sun_lights_a_lambertian_sphere_as_blender_would_and_shadows_its_far_side():
    a = grey_sphere()
    env = Environment(BLACK)
    cam = front_camera()
    dark = render(a, cam, env, PREVIEW)
    assert dark.hdr.max() == 0.0, "a black world and no lamp: black"
    S = 3.0
    lit = render(a, cam, env, PREVIEW, lamps=(Lamp("sun", (1, 1, 1), S, (0, 0, 0), (0, 1, 0)),))  # from the camera
    centre = lit.hdr[28:36, 28:36].mean((0, 1))
    lambert = 0.5 * S / np.pi  # albedo E / pi; at roughness 1 the GGX term adds F D G / (4 nv nl) E ~ 0.0032 E
    np.testing.assert_allclose(centre, lambert + 0.0032 * S, rtol=0.05)
    # the shadow: from above, the sphere's lower Gaussians (normals pointing down) cannot see the sun
    vis = lamp_visibility(a, (Lamp("sun", (1, 1, 1), S, (0, 0, 0), (0, 0, -1)),))
    nz = a.gaussians.normals[:, 2]
    assert vis[nz > 0.5, 0].mean() > 0.95 and vis[nz < -0.5, 0].mean() < 0.05
    unshadowed = lamp_visibility(a, (Lamp("sun", (1, 1, 1), S, (0, 0, 0), (0, 0, -1), shadows=False),))
    assert unshadowed.min() == 1.0
    # a lamp from the left lights the left half of the image only
    side = render(a, cam, env, PREVIEW, lamps=(Lamp("sun", (1, 1, 1), S, (0, 0, 0), (1, 0, 0)),))
    left, right = side.hdr[24:40, 12:28].mean(), side.hdr[24:40, 36:52].mean()
    assert left > 0.1 and right < 0.05 * left


def test_placement_moves_the_asset_as_the_camera_would_move_the_other_way():
    a = grey_sphere(0.4)
    env = Environment(BLACK)
    c, s = np.cos(0.5), np.sin(0.5)
    M = np.array([[c, -s, 0, 0.3], [s, c, 0, 0], [0, 0, 1, 0.1], [0, 0, 0, 1.0]])
    sun = (0.0, 1.0, 0.2)
    moved = render(placed(a, M), front_camera(), env, PREVIEW, lamps=(Lamp("sun", (1, 1, 1), 3.0, (0, 0, 0), sun),))
    # the same picture: the camera and the lamp carried by M^-1 instead
    cam = front_camera()
    cam = Camera(cam.viewmat @ M, cam.K, cam.width, cam.height)
    sun_local = tuple(M[:3, :3].T @ np.array(sun))
    same = render(a, cam, env, PREVIEW, lamps=(Lamp("sun", (1, 1, 1), 3.0, (0, 0, 0), sun_local),))
    np.testing.assert_allclose(moved.hdr, same.hdr, atol=1e-4)
    still = render(a, front_camera(), env, PREVIEW, lamps=(Lamp("sun", (1, 1, 1), 3.0, (0, 0, 0), sun),))
    assert np.abs(moved.hdr - still.hdr).max() > 0.1
    # a non-uniform scale is shown as its mean; a mirror as the rotation nearest to it
    sq = placement_similarity(np.diag([1.0, 1.0, 8.0, 1.0]))
    np.testing.assert_allclose(sq, np.diag([2.0, 2.0, 2.0, 1.0]))
    assert np.linalg.det(placement_similarity(np.diag([-1.0, 1.0, 1.0, 1.0]))[:3, :3]) > 0


# ------------------------------------------------------------------------------------------- through a server


def test_the_world_travels_once_then_is_named(tmp_path):
    """A real `relight serve`: the first frame carries the equirect with a world_id, later frames only the id (same
    pixels as sending it again); an id the server does not have is a clear error; a 1.1 request (no id) still works
    and gets the content id back; lamps and the asset's placement travel too."""
    store = AssetStore(tmp_path / "store")
    asset = sphere_asset()
    store.put(asset)
    sky = np.full((16, 32, 3), 0.05, np.float32)
    sky[4:10, 12:20] = 30.0
    server = start_server(tmp_path / "store")
    try:
        c = server.client()
        cam = front_camera(40).to_dict()

        def call(**content):
            reply = c.call("render_request", {"asset_id": asset.asset_id, "camera": cam, **content}, timeout=180)
            return reply

        full = call(world={"equirect": sky, "world_id": "sky-1", "rotation_z": 1.0, "strength": 1.0})
        assert full.status == "ok", full.content
        assert full.content["world_id"] == "sky-1"
        named = call(world={"world_id": "sky-1", "rotation_z": 1.0, "strength": 1.0})
        assert named.status == "ok", named.content
        np.testing.assert_array_equal(named.content["image"], full.content["image"])
        turned = call(world={"world_id": "sky-1", "rotation_z": 2.5, "strength": 1.0})
        assert np.abs(turned.content["image"].astype(int) - full.content["image"]).max() > 10, "the world turned"
        unknown = call(world={"world_id": "never-sent", "rotation_z": 0.0})
        assert unknown.status == "error" and unknown.content["ename"] == "UnknownWorld"
        assert "world 'never-sent' is not cached on this server" in unknown.content["evalue"]
        assert "send world.equirect again" in unknown.content["evalue"]
        old = call(world={"equirect": sky, "rotation_z": 1.0, "strength": 1.0})  # as a 1.1 client sends it
        assert old.status == "ok" and len(old.content["world_id"]) == 40
        np.testing.assert_array_equal(old.content["image"], full.content["image"])
        by_hash = call(world={"world_id": old.content["world_id"], "rotation_z": 1.0})
        np.testing.assert_array_equal(by_hash.content["image"], full.content["image"])
        black = {"world_id": "black", "equirect": BLACK}
        plain = call(world=black)
        assert plain.content["image"][..., :3].max() == 0
        sun = {"type": "sun", "energy": 3.0, "direction": [0.0, 1.0, 0.0]}
        lit = call(world={"world_id": "black"}, lights=[sun])
        assert lit.status == "ok", lit.content
        assert lit.content["image"][..., :3].max() > 100
        shifted = np.eye(4)
        shifted[0, 3] = 0.4
        moved = call(world={"world_id": "black"}, lights=[sun], asset_matrix=shifted.tolist())
        cols = lambda img: np.nonzero(img[..., 3].max(0) > 128)[0].mean()  # noqa: E731
        assert cols(moved.content["image"]) > cols(lit.content["image"]) + 3, "moved right in the image"
    finally:
        server.stop()


def test_a_dragged_lamps_shadow_comes_from_the_stored_visibility_and_agrees_with_its_rays():
    """The interactive preview's lamp shadow (a blend of the stored visibility directions nearest the lamp) against
    the exact ray per Gaussian: they agree away from the shadow's edge, and the step up to final uses the rays."""
    from relight.generate.visibility import surface_visibility
    from relight.render.lamp_shadows import stored_visibility
    from relight.render.settings import FINAL

    a = grey_sphere()
    g = a.gaussians
    _, g.vis_bits = surface_visibility(a.vertices, a.faces, a.vertex_normals, g.means, g.normals)
    c, s = np.cos(0.7), np.sin(0.7)
    a.model_matrix = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])  # turned: asset space
    for d in ((0.0, 0.0, 1.0), (0.6, -0.3, 0.74), (-0.9, 0.1, -0.42)):
        d = np.array(d) / np.linalg.norm(d)
        soft = stored_visibility(a, d[None])[:, 0]
        lamp = (Lamp("sun", (1, 1, 1), 1.0, (0, 0, 0), tuple(-d)),)
        exact = lamp_visibility(a, lamp, exact=True)[:, 0]
        assert np.array_equal(lamp_visibility(a, lamp, exact=False)[:, 0], soft)
        facing = (g.normals @ a.rotation.T) @ d  # [N] cos between each normal (world) and the lamp
        clear = np.abs(facing) > 0.3  # away from the terminator, where the stored directions' cells straddle it
        assert np.mean(np.abs(soft[clear] - exact[clear]) < 0.5) > 0.97
        assert soft[facing > 0.3].mean() > 0.9 and soft[facing < -0.3].mean() < 0.1
    # the frame picks the stored blend for the interactive preset and the rays for final
    sun = (Lamp("sun", (1, 1, 1), 3.0, (0, 0, 0), (0.2, 1.0, -0.4)),)
    for settings in (PREVIEW, FINAL):
        r = render(a, front_camera(32), Environment(BLACK), settings, lamps=sun)
        assert r.hdr.max() > 0.1


@pytest.mark.parametrize("with_lamp", [False, True])
def test_a_frame_without_passes_is_the_same_frame(with_lamp):
    """render(passes=False), as the server renders the live preview's frames: the same pixels, no passes; with a lamp,
    whose shading reads the passes, too."""
    a = grey_sphere(0.4)
    env = Environment(np.full((16, 32, 3), 0.3, np.float32))
    lamps = (Lamp("point", (1.0, 0.9, 0.8), 80.0, (1.5, -2.0, 1.0), (0.0, 0.0, -1.0)),) if with_lamp else ()
    full = render(a, front_camera(48), env, PREVIEW, lamps=lamps)
    lean = render(a, front_camera(48), env, PREVIEW, lamps=lamps, passes=False)
    assert lean.passes == {} and "albedo" in full.passes
    np.testing.assert_array_equal(lean.rgba8, full.rgba8)
    np.testing.assert_array_equal(lean.hdr, full.hdr)


def test_final_shading_in_bands_is_the_same_frame_and_can_be_cancelled_between_bands():
    """At final quality (lobe-sampled shading) a render with a progress callable shades in row bands, reporting
    after each: the same pixels as in one piece, and a cancellation raised by the callable stops it mid-shading."""
    from relight.render.frame import SHADE_BANDS
    from relight.render.settings import FINAL

    a = grey_sphere(0.3)
    sky = np.full((16, 32, 3), 0.2, np.float32)
    sky[3:6, 10:14] = 20.0
    env = Environment(sky)
    cam = Camera.look_at((0.0, -3.0, 0.5), (0.0, 0.0, 0.0), 35.0, 40, 37)
    whole = render(a, cam, env, FINAL)
    seen = []
    banded = render(a, cam, env, FINAL, progress=lambda stage, f, msg="": seen.append(f))
    np.testing.assert_allclose(banded.hdr, whole.hdr, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(banded.rgba8, whole.rgba8)
    assert len(seen) == 1 + SHADE_BANDS and seen[-1] == 1.0

    class Cancelled(Exception):
        pass

    def cancel_after_two(stage, f, msg=""):
        if f > 0.5 + 1.0 / SHADE_BANDS:
            raise Cancelled
    with pytest.raises(Cancelled):
        render(a, cam, env, FINAL, progress=cancel_after_two)
