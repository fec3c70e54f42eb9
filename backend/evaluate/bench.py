"""`relight bench`: time the relit frame (rasterize -> shadows -> split-sum shading -> AgX -> 8 bit) on the demo
asset over resolutions and Gaussian counts, against the torch reference rasterizer; markdown, JSON and a plot."""

import json
import math
import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FULL_SIZES = (256, 512, 1024)  # square frame edge, pixels
FULL_COUNTS = (25_000, 100_000, 400_000)  # Gaussians requested from pipeline.generate
QUICK_SIZES = (256, 512)
QUICK_COUNTS = (25_000,)
HEADLINE = (512, 100_000)  # the case the bars are about
# the torch reference runs on the whole frame while size^2 * N stays below this; above it on a centre crop
TORCH_FULL_FRAME_WORK = 512 * 512 * 100_000
TORCH_CROP = 96  # crop edge (pixels) for the torch reference on bigger cases
QUICK_TORCH_CROP = 64  # --quick: the reference always runs on a crop this size


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


# ---------------------------------------------------------------------------------------------------- helpers


def cache_root() -> Path:
    """$RELIGHT_CACHE_DIR, else <XDG cache or ~/.cache>/relight."""
    if os.environ.get("RELIGHT_CACHE_DIR"):
        return Path(os.environ["RELIGHT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "relight"


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size of this process since the last reset, MB (VmHWM; ru_maxrss elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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


class _Times(list):
    """Wall-clock seconds of the timed runs, with the process CPU seconds of each in .cpu."""

    cpu: list


def _timed(fn, repeats: int):
    """Run fn() 1 + repeats times (the first is a warm-up). -> (last result, _Times of the timed runs)."""
    out = fn()
    ts = _Times()
    ts.cpu = []
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
        ts.cpu.append(time.process_time() - c)
    return out, ts


def _stats(ts) -> dict:
    """Median and min wall ms; median CPU ms (all threads: on an otherwise idle machine with 2 cores the wall time of
    well-parallel work approaches cpu_ms / 2, so it shows how much of the wall time other processes took)."""
    out = {"median_ms": 1e3 * float(np.median(ts)), "min_ms": 1e3 * float(np.min(ts)), "n": len(ts)}
    if getattr(ts, "cpu", None):
        out["cpu_median_ms"] = 1e3 * float(np.median(ts.cpu))
    return out


def _raster_inputs(asset, camera, shadow):
    """The arguments render.render gives the rasterizer (asset-space camera, G-buffer features)."""
    from ..core.frames import camera_to_asset

    g = asset.gaussians
    view = camera_to_asset(camera, asset.model_matrix)
    feats = g.features(normal_matrix=asset.rotation, shadow=shadow)
    return (g.means, g.quats, g.scales, g.opacities, feats, view.viewmat[None].astype(np.float32),
            view.K[None].astype(np.float32))  # fmt: skip


def footprint_pairs(args, width: int, height: int, eps2d: float) -> tuple[int, int]:
    """(pixel-Gaussian pairs, visible Gaussians): the summed on-screen area, in pixels, of every visible
    Gaussian's alpha >= 1/255 box (the work the compositor can do), from the native projection."""
    from ..render import splat_native as sn

    means, quats, scales, opacities, _, viewmats, Ks = args
    n = means.shape[0]
    gp = np.zeros((n, sn.N_GP), np.float32)
    rect = np.zeros((n, 4), np.int32)
    f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    sn._project(f32(means), f32(quats), f32(scales), f32(opacities).reshape(-1), viewmats[0], Ks[0], width, height,
                0.01, 1e10, float(eps2d), gp, rect)  # fmt: skip
    vis = (rect[:, 1] > rect[:, 0]) & (rect[:, 3] > rect[:, 2])
    g = gp[vis].astype(np.float64)
    x0 = np.clip(g[:, sn.G_X] - g[:, sn.G_EXT_X], 0, width)
    x1 = np.clip(g[:, sn.G_X] + g[:, sn.G_EXT_X], 0, width)
    y0 = np.clip(g[:, sn.G_Y] - g[:, sn.G_EXT_Y], 0, height)
    y1 = np.clip(g[:, sn.G_Y] + g[:, sn.G_EXT_Y], 0, height)
    return int(np.sum((x1 - x0) * (y1 - y0))), int(vis.sum())


def _crop(args, width: int, height: int, edge: int):
    """The same rasterizer inputs seen through an edge x edge window centred on the covered pixels' centroid (the
    principal point shifted; same pixel grid). -> (args, (x0, y0) of the window)."""
    means, quats, scales, opacities, feats, viewmats, Ks = args
    from ..render.splat_raster import rasterize

    _, alphas, _ = rasterize(means, quats, scales, opacities, feats[:, :1], viewmats, Ks, width, height,
                             backend="native")  # fmt: skip
    ys, xs = np.nonzero(alphas[0, :, :, 0] > 0.5)
    cx = int(np.clip(xs.mean() if xs.size else width / 2, edge / 2, width - edge / 2)) - edge // 2
    cy = int(np.clip(ys.mean() if ys.size else height / 2, edge / 2, height - edge / 2)) - edge // 2
    K = Ks.copy()
    K[:, 0, 2] -= cx
    K[:, 1, 2] -= cy
    return (means, quats, scales, opacities, feats, viewmats, K), (cx, cy)


def compare_reference(args, width: int, height: int, eps2d: float, repeats: int = 1) -> dict:
    """Native vs torch reference rasterizer on the same inputs: times and max abs differences."""
    import torch

    from ..render.splat_raster import rasterize, rasterize_torch

    (nc, na, nd), ts_native = _timed(lambda: rasterize(*args, width, height, eps2d=eps2d, backend="native"), max(3, repeats))
    targs = [torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in args]
    t = time.perf_counter()
    with torch.no_grad():
        tc, ta, td = rasterize_torch(*targs, width, height, eps2d=eps2d)
    t_torch = time.perf_counter() - t
    return {
        "native_ms": 1e3 * float(np.median(ts_native)), "torch_ms": 1e3 * t_torch,
        "ratio": t_torch / float(np.median(ts_native)),
        "max_abs_diff": {"colors": float(np.abs(nc - tc.numpy()).max()), "alphas": float(np.abs(na - ta.numpy()).max()),
                         "depths": float(np.abs(nd - td.numpy()).max())},
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------- the run


def preview_settings(shadows: bool):
    """The interactive preview's RenderSettings (the renderer's "preview" preset), with or without shadows."""
    from dataclasses import replace

    from ..render.settings import PREVIEW

    return replace(PREVIEW, shadows=shadows)


def transfer_error(asset, env) -> dict:
    """The preview's per-light shadows (precomputed transfer) against the sum over every visibility direction,
    as shaded diffuse radiance error relative to the asset's mean irradiance: mean, p99 and max over Gaussians."""
    from ..render.settings import PREVIEW
    from ..render.shadows import gaussian_shadows

    exact = gaussian_shadows(asset, env)
    if exact is None:
        return {}
    fast = gaussian_shadows(asset, env, rank=PREVIEW.shadow_rank)
    irr = env.irradiance(asset.gaussians.normals @ asset.rotation.T)
    err = np.abs(fast - exact) * irr / np.maximum(irr.mean(0), 1e-12)
    return {"mean": float(err.mean()), "p99": float(np.percentile(err, 99)), "max": float(err.max()),
            "rank": PREVIEW.shadow_rank}  # fmt: skip


def run_case(asset, env, size: int, cfg: BenchConfig) -> dict:
    """Time the relit frame of one asset at size x size, interactive (supersample 1) and final quality
    (RenderSettings.supersample), with the stage split; the AgX / 8-bit split; the torch reference ratio."""
    from dataclasses import asdict

    from ..render import frame as render_mod
    from ..render.settings import FINAL
    from ..render.shadows import gaussian_shadows
    from ..core.colour import agx, agx_rgba8, to_uint8
    from ..core.frames import camera_to_world

    cam = camera_to_world(asset.input_camera, asset.model_matrix).resized(size, size)
    rec = {"size": size, "pixels": size * size, "gaussians": len(asset.gaussians)}
    _reset_peak_rss()
    settings = {  # name: (RenderSettings, timed frames)
        "interactive": (preview_settings(shadows=True), cfg.repeats),
        "final": (FINAL, cfg.final_repeats),  # the renderer's defaults
        "interactive_ao": (preview_settings(shadows=False), cfg.repeats),  # AO instead of the per-light shadow pass
        # every frame under a new light (the world rotation turned by a step, as when the artist drags it): the
        # per-Gaussian shadows are recomputed (in "interactive" the light stays, as when the artist orbits the
        # camera, and render() reuses them after the first frame)
        "interactive_new_light": (preview_settings(shadows=True), cfg.repeats),
    }
    for name, (setting, reps) in settings.items():
        stages = []

        turn = iter(range(1, 1 << 30))

        def frame():
            light = env
            if name == "interactive_new_light":
                light = env.with_transform(env.rotation_z + 0.05 * next(turn), env.strength)
            r = render_mod.render(asset, cam, light, setting)
            stages.append(r.timings)
            return r

        res, ts = _timed(frame, reps)
        st = {k: 1e3 * float(np.median([s.get(k, 0.0) for s in stages[1:]])) for k in stages[-1]}
        params = asdict(setting)
        rec[name] = {"render_kwargs": params, "supersample": params.get("supersample", 1), "shadows": params.get("shadows"),
                     "frame": _stats(ts), "fps": 1.0 / float(np.median(ts)), "stages_ms": st}  # fmt: skip
        if name == "interactive":
            frame_res = res
    rec["peak_rss_mb"] = peak_rss_mb()
    # the tonemap stage split on this frame's HDR: AgX alone, the 8-bit encode alone, and the fused kernel
    hdr, alpha = frame_res.hdr, frame_res.alpha
    straight = hdr / np.maximum(alpha, 1e-6)
    _, t_agx = _timed(lambda: agx(straight), cfg.repeats)
    rgb = agx(straight)
    _, t_u8 = _timed(lambda: to_uint8(rgb * (alpha > 0)), cfg.repeats)
    _, t_fused = _timed(lambda: agx_rgba8(hdr, alpha), cfg.repeats)
    rec["tonemap_split_ms"] = {"agx": _stats(t_agx)["median_ms"], "uint8": _stats(t_u8)["median_ms"],
                               "agx_rgba8_fused": _stats(t_fused)["median_ms"]}  # fmt: skip
    rec["coverage"] = float((alpha > 0.5).mean())
    rec["transfer_shadow_error"] = transfer_error(asset, env)
    # work measure: pixel-Gaussian pairs at the interactive resolution
    shadow = gaussian_shadows(asset, env) if asset.gaussians.vis_bits is not None else None
    args = _raster_inputs(asset, cam, shadow)
    rec["pairs"], rec["visible_gaussians"] = footprint_pairs(args, size, size, render_mod.EPS2D)
    rec["rgba8"] = frame_res.rgba8
    if cfg.torch:
        if not cfg.quick and size * size * len(asset.gaussians) <= TORCH_FULL_FRAME_WORK * 1.05:
            ref = compare_reference(args, size, size, render_mod.EPS2D)
            ref["region"] = f"full frame {size}x{size}"
        else:
            edge = QUICK_TORCH_CROP if cfg.quick else TORCH_CROP
            cargs, origin = _crop(args, size, size, edge)
            ref = compare_reference(cargs, edge, edge, render_mod.EPS2D)
            ref["region"] = f"{edge}x{edge} crop at {origin} (the whole frame is too slow for the reference here)"
        rec["torch_reference"] = ref
    return rec


def server_round_trip(asset, store_dir: Path, hdri_path: Path, size: int, repeats: int) -> dict:
    """The preview as the add-on gets it: a real `relight serve` child on a free loopback port serving the bench's
    asset store, and render requests (preview quality, the HDRI's equirect sent with every request as the add-on
    does) timed from send to reply. Orbit: the camera turns, the light stays; new light: the world turns."""
    import subprocess
    import sys

    from relight_protocol.client import Client

    from ..core.camera import Camera
    from ..core.frames import camera_to_world
    from ..core.hdri_io import read_hdr_image

    equirect = np.ascontiguousarray(read_hdr_image(hdri_path)[..., :3], np.float32)
    cam = camera_to_world(asset.input_camera, asset.model_matrix).resized(size, size)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "relight.cli", "serve", "--bind", "tcp://127.0.0.1:0", "--store", str(store_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        endpoint = None
        deadline = time.monotonic() + 120
        while endpoint is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "listening on " in line:
                endpoint = line.split("listening on ", 1)[1].split()[0]
        if endpoint is None:
            return {"error": f"relight serve did not start (exit code {proc.poll()})"}
        client = Client(endpoint)
        out = {"endpoint": endpoint, "equirect_shape": list(equirect.shape), "frame": size}
        for name in ("orbit", "new_light"):
            total, server = [], []
            for i in range(repeats + 1):
                view = cam
                if name == "orbit":  # a small turn of the camera about the vertical through the asset
                    a = 0.02 * i
                    rz = np.array([[np.cos(a), -np.sin(a), 0, 0], [np.sin(a), np.cos(a), 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
                    c = np.eye(4)
                    c[:3, 3] = asset.model_matrix[:3, 3]
                    view = Camera(cam.viewmat @ c @ rz @ np.linalg.inv(c), cam.K, cam.width, cam.height)
                world = {"equirect": equirect, "rotation_z": 0.05 * i if name == "new_light" else 0.0, "strength": 1.0}
                t = time.perf_counter()
                reply = client.call("render_request", {"asset_id": asset.asset_id, "camera": view.to_dict(), "world": world,
                                                       "quality": "preview"}, timeout=120)  # fmt: skip
                dt = time.perf_counter() - t
                if reply.status != "ok":
                    return {"error": f"render failed: {reply.content.get('evalue')}"}
                if i > 0:  # the first request loads the asset and builds its caches
                    total.append(dt)
                    server.append(float(reply.content["timings"]["server_total"]))
            out[name] = {"round_trip_ms": 1e3 * float(np.median(total)), "server_ms": 1e3 * float(np.median(server)),
                         "fps": 1.0 / float(np.median(total))}  # fmt: skip
        client.close()
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def verify_environment_cache(env) -> dict:
    """A rotation or strength change shares every prefiltered array (nothing recomputed): identity checks and
    the time of the first lookup after the change."""
    t = time.perf_counter()
    env.prefilter()
    warm = time.perf_counter() - t
    rotated = env.with_transform(env.rotation_z + 1.0, env.strength * 0.5)
    t = time.perf_counter()
    rotated.prefilter()
    after = time.perf_counter() - t
    kd0, kd1 = env.kernel_data(), rotated.kernel_data()  # (rot, strength, spec_flat, spec_table, irr_flat, ...)
    shared = all(np.shares_memory(a, b) for a, b in zip(kd0[2:5], kd1[2:5])) and not np.array_equal(kd0[0], kd1[0])
    return {"prefilter_warm_s": warm, "prefilter_after_rotation_s": after, "arrays_shared": bool(shared)}


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
                    "numba_threads": _numba_threads(), "loadavg_start": load_start},
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


def work(case: dict) -> int:
    """The frame's work units: pixels (shading, tone mapping) + Gaussians (projection, sort, shadows) +
    pixel-Gaussian pairs (compositing)."""
    return case["pixels"] + case["gaussians"] + case["pairs"]


def scaling_fit(cases: list[dict]) -> dict:
    """Least-squares slope of log(frame time) against log(work) for the interactive frames, with
    work() units (<= 1: no worse than linear); also for the rasterize stage alone."""
    if len(cases) < 2:
        return {"slope_frame": None, "slope_rasterize": None}
    w = np.log([work(c) for c in cases])
    out = {}
    for key, get in (("slope_frame", lambda c: c["interactive"]["frame"]["median_ms"]),
                     ("slope_rasterize", lambda c: c["interactive"]["stages_ms"].get("rasterize", np.nan))):  # fmt: skip
        y = np.log([get(c) for c in cases])
        out[key] = float(np.polyfit(w, y, 1)[0]) if np.ptp(w) > 0 else None
    out["ns_per_work_unit"] = [1e6 * c["interactive"]["frame"]["median_ms"] / (work(c)) for c in cases]
    out["linear_model"] = cost_model(cases)
    return out


def cost_model(cases: list[dict]) -> dict | None:
    """Fit interactive frame time = fixed + a pixels + b Gaussians + c pairs (non-negative, least squares on
    relative error). Time that grows no worse than linearly in the work is explained by it with small residuals
    across the whole grid; -> coefficients, R^2, the largest relative residual and the fitted times (ms)."""
    from scipy.optimize import nnls

    if len(cases) < 5:
        return None
    X = np.array([[1.0, c["pixels"], c["gaussians"], c["pairs"]] for c in cases], np.float64)
    y = np.array([c["interactive"]["frame"]["median_ms"] for c in cases], np.float64)
    scale = X.max(0)
    coef, _ = nnls(X / scale / y[:, None], np.ones_like(y))  # relative residuals
    coef = coef / scale
    pred = X @ coef
    return {"fixed_ms": float(coef[0]), "ns_per_pixel": float(1e6 * coef[1]), "ns_per_gaussian": float(1e6 * coef[2]),
            "ns_per_pair": float(1e6 * coef[3]), "r2": float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)),
            "max_rel_residual": float(np.max(np.abs(y - pred) / y)), "predicted_ms": pred.tolist()}  # fmt: skip


def bars(cases: list[dict]) -> dict:
    """The issue's bars on the headline case (512^2, 100k requested), when it was measured."""
    hc = [c for c in cases if (c["size"], c["requested_gaussians"]) == HEADLINE]
    if not hc:
        return {"headline_measured": False}
    c = hc[0]
    ref = c.get("torch_reference", {})
    return {
        "headline_measured": True,
        "fps_interactive": c["interactive"]["fps"], "fps_interactive_best": 1e3 / c["interactive"]["frame"]["min_ms"],
        "fps_final": c["final"]["fps"], "fps_interactive_ao": c["interactive_ao"]["fps"], "fps_bar": 10.0,
        "fps_interactive_new_light": c["interactive_new_light"]["fps"],
        "raster_speedup_vs_torch": ref.get("ratio"), "speedup_bar": 20.0,
        "max_abs_diff": ref.get("max_abs_diff"), "diff_bar": 1e-3,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------- reports


def markdown(rep: dict) -> str:
    m = rep["machine"]
    lines = [
        "# relight bench: the relit frame",
        "",
        f"{m['cpu_count']} CPU cores, numba threads {m['numba_threads']}, load average at the end "
        f"{', '.join(f'{x:.1f}' for x in m['loadavg_end'])} (other processes share the machine: times are wall clock).",
        f"HDRI `{rep['config']['hdri']}`. Interactive = render({_kw(rep, 'interactive')}) with the light unchanged "
        "between frames (camera orbit: the per-Gaussian shadows are reused); new light = the same with the shadows "
        "recomputed every frame, the world turned 0.05 rad per frame (world rotation drag); AO-only = "
        f"render({_kw(rep, 'interactive_ao')}) (ambient occlusion instead of the per-light shadow pass); final = the "
        f"renderer's defaults, render({_kw(rep, 'final')}). Medians of "
        f"{rep['config']['repeats']} (interactive) / {rep['config']['final_repeats']} (final) frames after a warm-up. "
        "Stage columns are the renderer's own timings of the interactive frame (ms); CPU ms is the process CPU time "
        "per interactive frame over all threads.",
        "",
        "| size | Gaussians | interactive ms median / min (fps) | CPU ms | raster | shadows | shade | tonemap+8bit | "
        "new light ms (fps) | AO-only ms (fps) | final ms (fps) | AgX / 8-bit / fused ms | torch ref: speedup (region) | "
        "peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in rep["cases"]:
        i, f, st, ts = c["interactive"], c["final"], c["interactive"]["stages_ms"], c["tonemap_split_ms"]
        ref = c.get("torch_reference")
        rs = f"{ref['ratio']:.0f}x ({ref['region']})" if ref else "not run"
        lines.append(
            f"| {c['size']}² | {c['gaussians']} | {i['frame']['median_ms']:.1f} / {i['frame']['min_ms']:.1f} ({i['fps']:.1f}) | "
            f"{i['frame'].get('cpu_median_ms', float('nan')):.0f} | "
            f"{st.get('rasterize', 0):.1f} | {st.get('visibility', 0):.1f} | {st.get('shade', 0):.1f} | "
            f"{st.get('tonemap', 0):.1f} | {c['interactive_new_light']['frame']['median_ms']:.1f} "
            f"({c['interactive_new_light']['fps']:.1f}) | "
            f"{c['interactive_ao']['frame']['median_ms']:.1f} ({c['interactive_ao']['fps']:.1f}) | "
            f"{f['frame']['median_ms']:.1f} ({f['fps']:.1f}) | "
            f"{ts['agx']:.1f} / {ts['uint8']:.1f} / {ts['agx_rgba8_fused']:.1f} | {rs} | {c['peak_rss_mb']:.0f} |"
        )
    b, s, e = rep["bars"], rep["scaling"], rep["environment_cache"]
    lines += ["", "## Bars (512², 100k Gaussians)", ""]
    if b.get("headline_measured"):
        d = b["max_abs_diff"] or {}
        lines += [
            f"- interactive frame, light unchanged (camera orbit): {b['fps_interactive']:.1f} fps at the median, "
            f"{b['fps_interactive_best']:.1f} fps best of the run (bar >= 10, goal 30); with a new light every frame "
            f"{b['fps_interactive_new_light']:.1f} fps; AO-only {b['fps_interactive_ao']:.1f} fps; final quality "
            f"{b['fps_final']:.1f} fps",
            f"- native rasterizer vs torch reference: {b['raster_speedup_vs_torch'] or float('nan'):.0f}x (bar >= 20x)",
            "- native vs reference max abs difference: " + ", ".join(f"{k} {v:.2e}" for k, v in d.items()) + " (bar 1e-3)",
        ]
    else:
        lines.append("- not measured in this run (`--quick` measures 25k Gaussians only)")
    rt = rep.get("server_round_trip")
    if rt and "error" not in rt:
        lines.append(f"- through a real `relight serve` on loopback, the {rt['equirect_shape'][1]}x{rt['equirect_shape'][0]} "
                     f"equirect sent with every request: orbit {rt['orbit']['round_trip_ms']:.1f} ms round trip "
                     f"({rt['orbit']['fps']:.1f} fps; {rt['orbit']['server_ms']:.1f} ms in the server), new light "
                     f"{rt['new_light']['round_trip_ms']:.1f} ms ({rt['new_light']['fps']:.1f} fps; "
                     f"{rt['new_light']['server_ms']:.1f} ms in the server)")  # fmt: skip
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


# ---------------------------------------------------------------------------------------------------- CLI


def _cmd_bench(args) -> int:
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
    p.set_defaults(func=_cmd_bench)
