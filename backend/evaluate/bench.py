"""`relight bench`: time the relit frame (rasterize -> shadows -> split-sum shading -> AgX -> 8 bit) on the demo
asset over resolutions and Gaussian counts, against the torch reference rasterizer; markdown, JSON and a plot.
The measuring is in bench_timing, the work measure and cost model in bench_model, the report in bench_report."""

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.cache import cache_root
from .bench_model import HEADLINE, bars, scaling_fit
from .bench_report import markdown, plot
from .bench_timing import run_case, server_round_trip, verify_environment_cache

FULL_SIZES = (256, 512, 1024)  # square frame edge, pixels
FULL_COUNTS = (25_000, 100_000, 400_000)  # Gaussians requested from pipeline.generate
QUICK_SIZES = (256, 512)
QUICK_COUNTS = (25_000,)


@dataclass
class BenchConfig:
    """What `relight bench` measures."""

    out: Path  # output folder: bench.md, bench.json, bench.png, frame_<size>_<count>.png
    quick: bool = False  # CI mode: 256^2 and 512^2 with 25k Gaussians, fewer repeats, reference on crops
    sizes: tuple = FULL_SIZES
    counts: tuple = FULL_COUNTS
    repeats: int = 5  # timed interactive frames per case (after one warm-up frame)
    final_repeats: int = 2  # timed final-quality frames per case
    hdri: str = "studio"  # bpy HDRI name
    torch: bool = True  # also run the torch reference rasterizer
    cache_dir: Path | None = None  # generated assets; default $RELIGHT_CACHE_DIR/bench_assets
    log: Callable[[str], None] = print  # progress lines


# ---------------------------------------------------------------------------------------------------- the run


def bench_asset(n_gaussians: int, store_dir: Path, log=print):
    """The `relight demo` asset (the shipped sample through pipeline.generate) with n_gaussians Gaussians, plus
    its precomputed visibility bits when the pipeline did not make them; cached in an AssetStore.
    -> (asset, info dict)."""
    from ..demo import SAMPLE
    from ..core.input_image import InputImage
    from ..generate.pipeline import GenerateInputs, generate
    from ..service.store import AssetStore

    store = AssetStore(store_dir, cache_size=len(FULL_COUNTS))
    inputs = GenerateInputs(image=InputImage.from_file(SAMPLE), name=SAMPLE.stem, n_gaussians=int(n_gaussians))
    cid = inputs.content_id()
    info = {"asset_id": cid, "requested": int(n_gaussians)}
    if store.has(cid):
        t = time.perf_counter()
        asset = store.get(cid)
        info["load_s"] = time.perf_counter() - t
        info["vis_bits"] = asset.meta.get("bench_vis_bits", "from pipeline" if asset.gaussians.vis_bits is not None else "none")
        return asset, info
    log(f"bench: generating the demo asset with {n_gaussians} Gaussians (cached for reruns in {store_dir})")
    t = time.perf_counter()
    asset = generate(inputs)
    info["generate_s"] = time.perf_counter() - t
    g = asset.gaussians
    if g.vis_bits is None:
        try:
            from ..generate.visibility import surface_visibility

            t = time.perf_counter()
            _, g.vis_bits = surface_visibility(asset.vertices, asset.faces, asset.vertex_normals, g.means, g.normals)
            asset.meta["bench_vis_bits"] = f"added by bench ({time.perf_counter() - t:.1f} s)"
        except (ImportError, AttributeError, TypeError) as e:  # the visibility API is young: bench without it
            asset.meta["bench_vis_bits"] = f"none ({e})"
    else:
        asset.meta["bench_vis_bits"] = "from pipeline"
    info["vis_bits"] = asset.meta["bench_vis_bits"]
    store.put(asset)
    return asset, info


def run(cfg: BenchConfig) -> dict:
    """Run the benchmark and write bench.json, bench.md, bench.png and a frame per case into cfg.out."""
    from ..core.envmap import Environment, builtin_hdris
    from ..core.imageio import write_rgba

    t_start = time.perf_counter()
    load_start = list(os.getloadavg())
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.quick:
        cfg.sizes, cfg.counts, cfg.final_repeats = QUICK_SIZES, QUICK_COUNTS, 1
        cfg.repeats = min(cfg.repeats, 3)
    store_dir = Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "bench_assets"
    hdris = builtin_hdris()
    if cfg.hdri not in hdris:
        raise ValueError(f"no HDRI {cfg.hdri!r}; available: {', '.join(sorted(hdris))}")
    t = time.perf_counter()
    env = Environment.from_file(hdris[cfg.hdri])
    env.prefilter()
    prefilter_cold = time.perf_counter() - t
    env_cache = verify_environment_cache(env)
    env_cache["prefilter_cold_s"] = prefilter_cold  # 0-ish when an earlier Environment of this HDRI is cached

    assets, cases = {}, []
    for n in cfg.counts:
        assets[n] = bench_asset(n, store_dir, cfg.log)
    for n in cfg.counts:
        asset, info = assets[n]
        for size in cfg.sizes:
            cfg.log(f"bench: {size}x{size}, {len(asset.gaussians)} Gaussians")
            rec = run_case(asset, env, size, cfg)
            rec["requested_gaussians"] = n
            rec["asset"] = info
            frame = rec.pop("rgba8")
            name = f"frame_{size}_{n // 1000}k.png"
            write_rgba(out / name, frame)
            rec["frame_png"] = name
            cases.append(rec)
            cfg.log(f"bench:   interactive {rec['interactive']['frame']['median_ms']:.1f} ms "
                    f"({rec['interactive']['fps']:.1f} fps), final {rec['final']['frame']['median_ms']:.1f} ms")  # fmt: skip

    round_trip = None
    if HEADLINE[1] in assets and HEADLINE[0] in cfg.sizes:
        cfg.log(f"bench: server round trip, {HEADLINE[0]}x{HEADLINE[0]}, {HEADLINE[1]} Gaussians")
        round_trip = server_round_trip(assets[HEADLINE[1]][0], store_dir, hdris[cfg.hdri], HEADLINE[0], cfg.repeats)

    report = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "numba_threads": _numba_threads(), "loadavg_start": load_start,
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)")},
        "config": {"quick": cfg.quick, "sizes": list(cfg.sizes), "counts": list(cfg.counts), "repeats": cfg.repeats,
                   "final_repeats": cfg.final_repeats, "hdri": cfg.hdri, "shadows": True},
        "environment_cache": env_cache,
        "server_round_trip": round_trip,
        "cases": cases,
        "scaling": scaling_fit(cases),
        "bars": bars(cases),
        "wall_s": time.perf_counter() - t_start,
    }  # fmt: skip
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    (out / "bench.json").write_text(json.dumps(report, indent=1))
    (out / "bench.md").write_text(markdown(report))
    plot(cases, report["scaling"], out / "bench.png")
    return report


def _numba_threads() -> int:
    import numba

    return int(numba.get_num_threads())


# ---------------------------------------------------------------------------------------------------- CLI


def _cmd_bench(args) -> int:
    if getattr(args, "load", False):
        return _cmd_bench_load(args)
    if getattr(args, "addon", False):
        from .bench_addon import markdown as addon_markdown, run as run_addon

        rep = run_addon(Path(args.out), size=(args.sizes or [512])[0], steps=args.repeats or 30,
                        n_gaussians=(args.counts or [100_000])[0], hdri=args.hdri)  # fmt: skip
        print(addon_markdown(rep), flush=True)
        sys.stderr.flush()
        os._exit(0)  # bpy as a module can hang in its exit handler (tests/conftest.py): leave at once
    cfg = BenchConfig(out=Path(args.out), quick=args.quick, hdri=args.hdri, torch=not args.no_torch)
    if args.repeats:
        cfg.repeats = args.repeats
    if args.sizes:
        cfg.sizes = tuple(args.sizes)
    if args.counts:
        cfg.counts = tuple(args.counts)
    rep = run(cfg)
    print(markdown(rep))
    return 0


def add_bench_parser(sub) -> None:
    """`relight bench [--quick] --out DIR`."""
    p = sub.add_parser("bench", help="time the relit frame over resolutions and Gaussian counts (markdown, JSON, plot)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quick", action="store_true", help="CI mode: 256^2 and 512^2 with 25k Gaussians (< 60 s)")
    p.add_argument("--hdri", default="studio", help="bpy HDRI name")
    p.add_argument("--repeats", type=int, default=0, help="timed frames per case (default 5, quick 3)")
    p.add_argument("--no-torch", action="store_true", help="skip the torch reference rasterizer")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help=f"frame edges (default {FULL_SIZES})")
    p.add_argument("--counts", type=int, nargs="+", default=None, help=f"Gaussian counts (default {FULL_COUNTS})")
    p.add_argument("--load", action="store_true",
                   help="instead: render latency p50/p95 through a real `relight serve` while generate jobs queue")
    p.add_argument("--addon", action="store_true",
                   help="the live preview end to end: the add-on in headless bpy against a real relight serve "
                   "(orbit and world turn; fps, p50/p95 latency, where the time goes); --repeats sets the steps per leg")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench_load(args) -> int:
    """`relight bench --load --out DIR` (bench_load.py)."""
    from .bench_load import LoadConfig, load_markdown, run_load

    print(load_markdown(run_load(LoadConfig(out=Path(args.out)))))
    return 0

