"""`relight eval relight --quick` end to end: Cycles input and targets, every provider and light hint, the report."""

import json
import subprocess
import sys

import numpy as np


def test_quick_relight_eval_writes_report_and_delighting_beats_baseline(tmp_path):
    out = tmp_path / "eval"
    r = subprocess.run([sys.executable, "-m", "relight.cli", "eval", "relight", "--quick", "--size", "64",
                        "--samples", "8", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    s, (row,) = rep["summary"], rep["cases"]
    for k in ("scene_baseline_v", "scene_unknown_v", "scene_world_v", "scene_unknown_novel", "inflate_unknown_v"):
        assert np.isfinite(s[k]) and 5 < s[k] < 60, (k, s[k])
    # with the input light given, delighting must clearly beat taking the photo's colours as albedo
    assert s["scene_world_v"] > s["scene_baseline_v"] + 2.0, s
    assert set(s["bars"]) >= {"scene_world_v >= 28", "inflate above baseline"}
    assert (out / "contact_sphere.png").stat().st_size > 1000
    assert "| scene | world |" in (out / "report.md").read_text()
    assert row["light_a"] != row["light_b"]


def test_held_out_cases_use_other_input_lights_on_every_object():
    """`--held-out` runs every object under input lights the main pairs never use, each against another target."""
    from relight.cli import build_parser
    from relight.evaluate.relight import HELD_OUT_PAIRS, LIGHT_PAIRS, OBJECTS, RelightConfig, eval_cases

    main_cases, held = eval_cases(RelightConfig()), eval_cases(RelightConfig(held_out=True))
    assert len(main_cases) == len(OBJECTS) * len(LIGHT_PAIRS) and len(held) == len(OBJECTS) * len(HELD_OUT_PAIRS)
    assert {o for o, _ in held} == set(OBJECTS)
    main_inputs = {a for a, _ in LIGHT_PAIRS}
    for _, (a, b) in held:
        assert a != b and a not in main_inputs
    assert eval_cases(RelightConfig(quick=True, held_out=True)) == eval_cases(RelightConfig(quick=True))
    assert build_parser().parse_args(["eval", "relight", "--held-out", "--out", "x"]).held_out
    assert not build_parser().parse_args(["eval", "relight", "--out", "x"]).held_out
