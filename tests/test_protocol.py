"""Unit tests of the wire protocol package (relight_protocol): envelope, arrays, limits, versions, validation."""

import json

import numpy as np
import pytest

from relight_protocol import limits
from relight_protocol.envelope import Message, deserialize, serialize, split_identities, unpack_arrays
from relight_protocol.errors import (InvalidRequest, LimitExceeded, MalformedMessage, RemoteError,
                                     UnknownMessageType, VersionMismatch)
from relight_protocol.messages import (error_reply_for, make_error_reply, make_progress, make_reply, make_request,
                                       reply_type, validate_request)
from relight_protocol.version import PROTOCOL_VERSION, check_compatible, parse_version


def header_bytes(**over) -> bytes:
    h = {"msg_id": "a" * 32, "msg_type": "ping_request", "protocol_version": PROTOCOL_VERSION,
         "parent_id": None, "date": "2026-01-01T00:00:00+00:00"}
    h.update(over)
    return json.dumps(h).encode()


def roundtrip(msg: Message) -> Message:
    frames = serialize(msg)
    # what ZeroMQ delivers: plain bytes per frame
    return deserialize([bytes(memoryview(f)) for f in frames])


def camera_dict(w=64, h=48):
    return {"viewmat": np.eye(4).tolist(), "K": [[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]], "width": w, "height": h}


# ---------------------------------------------------------------------------------------------- arrays

@pytest.mark.parametrize("dtype,shape", [
    ("uint8", (4, 5, 4)), ("float32", (7,)), ("int32", (0, 3)), ("float64", (2, 3, 4, 5)), ("bool", (3, 3)),
    ("float16", (2, 2)), ("int64", ()), ("uint16", (1, 1, 1)), ("int8", (5,)),
])
def test_array_roundtrip_dtypes_and_shapes(dtype, shape):
    rng = np.random.default_rng(0)
    arr = np.asarray(rng.standard_normal(shape) * 100).astype(dtype)
    out = roundtrip(make_request("x_request", {"a": arr, "nested": {"list": [1, arr]}}))
    for got in (out.content["a"], out.content["nested"]["list"][1]):
        assert got.dtype.name == dtype and got.shape == shape
        np.testing.assert_array_equal(got, arr)
    assert out.content["nested"]["list"][0] == 1


def test_non_contiguous_and_big_endian_arrays_arrive_as_values():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    big = np.arange(6, dtype=">i4").reshape(2, 3)
    out = roundtrip(make_request("x_request", {"t": base.T, "step": base[:, ::2], "big": big}))
    np.testing.assert_array_equal(out.content["t"], base.T)
    np.testing.assert_array_equal(out.content["step"], base[:, ::2])
    np.testing.assert_array_equal(out.content["big"], big)
    assert out.content["big"].dtype == np.dtype("int32")


def test_descriptor_and_buffer_layout_on_the_wire():
    img = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    frames = serialize(make_request("generate_request", {"image": img, "name": "cube"}))
    assert len(frames) == 3
    content = json.loads(bytes(frames[1]))
    assert content["image"] == {"buffer": 0, "dtype": "uint8", "shape": [2, 3, 4]}
    assert bytes(memoryview(frames[2])) == img.tobytes()
    f32 = serialize(make_request("x_request", {"v": np.array([1.0], np.float32)}))[2]
    assert bytes(memoryview(f32)) == b"\x00\x00\x80\x3f"  # little-endian float32 1.0


def test_disallowed_dtypes_are_refused_both_ways():
    with pytest.raises(MalformedMessage, match="complex64"):
        serialize(make_request("x_request", {"c": np.zeros(2, np.complex64)}))
    with pytest.raises(MalformedMessage, match="object"):
        unpack_arrays({"a": {"buffer": 0, "dtype": "object", "shape": [1]}}, [b"\0" * 8])


@pytest.mark.parametrize("desc,buffers,match", [
    ({"buffer": 0, "dtype": "float32", "shape": [3]}, [b"\0" * 10], "needs 12 bytes but buffer 0 has 10"),
    ({"buffer": 1, "dtype": "uint8", "shape": [1]}, [b"\0"], "refers to buffer 1"),
    ({"buffer": 0, "dtype": "uint8", "shape": [-1]}, [b"\0"], "non-negative integers"),
    ({"buffer": 0, "dtype": "uint8", "shape": "4"}, [b"\0"], "list of non-negative"),
    ({"buffer": 0, "shape": [1]}, [b"\0"], "lacks 'dtype'"),
    ({"buffer": "0", "dtype": "uint8", "shape": [1]}, [b"\0"], "refers to buffer '0'"),
])
def test_bad_descriptors_name_the_problem(desc, buffers, match):
    with pytest.raises(MalformedMessage, match=match):
        unpack_arrays({"image": desc}, buffers)


# ---------------------------------------------------------------------------------------------- limits

def test_array_claiming_more_than_max_array_bytes_names_the_limit():
    desc = {"buffer": 0, "dtype": "float32", "shape": [1 << 20, 1 << 10]}
    with pytest.raises(LimitExceeded, match=r"would be 4294967296 bytes; the limit MAX_ARRAY_BYTES is 536870912"):
        unpack_arrays({"image": desc}, [b"\0" * 16])


def test_array_byte_limit_on_both_sides(monkeypatch):
    monkeypatch.setattr(limits, "MAX_ARRAY_BYTES", 100)
    with pytest.raises(LimitExceeded, match="MAX_ARRAY_BYTES is 100"):
        serialize(make_request("x_request", {"a": np.zeros(101, np.uint8)}))
    frames = [header_bytes(), b"{}", b"\0" * 101]
    with pytest.raises(LimitExceeded, match="buffer frame 0 is 101 bytes; the limit MAX_ARRAY_BYTES is 100"):
        deserialize(frames)
    assert roundtrip(make_request("x_request", {"a": np.zeros(100, np.uint8)})).content["a"].shape == (100,)


def test_frame_size_limits_name_their_limit():
    big_header = header_bytes(pad="x" * limits.MAX_HEADER_BYTES)
    with pytest.raises(LimitExceeded, match="MAX_HEADER_BYTES is 16384"):
        deserialize([big_header, b"{}"])
    big_content = json.dumps({"pad": "x" * limits.MAX_CONTENT_BYTES}).encode()
    with pytest.raises(LimitExceeded, match="MAX_CONTENT_BYTES is 1048576") as e:
        deserialize([header_bytes(), big_content])
    assert e.value.request_header["msg_id"] == "a" * 32  # so the reply can name its parent
    with pytest.raises(LimitExceeded, match="17 buffer frames; the limit MAX_BUFFERS is 16"):
        deserialize([header_bytes(), b"{}", *([b""] * 17)])
    with pytest.raises(LimitExceeded, match="MAX_BUFFERS"):
        serialize(make_request("x_request", {"a": [np.zeros(1)] * 17}))
    with pytest.raises(LimitExceeded, match="MAX_CONTENT_BYTES"):
        serialize(make_request("x_request", {"pad": "x" * limits.MAX_CONTENT_BYTES}))


def test_deep_nesting_is_refused():
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(LimitExceeded, match="MAX_NESTING"):
        deserialize([header_bytes(), b'{"a":' + deep + b"}"])
    nested = {}
    for _ in range(limits.MAX_NESTING + 2):
        nested = {"n": nested}
    with pytest.raises(LimitExceeded, match="MAX_NESTING"):
        deserialize([header_bytes(), json.dumps(nested).encode()])


def test_limits_dict_has_every_spec_limit():
    d = limits.as_dict()
    spec = {"MAX_HEADER_BYTES": 16384, "MAX_CONTENT_BYTES": 1 << 20, "MAX_BUFFERS": 16, "MAX_ARRAY_BYTES": 512 << 20,
            "MAX_IMAGE_SIDE": 4096, "MAX_ENV_SIDE": 8192, "MAX_VERTICES": 4_000_000, "MAX_FACES": 8_000_000,
            "MAX_TEXTURE_SIZE": 4096, "MAX_RENDER_SIDE": 4096, "MAX_NAME_CHARS": 256}
    assert {k: d[k] for k in spec} == spec
    assert limits.MAX_ARRAY_BYTES < limits.ZMQ_MAX_FRAME_BYTES < 2 * limits.MAX_ARRAY_BYTES


# ---------------------------------------------------------------------------------------------- versions, header

def test_version_parsing_and_compatibility():
    assert parse_version("1.0") == (1, 0) and parse_version("12.34") == (12, 34)
    check_compatible("1.0")
    check_compatible("1.7")  # unknown minor tolerated
    with pytest.raises(VersionMismatch) as e:
        check_compatible("2.0")
    assert str(e.value) == ("protocol version 2.0 is not supported by this server (speaks 1.x); "
                            "update the Relight add-on or backend so both match")
    for bad in ("1", "1.x", "", "1.0.0", "-1.0"):
        with pytest.raises(VersionMismatch, match="major.minor"):
            parse_version(bad)
    with pytest.raises(VersionMismatch, match="must be a string"):
        parse_version(1.0)


def test_header_version_is_checked_before_content():
    with pytest.raises(VersionMismatch, match="protocol version 2.1 is not supported") as e:
        deserialize([header_bytes(protocol_version="2.1"), b"garbage"])
    assert e.value.request_header["msg_type"] == "ping_request"
    assert roundtrip(Message("ping_request", protocol_version="1.9")).protocol_version == "1.9"


@pytest.mark.parametrize("frames,match", [
    ([b"{not json", b"{}"], "header frame is not valid JSON"),
    ([b"[1, 2]", b"{}"], "header must be a JSON object"),
    ([b"\xff\xfe", b"{}"], "not UTF-8"),
    ([header_bytes(msg_id=""), b"{}"], "'msg_id' must be a non-empty string"),
    ([header_bytes(msg_type=7), b"{}"], "'msg_type' must be a non-empty string"),
    ([header_bytes(parent_id=5), b"{}"], "'parent_id' must be a string or null"),
    ([json.dumps({"msg_id": "x", "msg_type": "ping_request"}).encode(), b"{}"], "no 'protocol_version'"),
    ([header_bytes(), b"{oops"], "content frame is not valid JSON"),
    ([header_bytes(), b"[]"], "content must be a JSON object"),
    ([header_bytes()], "expected \\[header, content, \\*buffers\\]"),
])
def test_malformed_frames_raise_named_errors(frames, match):
    with pytest.raises(MalformedMessage, match=match):
        deserialize(frames)


def test_unknown_fields_are_tolerated_and_kept():
    frames = [header_bytes(session="s1", future_field={"x": 1}), json.dumps({"job_id": "j1", "new": [1, 2]}).encode()]
    msg = deserialize(frames)
    assert msg.header_extra == {"session": "s1", "future_field": {"x": 1}}
    assert msg.content["new"] == [1, 2]
    msg.msg_type = "cancel_request"
    assert validate_request(msg) == ("cancel", {"job_id": "j1"})
    no_date = json.dumps({"msg_id": "m", "msg_type": "ping_request", "protocol_version": "1.0"}).encode()
    msg = deserialize([no_date, b"{}"])
    assert msg.parent_id is None and msg.date == ""


def test_split_identities():
    ids, parts = split_identities([b"id1", b"id2", b"", b"h", b"c"])
    assert ids == [b"id1", b"id2"] and parts == [b"h", b"c"]
    with pytest.raises(MalformedMessage, match="delimiter"):
        split_identities([b"id1", b"h", b"c"])


def test_json_encoding_of_content():
    out = roundtrip(make_request("x_request", {"f": np.float32(0.5), "i": np.int64(3), "t": (1, 2)}))
    assert out.content == {"f": 0.5, "i": 3, "t": [1, 2]}
    with pytest.raises(MalformedMessage, match="cannot be encoded as JSON"):
        serialize(make_request("x_request", {"bad": float("nan")}))
    with pytest.raises(MalformedMessage, match="cannot be encoded as JSON"):
        serialize(make_request("x_request", {"bad": object()}))


# ---------------------------------------------------------------------------------------------- message helpers

def test_reply_types_progress_and_errors():
    req = make_request("render_request", {})
    rep = make_reply(req, {"x": 1})
    assert rep.msg_type == "render_reply" and rep.parent_id == req.msg_id and rep.content == {"status": "ok", "x": 1}
    assert reply_type("frobnicate_request") == "frobnicate_reply"
    assert reply_type("progress") == reply_type(None) == reply_type("_request") == "error_reply"
    p = make_progress("abc", "bake", 1.7, "x")
    assert p.msg_type == "progress" and p.parent_id == "abc" and p.content["fraction"] == 1.0
    assert make_progress("abc", "s", float("nan")).content["fraction"] == 0.0
    err = make_error_reply(None, "MalformedMessage", "bad")
    assert err.msg_type == "error_reply" and err.parent_id is None and err.content["status"] == "error"
    e2 = error_reply_for(InvalidRequest("missing x"), req)
    assert e2.msg_type == "render_reply" and e2.content["ename"] == "InvalidRequest"
    try:
        raise ValueError("boom in /srv/relight/secret/file.npz")
    except ValueError as exc:
        e3 = error_reply_for(exc, req, with_traceback=True)  # the old keyword is ignored: no traceback is sent
    assert e3.content["ename"] == "ValueError" and "traceback" not in e3.content
    assert e3.content["evalue"] == ("the server failed on this request (ValueError: boom in <path>/file.npz); "
                                    "its log has the details")
    with pytest.raises(RemoteError, match="ValueError: the server failed on this request") as ri:
        roundtrip(e3).raise_for_status()
    assert ri.value.traceback is None
    assert rep.raise_for_status() is rep


@pytest.mark.parametrize("text,redacted", [
    ("asset 'ab' is not in this server's store (/root/.cache/relight/assets); generate it",
     "asset 'ab' is not in this server's store (<path>/assets); generate it"),
    ("cannot read /tmp/relight-views-x/front/normal.png: bad", "cannot read <path>/normal.png: bad"),
    ("weights not found at ~/models/hy3dgen/", "weights not found at <path>/hy3dgen"),
    ("no file 'C:\\Users\\me\\x.glb'", "no file '<path>/x.glb'"),
    ("bind tcp://0.0.0.0:5557 failed, ratio 1/2/3, w/h", "bind tcp://0.0.0.0:5557 failed, ratio 1/2/3, w/h"),
])
def test_error_replies_never_show_a_server_path(text, redacted):
    assert make_error_reply(None, "X", text).content["evalue"] == redacted
    assert error_reply_for(InvalidRequest(text)).content["evalue"] == redacted


@pytest.mark.parametrize("shape", [[0, 10**20], [0, 2**40, 2**40], [0, 2**28, 2**28, 2**28], [2**62, 0]])
def test_empty_arrays_with_absurd_shapes_name_the_limit(shape):
    """Defect: numpy could not describe these (ValueError 'Maximum allowed dimension exceeded' / 'array is too big')
    and the server sent its traceback."""
    desc = {"buffer": 0, "dtype": "uint8", "shape": shape}
    with pytest.raises(LimitExceeded, match=r"declares shape .* whose non-zero dimensions alone span \d+ bytes; "
                                            r"the limit MAX_ARRAY_BYTES is 536870912"):
        unpack_arrays({"image": desc}, [b""])
    assert unpack_arrays({"a": {"buffer": 0, "dtype": "uint8", "shape": [0, 4096]}}, [b""])["a"].shape == (0, 4096)


@pytest.mark.parametrize("name,clean", [
    ("../../../../tmp/x/../y", "tmp_x_y"), ("/etc/passwd", "etc_passwd"), ("..", "asset"), ("C:\\evil\\a.b", "C_evil_a.b"),
    ("mug", "mug"), ("Blue Mug (v2)", "Blue Mug (v2)"), ("tab\there", "tab here"), ("  .hidden  ", "hidden"),
])
def test_generate_names_are_sanitised_where_they_enter(name, clean):
    _, req = validate_request(valid_generate(name=name))
    assert req["name"] == clean
    assert "/" not in req["name"] and "\\" not in req["name"] and ".." not in req["name"]


def test_images_too_small_to_segment_are_refused_with_the_limit():
    for shape in [(1, 1, 4), (3, 3, 4), (7, 64, 4)]:
        with pytest.raises(InvalidRequest, match=r"too small to find an object in; the limit MIN_IMAGE_SIDE is 8"):
            validate_request(valid_generate(image=np.zeros(shape, np.uint8)))
    validate_request(valid_generate(image=np.zeros((8, 8, 4), np.uint8)))


# ---------------------------------------------------------------------------------------------- request validation

def valid_generate(**over):
    content = {"image": np.zeros((8, 9, 4), np.uint8), "name": "mug"}
    content.update(over)
    return make_request("generate_request", content)


def test_generate_defaults_and_mesh_camera_world():
    action, req = validate_request(valid_generate())
    assert action == "generate"
    assert (req["colorspace"], req["provider"], req["light_hint"], req["mesh"]) == ("srgb", "auto", "unknown", None)
    assert req["gaussians"] == 100_000
    assert validate_request(valid_generate(gaussians=np.int64(25_000)))[1]["gaussians"] == 25_000
    _, req = validate_request(valid_generate(image=np.zeros((8, 9, 4), np.float32)))
    assert req["colorspace"] == "linear"
    mesh = {"vertices": np.zeros((3, 3), np.float64), "faces": np.array([[0, 1, 2]], np.int64),
            "matrix_world": np.eye(4).tolist()}
    world = {"equirect": np.ones((4, 8, 3), np.float32), "rotation_z": 0.5, "strength": 2}
    _, req = validate_request(valid_generate(mesh=mesh, camera=camera_dict(), world=world, light_hint="world",
                                             provider="scene"))
    assert req["mesh"]["vertices"].dtype == np.float32 and req["mesh"]["faces"].dtype == np.int32
    assert req["camera"]["viewmat"].shape == (4, 4) and req["camera"]["width"] == 64
    assert req["world"]["strength"] == 2.0 and req["world"]["rotation_z"] == 0.5


@pytest.mark.parametrize("over,error,match", [
    ({"image": np.zeros((4097, 1, 4), np.uint8)}, LimitExceeded, r"^image is 1x4097 pixels; the limit MAX_IMAGE_SIDE is 4096$"),
    ({"image": np.zeros((4, 4), np.uint8)}, InvalidRequest, r"image must be 3-D"),
    ({"image": np.zeros((4, 4, 4), np.int32)}, InvalidRequest, r"image must have dtype uint8 or float32, got int32"),
    ({"image": [[1, 2]]}, InvalidRequest, r"image must be an array"),
    ({"image": None}, InvalidRequest, r"missing the required field 'image'"),
    ({"image": np.zeros((0, 4, 4), np.uint8)}, InvalidRequest, r"empty"),
    ({"name": "x" * 257}, LimitExceeded, r"name is 257 characters; the limit MAX_NAME_CHARS is 256"),
    ({"name": 3}, InvalidRequest, r"name must be a string"),
    ({"provider": "magic"}, InvalidRequest, r"provider must be one of 'auto', 'inflate', 'scene'"),
    ({"provider": "scene"}, InvalidRequest, r"provider 'scene' needs a mesh"),
    ({"light_hint": "world"}, InvalidRequest, r"needs the world environment"),
    ({"colorspace": "acescg"}, InvalidRequest, r"colorspace must be one of"),
    ({"mesh": {"vertices": np.zeros((3, 3), np.float32), "faces": np.array([[0, 1, 3]], np.int32),
               "matrix_world": np.eye(4).tolist()}}, InvalidRequest, r"mesh.faces index vertices outside 0..2"),
    ({"mesh": {"vertices": np.zeros((3, 3), np.float32), "faces": np.array([[0, 1, 2]], np.int32)}},
     InvalidRequest, r"mesh is missing the required field 'matrix_world'"),
    ({"mesh": {"vertices": np.zeros((3, 2), np.float32), "faces": np.array([[0, 1, 2]], np.int32),
               "matrix_world": np.eye(4).tolist()}}, InvalidRequest, r"mesh.vertices must be 2-D with last dimension 3"),
    ({"camera": dict(camera_dict(), width=5000)}, LimitExceeded, r"camera.width is 5000; the limit MAX_RENDER_SIDE"),
    ({"camera": dict(camera_dict(), K=[[1, 0], [0, 1]])}, InvalidRequest, r"camera.K must be a 3x3 matrix"),
    ({"camera": dict(camera_dict(), viewmat=[[float("nan")] * 4] * 4)}, InvalidRequest, r"NaN"),
    ({"world": {"equirect": np.zeros((8193, 2, 3), np.float32)}}, LimitExceeded, r"MAX_ENV_SIDE is 8192"),
    ({"world": {"equirect": np.zeros((4, 8, 3), np.float32), "strength": "bright"}}, InvalidRequest,
     r"world.strength must be a number"),
    ({"gaussians": 3_000_000}, LimitExceeded, r"^gaussians is 3000000; the limit MAX_GAUSSIANS is 2000000$"),
    ({"gaussians": 10}, InvalidRequest, r"gaussians must be between 1000 and 2000000, got 10"),
    ({"gaussians": 5e4}, InvalidRequest, r"gaussians must be an integer"),
])
def test_generate_validation_names_the_problem(over, error, match):
    with pytest.raises(error, match=match):
        validate_request(valid_generate(**over))


def test_render_bake_cancel_validation():
    ok = {"asset_id": "0123abcd", "camera": camera_dict()}
    _, req = validate_request(make_request("render_request", ok))
    assert req["world"] is None and req["background"] is False
    with pytest.raises(InvalidRequest, match="background must be true or false"):
        validate_request(make_request("render_request", dict(ok, background="yes")))
    with pytest.raises(InvalidRequest, match="asset_id '../etc' is not an id"):
        validate_request(make_request("render_request", dict(ok, asset_id="../etc")))
    with pytest.raises(InvalidRequest, match="missing the required field 'camera'"):
        validate_request(make_request("render_request", {"asset_id": "0123abcd"}))
    _, req = validate_request(make_request("bake_request", {"asset_id": "0123abcd"}))
    assert req == {"asset_id": "0123abcd", "texture_size": 1024, "format": "glb"}
    with pytest.raises(LimitExceeded, match="texture_size is 8192; the limit MAX_TEXTURE_SIZE is 4096"):
        validate_request(make_request("bake_request", {"asset_id": "0123abcd", "texture_size": 8192}))
    with pytest.raises(InvalidRequest, match="texture_size must be an integer"):
        validate_request(make_request("bake_request", {"asset_id": "0123abcd", "texture_size": 512.0}))
    with pytest.raises(InvalidRequest, match="format must be one of 'glb'"):
        validate_request(make_request("bake_request", {"asset_id": "0123abcd", "format": "fbx"}))
    with pytest.raises(InvalidRequest, match="missing the required field 'job_id'"):
        validate_request(make_request("cancel_request", {}))
    with pytest.raises(UnknownMessageType, match="unknown message type 'frobnicate_request'; this server understands"):
        validate_request(make_request("frobnicate_request", {}))
    with pytest.raises(UnknownMessageType):
        validate_request(make_request("progress", {}))


# ---------------------------------------------------------------------------------------------- conventions


def test_camera_convention_gl_to_cv():
    """A Blender camera looks down its -Z with +Y up; the viewmat puts what it sees at +Z with image rows down."""
    from relight_protocol.conventions import GL_TO_CV, blender_camera_to_viewmat, viewmat_to_blender_camera

    assert not GL_TO_CV.flags.writeable
    m = np.eye(4)
    m[:3, 3] = (1.0, 2.0, 3.0)  # unrotated camera at (1, 2, 3): looks down world -Z, world +Y up in the image
    viewmat = blender_camera_to_viewmat(m)
    assert viewmat.dtype == np.float64 and viewmat.shape == (4, 4)
    ahead = viewmat @ np.array([1.0, 2.0, 0.0, 1.0])  # 3 m in front of it
    np.testing.assert_allclose(ahead[:3], [0.0, 0.0, 3.0])
    above = viewmat @ np.array([1.0, 3.0, 0.0, 1.0])  # world +Y: up on screen = OpenCV -y
    assert above[1] < 0 and above[2] > 0
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    m[:3, :3] = q * np.sign(np.linalg.det(q))
    np.testing.assert_allclose(viewmat_to_blender_camera(blender_camera_to_viewmat(m)), m, atol=1e-12)


def test_srgb_transfer_known_values_dtype_and_out_of_range():
    from relight_protocol.conventions import linear_to_srgb, srgb_to_linear

    np.testing.assert_allclose(srgb_to_linear([0.0, 0.04, 0.5, 1.0]), [0.0, 0.04 / 12.92, 0.2140411, 1.0], rtol=1e-5)
    np.testing.assert_allclose(linear_to_srgb([0.0, 0.001, 0.2140411, 1.0]), [0.0, 0.01292, 0.5, 1.0], rtol=1e-5)
    for fn in (srgb_to_linear, linear_to_srgb):
        assert fn(np.zeros((2, 3), np.float64)).dtype == np.float32 and fn(np.zeros((2, 3))).shape == (2, 3)
        assert fn(np.arange(3, dtype=np.uint8)).dtype == np.float32
    assert linear_to_srgb(4.0) > 1.0 and srgb_to_linear(2.0) > 1.0  # no clipping: HDR values pass through
    with np.errstate(all="raise"):  # the unused branch of np.where never warns, even for negatives
        assert srgb_to_linear(-0.5) == np.float32(-0.5) / np.float32(12.92)
        assert linear_to_srgb(-0.5) == np.float32(-0.5) * np.float32(12.92)


def test_a_choice_field_sent_as_an_array_is_an_invalid_request():
    """Found by the fuzz corpus: `array in choices` raised numpy's 'truth value ... is ambiguous' ValueError."""
    with pytest.raises(InvalidRequest, match=r"format must be one of 'glb', 'obj', got array"):
        validate_request(make_request("bake_request", {"asset_id": "0123abcd", "format": np.zeros(3)}))


def test_buffer_frames_no_descriptor_refers_to_are_refused():
    frames = serialize(make_request("x_request", {"a": np.zeros(2, np.uint8)}))
    with pytest.raises(MalformedMessage, match=r"has 3 buffer frame\(s\) but its content refers to 1; no array "
                                               r"descriptor refers to buffer\(s\) \[1, 2\]"):
        deserialize([bytes(memoryview(f)) for f in frames] + [b"x", b""])
