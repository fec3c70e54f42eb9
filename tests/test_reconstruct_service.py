"""Multi-view reconstruction where a user reaches it: `relight reconstruct` on a folder, and a reconstruct_request to a
real `relight serve` (the folder as one zip), whose asset relights like any other and whose GLB comes back as baked.
A mesh file sent with a generate request goes through the same reader as `relight generate --mesh`."""

import subprocess
import sys

import numpy as np
import pytest
import trimesh

from relight.export.gltf import read_glb_json
from relight.reconstruct.inputs import write_views
from relight.reconstruct.synthetic import render_gbuffers
from relight.reconstruct.zero123 import zero123_cameras
from relight_protocol.archive import pack_folder
from server_fixture import relight_server_module as server  # noqa: F401  (module-scoped fixture)

TIMEOUT = 300.0


def two_colour(p: np.ndarray) -> np.ndarray:
    """[P, 3] red where x > 0, blue elsewhere (linear)."""
    return np.where(p[:, :1] > 0, [[0.8, 0.15, 0.1]], [[0.1, 0.2, 0.8]])


@pytest.fixture(scope="module")
def views_folder(tmp_path_factory):
    """A box's exact G-buffers at the Zero123++ rig's views (96 px), in MAGE's tiled layout."""
    box = trimesh.creation.box((0.9, 0.7, 0.8))
    views = render_gbuffers(np.asarray(box.vertices, np.float32), np.asarray(box.faces), zero123_cameras(96),
                            albedo=two_colour, roughness=lambda p: np.full(len(p), 0.4))  # fmt: skip
    folder = tmp_path_factory.mktemp("views")
    write_views(views, folder, form="zero123pp")
    return folder


def _reconstruct(server, folder, **extra):
    content = {"archive": np.frombuffer(pack_folder(folder), np.uint8), "name": "box", "texture_size": 128,
               "optimise": False, **extra}  # fmt: skip
    seen = []
    reply = server.client().call("reconstruct_request", content, timeout=TIMEOUT, on_progress=seen.append)
    return reply, seen


def test_reconstruct_request_stores_a_relightable_asset_with_its_glb(server, views_folder):
    reply, progress = _reconstruct(server, views_folder)
    assert reply.msg_type == "reconstruct_reply" and reply.status == "ok", reply.content
    stages = [p.content["stage"] for p in progress]
    assert {"hull", "bake"} <= set(stages)
    fractions = [p.content["fraction"] for p in progress]
    assert fractions == sorted(fractions)
    glb = reply.content["data"].tobytes()
    gltf = read_glb_json(glb)
    material = gltf["materials"][0]
    assert "normalTexture" in material and "baseColorTexture" in material["pbrMetallicRoughness"]
    asset_id = reply.content["asset_id"]

    c = server.client()
    from relight.core.camera import Camera

    cam = Camera.look_at((3.0, 0.5, 0.8), (0, 0, 0), 30.0, 64, 64).to_dict()
    r = c.call("render_request", {"asset_id": asset_id, "camera": cam, "world": None}, timeout=TIMEOUT)
    assert r.status == "ok", r.content
    img = r.content["image"]
    assert 0.05 < (img[..., 3] > 128).mean() < 0.9
    # the relit asset keeps the two colours: red on the +x side, blue on the -x side (seen from +x, slightly +y)
    lit = img[..., 3] > 200
    assert img[..., 0][lit].mean() > img[..., 2][lit].mean()

    b = c.call("bake_request", {"asset_id": asset_id, "texture_size": 1024}, timeout=TIMEOUT)
    assert b.status == "ok" and b.content["data"].tobytes() == glb  # the reconstruction's own maps, as baked

    again, _ = _reconstruct(server, views_folder)
    assert again.content["asset_id"] == asset_id and again.content["stats"]["reused"] is True


def test_bad_views_get_an_error_naming_the_domain_and_the_server_keeps_serving(server, views_folder, tmp_path):
    for p in views_folder.iterdir():
        if p.name != "albedo.png":
            (tmp_path / p.name).write_bytes(p.read_bytes())
    reply, _ = _reconstruct(server, tmp_path)
    assert reply.status == "error" and reply.content["ename"] == "InvalidRequest"
    assert "albedo" in reply.content["evalue"] and "traceback" not in reply.content
    junk = server.client().call("reconstruct_request", {"archive": np.frombuffer(b"not a zip", np.uint8)},
                                timeout=TIMEOUT)
    assert junk.status == "error" and "not a zip" in junk.content["evalue"]
    assert server.client().call("ping_request", timeout=30).status == "ok"


def test_generate_with_a_mesh_file(server):
    from test_server import disc_image

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    glb = sphere.export(file_type="glb")
    content = {"image": disc_image(64), "name": "ball", "mesh_file": {"data": np.frombuffer(glb, np.uint8),
                                                                      "format": "glb"}}
    reply = server.client().call("generate_request", content, timeout=TIMEOUT)
    assert reply.status == "ok", reply.content
    assert reply.content["stats"]["faces"] == len(sphere.faces)
    broken = dict(content, mesh_file={"data": np.frombuffer(b"v 0 0 0\n", np.uint8), "format": "obj"})
    reply = server.client().call("generate_request", broken, timeout=TIMEOUT)
    assert reply.status == "error" and "no triangles" in reply.content["evalue"]


def test_cli_reconstruct_writes_glb_and_obj(views_folder, tmp_path):
    out = tmp_path / "box.glb"
    r = subprocess.run([sys.executable, "-m", "relight.cli", "reconstruct", str(views_folder), "--out", str(out),
                        "--obj", str(tmp_path / "obj"), "--texture-size", "128", "--no-optimise",
                        "--store", str(tmp_path / "store")], capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1000 and "hull" in r.stdout and "stored as asset" in r.stderr
    assert (tmp_path / "obj" / "box.obj").exists() and (tmp_path / "obj" / "box.mtl").exists()
    bad = subprocess.run([sys.executable, "-m", "relight.cli", "reconstruct", str(tmp_path / "nowhere"), "--out",
                          str(out)], capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert bad.returncode == 2 and "error" in bad.stderr and "Traceback" not in bad.stderr
