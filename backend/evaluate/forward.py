"""`relight eval forward`: the renderer against Cycles on exact geometry and Principled materials under the 8 bpy
HDRIs at 2 rotations; PSNR/SSIM on AgX sRGB with an error attribution (edges, shadows, interreflection, noise)."""

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..core.camera import Camera
from ..core.ground import GroundPlane

# Each object: shape (cycles_scenes.SHAPES), material (base colour linear, roughness, metallic), camera target z,
# ground plane or None. Materials run from rough dielectric to polished metal.
OBJECTS = {
    "sphere": ((1.0, 0.766, 0.336), 0.08, 1.0, 0.0, None),  # polished gold
    "suzanne": ((0.8, 0.18, 0.12), 0.75, 0.0, 0.0, None),  # rough red dielectric
    "torus": ((0.08, 0.22, 0.75), 0.3, 0.0, 0.0, None),  # glossy blue plastic
    "bowl": ((0.8, 0.74, 0.62), 0.45, 0.0, 0.0, None),  # satin ceramic, concave
    "bevel_box": ((0.91, 0.92, 0.92), 0.3, 1.0, 0.0, None),  # brushed steel, bevelled edges
    "sphere_on_ground": ((0.25, 0.6, 0.2), 0.5, 0.0, 1.0, GroundPlane(z=0.0)),  # green dielectric on grey ground
    "text": ((0.85, 0.5, 0.08), 0.4, 0.0, 0.0, None),  # hard-surface: extruded letters, flat faces, sharp edges
}
HDRIS = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")
ROTATIONS = (0.0, 2.2)  # radians, Mapping-node Z rotation
# Nishita skies with the sun low, middle and high (elevation, sun rotation, air, dust, ozone as suite_cases.Sky),
# at rotation 0 only: a sun is a near-delta light 10^4 to 10^6 times brighter than the sky around it
SKIES = {"sky_low": (math.radians(8.0), 1.0, 1.0, 1.0, 1.0), "sky_mid": (math.radians(35.0), 2.6, 1.0, 1.0, 1.0),
         "sky_high": (math.radians(65.0), 4.4, 1.0, 1.0, 1.0)}  # fmt: skip
QUICK_CASES = (("torus", "forest", 0.0), ("bowl", "sunset", 2.2), ("sphere_on_ground", "courtyard", 0.0),
               ("sphere_on_ground", "sky_mid", 0.0))  # fmt: skip
ALPHA_MASK = 0.01  # pixels where either image's alpha exceeds this are scored
ATTRIBUTION_HDRIS = ("studio", "sunset")  # extra Cycles renders (second seed, direct only) at rotation 0
BARS = {"mean_psnr": 32.0, "min_psnr": 27.0}


@dataclass
class EvalConfig:
    size: int = 256  # square frame, pixels
    samples: int = 64  # Cycles samples (OpenImageDenoise on)
    n_gaussians: int = 200_000
    quick: bool = False
    objects: tuple = ()  # run only these OBJECTS (empty: all)
    noise_check: bool = True  # second Cycles seed (ATTRIBUTION_HDRIS, rotation 0): the reference's own noise
    direct_check: bool = True  # Cycles with no indirect bounces (same cases): how much interreflection matters
    filter_check: bool = True  # Cycles with a 1 px box film filter (same cases): ours box-filters its supersamples


def case_camera(obj: str, size: int) -> Camera:
    tz = OBJECTS[obj][3]
    eye = (0.0, -5.0, 4.2) if OBJECTS[obj][4] is not None else (0.0, -5.2, 1.4)  # ground: no horizon in view
    return Camera.look_at(eye, (0.0, 0.0, tz), 40.0, size, size)


def display_over_env(hdr_premul: np.ndarray, alpha: np.ndarray, camera: Camera, env) -> np.ndarray:
    """Premultiplied linear RGBA over the environment background -> [H, W, 3] AgX sRGB quantised to 8 bits."""
    from ..core.colour import agx, to_uint8
    from ..render.shading import composite, environment_background

    rgb = composite(hdr_premul, alpha, environment_background(camera, env))
    return to_uint8(agx(rgb)).astype(np.float32) / 255.0


def _heat(err: np.ndarray, vmax: float = 0.1) -> np.ndarray:
    """[H, W] abs error -> [H, W, 3] uint8 RGB heat map (inferno, 0..vmax)."""
    import cv2

    e = np.clip(err / vmax, 0, 1)
    bgr = cv2.applyColorMap((e * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    return bgr[..., ::-1]


def _scores(ours: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict:
    from ..core.metrics import edge_band, psnr, ssim

    band = edge_band(mask, 2)
    return {
        "psnr": psnr(ours, ref, mask),
        "ssim": ssim(ours, ref, mask),
        "psnr_interior": psnr(ours, ref, mask & ~band),
        "psnr_edge": psnr(ours, ref, mask & band),
        "edge_fraction": float((mask & band).sum() / max(mask.sum(), 1)),
    }


def run_case(obj: str, hdri: str, rotation: float, cfg: EvalConfig, assets: dict, envs: dict) -> tuple[dict, np.ndarray]:
    """One case: Cycles (cached) and ours from the same camera. -> (row of numbers, contact-sheet strip)."""
    from .cycles_scenes import CyclesSettings, Material, render_cycles, shape_mesh
    from ..core.envmap import Environment, builtin_hdris
    from .reference_assets import asset_from_mesh
    from ..render.frame import render
    from ..render.settings import FINAL

    colour, rough, metal, _, ground = OBJECTS[obj]
    cam = case_camera(obj, cfg.size)
    if obj not in assets:
        v, f, n = shape_mesh(obj)
        assets[obj] = asset_from_mesh(v, f, n, colour, rough, metal, cfg.n_gaussians, obj, cam)
    asset = assets[obj]
    world = None
    if hdri in SKIES:
        from .suite_cases import Light, Sky
        from .suite_scenes import light_environment, set_light, sky_scale

        light = Light("sky", 1.0, sky=Sky(*SKIES[hdri]))
        if hdri not in envs:
            envs[hdri] = light_environment(light).prefilter()
        sky_scale(light.sky)  # bakes (or loads) the sky's equirect first: that resets the scene
        world = (repr(light), lambda bpy, scene: set_light(bpy, scene, light))
    elif hdri not in envs:
        envs[hdri] = Environment.from_file(builtin_hdris()[hdri]).prefilter()
    env = envs[hdri] if hdri in SKIES else envs[hdri].with_transform(rotation, 1.0)
    mat = Material(colour, rough, metal)
    settings = CyclesSettings(samples=cfg.samples)
    t = time.perf_counter()
    cyc = render_cycles(obj, mat, hdri, rotation, cam, ground, settings=settings, world=world)
    t_cycles = time.perf_counter() - t
    t = time.perf_counter()
    res = render(asset, cam, env, background=False, ground=ground)
    t_ours = time.perf_counter() - t
    ref = display_over_env(cyc[..., :3], cyc[..., 3:], cam, env)
    ours = display_over_env(res.hdr, res.alpha, cam, env)
    mask = (cyc[..., 3] > ALPHA_MASK) | (res.alpha[..., 0] > ALPHA_MASK)
    row = {"object": obj, "hdri": hdri, "rotation": rotation, **_scores(ours, ref, mask)}
    # attribution: the same render without light-dependent visibility (ambient occlusion only)
    flat = render(asset, cam, env, replace(FINAL, shadows=False), background=False, ground=ground)
    row["psnr_ao_only"] = _scores(display_over_env(flat.hdr, flat.alpha, cam, env), ref, mask)["psnr"]
    attribute = rotation == ROTATIONS[0] and (hdri in ATTRIBUTION_HDRIS or cfg.quick)
    if attribute and cfg.noise_check:
        cyc2 = render_cycles(obj, mat, hdri, rotation, cam, ground, settings=CyclesSettings(samples=cfg.samples, seed=1))
        row["psnr_cycles_seeds"] = _scores(display_over_env(cyc2[..., :3], cyc2[..., 3:], cam, env), ref, mask)["psnr"]
    if attribute and cfg.direct_check:
        cyc0 = render_cycles(obj, mat, hdri, rotation, cam, ground,
                             settings=CyclesSettings(samples=cfg.samples, max_bounces=0))  # fmt: skip
        row["psnr_cycles_direct_vs_full"] = _scores(display_over_env(cyc0[..., :3], cyc0[..., 3:], cam, env), ref, mask)["psnr"]
        row["psnr_ours_vs_direct"] = _scores(ours, display_over_env(cyc0[..., :3], cyc0[..., 3:], cam, env), mask)["psnr"]
    if attribute and cfg.filter_check:
        # Blender's default film filter is a 1.5 px Blackman-Harris; ours averages 2x2 samples over the pixel
        cycb = render_cycles(obj, mat, hdri, rotation, cam, ground,
                             settings=CyclesSettings(samples=cfg.samples, pixel_filter="BOX", filter_width=1.0))  # fmt: skip
        box = display_over_env(cycb[..., :3], cycb[..., 3:], cam, env)
        row["psnr_cycles_box_vs_default"] = _scores(box, ref, mask)["psnr"]
        row["psnr_ours_vs_box"] = _scores(ours, box, mask)["psnr"]
    row["seconds_cycles"] = t_cycles
    row["seconds_ours"] = t_ours
    err = np.abs(ours - ref).mean(-1) * mask
    strip = np.concatenate([(ours * 255).astype(np.uint8), (ref * 255).astype(np.uint8), _heat(err)], 1)
    return row, strip


def _cases(cfg: EvalConfig):
    if cfg.quick:
        return list(QUICK_CASES)
    objs = [o for o in OBJECTS if not cfg.objects or o in cfg.objects]
    return [(o, h, r) for o in objs for h in HDRIS for r in ROTATIONS] + [(o, k, 0.0) for o in objs for k in SKIES]


def _mean(xs):
    xs = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(xs)) if xs else float("nan")


def summarise(rows: list[dict]) -> dict:
    ps = [r["psnr"] for r in rows]
    worst = min(rows, key=lambda r: r["psnr"])
    per_obj = {}
    for o in dict.fromkeys(r["object"] for r in rows):
        rs = [r for r in rows if r["object"] == o]
        per_obj[o] = {k: _mean([r.get(k) for r in rs]) for k in
                      ("psnr", "ssim", "psnr_interior", "psnr_edge", "edge_fraction", "psnr_ao_only",
                       "psnr_cycles_seeds", "psnr_cycles_direct_vs_full", "psnr_ours_vs_direct",
                       "psnr_cycles_box_vs_default", "psnr_ours_vs_box")}  # fmt: skip
        per_obj[o]["min_psnr"] = float(min(r["psnr"] for r in rs))
    s = {
        "cases": len(rows), "mean_psnr": float(np.mean(ps)), "min_psnr": float(np.min(ps)),
        "mean_ssim": _mean([r["ssim"] for r in rows]), "worst_case": f"{worst['object']}/{worst['hdri']}/{worst['rotation']}",
        "mean_psnr_interior": _mean([r["psnr_interior"] for r in rows]),
        "mean_psnr_edge": _mean([r["psnr_edge"] for r in rows]),
        "mean_psnr_ao_only": _mean([r["psnr_ao_only"] for r in rows]),
        "mean_psnr_cycles_seeds": _mean([r.get("psnr_cycles_seeds") for r in rows]),
        "mean_psnr_ours_vs_box": _mean([r.get("psnr_ours_vs_box") for r in rows]),
        "mean_psnr_default_on_box_cases": _mean([r["psnr"] for r in rows if r.get("psnr_ours_vs_box") is not None]),
        "per_object": per_obj,
    }  # fmt: skip
    sky = [r["psnr"] for r in rows if r["hdri"] in SKIES]
    s["sky_cases"] = len(sky)
    s["mean_psnr_sky"] = _mean(sky)
    s["min_psnr_sky"] = float(np.min(sky)) if sky else float("nan")
    s["bars_met"] = bool(s["mean_psnr"] >= BARS["mean_psnr"] and s["min_psnr"] >= BARS["min_psnr"])
    s["sky_bars_met"] = bool(sky) and bool(s["mean_psnr_sky"] >= BARS["mean_psnr"] and s["min_psnr_sky"] >= BARS["min_psnr"])
    return s


def _fmt(x, nd=2):
    return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def markdown(summary: dict, rows: list[dict], cfg: EvalConfig) -> str:
    s = summary
    lines = [
        "# Forward rendering vs Cycles", "",
        f"{s['cases']} cases, {cfg.size}x{cfg.size}, Cycles {cfg.samples} samples + OIDN, {cfg.n_gaussians} Gaussians. "
        f"Metrics on AgX sRGB (8 bit) over pixels where either alpha > {ALPHA_MASK}, both composited over the HDRI.", "",
        f"- mean PSNR **{s['mean_psnr']:.2f} dB** (bar {BARS['mean_psnr']}), min **{s['min_psnr']:.2f} dB** "
        f"(bar {BARS['min_psnr']}, worst {s['worst_case']}), mean SSIM **{s['mean_ssim']:.4f}**; bars met: {s['bars_met']}",
        f"- sun-and-sky worlds ({s['sky_cases']} cases, {', '.join(SKIES)}): mean PSNR **{_fmt(s['mean_psnr_sky'])} dB**, "
        f"min **{_fmt(s['min_psnr_sky'])} dB**; bars met: {s['sky_bars_met']}",
        f"- interior PSNR {_fmt(s['mean_psnr_interior'])} dB, 2-px edge band PSNR {_fmt(s['mean_psnr_edge'])} dB",
        f"- with ambient occlusion only (no light-dependent shadows): {_fmt(s['mean_psnr_ao_only'])} dB",
        f"- Cycles against itself (seed 0 vs 1): {_fmt(s['mean_psnr_cycles_seeds'])} dB",
        f"- against Cycles with a 1 px box film filter (like ours) instead of its default 1.5 px Blackman-Harris: "
        f"{_fmt(s.get('mean_psnr_ours_vs_box'))} dB (the same cases against the default: "
        f"{_fmt(s.get('mean_psnr_default_on_box_cases'))} dB)", "",
        "## Per object", "",
        "| object | PSNR | min | SSIM | interior | edge | edge px % | AO only | Cycles seeds | Cycles direct vs full | ours vs direct "
        "| Cycles box vs default filter | ours vs box-filtered Cycles |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for o, p in s["per_object"].items():
        lines.append(f"| {o} | {_fmt(p['psnr'])} | {_fmt(p['min_psnr'])} | {_fmt(p['ssim'], 4)} | {_fmt(p['psnr_interior'])} | "
                     f"{_fmt(p['psnr_edge'])} | {_fmt(100 * p['edge_fraction'], 1)} | {_fmt(p['psnr_ao_only'])} | "
                     f"{_fmt(p['psnr_cycles_seeds'])} | {_fmt(p['psnr_cycles_direct_vs_full'])} | {_fmt(p['psnr_ours_vs_direct'])} | "
                     f"{_fmt(p['psnr_cycles_box_vs_default'])} | {_fmt(p['psnr_ours_vs_box'])} |")  # fmt: skip
    lines += ["", "## Per case", "", "| object | HDRI | rot | PSNR | SSIM | interior | edge | AO only | Cycles seeds |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['object']} | {r['hdri']} | {r['rotation']:.2f} | {_fmt(r['psnr'])} | {_fmt(r['ssim'], 4)} | "
                     f"{_fmt(r['psnr_interior'])} | {_fmt(r['psnr_edge'])} | {_fmt(r['psnr_ao_only'])} | "
                     f"{_fmt(r.get('psnr_cycles_seeds'))} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run_eval(out: Path, cfg: EvalConfig, log=print) -> dict:
    """Run every case, write report.md, report.json and contact_<object>.png under `out`. -> summary dict."""
    import cv2

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    assets, envs, rows, strips = {}, {}, [], {}
    for i, (obj, hdri, rot) in enumerate(_cases(cfg)):
        row, strip = run_case(obj, hdri, rot, cfg, assets, envs)
        rows.append(row)
        strips.setdefault(obj, []).append(strip)
        log(f"[{i + 1}] {obj:17s} {hdri:9s} rot {rot:.2f}: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.4f} "
            f"(interior {row['psnr_interior']:.2f}, edge {row['psnr_edge']:.2f}, AO only {row['psnr_ao_only']:.2f})")
    summary = summarise(rows)
    (out / "report.json").write_text(json.dumps({"config": asdict(cfg), "summary": summary, "cases": rows}, indent=1))
    (out / "report.md").write_text(markdown(summary, rows, cfg))
    for obj, ss in strips.items():
        cv2.imwrite(str(out / f"contact_{obj}.png"), np.concatenate(ss, 0)[..., ::-1])
    return summary


def _cmd_forward(args) -> int:
    import os

    from .cycles_scenes import cache_dir

    os.environ.setdefault("RELIGHT_CACHE_DIR", str(cache_dir()))  # prefiltered HDRIs are cached there too
    cfg = EvalConfig(quick=args.quick)
    if args.quick:
        cfg = EvalConfig(size=96, samples=16, n_gaussians=40_000, quick=True, noise_check=False, direct_check=False,
                         filter_check=False)  # fmt: skip
    if args.size:
        cfg.size = args.size
    if args.samples:
        cfg.samples = args.samples
    if args.objects:
        cfg.objects = tuple(o.strip() for o in args.objects.split(",") if o.strip())
        unknown = [o for o in cfg.objects if o not in OBJECTS]
        if unknown:
            raise ValueError(f"unknown objects {unknown}; known: {', '.join(OBJECTS)}")
    s = run_eval(Path(args.out), cfg)
    print(json.dumps({k: s[k] for k in ("cases", "mean_psnr", "min_psnr", "mean_ssim", "worst_case", "bars_met")}))
    return 0


def add_eval_parser(sub):
    """Register `relight eval <kind>` with the `forward` kind. Returns the kinds' subparsers so another eval kind
    can be added next to it: `kinds = add_eval_parser(sub); kinds.add_parser("relight", ...)`."""
    p = sub.add_parser("eval", help="fidelity evaluations against Blender Cycles")
    kinds = p.add_subparsers(dest="eval_kind", required=True)
    f = kinds.add_parser("forward", help="forward rendering vs Cycles: 6 objects x 8 HDRIs x 2 rotations")
    f.add_argument("--out", required=True, help="output folder (report.md, report.json, contact sheets)")
    f.add_argument("--quick", action="store_true", help="4 small cases (CI), one under a sun")
    f.add_argument("--size", type=int, default=0, help="frame size in pixels (default 256, quick 96)")
    f.add_argument("--samples", type=int, default=0, help="Cycles samples (default 64, quick 16)")
    f.add_argument("--objects", default="", help=f"comma-separated subset of {','.join(OBJECTS)} (default all)")
    f.set_defaults(func=_cmd_forward)
    return kinds
