"""Measuring for `relight bench`: timed runs (wall and CPU time), peak RSS, one case's relit frames with their stage
split, the native rasterizer against the torch reference, the server round trip and the environment cache check."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .bench_model import footprint_pairs

if TYPE_CHECKING:
    from .bench import BenchConfig

# the torch reference runs on the whole frame while size^2 * N stays below this; above it on a centre crop
TORCH_FULL_FRAME_WORK = 512 * 512 * 100_000
TORCH_CROP = 96  # crop edge (pixels) for the torch reference on bigger cases
QUICK_TORCH_CROP = 64  # --quick: the reference always runs on a crop this size


# ---------------------------------------------------------------------------------------------------- timing


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


# ---------------------------------------------------------------------------------------------------- reference


def _raster_inputs(asset, camera, shadow):
    """The arguments render.render gives the rasterizer (asset-space camera, G-buffer features)."""
    from ..core.frames import camera_to_asset

    g = asset.gaussians
    view = camera_to_asset(camera, asset.model_matrix)
    feats = g.features(normal_matrix=asset.rotation, shadow=shadow)
    return (g.means, g.quats, g.scales, g.opacities, feats, view.viewmat[None].astype(np.float32),
            view.K[None].astype(np.float32))  # fmt: skip


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


# ---------------------------------------------------------------------------------------------------- cases


def preview_settings(shadows: bool):
    """The interactive preview's RenderSettings (the renderer's "preview" preset), with or without shadows."""
    from dataclasses import replace

    from ..render.settings import PREVIEW

    return replace(PREVIEW, shadows=shadows)


def orbit_view(cam, centre, angle: float):
    """`cam` turned by `angle` radians about the vertical through `centre` [3] (world)."""
    from ..core.camera import Camera

    c, c_inv = np.eye(4), np.eye(4)
    c[:3, 3], c_inv[:3, 3] = centre, -np.asarray(centre, np.float64)  # a translation and its inverse
    rz = np.array([[np.cos(angle), -np.sin(angle), 0, 0], [np.sin(angle), np.cos(angle), 0, 0], [0, 0, 1, 0],
                   [0, 0, 0, 1]])  # fmt: skip
    # not np.linalg.inv(c): inside the timed frame it took ~1.5 ms (a LAPACK call beside the renderer's threads)
    return Camera(cam.viewmat @ c @ rz @ c_inv, cam.K, cam.width, cam.height)


def transfer_error(asset, env) -> dict:
    """The preview's per-light shadows (precomputed transfer) against the sum over every visibility direction,
    as shaded diffuse radiance error relative to the asset's mean irradiance: mean, p99 and max over Gaussians."""
    from ..render.settings import PREVIEW
    from ..render.shadows import gaussian_shadows

    exact = gaussian_shadows(asset, env, exact_lights=False, bounces=1, linked=False)  # what the transfer approximates
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
        # every frame from a new view (the camera turned 0.02 rad about the asset, as when the artist orbits): the
        # hidden-Gaussian cull and the mesh coverage are recomputed (in "interactive" the view stays)
        "interactive_orbit": (preview_settings(shadows=True), cfg.repeats),
    }
    for name, (setting, reps) in settings.items():
        stages = []

        turn = iter(range(1, 1 << 30))

        def frame():
            light = env
            if name == "interactive_new_light":
                light = env.with_transform(env.rotation_z + 0.05 * next(turn), env.strength)
            view = cam
            if name == "interactive_orbit":
                view = orbit_view(cam, asset.model_matrix[:3, 3], 0.02 * next(turn))
            r = render_mod.render(asset, view, light, setting, passes=False)  # as the server renders a frame
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
    asset store, and render requests (preview quality) timed from send to reply, the HDRI's equirect sent once and
    then named by its world_id, and (for comparison) sent with every request. Orbit: the camera turns, the light
    stays; new light: the world turns."""
    from relight_protocol.client import Client

    from .serve_child import start_serve, stop_serve, wait_warm

    from ..core.frames import camera_to_world
    from ..core.hdri_io import read_hdr_image

    equirect = np.ascontiguousarray(read_hdr_image(hdri_path)[..., :3], np.float32)
    cam = camera_to_world(asset.input_camera, asset.model_matrix).resized(size, size)
    try:
        proc, endpoint, _ = start_serve(store_dir)
    except RuntimeError as e:
        return {"error": str(e)}
    try:
        try:
            warm_s = wait_warm(endpoint)  # timed frames must not share the cores with the start-up warming
        except RuntimeError as e:
            return {"error": str(e)}
        client = Client(endpoint)
        out = {"endpoint": endpoint, "equirect_shape": list(equirect.shape), "frame": size, "warm_s": warm_s}
        # "orbit"/"new_light": the world named by its world_id after the first frame (protocol 1.2); the same with
        # "_equirect_every_request": the equirect sent with every request, as before 1.2
        for name in ("orbit", "new_light", "orbit_equirect_every_request", "new_light_equirect_every_request"):
            total, server, stages = [], [], []
            for i in range(repeats + 1):
                view = cam
                if name.startswith("orbit"):  # a small turn of the camera about the vertical through the asset
                    view = orbit_view(cam, asset.model_matrix[:3, 3], 0.02 * i + (0.5 if "every" in name else 0.0))
                turn = 0.05 * i + (0.5 if "every" in name else 0.0)  # new angles: nothing cached from the other legs
                world = {"world_id": "bench-world", "rotation_z": turn if name.startswith("new_light") else 0.0,
                         "strength": 1.0}  # fmt: skip
                if i == 0 or name.endswith("every_request"):
                    world["equirect"] = equirect
                t = time.perf_counter()
                reply = client.call("render_request", {"asset_id": asset.asset_id, "camera": view.to_dict(), "world": world,
                                                       "quality": "preview"}, timeout=120)  # fmt: skip
                dt = time.perf_counter() - t
                if reply.status != "ok":
                    return {"error": f"render failed: {reply.content.get('evalue')}"}
                if i > 0:  # the first request loads the asset and builds its caches
                    total.append(dt)
                    server.append(float(reply.content["timings"]["server_total"]))
                    stages.append(reply.content["timings"])
            out[name] = {"round_trip_ms": 1e3 * float(np.median(total)), "server_ms": 1e3 * float(np.median(server)),
                         "fps": 1.0 / float(np.median(total)),
                         "server_stages_ms": {k: 1e3 * float(np.median([s.get(k, 0.0) for s in stages]))
                                              for k in stages[-1] if k != "server_total"}}  # fmt: skip
        client.close()
        return out
    finally:
        stop_serve(proc)


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
    kd0, kd1 = env.kernel_data(), rotated.kernel_data()
    prefiltered = ("spec_flat", "spec_table", "irr_flat")
    shared = all(np.shares_memory(getattr(kd0, k), getattr(kd1, k)) for k in prefiltered) \
        and not np.array_equal(kd0.rot, kd1.rot)  # fmt: skip
    return {"prefilter_warm_s": warm, "prefilter_after_rotation_s": after, "arrays_shared": bool(shared)}

