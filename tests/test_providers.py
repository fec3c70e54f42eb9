"""Geometry providers beyond the built-in ones, through a real `relight serve`: a generator that runs as another
program is offered in the hello only when the server has one, produces a stored asset with the camera fitted to the
photo, and its absence or failure comes back as a named error."""

import sys
import textwrap

import numpy as np
import pytest

from server_fixture import start_server
from test_server import disc_image

TIMEOUT = 300.0
SCRIPT = textwrap.dedent('''
    import sys, trimesh
    if "fail" in sys.argv: sys.stderr.write("CUDA out of memory"); sys.exit(1)
    trimesh.creation.icosphere(subdivisions=3, radius=0.7).export(sys.argv[2])  # a ball, for the disc photo
''')


@pytest.fixture(scope="module")
def generator_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("generator")
    script = tmp / "make_ball.py"
    script.write_text(SCRIPT)
    server = start_server(tmp / "store", extra_args=("--generator-cmd", f"{sys.executable} {script} {{image}} {{mesh.glb}}"))
    yield server
    server.stop()


def test_the_hello_lists_the_command_provider_only_when_the_server_has_one(generator_server, tmp_path):
    hello = generator_server.client().call("hello_request", timeout=30)
    assert set(hello.content["providers"]) == {"inflate", "scene", "command"}
    plain = start_server(tmp_path / "store")
    try:
        c = plain.client()
        assert "command" not in c.call("hello_request", timeout=30).content["providers"]
        reply = c.call("generate_request", {"image": disc_image(64), "provider": "command"}, timeout=TIMEOUT)
        assert reply.status == "error" and reply.content["ename"] == "GeneratorFailed"
        assert "--generator-cmd" in reply.content["evalue"] and "traceback" not in reply.content
    finally:
        plain.stop()


def test_a_generated_mesh_becomes_an_asset_seen_as_the_photo_shows_it(generator_server):
    c = generator_server.client()
    reply = c.call("generate_request", {"image": disc_image(64), "name": "ball", "provider": "command"}, timeout=TIMEOUT)
    assert reply.status == "ok", reply.content
    assert reply.content["stats"]["faces"] == 1280  # the icosphere the program wrote
    from relight.service.store import AssetStore

    asset = AssetStore(generator_server.store_dir).get(reply.content["asset_id"])
    assert asset.meta["provider"] == "command"
    fit = asset.meta["camera_fit"]
    assert fit["done"] and fit["iou"] > 0.9  # a ball's outline is the disc's


def test_a_failing_generator_is_reported_and_the_server_keeps_serving(tmp_path):
    script = tmp_path / "make_ball.py"
    script.write_text(SCRIPT)
    server = start_server(tmp_path / "store", extra_args=(
        "--generator-cmd", f"{sys.executable} {script} {{image}} {{mesh.glb}} fail"))
    try:
        c = server.client()
        reply = c.call("generate_request", {"image": disc_image(64), "provider": "command"}, timeout=TIMEOUT)
        assert reply.status == "error" and reply.content["ename"] == "GeneratorFailed"
        assert "CUDA out of memory" in reply.content["evalue"]
        assert c.call("ping_request", timeout=30).status == "ok"
    finally:
        server.stop()
