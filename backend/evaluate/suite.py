"""`relight eval relight --suite random --seed S`: generalisation rather than fit. Seeded random objects, textures,
materials and lights (suite_cases), rendered by Cycles (suite_scenes); each input is delighted with the light unknown
and given, relit under another light and compared with Cycles, against a no-delighting baseline (suite_report)."""

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core.camera import Camera
from .suite_cases import Case, quick_cases, suite_cases

METHODS = (("baseline", "unknown", False), ("unknown", "unknown", True), ("world", "world", True))
ALPHA_MASK = 0.01  # pixels where either image's alpha exceeds this are scored (as `relight eval relight`)
LUMINANCE = np.array([0.2126, 0.7152, 0.0722], np.float32)


@dataclass
class SuiteConfig:
    seed: int = 0
    cases: int = 0  # run N cases of the suite (0: all)
    start: int = 0  # ... from case K (the first K skipped)
    quick: bool = False  # suite_cases.quick_cases() instead of the seeded suite
    size: int = 256  # square frames, pixels
    samples: int = 64  # Cycles samples (OpenImageDenoise on)
    n_gaussians: int = 80_000
    photo_percentile: float = 99.0  # a photo is exposed so this percentile of the object's luminance ...
    photo_level: float = 0.9  # ... lands here before sRGB encoding (brighter highlights clip)
    contact_rows: int = 6  # worst cases per contact sheet


def view_camera(size: int) -> Camera:
    """The input and target view: `relight eval relight`'s camera at azimuth 0 (15 degrees up, from -Y)."""
    from .relight import view_camera as ring_camera

    return ring_camera(size, 0.0)


def suite_input(premul: np.ndarray, form: str, percentile: float = 99.0, level: float = 0.9):
    """Cycles' premultiplied linear RGBA -> (InputImage, exposure). "photo": straight RGB times the exposure that
    puts the object's `percentile` luminance at `level`, clipped, sRGB-encoded and quantised to 8 bits (alpha too);
    "linear": the straight float render as it is (exposure 1), what the add-on sends for a render made in Blender."""
    from ..core.colour import linear_to_srgb
    from ..core.input_image import InputImage

    a = premul[..., 3:4]
    rgb = np.where(a > 1e-4, premul[..., :3] / np.maximum(a, 1e-4), 0.0)
    if form == "linear":
        return InputImage.from_pixels(np.concatenate([rgb, a], -1).astype(np.float32), "linear"), 1.0
    if form != "photo":
        raise ValueError(f"input form must be 'photo' or 'linear', not {form!r}")
    lum = rgb[a[..., 0] > 0.5] @ LUMINANCE
    exposure = level / max(float(np.percentile(lum, percentile)), 1e-6) if lum.size else 1.0
    q = np.round(np.clip(linear_to_srgb(np.clip(rgb * exposure, 0, 1)), 0, 1) * 255)
    pixels = np.concatenate([q, np.round(np.clip(a, 0, 1) * 255)], -1).astype(np.uint8)
    return InputImage.from_pixels(pixels, "srgb"), exposure


def score(hdr: np.ndarray, alpha: np.ndarray, ref: np.ndarray, camera: Camera, env) -> tuple[dict, np.ndarray, np.ndarray]:
    """PSNR / SSIM of ours (hdr [H, W, 3] premultiplied, alpha [H, W, 1]) against ref [H, W, 4] premultiplied, both
    over `env`'s background and AgX-encoded, on pixels where either alpha > ALPHA_MASK. -> (scores, ours, theirs)."""
    from .forward import display_over_env
    from ..core.metrics import psnr, ssim

    ours = display_over_env(hdr, alpha, camera, env)
    theirs = display_over_env(ref[..., :3], ref[..., 3:], camera, env)
    mask = (ref[..., 3] > ALPHA_MASK) | (alpha[..., 0] > ALPHA_MASK)
    return {"psnr": psnr(ours, theirs, mask), "ssim": ssim(ours, theirs, mask)}, ours, theirs


def reproduction(asset, inp, form: str, camera: Camera, given) -> tuple[dict, np.ndarray, np.ndarray]:
    """The asset re-rendered under the input's own light `given` from `camera`, against the input (InputImage,
    straight alpha); a photo's render clips at 1 as the photo did. -> score()'s (scores, ours, theirs)."""
    from ..render.frame import render

    rep = render(asset, camera, given)
    hdr = np.minimum(rep.hdr, rep.alpha) if form == "photo" else rep.hdr  # premultiplied: clipped at alpha
    ref = np.concatenate([inp.linear[..., :3] * inp.linear[..., 3:], inp.linear[..., 3:]], -1)
    return score(hdr, rep.alpha, ref, camera, given)


def run_case(case: Case, cfg: SuiteConfig, log=print) -> tuple[dict, np.ndarray]:
    """One case, `scene` provider (exact mesh and camera): baseline, light unknown, light given; each relit under
    light B from the input view against Cycles; the light-given asset also re-rendered under A against the input.
    -> (row of numbers, contact strip input | unknown | world | baseline | Cycles under B)."""
    from ..core.colour import agx
    from ..generate.pipeline import GenerateInputs, generate
    from ..render.frame import render
    from .suite_scenes import light_environment, render_object
    from .suite_shapes import suite_mesh

    cam = view_camera(cfg.size)
    mesh = suite_mesh(case.shape)
    raw_a = render_object(case, case.light_a, cam, cfg.samples)
    ref_b = render_object(case, case.light_b, cam, cfg.samples)
    t = time.perf_counter()
    env_a, env_b = light_environment(case.light_a).prefilter(), light_environment(case.light_b).prefilter()
    prefilter_seconds = time.perf_counter() - t  # kept out of the generate times: the server caches per world
    inp, exposure = suite_input(raw_a, case.form, cfg.photo_percentile, cfg.photo_level)
    given = env_a.with_transform(env_a.rotation_z, env_a.strength * exposure)  # the light as the input records it
    row = {"case": case.name, **case.categories(), "shape": case.shape.kind, "object": case.shape.form,
           "light_a": case.light_a.label(), "light_b": case.light_b.label(), "light_b_kind": case.light_b.kind,
           "roughness": case.surface.roughness, "metallic": case.surface.metallic, "exposure": exposure,
           "prefilter_seconds": prefilter_seconds}  # fmt: skip
    tiles = {}
    for method, hint, delight in METHODS:
        t = time.perf_counter()
        asset = generate(GenerateInputs(image=inp, name=case.name, provider="scene", light_hint=hint, delight=delight,
                                        n_gaussians=cfg.n_gaussians, mesh=mesh, camera=cam,
                                        world=given if hint == "world" else None))  # fmt: skip
        row[f"{method}_seconds"] = time.perf_counter() - t
        res = render(asset, cam, env_b)
        s, tiles[method], tiles["cycles"] = score(res.hdr, res.alpha, ref_b, cam, env_b)
        row[f"{method}_psnr"], row[f"{method}_ssim"] = s["psnr"], s["ssim"]
        row[f"{method}_est"] = (round(asset.meta["roughness"], 2), round(asset.meta["metallic"], 2))
        row[f"{method}_readings"] = asset.meta.get("material_readings", [])  # what the self-check tried and kept
        if method == "world":
            s, _, _ = reproduction(asset, inp, case.form, cam, given)
            row["repro_psnr"], row["repro_ssim"] = s["psnr"], s["ssim"]
    row["unknown_margin"] = row["unknown_psnr"] - row["baseline_psnr"]
    row["world_margin"] = row["world_psnr"] - row["baseline_psnr"]
    log(f"  {case.name}: baseline {row['baseline_psnr']:.2f}, unknown {row['unknown_psnr']:.2f}, world "
        f"{row['world_psnr']:.2f}, reproduction {row['repro_psnr']:.2f} dB; generate {row['unknown_seconds']:.1f} / "
        f"{row['world_seconds']:.1f} s")  # fmt: skip
    shown = agx(inp.linear[..., :3]) * inp.linear[..., 3:]
    strip = np.concatenate([shown, tiles["unknown"], tiles["world"], tiles["baseline"], tiles["cycles"]], 1)
    return row, (np.clip(strip, 0, 1) * 255).astype(np.uint8)


def selected_cases(cfg: SuiteConfig) -> list[Case]:
    """The cases the configuration runs: the quick set, or `cases` of the seeded suite from case `start`."""
    chosen = quick_cases() if cfg.quick else suite_cases(cfg.seed)
    return chosen[cfg.start :][: cfg.cases or None]


def write_report(out: Path, cfg: SuiteConfig, rows: list[dict], strips: dict, command: str) -> dict:
    """report.json, report.md and the worst cases' contact sheets in `out`. -> the summary."""
    import cv2

    from .suite_report import markdown, summarise, worst_cases

    s = summarise(rows)
    (out / "report.json").write_text(json.dumps({"config": asdict(cfg), "command": command, "summary": s,
                                                 "cases": rows}, indent=1, default=str))  # fmt: skip
    sheets = {}
    for name, key in (("unknown", "unknown_margin"), ("world", "world_psnr")):
        worst = [r["case"] for r in worst_cases(rows, key, cfg.contact_rows) if r["case"] in strips]
        if worst:
            sheets[name] = worst
            cv2.imwrite(str(out / f"contact_worst_{name}.png"), np.concatenate([strips[c] for c in worst], 0)[..., ::-1])
    (out / "report.md").write_text(markdown(s, rows, cfg, command, sheets))
    return s


def run_suite(out: Path, cfg: SuiteConfig, command: str = "", log=print) -> dict:
    """Run the configured cases, rewriting the report after each one (a long run keeps what it measured)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cases = selected_cases(cfg)
    rows, strips, s = [], {}, {}
    for i, case in enumerate(cases):
        log(f"[{i + 1}/{len(cases)}] {case.name}: {case.light_a.label()} -> {case.light_b.label()}")
        row, strips[case.name] = run_case(case, cfg, log)
        rows.append(row)
        s = write_report(out, cfg, rows, strips, command)
    return s
