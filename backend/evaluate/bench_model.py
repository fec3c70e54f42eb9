"""The bench's work measure and cost model: pixel-Gaussian pairs from the native projection, the log-log scaling fit,
the linear cost model over the grid and the bars of the headline case."""

import numpy as np

HEADLINE = (512, 100_000)  # the case the bars are about


def footprint_pairs(args, width: int, height: int, eps2d: float) -> tuple[int, int]:
    """(pixel-Gaussian pairs, visible Gaussians): the summed on-screen area, in pixels, of every visible
    Gaussian's alpha >= 1/255 box (the work the compositor can do), from the native projection."""
    from ..render import splat_native as sn

    means, quats, scales, opacities, _, viewmats, Ks = args
    n = means.shape[0]
    gp = np.zeros((n, sn.N_GP), np.float32)
    rect = np.zeros((n, 4), np.int32)
    f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    sn.project_kernel(f32(means), f32(quats), f32(scales), f32(opacities).reshape(-1), viewmats[0], Ks[0], width, height,
                0.01, 1e10, float(eps2d), gp, rect)  # fmt: skip
    vis = (rect[:, 1] > rect[:, 0]) & (rect[:, 3] > rect[:, 2])
    g = gp[vis].astype(np.float64)
    x0 = np.clip(g[:, sn.G_X] - g[:, sn.G_EXT_X], 0, width)
    x1 = np.clip(g[:, sn.G_X] + g[:, sn.G_EXT_X], 0, width)
    y0 = np.clip(g[:, sn.G_Y] - g[:, sn.G_EXT_Y], 0, height)
    y1 = np.clip(g[:, sn.G_Y] + g[:, sn.G_EXT_Y], 0, height)
    return int(np.sum((x1 - x0) * (y1 - y0))), int(vis.sum())


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
        "fps_interactive_orbit": c["interactive_orbit"]["fps"] if "interactive_orbit" in c else None,
        "raster_speedup_vs_torch": ref.get("ratio"), "speedup_bar": 20.0,
        "max_abs_diff": ref.get("max_abs_diff"), "diff_bar": 1e-3,
    }  # fmt: skip

