"""Defects a hostile client and a new user found (issue 17, part 5), each against a real `relight serve` subprocess:
absurd array shapes, tracebacks and server paths in replies, images too small to segment, names with path parts."""

import json
import re
import uuid

import numpy as np
import pytest
import zmq

from relight_protocol.envelope import deserialize
from relight_protocol.version import PROTOCOL_VERSION
from server_fixture import relight_server_module as server  # noqa: F401  (module-scoped fixture)

TIMEOUT = 60.0  # seconds for one reply (2 shared cores)
PATHLIKE = re.compile(r"(^|[\s'\"(])(/|~/|[A-Za-z]:\\)[^\s]*[/\\]")  # an absolute path with a folder in it


def header(msg_type: str) -> tuple[str, bytes]:
    msg_id = uuid.uuid4().hex
    return msg_id, json.dumps({"msg_id": msg_id, "msg_type": msg_type, "protocol_version": PROTOCOL_VERSION}).encode()


def exchange(endpoint: str, frames: list, timeout: float = TIMEOUT) -> tuple[list, object]:
    """Send raw frames from a fresh DEALER; (progress messages, reply)."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send_multipart(frames)
        progress = []
        while sock.poll(int(timeout * 1000)):
            msg = deserialize(sock.recv_multipart()[1:], peer="client")
            if msg.msg_type == "progress":
                progress.append(msg)
            elif msg.msg_type.endswith("_reply"):  # (not a message the server sends of its own accord)
                return progress, msg
        raise TimeoutError("no reply from relight serve")
    finally:
        sock.close()
        ctx.term()


def assert_clean_error(reply, ename: str, fragment: str) -> None:
    """An error reply that names the problem, with no traceback and no server path."""
    content = reply.content
    assert content["status"] == "error" and content["ename"] == ename, content
    assert fragment in content["evalue"], content["evalue"]
    assert "traceback" not in content and "Traceback" not in content["evalue"]
    assert not PATHLIKE.search(content["evalue"]), content["evalue"]


def image_frames(shape, buffer: bytes, **fields):
    msg_id, h = header("generate_request")
    content = {"image": {"buffer": 0, "dtype": "uint8", "shape": list(shape)}, "name": "x", **fields}
    return msg_id, [b"", h, json.dumps(content).encode(), buffer]


@pytest.mark.parametrize("shape", [[0, 10**20], [0, 2**40, 2**40]])
def test_absurd_array_shapes_get_a_named_error(server, shape):
    msg_id, frames = image_frames(shape, b"")
    _, reply = exchange(server.endpoint, frames)
    assert reply.parent_id == msg_id
    assert_clean_error(reply, "LimitExceeded", "whose non-zero dimensions alone span")
    assert "the limit MAX_ARRAY_BYTES is 536870912" in reply.content["evalue"]


def test_unknown_asset_does_not_reveal_the_store_path(server):
    msg_id, h = header("bake_request")
    _, reply = exchange(server.endpoint, [b"", h, json.dumps({"asset_id": "0123456789abcdef"}).encode()])
    assert_clean_error(reply, "UnknownAsset", "asset '0123456789abcdef' is not in this server's store")
    assert str(server.store_dir) not in reply.content["evalue"] and server.store_dir.name not in reply.content["evalue"]


@pytest.mark.parametrize("size,opaque", [(1, [(0, 0)]), (3, [(1, 1)])])
def test_images_too_small_are_refused_before_any_work(server, size, opaque):
    img = np.zeros((size, size, 4), np.uint8)
    for y, x in opaque:
        img[y, x] = 255
    msg_id, frames = image_frames(img.shape, img.tobytes())
    progress, reply = exchange(server.endpoint, frames)
    assert progress == [], "refused when the request arrived: no job was queued"
    assert_clean_error(reply, "InvalidRequest", f"image is {size}x{size} pixels, too small to find an object in; "
                                                "the limit MIN_IMAGE_SIDE is 8 pixels per side")


def test_an_object_of_a_few_pixels_is_refused_at_segmentation(server):
    """16x16 with a 2x2 object ran the whole pipeline and ended in 'array must not contain infs or NaNs'."""
    img = np.zeros((16, 16, 4), np.uint8)
    img[7:9, 7:9] = 255
    msg_id, frames = image_frames(img.shape, img.tobytes())
    progress, reply = exchange(server.endpoint, frames, timeout=180)
    assert_clean_error(reply, "InvalidRequest", "the object covers only 4 pixel(s) of the image, too few to build it "
                                                "from; the limit MIN_OBJECT_PIXELS is 16 pixels")
    assert {p.content["stage"] for p in progress} <= {"start", "segment"}, "it stopped at the first stage"


def test_a_generate_name_with_path_parts_is_sanitised_where_it_enters(server):
    img = np.zeros((16, 16, 4), np.uint8)
    img[6:10, 6:10] = (200, 120, 60, 255)  # a 4x4 object: the smallest that builds (MIN_OBJECT_PIXELS)
    msg_id, frames = image_frames(img.shape, img.tobytes(), name="../../../../tmp/x/../y")
    _, reply = exchange(server.endpoint, frames, timeout=600)
    assert reply.content["status"] == "ok", reply.content
    assert reply.content["name"] == "tmp_x_y"
    stored = json.loads((server.store_dir / reply.content["asset_id"] / "asset.json").read_text())
    assert stored["name"] == "tmp_x_y"
    msg_id, h = header("bake_request")
    _, baked = exchange(server.endpoint, [b"", h, json.dumps({"asset_id": reply.content["asset_id"],
                                                              "texture_size": 16}).encode()], timeout=600)
    assert baked.content["status"] == "ok", baked.content
    assert baked.content["filename"] == "tmp_x_y.glb"


def test_segmentation_itself_refuses_images_and_objects_too_small():
    """The same limits hold for the CLI (`relight generate` reads files, not the wire), named by segment()."""
    from relight.generate.segment import NoObjectError, segment, user_mask

    with pytest.raises(NoObjectError, match="the image is 1x1 pixels, too small .* MIN_IMAGE_SIDE is 8"):
        segment(np.ones((1, 1, 4), np.float32))
    rgba = np.zeros((16, 16, 4), np.float32)
    rgba[7:9, 7:9] = 1.0
    with pytest.raises(NoObjectError, match="covers only 4 pixel.* MIN_OBJECT_PIXELS is 16"):
        segment(rgba)
    rgba[6:10, 6:10] = 1.0
    assert segment(rgba).sum() == 16
    with pytest.raises(NoObjectError, match="the mask given covers only 1 pixel.* MIN_OBJECT_PIXELS is 16"):
        user_mask(np.pad(np.ones((1, 1), np.uint8) * 255, 7), (15, 15))


def test_an_unreadable_image_in_a_reconstruct_archive_is_named_without_a_path(server):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mask.png", b"\x89PNG\r\n\x1a\n not an image")
        z.writestr("albedo.png", b"junk")
    msg_id, h = header("reconstruct_request")
    content = {"archive": {"buffer": 0, "dtype": "uint8", "shape": [len(buf.getvalue())]}, "name": "r"}
    _, reply = exchange(server.endpoint, [b"", h, json.dumps(content).encode(), buf.getvalue()])
    assert reply.parent_id == msg_id
    assert_clean_error(reply, "InvalidRequest", "the archive's files cannot be read: cannot read image ")
    assert "<path>" not in reply.content["evalue"] and ".png" in reply.content["evalue"]
