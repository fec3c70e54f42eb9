"""The bench's report: bench.md (the table, bars, scaling and environment cache in markdown) and bench.png (log-log
panels drawn with OpenCV)."""

import math
from pathlib import Path

import numpy as np

from .bench_model import HEADLINE, work


def _fps(x) -> str:
    """fps (a number, or a case's timing record with "fps") as text; "n/a" when not measured."""
    if isinstance(x, dict):
        x = x.get("fps")
    return "n/a" if x is None else f"{x:.1f}"


def _ms_fps(rec) -> str:
    """A case's timing record as "median ms (fps)"; "n/a" when not measured."""
    return "n/a" if not rec else f"{rec['frame']['median_ms']:.1f} ({rec['fps']:.1f})"


def markdown(rep: dict) -> str:
    m = rep["machine"]
    lines = [
        "# relight bench: the relit frame",
        "",
        f"{m['cpu_count']} CPU cores, numba threads {m['numba_threads']} (OMP_WAIT_POLICY "
        f"{m.get('omp_wait_policy', '(default)')}), load average at the end "
        f"{', '.join(f'{x:.1f}' for x in m['loadavg_end'])} (other processes share the machine: times are wall clock).",
        f"HDRI `{rep['config']['hdri']}`. Interactive = render({_kw(rep, 'interactive')}) with the light unchanged "
        "between frames (camera orbit: the per-Gaussian shadows are reused); new light = the same with the shadows "
        "recomputed every frame, the world turned 0.05 rad per frame (world rotation drag); AO-only = "
        f"render({_kw(rep, 'interactive_ao')}) (ambient occlusion instead of the per-light shadow pass); final = the "
        f"renderer's defaults, render({_kw(rep, 'final')}). Medians of "
        f"{rep['config']['repeats']} (interactive) / {rep['config']['final_repeats']} (final) frames after a warm-up. "
        "Stage columns are the renderer's own timings of the interactive frame (ms); CPU ms is the process CPU time "
        "per interactive frame over all threads. Camera moving = the interactive frame from a new view every frame "
        "(the camera turned 0.02 rad about the asset). A view seen for the third time on re-composites its G-buffer's "
        "light channels from the view's blend record instead of rasterizing (render/gbuffer_reuse.py): the "
        "interactive, new light and AO-only columns measure that path, camera moving measures the full raster.",
        "",
        "| size | Gaussians | interactive ms median / min (fps) | CPU ms | raster | shadows | shade | tonemap+8bit | "
        "camera moving ms (fps) | new light ms (fps) | AO-only ms (fps) | final ms (fps) | AgX / 8-bit / fused ms | "
        "torch ref: speedup (region) | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in rep["cases"]:
        i, f, st, ts = c["interactive"], c["final"], c["interactive"]["stages_ms"], c["tonemap_split_ms"]
        ref = c.get("torch_reference")
        rs = f"{ref['ratio']:.0f}x ({ref['region']})" if ref else "not run"
        lines.append(
            f"| {c['size']}² | {c['gaussians']} | {i['frame']['median_ms']:.1f} / {i['frame']['min_ms']:.1f} ({i['fps']:.1f}) | "
            f"{i['frame'].get('cpu_median_ms', float('nan')):.0f} | "
            f"{st.get('rasterize', 0):.1f} | {st.get('visibility', 0):.1f} | {st.get('shade', 0):.1f} | "
            f"{st.get('tonemap', 0):.1f} | {_ms_fps(c.get('interactive_orbit'))} | "
            f"{c['interactive_new_light']['frame']['median_ms']:.1f} "
            f"({c['interactive_new_light']['fps']:.1f}) | "
            f"{c['interactive_ao']['frame']['median_ms']:.1f} ({c['interactive_ao']['fps']:.1f}) | "
            f"{f['frame']['median_ms']:.1f} ({f['fps']:.1f}) | "
            f"{ts['agx']:.1f} / {ts['uint8']:.1f} / {ts['agx_rgba8_fused']:.1f} | {rs} | {c['peak_rss_mb']:.0f} |"
        )
    b, s, e = rep["bars"], rep["scaling"], rep["environment_cache"]
    lines += ["", "## Bars (512², 100k Gaussians)", ""]
    if b.get("headline_measured"):
        d = b["max_abs_diff"] or {}
        not_run = "not run (`--no-torch`)"
        big = [c for c in rep["cases"] if c["size"] == 1024 and c["requested_gaussians"] == HEADLINE[1]]
        at_1024 = "not measured in this run"
        if big:
            c = big[0]
            at_1024 = (f"{c['interactive']['fps']:.1f} fps view and light unchanged, {c['interactive_new_light']['fps']:.1f} "
                       f"with a new light every frame, {_fps(c.get('interactive_orbit'))} with the camera moving")
        lines += [
            f"- camera moving (a new view every frame): {_fps(b.get('fps_interactive_orbit'))} fps (bar >= 30)",
            f"- a new light every frame (the world turned, the view unchanged): {b['fps_interactive_new_light']:.1f} fps "
            "(bar >= 25)",
            f"- 1024², 100k Gaussians: {at_1024} (bar >= 10)",
            f"- view and light unchanged: {b['fps_interactive']:.1f} fps at the median, {b['fps_interactive_best']:.1f} "
            f"fps best of the run; AO-only {b['fps_interactive_ao']:.1f} fps; final quality {b['fps_final']:.1f} fps",
            "- native rasterizer vs torch reference: "
            + (f"{b['raster_speedup_vs_torch']:.0f}x (bar >= 20x)" if b.get("raster_speedup_vs_torch") else not_run),
            "- native vs reference max abs difference: "
            + (", ".join(f"{k} {v:.2e}" for k, v in d.items()) + " (bar 1e-3)" if d else not_run),
        ]
    else:
        lines.append("- not measured in this run (`--quick` measures 25k Gaussians only)")
    rt = rep.get("server_round_trip")
    if rt and "error" not in rt:
        eq = f"{rt['equirect_shape'][1]}x{rt['equirect_shape'][0]}"

        def leg(name: str) -> str:
            r = rt[name]
            return f"{r['round_trip_ms']:.1f} ms round trip ({r['fps']:.1f} fps; {r['server_ms']:.1f} ms in the server)"

        warm = f", timed once its start-up warming had ended ({rt['warm_s']:.1f} s)" if "warm_s" in rt else ""
        lines.append(f"- through a real `relight serve` on loopback{warm}, the {eq} equirect sent once and then named "
                     f"by its world_id: orbit {leg('orbit')}, new light {leg('new_light')}")
        if "orbit_equirect_every_request" in rt:
            lines.append(f"- the same with the equirect sent with every request (protocol 1.1): orbit "
                         f"{leg('orbit_equirect_every_request')}, new light {leg('new_light_equirect_every_request')}")
    elif rt:
        lines.append(f"- server round trip: {rt['error']}")
    te = [(c["size"], c["gaussians"], c["transfer_shadow_error"]) for c in rep["cases"] if c.get("transfer_shadow_error")]
    if te:
        size, count, t = te[-1]
        lines.append(f"- the preview's per-light shadows (precomputed transfer, rank {t['rank']}) vs every direction "
                     f"({size}², {count} Gaussians): shaded diffuse error relative to the mean irradiance mean "
                     f"{t['mean']:.4f}, p99 {t['p99']:.4f}, max {t['max']:.4f}")
    lines += [
        "",
        "## Scaling",
        "",
        f"log-log slope of interactive frame time against work = pixels + Gaussians + pixel-Gaussian pairs: "
        f"{_fmt(s.get('slope_frame'))}; rasterize stage alone: {_fmt(s.get('slope_rasterize'))} "
        "(1 = linear; below 1 means fixed costs still matter). See bench.png.",
        *_model_lines(s.get("linear_model")),
        "",
        "## Environment cache",
        "",
        f"Prefiltered data is shared across rotation/strength changes: {e['arrays_shared']}; prefilter after a "
        f"rotation change took {1e3 * e['prefilter_after_rotation_s']:.2f} ms (cold prefilter of the HDRI: "
        f"{e['prefilter_cold_s']:.2f} s).",
        "",
        f"Total bench wall time {rep['wall_s']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def _model_lines(m: dict | None) -> list:
    if not m:
        return []
    return ["", f"Linear cost model over the grid (bench.png, right): frame = {m['fixed_ms']:.1f} ms + "
            f"{m['ns_per_pixel']:.1f} ns/pixel + {m['ns_per_gaussian']:.1f} ns/Gaussian + {m['ns_per_pair']:.2f} ns per "
            f"pixel-Gaussian pair; R² {m['r2']:.3f}, largest relative residual {100 * m['max_rel_residual']:.0f} %: "
            "the frame time is a linear function of the work, with no superlinear term."]  # fmt: skip


def _kw(rep: dict, setting: str) -> str:
    kw = rep["cases"][0][setting]["render_kwargs"] if rep["cases"] else {}
    return ", ".join(f"{k}={v}" for k, v in kw.items())


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def plot(cases: list[dict], scaling: dict, path: Path) -> None:
    """Two log-log panels drawn with OpenCV: interactive frame time vs Gaussian count (a line per resolution),
    and vs work (pixels + pixel-Gaussian pairs) with a slope-1 guide through the smallest case."""
    import cv2

    W, H, pad = 1200, 560, 70
    img = np.full((H, W, 3), 255, np.uint8)
    colours = [(200, 80, 30), (40, 150, 40), (30, 30, 200), (150, 40, 150)]
    t = [c["interactive"]["frame"]["median_ms"] for c in cases]
    t_final = [c["final"]["frame"]["median_ms"] for c in cases]
    model = scaling.get("linear_model")
    panels = [("frame time vs Gaussians", "Gaussians", [c["gaussians"] for c in cases])]
    if model:
        panels.append(("measured vs a linear model of the work", "model: fixed + pixels + Gaussians + pairs, ms",
                       model["predicted_ms"]))  # fmt: skip
    else:
        panels.append(("frame time vs work (pixels + Gaussians + pairs)", "work", [work(c) for c in cases]))
    ty0, ty1 = math.log10(min(t) / 1.5), math.log10(max(t + t_final) * 1.5)
    sizes = sorted({c["size"] for c in cases})
    for k, (title, xlabel, xs) in enumerate(panels):
        x0p, x1p = k * W // 2 + pad, (k + 1) * W // 2 - 20
        y0p, y1p = 50, H - pad
        lx0, lx1 = math.log10(min(xs) / 1.5), math.log10(max(xs) * 1.5)
        if lx1 - lx0 < 0.5:
            lx0, lx1 = lx0 - 0.25, lx1 + 0.25

        def px(x, y):
            u = x0p + (math.log10(x) - lx0) / (lx1 - lx0) * (x1p - x0p)
            v = y1p - (math.log10(y) - ty0) / (ty1 - ty0) * (y1p - y0p)
            return int(round(u)), int(round(v))

        cv2.rectangle(img, (x0p, y0p), (x1p, y1p), (0, 0, 0), 1)
        for e in range(math.floor(ty0), math.ceil(ty1) + 1):  # decades of ms
            for mult in (1, 2, 3, 5, 7):
                val = mult * 10.0**e
                if ty0 <= math.log10(val) <= ty1:
                    _, v = px(10**lx0, val)
                    cv2.line(img, (x0p, v), (x1p, v), (225, 225, 225), 1)
                    cv2.putText(img, f"{val:g}", (x0p - 55, v + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for e in range(math.floor(lx0), math.ceil(lx1) + 1):
            for mult in (1, 2, 5):
                val = mult * 10.0**e
                if lx0 <= math.log10(val) <= lx1:
                    u, _ = px(val, 10**ty0)
                    cv2.line(img, (u, y0p), (u, y1p), (225, 225, 225), 1)
                    cv2.putText(img, f"{val:.0e}" if val >= 1e4 else f"{val:g}", (u - 18, y1p + 16),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
        cv2.putText(img, title, (x0p, y0p - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"{xlabel} (log)", ((x0p + x1p) // 2 - 4 * len(xlabel), H - 25), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
        cv2.putText(img, "ms (log)", (x0p - 60, y0p - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for j, s in enumerate(sizes):
            pts = sorted((xs[i], t[i]) for i, c in enumerate(cases) if c["size"] == s)
            col = colours[j % len(colours)]
            for a, b in zip(pts, pts[1:]):
                cv2.line(img, px(*a), px(*b), col, 2, cv2.LINE_AA)
            for p in pts:
                cv2.circle(img, px(*p), 5, col, -1, cv2.LINE_AA)
            fin = [] if k == 1 and model else sorted((xs[i], t_final[i]) for i, c in enumerate(cases) if c["size"] == s)
            for a, b in zip(fin, fin[1:]):
                cv2.line(img, px(*a), px(*b), col, 1, cv2.LINE_AA)
            for p in fin:
                cv2.circle(img, px(*p), 5, col, 1, cv2.LINE_AA)
            cv2.putText(img, f"{s}x{s}", (x0p + 10, y0p + 20 + 18 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.5, col, 1, cv2.LINE_AA)
        if k == 1:  # the identity (model) or a slope-1 guide through the cheapest case (work)
            i0 = int(np.argmin(xs))
            a = (xs[i0], xs[i0] if model else t[i0])
            b = (max(xs), max(xs) if model else t[i0] * max(xs) / xs[i0])
            ok, p0, p1 = cv2.clipLine((x0p, y0p, x1p - x0p, y1p - y0p), px(*a), px(*b))
            if ok:
                cv2.line(img, p0, p1, (120, 120, 120), 1, cv2.LINE_AA)
            legend = ["interactive frames" if model else "filled: interactive; hollow: final quality"]
            legend.append(f"grey: measured = model; R2 {model['r2']:.3f}" if model
                          else f"grey: linear; fitted slope {_fmt(scaling.get('slope_frame'))}")  # fmt: skip
            for li, text in enumerate(legend):
                cv2.putText(img, text, (x1p - 330, y0p + 20 + 18 * li), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (80, 80, 80), 1,
                            cv2.LINE_AA)  # fmt: skip
    cv2.imwrite(str(path), img)

