"""`relight eval relight`: does delighting measurably remove baked lighting? Cycles renders of textured objects lit
by HDRI A are the input; the asset is relit under HDRI B and compared with Cycles under B, from the input view v and
from a novel view v' 75 degrees away, for the `scene` and `inflate` providers and input light `unknown` / `world`,
against a baseline that skips delighting (albedo = the photo's colour)."""

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core.camera import Camera

# object -> (shape in cycles_scenes.SHAPES or "vase", colour A, colour B (linear), noise scale, roughness, metallic)
OBJECTS = {
    "suzanne": ("suzanne", (0.75, 0.2, 0.08), (0.85, 0.65, 0.3), 3.0, 0.8, 0.0),  # rough clay
    "bowl": ("bowl", (0.7, 0.68, 0.6), (0.25, 0.35, 0.6), 2.5, 0.5, 0.0),  # satin ceramic
    "torus": ("torus", (0.1, 0.45, 0.15), (0.7, 0.75, 0.2), 4.0, 0.3, 0.0),  # glossy plastic
    "sphere": ("sphere", (0.8, 0.1, 0.1), (0.9, 0.85, 0.8), 3.0, 0.15, 0.0),  # polished lacquer
    "vase": ("vase", (0.9, 0.6, 0.35), (0.6, 0.3, 0.15), 3.0, 0.35, 1.0),  # copper-like metal
    "bevel_box": ("bevel_box", (0.9, 0.9, 0.88), (0.55, 0.55, 0.6), 5.0, 0.2, 1.0),  # polished steel
}
LIGHT_PAIRS = (("courtyard", "forest"), ("studio", "sunset"))  # (input light A, target light B): A != B
# other input lights, to check that a change tuned on LIGHT_PAIRS is not fitted to those two lights
HELD_OUT_PAIRS = (("city", "sunset"), ("interior", "forest"), ("sunrise", "courtyard"))
QUICK = (("sphere", ("studio", "sunset")),)
NOVEL_DEG = 75.0  # azimuth of the novel view v' relative to v
ALPHA_MASK = 0.01
BARS = {"scene_unknown_v": 25.0, "scene_unknown_margin": 3.0, "scene_world_v": 28.0, "scene_novel": 22.0}


@dataclass
class RelightConfig:
    size: int = 256  # square frames, pixels
    samples: int = 64  # Cycles samples (OpenImageDenoise on)
    n_gaussians: int = 80_000
    quick: bool = False
    held_out: bool = False  # HELD_OUT_PAIRS instead of LIGHT_PAIRS


def _vase_mesh():
    from .cycles_scenes import lathe

    t = np.linspace(0, 1, 40)
    r = 0.55 + 0.35 * np.sin(np.pi * t * 1.6 + 0.3) * (1 - 0.4 * t)
    z = -1.0 + 2.0 * t
    prof = np.concatenate([[[0.0, -1.0]], np.stack([r, z], 1), [[0.0, 1.0]]])
    v, f = lathe(prof, 96)
    return v.astype(np.float32), f.astype(np.int32)


def object_mesh(shape: str):
    """(vertices [V, 3] world, faces [F, 3]) of an evaluation object."""
    if shape == "vase":
        return _vase_mesh()
    from .cycles_scenes import shape_mesh

    v, f, _ = shape_mesh(shape)
    return v, f


def view_camera(size: int, azimuth_deg: float = 0.0) -> Camera:
    """Camera on a ring around the object at 15 degrees elevation; azimuth 0 looks along +Y (Blender's front)."""
    a = np.radians(azimuth_deg)
    d, h = 5.6, 1.5
    eye = (d * np.sin(a), -d * np.cos(a), h)
    return Camera.look_at(eye, (0.0, 0.0, 0.0), 40.0, size, size)


def render_textured(obj: str, hdri: str, camera: Camera, samples: int) -> np.ndarray:
    """[H, W, 4] linear premultiplied Cycles render of an evaluation object with its textured Principled material
    (a noise texture mixing two colours), cached under the Cycles cache."""
    from . import cycles_scenes as cs
    from ..core.envmap import builtin_hdris

    shape, ca, cb, scale, rough, metal = OBJECTS[obj]
    bpy = cs.import_bpy()
    key = cs.cache_key(obj=obj, spec=OBJECTS[obj], hdri=hdri, cam=repr(camera.to_dict()), samples=samples,
                  mesh=cs.MESH_VERSION, bpy=bpy.app.version_string, v=1)
    path = cs.cache_dir() / "relight_cycles" / f"{obj}_{hdri}_{key}.npy"
    if path.is_file():
        return np.load(path)
    v, f = object_mesh(shape)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    cs.setup_cycles(scene, camera, cs.CyclesSettings(samples=samples))
    ob = cs.new_mesh_object(bpy, obj, v.astype(np.float64), f)
    mat = bpy.data.materials.new("textured")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].position, ramp.color_ramp.elements[1].position = 0.4, 0.6
    ramp.color_ramp.elements[0].color = (*ca, 1.0)
    ramp.color_ramp.elements[1].color = (*cb, 1.0)
    nt.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    nt.links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = rough
    bsdf.inputs["Metallic"].default_value = metal
    bsdf.inputs["IOR"].default_value = 1.5
    ob.data.materials.append(mat)
    cs.set_world_hdri(bpy, scene, builtin_hdris()[hdri], 0.0, 1.0)
    cs.set_camera(bpy, scene, camera)
    img = cs.render_to_array(bpy, scene)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, img)
    return img


def as_photo(premul: np.ndarray):
    """Cycles' premultiplied linear RGBA -> the InputImage of what the add-on sends for an 8-bit sRGB PNG: straight
    alpha, sRGB quantised to 8 bits."""
    from ..core.colour import linear_to_srgb
    from ..core.input_image import InputImage

    a = premul[..., 3:4]
    rgb = np.where(a > 1e-4, premul[..., :3] / np.maximum(a, 1e-4), 0.0)
    q = np.round(np.clip(linear_to_srgb(np.clip(rgb, 0, 1)), 0, 1) * 255)
    return InputImage.from_pixels(np.concatenate([q, np.round(np.clip(a, 0, 1) * 255)], -1).astype(np.uint8), "srgb")


def score_relit(res, ref: np.ndarray, camera: Camera, env) -> tuple[dict, np.ndarray, np.ndarray]:
    from .forward import display_over_env
    from ..core.metrics import psnr, ssim

    ours = display_over_env(res.hdr, res.alpha, camera, env)
    theirs = display_over_env(ref[..., :3], ref[..., 3:], camera, env)
    mask = (ref[..., 3] > ALPHA_MASK) | (res.alpha[..., 0] > ALPHA_MASK)
    return {"psnr": psnr(ours, theirs, mask), "ssim": ssim(ours, theirs, mask)}, ours, theirs


def run_case(obj: str, light_a: str, light_b: str, cfg: RelightConfig, log=print) -> tuple[dict, np.ndarray]:
    from ..core.envmap import Environment, builtin_hdris
    from ..core.frames import camera_to_world
    from ..generate.pipeline import GenerateInputs, generate
    from ..render.frame import render

    hdris = builtin_hdris()
    env_a, env_b = Environment.from_file(hdris[light_a]), Environment.from_file(hdris[light_b])
    cam_v, cam_n = view_camera(cfg.size, 0.0), view_camera(cfg.size, NOVEL_DEG)
    inp = as_photo(render_textured(obj, light_a, cam_v, cfg.samples))
    ref_v = render_textured(obj, light_b, cam_v, cfg.samples)
    ref_n = render_textured(obj, light_b, cam_n, cfg.samples)
    mesh = object_mesh(OBJECTS[obj][0])
    row = {"object": obj, "light_a": light_a, "light_b": light_b, "roughness": OBJECTS[obj][4],
           "metallic": OBJECTS[obj][5]}  # fmt: skip
    tiles = {}
    for provider in ("scene", "inflate"):
        for method, hint, delight in (("baseline", "unknown", False), ("unknown", "unknown", True), ("world", "world", True)):
            t = time.perf_counter()
            a = generate(GenerateInputs(
                image=inp, name=obj, provider=provider, light_hint=hint, delight=delight, n_gaussians=cfg.n_gaussians,
                mesh=mesh if provider == "scene" else None, camera=cam_v if provider == "scene" else None,
                world=env_a if hint == "world" else None))  # fmt: skip
            secs = time.perf_counter() - t
            cam = cam_v if provider == "scene" else camera_to_world(a.input_camera, a.model_matrix)
            s, ours, theirs = score_relit(render(a, cam, env_b), ref_v, cam_v, env_b)
            row[f"{provider}_{method}_v"] = s["psnr"]
            row[f"{provider}_{method}_v_ssim"] = s["ssim"]
            row[f"{provider}_{method}_seconds"] = secs
            row[f"{provider}_{method}_est"] = (round(a.meta["roughness"], 2), round(a.meta["metallic"], 2))
            tiles[(provider, method)] = ours
            if provider == "scene":
                s2, _, _ = score_relit(render(a, cam_n, env_b), ref_n, cam_n, env_b)
                row[f"{provider}_{method}_novel"] = s2["psnr"]
                row[f"{provider}_{method}_novel_ssim"] = s2["ssim"]
            tiles["cycles"] = theirs
        log(f"  {obj} {light_a}->{light_b} {provider}: " + ", ".join(
            f"{m} {row[f'{provider}_{m}_v']:.2f}" for m in ("baseline", "unknown", "world")))
    from ..core.colour import agx

    inp_disp = agx(inp.linear[..., :3]) * inp.linear[..., 3:] + 0.0
    strip = np.concatenate([inp_disp, tiles[("scene", "unknown")], tiles[("scene", "world")],
                            tiles[("scene", "baseline")], tiles[("inflate", "unknown")], tiles["cycles"]], 1)
    return row, (np.clip(strip, 0, 1) * 255).astype(np.uint8)


def _mean(rows, k):
    xs = [r[k] for r in rows if k in r and np.isfinite(r[k])]
    return float(np.mean(xs)) if xs else float("nan")


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k.endswith(("_v", "_novel")) and not k.endswith("ssim")]
    s = {k: _mean(rows, k) for k in keys}
    s.update({k + "_ssim": _mean(rows, k + "_ssim") for k in keys})
    s["cases"] = len(rows)
    s.update({k: _mean(rows, k) for k in rows[0] if k.endswith("_seconds")})
    s["scene_unknown_margin"] = s["scene_unknown_v"] - s["scene_baseline_v"]
    s["inflate_unknown_margin"] = s["inflate_unknown_v"] - s["inflate_baseline_v"]
    s["inflate_world_margin"] = s["inflate_world_v"] - s["inflate_baseline_v"]
    s["bars"] = {
        "scene_unknown_v >= 25": s["scene_unknown_v"] >= BARS["scene_unknown_v"],
        "scene_unknown_v - baseline >= 3": s["scene_unknown_margin"] >= BARS["scene_unknown_margin"],
        "scene_world_v >= 28": s["scene_world_v"] >= BARS["scene_world_v"],
        "scene novel view (unknown) >= 22": s["scene_unknown_novel"] >= BARS["scene_novel"],
        "inflate above baseline": s["inflate_unknown_margin"] > 0,
    }
    return s


def markdown(s: dict, rows: list[dict], cfg: RelightConfig) -> str:
    f = lambda x: f"{x:.2f}"  # noqa: E731
    lines = [
        "# Relighting after delighting vs Cycles", "",
        f"{s['cases']} cases, {cfg.size}x{cfg.size}, Cycles {cfg.samples} samples + OIDN, {cfg.n_gaussians} Gaussians. "
        f"PSNR (dB) on AgX sRGB over pixels where either alpha > {ALPHA_MASK}, composited over HDRI B. The input is "
        "the Cycles render under A, quantised like an 8-bit sRGB photo. Baseline: no delighting (albedo = photo)."
        + (" Held-out input lights (`--held-out`): the bars are set on the main pairs; these check that a change "
           "does not only fit them." if cfg.held_out else ""), "",
        "| provider | light | view v under B | SSIM | novel view v' under B |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for p in ("scene", "inflate"):
        for m in ("baseline", "unknown", "world"):
            nv = s.get(f"{p}_{m}_novel")
            lines.append(f"| {p} | {m} | {f(s[f'{p}_{m}_v'])} | {s[f'{p}_{m}_v_ssim']:.4f} | "
                         f"{f(nv) if nv is not None else 'n/a (own camera)'} |")  # fmt: skip
    lines += ["", f"- scene/unknown margin over the baseline: {f(s['scene_unknown_margin'])} dB; inflate/unknown "
              f"margin: {f(s['inflate_unknown_margin'])} dB; inflate/world margin {f(s['inflate_world_margin'])} dB",
              "- mean generate time (s): " + ", ".join(
                  f"{p}/{m} {s[f'{p}_{m}_seconds']:.1f}" for p in ("scene", "inflate") for m in ("baseline", "unknown", "world")
                  if f"{p}_{m}_seconds" in s), ""]  # fmt: skip
    lines += ["## Bars", ""] + [f"- {k}: {'met' if v else 'NOT met'}" for k, v in s["bars"].items()]
    lines += ["", "## Per case", "", "| object | A -> B | r, m true | scene base | scene unknown | scene world | "
              "novel unknown | novel world | inflate base | inflate unknown | inflate world | est. (r, m) unknown / world |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['object']} | {r['light_a']} -> {r['light_b']} | {r['roughness']}, {r['metallic']} | "
            f"{f(r['scene_baseline_v'])} | {f(r['scene_unknown_v'])} | {f(r['scene_world_v'])} | "
            f"{f(r['scene_unknown_novel'])} | {f(r['scene_world_novel'])} | {f(r['inflate_baseline_v'])} | "
            f"{f(r['inflate_unknown_v'])} | {f(r['inflate_world_v'])} | {r['scene_unknown_est']} / {r['scene_world_est']} |")
    lines += ["", "Contact sheets (`contact_<object>.png`), per row: input | scene unknown | scene world | "
              "scene baseline | inflate unknown | Cycles under B."]
    return "\n".join(lines) + "\n"


def eval_cases(cfg: RelightConfig) -> list[tuple[str, tuple[str, str]]]:
    """[(object, (input light A, target light B))] the configuration runs."""
    if cfg.quick:
        return list(QUICK)
    return [(o, p) for o in OBJECTS for p in (HELD_OUT_PAIRS if cfg.held_out else LIGHT_PAIRS)]


def run_eval(out: Path, cfg: RelightConfig, log=print) -> dict:
    import cv2

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cases = eval_cases(cfg)
    rows, strips = [], {}
    for i, (obj, (a, b)) in enumerate(cases):
        log(f"[{i + 1}/{len(cases)}] {obj}: input under {a}, target under {b}")
        row, strip = run_case(obj, a, b, cfg, log)
        rows.append(row)
        strips.setdefault(obj, []).append(strip)
    s = summarise(rows)
    (out / "report.json").write_text(json.dumps({"config": asdict(cfg), "summary": s, "cases": rows}, indent=1,
                                                default=str))  # fmt: skip
    (out / "report.md").write_text(markdown(s, rows, cfg))
    for obj, ss in strips.items():
        cv2.imwrite(str(out / f"contact_{obj}.png"), np.concatenate(ss, 0)[..., ::-1])
    return s


def add_relight_eval(kinds) -> None:
    """Register `relight eval relight` on the `eval` kinds subparsers (see eval_forward.add_eval_parser)."""
    p = kinds.add_parser("relight", help="relighting after delighting vs Cycles, against a no-delighting baseline")
    p.add_argument("--out", required=True, help="output folder (report.md, report.json, contact sheets)")
    p.add_argument("--quick", action="store_true", help="one small case (CI); with --suite random, three")
    p.add_argument("--held-out", action="store_true",
                   help="input lights city, interior, sunrise instead of courtyard, studio (checks a tuned change)")
    p.add_argument("--size", type=int, default=0, help="frame size in pixels (default 256, quick 96)")
    p.add_argument("--samples", type=int, default=0, help="Cycles samples (default 64, quick 16)")
    p.add_argument("--suite", choices=("random",), default=None,
                   help="random: seeded random objects, textures, materials and lights (HDRI, sky, studio) instead of "
                        "the fixed objects, light unknown and given, scene provider, input view (evaluate/suite.py)")
    p.add_argument("--geometry", action="store_true",
                   help="geometry sources side by side, light unknown: exact, fitted (true mesh moved, no camera: "
                        "the camera is fitted), remeshed (decimated to 20%%, moved), inflate (evaluate/geometry_sources)")
    p.add_argument("--seed", type=int, default=0, help="--suite random: the suite's seed (same seed, same cases)")
    p.add_argument("--cases", type=int, default=0, help="--suite random: run only the first N cases")
    p.add_argument("--start", type=int, default=0,
                   help="--suite random: skip the first K cases (with --cases N: cases K .. K+N-1)")
    p.set_defaults(func=_cmd_relight)


def _cmd_relight(args) -> int:
    if args.suite == "random":
        return _cmd_suite(args)
    cfg = RelightConfig(quick=args.quick, held_out=args.held_out)
    if args.quick:
        cfg.size, cfg.samples, cfg.n_gaussians = 96, 16, 30_000
    cfg.size = args.size or cfg.size
    cfg.samples = args.samples or cfg.samples
    if args.geometry:
        from .geometry_sources import run_geometry_eval

        s = run_geometry_eval(Path(args.out), cfg)
        print(json.dumps(s["bars"]))
        return 0
    s = run_eval(Path(args.out), cfg)
    print(json.dumps({k: v for k, v in s.items() if not isinstance(v, dict)}, default=str))
    print(json.dumps(s["bars"]))
    return 0


def _cmd_suite(args) -> int:
    import sys

    from .suite import SuiteConfig, run_suite

    cfg = SuiteConfig(seed=args.seed, cases=args.cases, start=args.start, quick=args.quick)
    if args.quick:
        cfg.size, cfg.samples, cfg.n_gaussians = 72, 8, 20_000
    cfg.size = args.size or cfg.size
    cfg.samples = args.samples or cfg.samples
    s = run_suite(Path(args.out), cfg, command="relight " + " ".join(sys.argv[1:]))
    print(json.dumps(s.get("bars", {})))
    return 0
