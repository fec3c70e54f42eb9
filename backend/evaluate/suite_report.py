"""The random suite's report: mean, 10th percentile and worst case overall and per texture kind, material, input
light kind and input form, each with its margin over the no-delighting baseline; the issue's bars; report.md."""

import math

import numpy as np

from .suite_cases import INPUT_FORMS, LIGHT_KINDS, MATERIAL_KINDS, TEXTURE_KINDS

# (row key, its categories): "light" is the input light's kind (what delighting removes), "light_b_kind" the target's
BREAKDOWNS = (("texture", TEXTURE_KINDS), ("material", MATERIAL_KINDS), ("light", LIGHT_KINDS), ("form", INPUT_FORMS),
              ("light_b_kind", LIGHT_KINDS))  # fmt: skip
FIGURES = ("baseline_psnr", "unknown_psnr", "unknown_margin", "world_psnr", "world_margin", "repro_psnr",
           "unknown_ssim", "world_ssim")  # fmt: skip
# the bars: light unknown against the baseline of the same run, light given in absolute terms, time
BARS = {"unknown_margin_mean": 4.0, "below_baseline_fraction": 0.10, "below_baseline_worst": 2.0,
        "world_mean": 28.0, "world_p10": 24.0, "repro_mean": 30.0, "seconds_median": 15.0, "seconds_worst": 45.0}  # fmt: skip


def stats(xs) -> dict:
    """{n, mean, p10, worst} of the finite values (worst = the minimum: every figure here is better when higher)."""
    x = np.array([v for v in xs if v is not None and np.isfinite(v)], np.float64)
    if not x.size:
        return {"n": 0, "mean": math.nan, "p10": math.nan, "worst": math.nan}
    return {"n": int(x.size), "mean": float(x.mean()), "p10": float(np.percentile(x, 10)), "worst": float(x.min())}


def group(rows: list[dict]) -> dict:
    """Every figure's stats over these rows, and how often and how far light-unknown falls below the baseline."""
    g = {k: stats([r.get(k) for r in rows]) for k in FIGURES}
    margins = np.array([r["unknown_margin"] for r in rows if np.isfinite(r["unknown_margin"])])
    g["cases"] = len(rows)
    g["below_baseline_fraction"] = float((margins < 0).mean()) if margins.size else math.nan
    g["below_baseline_worst"] = float(max(0.0, -margins.min())) if margins.size else math.nan
    return g


def bars(g: dict, seconds: dict | None = None) -> dict:
    """{bar: (value, met)} of a group (and of the generate times when given)."""
    b = {
        "unknown: mean margin over baseline >= +4 dB": (g["unknown_margin"]["mean"], g["unknown_margin"]["mean"] >= BARS["unknown_margin_mean"]),
        "unknown: <= 10 % of cases below baseline": (g["below_baseline_fraction"], g["below_baseline_fraction"] <= BARS["below_baseline_fraction"]),
        "unknown: no case more than 2 dB below baseline (worst margin)": (g["unknown_margin"]["worst"], g["below_baseline_worst"] <= BARS["below_baseline_worst"]),
        "given: mean >= 28 dB": (g["world_psnr"]["mean"], g["world_psnr"]["mean"] >= BARS["world_mean"]),
        "given: p10 >= 24 dB": (g["world_psnr"]["p10"], g["world_psnr"]["p10"] >= BARS["world_p10"]),
        "given: reproduction mean >= 30 dB": (g["repro_psnr"]["mean"], g["repro_psnr"]["mean"] >= BARS["repro_mean"]),
    }  # fmt: skip
    if seconds is not None:
        b["generate: median <= 15 s"] = (seconds["median"], seconds["median"] <= BARS["seconds_median"])
        b["generate: worst <= 45 s"] = (seconds["worst"], seconds["worst"] <= BARS["seconds_worst"])
    return {k: (float(v), bool(met)) for k, (v, met) in b.items()}


def summarise(rows: list[dict]) -> dict:
    s = {"cases": len(rows), "all": group(rows)}
    for name, kinds in BREAKDOWNS:
        s[name] = {k: group(rs) for k in kinds if (rs := [r for r in rows if r[name] == k])}
    delit = [r[f"{m}_seconds"] for r in rows for m in ("unknown", "world")]
    s["seconds"] = {"median": float(np.median(delit)), "worst": float(np.max(delit)), "mean": float(np.mean(delit)),
                    "baseline_median": float(np.median([r["baseline_seconds"] for r in rows]))}  # fmt: skip
    s["bars"] = bars(s["all"], s["seconds"])
    if "sky" in s["light"]:
        s["bars_sky"] = bars(s["light"]["sky"])
    return s


def worst_cases(rows: list[dict], key: str, n: int) -> list[dict]:
    return sorted((r for r in rows if np.isfinite(r[key])), key=lambda r: r[key])[:n]


def _f(x, nd: int = 2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def _msp(st: dict) -> str:
    return f"{_f(st['mean'])} / {_f(st['p10'])} / {_f(st['worst'])}"


def _table(title: str, groups: dict) -> list[str]:
    lines = [f"### By {title}", "", "| | n | baseline | unknown | margin | below base | given | margin | reproduction |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, g in groups.items():
        lines.append(f"| {k} | {g['cases']} | {_f(g['baseline_psnr']['mean'])} | {_msp(g['unknown_psnr'])} | "
                     f"{_msp(g['unknown_margin'])} | {100 * g['below_baseline_fraction']:.0f} % | {_msp(g['world_psnr'])} | "
                     f"{_msp(g['world_margin'])} | {_f(g['repro_psnr']['mean'])} |")  # fmt: skip
    return lines + [""]


def _bar_lines(b: dict) -> list[str]:
    return [f"- {k}: {_f(v)} — {'met' if met else 'NOT met'}" for k, (v, met) in b.items()]


def markdown(s: dict, rows: list[dict], cfg, command: str, sheets: dict) -> str:
    a = s["all"]
    lines = [
        "# Random suite: relighting after delighting vs Cycles", "",
        f"`{command}`" if command else "", "",
        f"{s['cases']} cases ({'quick set' if cfg.quick else f'seed {cfg.seed}'}), {cfg.size}x{cfg.size}, Cycles "
        f"{cfg.samples} samples + OIDN, {cfg.n_gaussians} Gaussians, `scene` provider (exact mesh and camera), input "
        "view only. PSNR (dB) on AgX sRGB over pixels where either alpha > 0.01, composited over light B. Baseline: no "
        "delighting (albedo = the photo). Unknown: light_hint unknown. Given: light_hint world with the input light "
        "A as an equirect Environment (a photo's exposure applied to it). Reproduction: the given-light asset under "
        "A against the input. Photos are exposed so the object's 99th-percentile luminance is 0.9 before 8-bit sRGB "
        "(brighter highlights clip); linear inputs are the float render. The `inflate` provider and the novel view "
        "are left out to keep the suite affordable.", "",
        "Figures are mean / 10th percentile / worst case; margins are per case, over the baseline of the same run.", "",
        "## Bars", "", *_bar_lines(s["bars"]), "",
    ]  # fmt: skip
    if "bars_sky" in s:
        lines += ["Sun and sky (Nishita) as the input light, on their own:", "", *_bar_lines(s["bars_sky"]), ""]
    sec = s["seconds"]
    lines += [f"Generate (light unknown and given): median {_f(sec['median'], 1)} s, mean {_f(sec['mean'], 1)} s, "
              f"worst {_f(sec['worst'], 1)} s; baseline median {_f(sec['baseline_median'], 1)} s. Environment "
              "prefiltering is done before the timer (the server keeps it per world).", "",
              "## Overall", "", f"- baseline {_msp(a['baseline_psnr'])}",
              f"- unknown {_msp(a['unknown_psnr'])}, margin {_msp(a['unknown_margin'])}, SSIM {_f(a['unknown_ssim']['mean'], 4)}",
              f"- given {_msp(a['world_psnr'])}, margin {_msp(a['world_margin'])}, SSIM {_f(a['world_ssim']['mean'], 4)}",
              f"- reproduction {_msp(a['repro_psnr'])}", "", "## Breakdowns (light: the input light's kind; light_b_kind: the target's)", ""]  # fmt: skip
    for name, _ in BREAKDOWNS:
        lines += _table(name, s[name])
    lines += ["## Per case", "", "| case | A -> B | r, m true | exposure | baseline | unknown | given | reproduction | "
              "est. (r, m) unknown / given | seconds unknown / given |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['case']} | {r['light_a']} -> {r['light_b']} | {r['roughness']}, {r['metallic']} | "
                     f"{_f(r['exposure'])} | {_f(r['baseline_psnr'])} | {_f(r['unknown_psnr'])} | {_f(r['world_psnr'])} | "
                     f"{_f(r['repro_psnr'])} | {r['unknown_est']} / {r['world_est']} | "
                     f"{_f(r['unknown_seconds'], 1)} / {_f(r['world_seconds'], 1)} |")  # fmt: skip
    lines += ["", "## Contact sheets", "", "Per row: input | unknown | given | baseline | Cycles under B."]
    for name, worst in sheets.items():
        what = "margin of light unknown over the baseline" if name == "unknown" else "PSNR with the light given"
        lines.append(f"- `contact_worst_{name}.png`, the lowest {what}: {', '.join(worst)}")
    return "\n".join(lines) + "\n"
