"""The asset library, passes, splats and turntables through a real `relight serve` (issue 16, parts 3-6), and
`relight render --turntable / --spin-world` writing real mp4 files that are decoded back."""

import os
import time

import numpy as np
import pytest
from asset_fixture import disc_asset_folder, seed_store
from server_fixture import start_server

TIMEOUT = 120.0  # seconds for one reply on two shared cores


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with two copies of the real disc asset, the second one newer."""
    root = tmp_path_factory.mktemp("library-store")
    older = seed_store(root, name="older disc", asset_id="a0" * 12)
    newer = seed_store(root)
    now = time.time()
    os.utime(root / older / "asset.json", (now - 3600, now - 3600))
    os.utime(root / newer / "asset.json", (now, now))
    return root, older, newer


@pytest.fixture(scope="module")
def server(store):
    s = start_server(store[0])
    yield s
    s.stop()


def _list(server) -> tuple[list, np.ndarray]:
    reply = server.client().call("list_assets_request", {}, timeout=TIMEOUT)
    assert reply.status == "ok", reply.content
    return reply.content["assets"], reply.content["thumbnails"]


def test_thumbnail_fits_the_picture_into_the_square():
    from relight.service.library import thumbnail

    wide = np.zeros((10, 40, 4), np.uint8)
    wide[:, :20] = 255  # left half white, opaque
    t = thumbnail(wide, 16)
    assert t.shape == (16, 16, 4) and t.dtype == np.uint8
    assert (t[:6, :, 3] == 0).all() and (t[-6:, :, 3] == 0).all()  # aspect kept: 4 rows of picture, centred
    assert (t[6:10, :8] == 255).all() and (t[6:10, 8:] == 0).all()


def test_list_delete_and_restart(tmp_path):
    """list_assets sends every asset newest first with its fields and thumbnail; delete asks for a real id and
    removes it; a backend restarted on the same store lists what is left."""
    root = tmp_path / "store"
    older = seed_store(root, name="older disc", asset_id="b1" * 12)
    newer = seed_store(root)
    now = time.time()
    os.utime(root / older / "asset.json", (now - 60, now - 60))
    (root / "not-an-asset").mkdir()  # foreign folders are not assets
    server = start_server(root)
    try:
        assets, thumbs = _list(server)
        assert [a["asset_id"] for a in assets] == [newer, older]
        assert [a["name"] for a in assets] == ["library disc", "older disc"]
        for a in assets:
            assert a["provider"] == "inflate" and a["gaussians"] > 1000
            assert a["size_bytes"] == sum(p.stat().st_size for p in (root / a["asset_id"]).iterdir())
        assert assets[0]["created"] == pytest.approx((root / newer / "asset.json").stat().st_mtime)
        assert assets[0]["created"] > assets[1]["created"]
        assert thumbs.shape == (2, 64, 64, 4) and thumbs.dtype == np.uint8
        alpha = thumbs[0, ..., 3] > 127
        assert 0.2 < alpha.mean() < 0.8  # the disc photo, not an empty square
        assert thumbs[0, ..., 0][alpha].mean() > thumbs[0, ..., 2][alpha].mean() + 40  # orange

        bad = server.client().call("delete_asset_request", {"asset_id": "../x"}, timeout=TIMEOUT)
        assert bad.status == "error" and bad.content["ename"] == "InvalidRequest" and "is not an id" in bad.content["evalue"]
        gone = server.client().call("delete_asset_request", {"asset_id": older}, timeout=TIMEOUT)
        assert gone.status == "ok" and gone.content == {"status": "ok", "asset_id": older, "deleted": True}
        assert not (root / older).exists() and not [p for p in root.iterdir() if p.name.startswith(".deleted")]
        again = server.client().call("delete_asset_request", {"asset_id": older}, timeout=TIMEOUT)
        assert again.status == "error" and again.content["ename"] == "UnknownAsset"
        assert [a["asset_id"] for a in _list(server)[0]] == [newer]
    finally:
        server.stop()
    server = start_server(root)  # the same store after a restart
    try:
        assets, thumbs = _list(server)
        assert [a["asset_id"] for a in assets] == [newer] and thumbs.shape == (1, 64, 64, 4)
    finally:
        server.stop()


def test_empty_store_lists_nothing(tmp_path):
    server = start_server(tmp_path / "empty")
    try:
        assets, thumbs = _list(server)
        assert assets == [] and thumbs.shape == (0, 64, 64, 4)
    finally:
        server.stop()


def _camera(width=64, height=48):
    from relight.core.camera import Camera

    return Camera.look_at((0.0, -3.0, 1.0), (0.0, 0.0, 0.0), 35.0, width, height).to_dict()


def test_passes_of_the_current_view(server, store):
    reply = server.client().call("passes_request", {"asset_id": store[2], "camera": _camera(), "quality": "final"},
                                 timeout=TIMEOUT)
    assert reply.status == "ok", reply.content
    passes, alpha = reply.content["passes"], reply.content["alpha"][..., 0]
    assert set(passes) == {"albedo", "roughness", "metallic", "normal", "shadow"}
    channels = {"albedo": 3, "roughness": 1, "metallic": 1, "normal": 3, "shadow": 3}
    for name, p in passes.items():
        assert p.shape == (48, 64, channels[name]) and p.dtype == np.float32, name
    inside = alpha > 0.99
    assert 0.05 < inside.mean() < 0.9
    albedo = passes["albedo"][inside]
    assert (albedo >= 0).all() and (albedo <= 1).all() and albedo[:, 0].mean() > albedo[:, 2].mean()  # orange
    n = passes["normal"][inside]
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=0.05)
    assert n[:, 1].mean() < -0.3  # the disc faces the camera, which looks along +Y
    s = passes["shadow"][inside]
    # visibility in [0, 1]; the preview's shadows come from the low-rank transfer (transfer.py), a few 1e-3 over
    assert (s >= -0.01).all() and (s <= 1.01).all() and s.std() > 1e-3, (s.min(), s.max(), s.std())
    for name in ("roughness", "metallic"):
        assert ((passes[name] >= 0) & (passes[name] <= 1)).all()
    assert reply.content["image"].shape == (48, 64, 4)


def test_splats_are_the_standard_3dgs_ply(server, store):
    from relight.core.asset import RelightableAsset
    from relight.export.ply import read_ply

    reply = server.client().call("splats_request", {"asset_id": store[2]}, timeout=TIMEOUT)
    assert reply.status == "ok", reply.content
    asset = RelightableAsset.load(store[0] / store[2])
    rec = read_ply(reply.content["data"].tobytes())
    assert len(rec) == len(asset.gaussians) == reply.content["gaussians"]
    assert reply.content["filename"] == "library_disc.ply" and reply.content["provider"] == "inflate"
    M = asset.model_matrix
    world = asset.gaussians.means @ M[:3, :3].T + M[:3, 3]
    np.testing.assert_allclose(np.stack([rec["x"], rec["y"], rec["z"]], 1), world, atol=1e-5)


def test_turntable_job_returns_an_mp4_that_turns(server, store):
    from relight.export.video import decode_video

    c = server.client()
    stages = []
    reply = c.call("turntable_request", {"asset_id": store[2], "camera": _camera(), "frames": 6, "fps": 12},
                   timeout=TIMEOUT * 3, on_progress=lambda m: stages.append(m.content))
    assert reply.status == "ok", reply.content
    turn = [s for s in stages if s["stage"] == "turntable"]  # per frame (throttled to one per 0.1 s by the job)
    assert len(turn) >= 2 and turn[0]["message"] == "frame 1 of 6" and turn[-1]["fraction"] == 1.0
    video = decode_video(reply.content["data"].tobytes())
    assert video.shape == (6, 48, 64, 3) and reply.content["filename"] == "library_disc_orbit.mp4"
    diffs = [np.abs(video[k].astype(int) - video[k + 1]).mean() for k in range(5)]
    assert min(diffs) > 0.5, diffs  # the view turns every frame


def test_turntable_rejects_odd_sizes_and_can_be_cancelled(server, store):
    c = server.client()
    odd = c.call("turntable_request", {"asset_id": store[2], "camera": _camera(63, 48), "frames": 4}, timeout=TIMEOUT)
    assert odd.status == "error" and "must be even for H.264" in odd.content["evalue"]
    over = c.call("turntable_request", {"asset_id": store[2], "frames": 100000}, timeout=TIMEOUT)
    assert over.status == "error" and "MAX_TURNTABLE_FRAMES" in over.content["evalue"]
    msg_id = c.request("turntable_request", {"asset_id": store[2], "camera": _camera(), "frames": 1000})
    first = []
    deadline = time.monotonic() + TIMEOUT
    while not first and time.monotonic() < deadline:
        first = [m for m in c.poll(timeout_ms=100) if m.parent_id == msg_id and m.msg_type == "progress"
                 and m.content["stage"] == "turntable"]
    assert first, "the turntable never started"
    c.call("cancel_request", {"job_id": msg_id}, timeout=TIMEOUT)
    reply = c.wait(msg_id, timeout=TIMEOUT)
    assert reply.status == "error" and reply.content["ename"] == "Cancelled"


@pytest.mark.parametrize("flag", ["--turntable", "--spin-world"])
def test_cli_writes_a_turntable_mp4(store, tmp_path, flag):
    from relight.cli import main
    from relight.export.video import decode_video

    out = tmp_path / "turn.mp4"
    code = main(["render", store[2], flag, "5", "--size", "48", "--quality", "preview", "--hdri", "forest",
                 "--out", str(out), "--store", str(store[0])])
    assert code == 0 and out.is_file()
    video = decode_video(out.read_bytes())
    assert video.shape == (5, 48, 48, 3)
    diffs = [np.abs(video[k].astype(int) - video[k + 1]).mean() for k in range(4)]
    assert min(diffs) > 0.2, diffs
    lit = video.max(-1) > 8  # the object (the film is transparent: black in the video)
    if flag == "--spin-world":  # the camera stays: the silhouette stays, only the light moves
        assert (lit[0] == lit[2]).mean() > 0.97
    assert main(["render", store[2], flag, "4", "--size", "47", "--out", str(out), "--store", str(store[0])]) == 2


def test_bake_as_obj_sends_obj_mtl_and_maps(server, store, tmp_path):
    from relight_protocol.archive import unpack_archive

    reply = server.client().call("bake_request", {"asset_id": store[2], "texture_size": 64, "format": "obj"},
                                 timeout=TIMEOUT)
    assert reply.status == "ok", reply.content
    assert reply.content["format"] == "obj" and reply.content["filename"] == "library_disc.zip"
    names = sorted(unpack_archive(reply.content["data"].tobytes(), tmp_path))
    assert names == ["library_disc.mtl", "library_disc.obj", "library_disc_albedo.png", "library_disc_metallic.png",
                     "library_disc_roughness.png"]
    mtl = (tmp_path / "library_disc.mtl").read_text()
    assert "map_Kd library_disc_albedo.png" in mtl and "map_Pr library_disc_roughness.png" in mtl
    assert sum(line.startswith("f ") for line in (tmp_path / "library_disc.obj").read_text().splitlines()) > 100
