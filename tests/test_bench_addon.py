"""`relight bench --addon` plumbing on a small case: the add-on in headless bpy drives a real `relight serve` through
the orbit and the world turn and reports fps, latency percentiles and the time split (no timing assertions)."""

import json

import bpy  # noqa: F401  (after conftest set the Blender user folders)

from relight.evaluate.bench_addon import run


def test_bench_addon_reports_fps_latency_and_split(tmp_path):
    rep = run(tmp_path, size=96, steps=3, n_gaussians=25_000)
    saved = json.loads((tmp_path / "bench_addon.json").read_text())
    assert saved["legs"].keys() == {"orbit", "world_turn", "orbit_point_lamp"} == rep["legs"].keys()
    assert saved["warm_s"] >= 0, "the legs waited for the server's start-up warming to end"
    for leg in rep["legs"].values():
        assert leg["fps"] > 0 and leg["latency"]["n"] == 3
        assert 0 < leg["latency"]["p50_ms"] <= leg["latency"]["p95_ms"]
        s = leg["split_ms"]
        assert set(s) == {"render", "encode", "server_other", "transport", "decode", "upload"}
        assert s["render"] > 0 and s["encode"] > 0 and all(v >= 0 for v in s.values())
        # the parts of a frame fit in its latency (medians of parts vs the p95 of the whole, with slack)
        assert sum(s.values()) <= leg["latency"]["p95_ms"] * 1.5 + 5
    md = (tmp_path / "bench_addon.md").read_text()
    assert "| orbit |" in md and "| world_turn |" in md and "| orbit_point_lamp |" in md and "p95" in md
    assert not bpy.app.timers.is_registered(__import__("importlib").import_module(
        "bl_ext.user_default.relight.live").tick), "Live is off after the bench"
