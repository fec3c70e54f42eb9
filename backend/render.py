"""Relight an asset: rasterize its Gaussians into G-buffers, split-sum shade under an environment, AgX to 8 bit."""

import time
from dataclasses import dataclass, field

import numpy as np

from .asset import RelightableAsset
from .camera import Camera
from .colour import agx, to_uint8
from .envmap import Environment
from .geometry.base import camera_to_asset
from .splat_raster import rasterize


def _noop(stage: str, fraction: float, message: str = "") -> None:
    pass


@dataclass
class RenderResult:
    rgba8: np.ndarray  # [H, W, 4] uint8: AgX sRGB, straight alpha
    hdr: np.ndarray  # [H, W, 3] float32 linear, premultiplied by alpha (or composited over the background)
    alpha: np.ndarray  # [H, W, 1]
    passes: dict  # albedo, roughness, metallic, normal, visibility: [H, W, C]
    timings: dict = field(default_factory=dict)  # seconds per stage


def render(asset: RelightableAsset, camera: Camera, env: Environment, background: bool = False,
           progress=_noop, backend: str = "auto") -> RenderResult:
    """Relight the asset under `env` from a world-space camera: G-buffers, split-sum shading, AgX."""
    from .shading import composite, environment_background, shade  # numba kernels: load on first render

    timings = {}
    t = time.perf_counter()
    view = camera_to_asset(camera, asset.model_matrix)
    g = asset.gaussians
    feats = g.features(normal_matrix=asset.rotation)
    colors, alphas, _ = rasterize(g.means, g.quats, g.scales, g.opacities, feats, view.viewmat[None].astype(np.float32),
                                  view.K[None].astype(np.float32), camera.width, camera.height, backend=backend)
    timings["rasterize"] = time.perf_counter() - t
    progress("render", 0.5, "shading")
    t = time.perf_counter()
    out = shade(colors[0], alphas[0], camera, env)
    timings["shade"] = time.perf_counter() - t
    t = time.perf_counter()
    alpha = out["alpha"]
    if background:
        rgb_lin = composite(out["hdr"], alpha, environment_background(camera, env))
        a8 = np.full(alpha.shape, 255, np.uint8)
    else:
        rgb_lin = out["hdr"] / np.maximum(alpha, 1e-6)  # straight alpha for the image file
        a8 = to_uint8(alpha)
    rgb = agx(rgb_lin)
    if not background:
        rgb = rgb * (alpha > 0)
    rgba8 = np.concatenate([to_uint8(rgb), a8], -1)
    timings["tonemap"] = time.perf_counter() - t
    passes = {k: out[k] for k in ("albedo", "roughness", "metallic", "normal", "visibility") if k in out}
    return RenderResult(rgba8, out["hdr"], alpha, passes, timings)


