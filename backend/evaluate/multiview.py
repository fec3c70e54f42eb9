"""`relight eval multiview`: the reconstruction stage (multi-view G-buffers -> visual hull -> mesh optimisation ->
baked PBR mesh) against Cycles ground truth (multiview_scenes): Chamfer / F-score of the mesh, albedo PSNR and relit
PSNR at held-out views, robustness to degraded G-buffers, the hull alone, time and memory per reconstruction."""

import json
import resource
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core.progress import no_progress
from ..reconstruct.views import MultiViewSet, ReconstructedMesh
from .multiview_metrics import DEGRADATIONS, albedo_scores, chamfer_fscore, degrade, render_albedo
from .multiview_scenes import RELIT_HDRI, SHAPES

# (views, progress, optimise) -> the baked mesh; optimise=False asks for the visual hull alone, baked
Reconstructor = Callable[[MultiViewSet, Callable, bool], ReconstructedMesh]
ToAsset = Callable[[ReconstructedMesh, MultiViewSet], object]  # -> a RelightableAsset render.frame.render relights
DEGRADED_ALL = "all"  # every degradation at once: the input the "degraded" bar is measured on
QUICK_OBJECTS = ("bowl",)  # the concavity: the case a visual hull alone cannot get right


@dataclass
class MultiviewConfig:
    objects: tuple = SHAPES  # multiview_scenes.SHAPES to run
    held_out: int = 4  # held-out views scored (the first N of multiview_scenes.HELD_OUT_VIEWS)
    degradations: tuple = (*DEGRADATIONS, DEGRADED_ALL)  # degraded inputs reconstructed, each seeded; () for none
    hull: bool = True  # also reconstruct without optimisation (the visual hull alone, baked)
    relit: bool = True  # relight the reconstruction under the held-out HDRI with the project's renderer
    n_gaussians: int = 100_000  # the asset the renderer relights
    seed: int = 0  # degradations' seed
    quick: bool = False


def quick_config() -> MultiviewConfig:
    """CI: one object (the bowl), two held-out views, exact inputs only."""
    return MultiviewConfig(objects=QUICK_OBJECTS, held_out=2, degradations=(), hull=False, quick=True)


def pipeline_reconstructor(views: MultiViewSet, progress: Callable, optimise: bool = True) -> ReconstructedMesh:
    """The product: relight.reconstruct.pipeline.reconstruct (imported here, so this module loads without it)."""
    from ..reconstruct.pipeline import ReconstructSettings, reconstruct

    return reconstruct(views, progress, ReconstructSettings(optimise=optimise))


def import_pipeline() -> None:
    """Import every module reconstruct() imports on first use (torch, scikit-image, xatlas): process start-up, which
    the first object's time would otherwise carry (93.7 s against 61.0 s in its stages in one run on 2 loaded cores,
    most of it those imports under tracemalloc)."""
    from ..reconstruct import bake_maps, depth_scale, hull, inputs, optimise, pipeline  # noqa: F401


def pipeline_asset(mesh: ReconstructedMesh, views: MultiViewSet, n_gaussians: int = 100_000):
    """The product's conversion of a reconstruction into a RelightableAsset."""
    from ..reconstruct.asset import asset_from_reconstruction, content_id

    return asset_from_reconstruction(mesh, views, content_id(views, "eval"), "eval", n_gaussians)


def measured(fn: Callable, *args) -> tuple[object, dict]:
    """fn(*args) -> (result, {seconds, peak_python_mb (tracemalloc: Python and numpy allocations, not torch's),
    maxrss_mb (the process's peak resident set so far, never decreases)})."""
    tracemalloc.start()
    t = time.perf_counter()
    try:
        out = fn(*args)
    finally:
        seconds = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    return out, {"seconds": seconds, "peak_python_mb": peak / 2**20, "maxrss_mb": rss}


def _stage_seconds(mesh: ReconstructedMesh) -> dict:
    """The pipeline's per-stage timings (meta["timings"]), numbers only."""
    t = mesh.meta.get("timings", {}) if isinstance(mesh.meta, dict) else {}
    return {k: float(v) for k, v in t.items() if isinstance(v, (int, float))}


def relit_scores(asset, cameras: list, relit: np.ndarray, env) -> tuple[list[dict], list[tuple]]:
    """The asset relit by the project's renderer under `env` against Cycles' true object under the same HDRI
    (relit [V, H, W, 4] premultiplied), scored as `relight eval forward` scores: AgX sRGB 8-bit composited over the
    environment, pixels where either alpha > forward.ALPHA_MASK. -> (rows {psnr, ssim}, (ours, ref) images)."""
    from ..core.metrics import psnr, ssim
    from ..render.frame import render
    from .forward import ALPHA_MASK, display_over_env

    rows, pics = [], []
    for cam, cyc in zip(cameras, relit):
        t = time.perf_counter()
        res = render(asset, cam, env, background=False)
        seconds = time.perf_counter() - t
        ref = display_over_env(cyc[..., :3], cyc[..., 3:], cam, env)
        ours = display_over_env(res.hdr, res.alpha, cam, env)
        mask = (cyc[..., 3] > ALPHA_MASK) | (res.alpha[..., 0] > ALPHA_MASK)
        rows.append({"psnr": psnr(ours, ref, mask), "ssim": ssim(ours, ref, mask), "render_seconds": seconds})
        pics.append((ours, ref))
    return rows, pics


def _mean(xs) -> float:
    xs = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(xs)) if xs else float("nan")


def _scores(gt, mesh: ReconstructedMesh, held: MultiViewSet) -> dict:
    """Geometry against the true mesh and albedo at the held-out views."""
    row = chamfer_fscore(gt.vertices, gt.faces, np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64))
    alb = albedo_scores(mesh, held)
    row.update({"albedo_psnr": _mean([a["psnr"] for a in alb]), "albedo_psnr_linear": _mean([a["psnr_linear"] for a in alb]),
                "albedo_iou": _mean([a["iou"] for a in alb]), "albedo_views": alb, "faces": int(len(mesh.faces))})  # fmt: skip
    return row


def _subset(s: MultiViewSet, n: int) -> MultiViewSet:
    g = lambda a: None if a is None else a[:n]  # noqa: E731
    return MultiViewSet(s.cameras[:n], s.mask[:n], g(s.rgb), g(s.normal), g(s.depth), g(s.albedo), g(s.roughness),
                        g(s.metallic), s.meta)  # fmt: skip


def _attempt(row: dict, key: str, fn: Callable, *args):
    """fn(*args), or None with the error recorded in row["errors"][key] (a long eval keeps what it measured)."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        row.setdefault("errors", {})[key] = f"{type(e).__name__}: {e}"
        return None


def evaluate_object(shape: str, cfg: MultiviewConfig, reconstructor: Reconstructor, to_asset: ToAsset, env,
                    progress: Callable = no_progress, log=print) -> tuple[dict, np.ndarray | None]:  # fmt: skip
    """One object: ground truth, the exact reconstruction scored (geometry, albedo, relit, time, memory), then the
    hull alone and each degraded input. -> (row, contact-sheet strip [H, W', 3] uint8 or None)."""
    from .multiview_scenes import ground_truth

    t = time.perf_counter()
    gt = ground_truth(shape)  # every held-out view, so the quick and the full runs share one cache
    gt.held_out, gt.relit = _subset(gt.held_out, cfg.held_out), gt.relit[: cfg.held_out]
    row: dict = {"object": shape, "ground_truth_seconds": time.perf_counter() - t, "cycles_seconds": gt.cycles_seconds,
                 "ground_truth_cached": gt.cached, "views": gt.inputs.n_views, "held_out_views": gt.held_out.n_views}  # fmt: skip
    step = lambda what: (lambda stage, f, msg="": progress(f"{shape}/{what}/{stage}", f, msg))  # noqa: E731
    out = _attempt(row, "exact", measured, reconstructor, gt.inputs, step("exact"), True)
    strip = None
    if out is not None:
        mesh, cost = out
        row.update(cost)
        row["stage_seconds"] = _stage_seconds(mesh)
        row["exact"] = _scores(gt, mesh, gt.held_out)
        log(f"  {shape} exact: Chamfer {row['exact']['chamfer']:.4f}, F@0.01 {row['exact']['fscore']:.3f}, albedo "
            f"{row['exact']['albedo_psnr']:.2f} dB, {cost['seconds']:.1f} s")  # fmt: skip
        pics = None
        if cfg.relit:
            asset = _attempt(row, "asset", to_asset, mesh, gt.inputs)
            rel = None if asset is None else _attempt(row, "relit", relit_scores, asset, gt.held_out.cameras, gt.relit, env)
            if rel is not None:
                row["relit_views"], pics = rel
                row["relit_psnr"] = _mean([r["psnr"] for r in row["relit_views"]])
                row["relit_ssim"] = _mean([r["ssim"] for r in row["relit_views"]])
                log(f"  {shape} relit under {RELIT_HDRI}: {row['relit_psnr']:.2f} dB")
        strip = contact_strip(gt, mesh, pics)
    if cfg.hull:
        out = _attempt(row, "hull", measured, reconstructor, gt.inputs, step("hull"), False)
        if out is not None:
            row["hull"] = {**_scores(gt, out[0], gt.held_out), "seconds": out[1]["seconds"]}
            log(f"  {shape} hull alone: Chamfer {row['hull']['chamfer']:.4f}, F@0.01 {row['hull']['fscore']:.3f}")
    row["degraded"] = {}
    for kind in cfg.degradations:
        views = degrade(gt.inputs, DEGRADATIONS if kind == DEGRADED_ALL else (kind,), cfg.seed)
        out = _attempt(row, f"degraded_{kind}", measured, reconstructor, views, step(kind), True)
        if out is not None:
            row["degraded"][kind] = {**_scores(gt, out[0], gt.held_out), "seconds": out[1]["seconds"],
                                     "drawn": views.meta["degraded"]}  # fmt: skip
            d = row["degraded"][kind]
            log(f"  {shape} degraded {kind}: Chamfer {d['chamfer']:.4f}, F@0.01 {d['fscore']:.3f}, albedo "
                f"{d['albedo_psnr']:.2f} dB")  # fmt: skip
    return row, strip


TILE = 224  # px, contact-sheet tile


def _crop(img: np.ndarray, mask: np.ndarray, margin: int = 12) -> np.ndarray:
    """[H, W, 3] uint8 cropped to the square around `mask` [H, W] (plus margin), resized to TILE x TILE."""
    import cv2

    ys, xs = np.nonzero(mask)
    if not len(ys):
        return cv2.resize(img, (TILE, TILE), interpolation=cv2.INTER_AREA)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    h = max(ys.max() - ys.min(), xs.max() - xs.min()) / 2 + margin
    y0, x0 = int(max(cy - h, 0)), int(max(cx - h, 0))
    y1, x1 = int(min(cy + h, img.shape[0])), int(min(cx + h, img.shape[1]))
    return cv2.resize(np.ascontiguousarray(img[y0:y1, x0:x1]), (TILE, TILE), interpolation=cv2.INTER_AREA)


def contact_strip(gt, mesh: ReconstructedMesh, relit_pics) -> np.ndarray:
    """Cropped to the object: input RGB (view 0, AgX) | at the first held-out view: true albedo | baked albedo |
    Cycles relit | ours relit | |relit error| x 5. -> [TILE, k TILE, 3] sRGB uint8."""
    from ..core.colour import agx, linear_to_srgb

    enc = lambda x: (np.clip(linear_to_srgb(np.clip(x, 0, 1)), 0, 1) * 255).astype(np.uint8)  # noqa: E731
    rgb = gt.inputs.rgb[0] if gt.inputs.rgb is not None else gt.inputs.albedo[0]
    ours_albedo, cov = render_albedo(mesh, gt.held_out.cameras[0])
    region = gt.held_out.mask[0] | cov
    tiles = [_crop((np.clip(agx(rgb), 0, 1) * 255).astype(np.uint8), gt.inputs.mask[0]),
             _crop(enc(gt.held_out.albedo[0]), region), _crop(enc(ours_albedo), region)]  # fmt: skip
    if relit_pics:
        ours, ref = relit_pics[0]
        err = np.clip(np.abs(ours - ref) * 5, 0, 1)
        tiles += [_crop((x * 255).astype(np.uint8), region) for x in (ref, ours, err)]
    return np.concatenate(tiles, 1)


def relit_environment():
    """The held-out HDRI as the renderer's prefiltered Environment (rotation 0, strength 1, as Cycles' world)."""
    from ..core.envmap import Environment, builtin_hdris

    return Environment.from_file(builtin_hdris()[RELIT_HDRI]).prefilter().with_transform(0.0, 1.0)


def run(out: Path, quick: bool = False, progress: Callable = no_progress, cfg: MultiviewConfig | None = None,
        reconstructor: Reconstructor | None = None, to_asset: ToAsset | None = None, command: str = "",
        log=print) -> dict:  # fmt: skip
    """Evaluate every configured object, rewriting report.md / report.json / contact_sheet.png in `out` after each.
    reconstructor / to_asset default to the product (pipeline_reconstructor, pipeline_asset). -> the summary."""
    import cv2

    from .multiview_report import markdown, summarise

    cfg = cfg or (quick_config() if quick else MultiviewConfig())
    reconstructor = reconstructor or pipeline_reconstructor
    to_asset = to_asset or (lambda mesh, views: pipeline_asset(mesh, views, cfg.n_gaussians))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = relit_environment() if cfg.relit else None
    if reconstructor is pipeline_reconstructor:
        t = time.perf_counter()
        import_pipeline()
        log(f"pipeline modules imported in {time.perf_counter() - t:.1f} s (start-up, before any clock)")
    rows, strips, s = [], [], {}
    for i, shape in enumerate(cfg.objects):
        log(f"[{i + 1}/{len(cfg.objects)}] {shape}")
        progress("object", i / len(cfg.objects), shape)
        row, strip = evaluate_object(shape, cfg, reconstructor, to_asset, env, progress, log)
        rows.append(row)
        if strip is not None:
            strips.append(strip)
            width = max(x.shape[1] for x in strips)
            sheet = np.concatenate([np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0))) for x in strips], 0)
            cv2.imwrite(str(out / "contact_sheet.png"), sheet[..., ::-1])
        s = summarise(rows, cfg)
        (out / "report.json").write_text(json.dumps({"config": asdict(cfg), "command": command, "summary": s,
                                                     "objects": rows}, indent=1, default=str))  # fmt: skip
        (out / "report.md").write_text(markdown(s, rows, cfg, command))
    progress("done", 1.0, "")
    return s


def add_multiview_eval(kinds) -> None:
    """Register `relight eval multiview` on the `eval` kinds subparsers (see forward.add_eval_parser)."""
    p = kinds.add_parser("multiview", help="multi-view reconstruction vs Cycles ground truth: Chamfer, F-score, "
                                           "albedo and relit PSNR at held-out views, robustness, time")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder (report.md, report.json, contact_sheet.png)")
    p.add_argument("--quick", action="store_true", help="one object, two held-out views, exact inputs only (CI)")
    p.add_argument("--objects", default="", help=f"comma-separated subset of {','.join(SHAPES)}")
    p.add_argument("--no-degraded", action="store_true", help="skip the degraded-input reconstructions")
    p.set_defaults(func=cmd_multiview)


def cmd_multiview(args) -> int:
    import os
    import sys

    from .cycles_scenes import cache_dir

    os.environ.setdefault("RELIGHT_CACHE_DIR", str(cache_dir()))  # prefiltered HDRIs are cached there too
    cfg = quick_config() if args.quick else MultiviewConfig()
    if args.objects:
        cfg.objects = tuple(o.strip() for o in args.objects.split(",") if o.strip())
        unknown = [o for o in cfg.objects if o not in SHAPES]
        if unknown:
            raise ValueError(f"unknown objects {unknown}; known: {', '.join(SHAPES)}")
    if args.no_degraded:
        cfg.degradations = ()
    s = run(Path(args.out), cfg.quick, cfg=cfg, command="relight " + " ".join(sys.argv[1:]))
    print(json.dumps({k: v for k, v in s.items() if not isinstance(v, dict)}, default=str))
    print(json.dumps(s.get("bars", {})))
    return 0
