"""Frame speed plumbing: `relight bench --quick` outputs (structure and sanity, no timing assertions), the
environment's prefiltered data shared across rotations, and the server relighting a stored asset from memory."""

import json
import shutil

import cv2
import numpy as np

from relight.render.settings import FINAL
from relight.core.asset import RelightableAsset
from relight.core.camera import Camera
from relight.cli import main
from relight.core.envmap import Environment
from relight.core.gaussians import SurfaceGaussians, quats_from_normals
from relight.service.store import AssetStore

from server_fixture import start_server


def test_quick_bench_writes_sane_reports(tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    rep = json.loads((out / "bench.json").read_text())
    assert rep["config"]["quick"] is True and rep["machine"]["cpu_count"] >= 1
    cases = rep["cases"]
    assert [(c["size"], c["requested_gaussians"]) for c in cases] == [(256, 25_000), (512, 25_000)]
    for c in cases:
        assert abs(c["gaussians"] - 25_000) < 2_500 and c["pixels"] == c["size"] ** 2
        for setting, ss, shadows in (("interactive", 1, True), ("final", FINAL.supersample, True),
                                     ("interactive_ao", 1, False), ("interactive_new_light", 1, True)):  # fmt: skip
            f = c[setting]
            assert f["supersample"] == ss and f["shadows"] == shadows
            assert f["render_kwargs"]["supersample"] == ss
            assert 0 < f["frame"]["min_ms"] <= f["frame"]["median_ms"] < 1e6 and np.isfinite(f["fps"])
            assert {"rasterize", "shade", "tonemap"} <= set(f["stages_ms"])
            assert all(v >= 0 for v in f["stages_ms"].values())
            # the stages are parts of the frame
            assert sum(f["stages_ms"].values()) <= f["frame"]["median_ms"] * 1.5 + 5
        assert all(v > 0 for v in c["tonemap_split_ms"].values())
        assert c["peak_rss_mb"] > 50
        assert 0 < c["visible_gaussians"] <= c["gaussians"] and c["pairs"] > c["visible_gaussians"]
        assert 0.02 < c["coverage"] < 0.95, "the object covers part of the frame"
        ref = c["torch_reference"]
        assert ref["native_ms"] > 0 and ref["torch_ms"] > 0 and ref["ratio"] > 0 and "crop" in ref["region"]
        assert max(ref["max_abs_diff"].values()) <= 1e-3
        frame = cv2.imread(str(out / c["frame_png"]), cv2.IMREAD_UNCHANGED)
        assert frame.shape == (c["size"], c["size"], 4)
        assert frame[..., 3].max() == 255 and frame[..., :3][frame[..., 3] > 128].mean() > 10, "lit, not black"
    # pairs grow with the pixel count at a fixed asset (4x pixels -> ~4x pair area)
    assert 2.5 < cases[1]["pairs"] / cases[0]["pairs"] < 6
    assert np.isfinite(rep["scaling"]["slope_frame"])
    assert rep["environment_cache"]["arrays_shared"] is True
    assert rep["bars"] == {"headline_measured": False}
    md = (out / "bench.md").read_text()
    assert md.count("| 256² |") == 1 and md.count("| 512² |") == 1 and "Scaling" in md
    plot = cv2.imread(str(out / "bench.png"))
    assert plot is not None and plot.shape[0] > 300 and plot.shape[1] > 600
    assert (plot < 200).any(axis=2).mean() > 0.01, "the plot has marks on it"


def test_rotation_and_strength_changes_recompute_no_prefiltered_data():
    rng = np.random.default_rng(0)
    eq = (rng.uniform(0.0, 1.0, (32, 64, 3)) ** 4 * 20).astype(np.float32)
    env = Environment(eq).prefilter()
    kd = env.kernel_data()
    for other in (env.with_transform(1.2, 0.5), Environment(eq.copy(), rotation_z=2.0)):  # same pixels, new object
        okd = other.kernel_data()
        for k in ("spec_flat", "spec_table", "irr_flat"):
            assert np.shares_memory(getattr(kd, k), getattr(okd, k)), f"prefiltered {k} is shared, not recomputed"
        assert other.sh9.shape == (9, 3)
    # ...while the rotation itself is applied: the rotated environment seen along d is the original along Rz d
    rot = env.with_transform(0.7, 1.0)
    d = rng.normal(size=(50, 3)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    c, s = np.cos(0.7), np.sin(0.7)
    d_img = d @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float32).T
    np.testing.assert_allclose(rot.specular(d, 0.5), env.specular(d_img, 0.5), rtol=1e-4, atol=1e-5)
    assert np.abs(rot.specular(d, 0.5) - env.specular(d, 0.5)).max() > 1e-3


def sphere_asset(n: int = 4000, asset_id: str = "5ca1ab1e00000000000000aa") -> RelightableAsset:
    """A small real asset: surface Gaussians on a unit-diameter sphere (mesh, voxels, camera), no visibility bits."""
    from relight.generate.voxel import voxelize

    rng = np.random.default_rng(0)
    nrm = rng.normal(size=(n, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    th, ph = np.meshgrid(np.linspace(0, np.pi, 17), np.linspace(0, 2 * np.pi, 33)[:-1], indexing="ij")
    verts = 0.5 * np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(-1, 3)
    faces = []
    for i in range(16):
        for j in range(32):
            a, b, c, d = i * 32 + j, i * 32 + (j + 1) % 32, (i + 1) * 32 + j, (i + 1) * 32 + (j + 1) % 32
            faces += [(a, c, b), (b, c, d)]
    s = 0.5 * np.sqrt(8.0 / n) * 0.6
    g = SurfaceGaussians(
        means=(0.5 * nrm).astype(np.float32), quats=quats_from_normals(nrm).astype(np.float32),
        scales=np.tile(np.array([s, s, 0.1 * s], np.float32), (n, 1)), opacities=np.full(n, 0.98, np.float32),
        albedo=rng.uniform(0.2, 0.8, (n, 3)).astype(np.float32), roughness=np.full(n, 0.5, np.float32),
        metallic=np.zeros(n, np.float32), normals=nrm.astype(np.float32), visibility=np.ones(n, np.float32),
        voxel=np.zeros(n, np.int32),
    )  # fmt: skip
    verts = verts.astype(np.float32)
    faces = np.asarray(faces, np.int32)
    vn = verts / np.linalg.norm(verts, axis=1, keepdims=True)
    cam = Camera.look_at((0.0, -3.0, 0.5), (0.0, 0.0, 0.0), 35.0, 64, 64)
    return RelightableAsset(
        asset_id=asset_id, name="sphere", vertices=verts, faces=faces, vertex_normals=vn, gaussians=g,
        voxels=voxelize(verts, faces, vn), model_matrix=np.eye(4), input_camera=cam,
        thumbnail=np.zeros((8, 8, 4), np.uint8),
    )  # fmt: skip


def test_server_relights_a_cached_asset_without_its_files(tmp_path):
    """After the first render the server keeps the asset in memory: with its folder moved away, a second render
    (other size, rotated light) still works; an asset it never loaded fails once its folder is gone."""
    store_dir = tmp_path / "store"
    store = AssetStore(store_dir)
    hot, cold = sphere_asset(), sphere_asset(1500, asset_id="c01d00000000000000000bbb")
    store.put(hot)
    store.put(cold)
    server = start_server(store_dir)
    try:
        c = server.client()
        cam = Camera.look_at((0.0, -3.0, 0.5), (0.0, 0.0, 0.0), 35.0, 40, 40).to_dict()
        sky = np.full((16, 32, 3), 0.05, np.float32)
        sky[4:10, 12:20] = 30.0  # a bright patch on one side: rotating the world moves the light
        world = {"equirect": sky, "rotation_z": 0.0, "strength": 1.0}
        first = c.call("render_request", {"asset_id": hot.asset_id, "camera": cam, "world": world}, timeout=120)
        assert first.status == "ok", first.content
        shutil.move(str(store_dir / hot.asset_id), str(tmp_path / "moved_away"))
        shutil.rmtree(store_dir / cold.asset_id)
        assert not store.has(hot.asset_id) and not store.has(cold.asset_id)
        again = c.call("render_request", {"asset_id": hot.asset_id, "camera": cam, "world": world}, timeout=120)
        assert again.status == "ok", again.content
        np.testing.assert_array_equal(again.content["image"], first.content["image"])
        rotated = dict(world, rotation_z=2.5)
        other = c.call("render_request", {"asset_id": hot.asset_id, "camera": cam, "world": rotated}, timeout=120)
        assert other.status == "ok", other.content
        assert (other.content["image"][..., 3] > 0).sum() > 100
        assert np.abs(other.content["image"].astype(int) - first.content["image"]).max() > 20, "the light moved"
        gone = c.call("render_request", {"asset_id": cold.asset_id, "camera": cam, "world": world}, timeout=120)
        assert gone.status == "error" and cold.asset_id in str(gone.content), gone.content
    finally:
        server.stop()
