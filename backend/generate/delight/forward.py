"""The forward model delighting inverts: the product's own renderer, run with trial materials. For fixed roughness
and metallic every pixel's linear radiance is affine in albedo, I = c0 + c1 * albedo."""

from dataclasses import replace

import numpy as np

from ...core.camera import Camera
from ...core.envmap import Environment
from ...render.frame import render
from ...render.settings import FINAL, RenderSettings

SEARCH_RENDER = RenderSettings(supersample=1, specular_samples=32)  # the material search's trial renders
LIGHT_FIT_RENDER = RenderSettings(supersample=1, specular_samples=0)  # the light fit's lobe renders


def with_materials(asset, albedo, roughness, metallic):
    g = asset.gaussians
    n = len(g)
    g2 = replace(g, albedo=np.broadcast_to(np.asarray(albedo, np.float32), (n, 3)).copy(),
                 roughness=np.full(n, roughness, np.float32), metallic=np.full(n, metallic, np.float32))
    return replace(asset, gaussians=g2)


def affine_response(asset, camera: Camera, env: Environment, roughness: float, metallic: float,
                    settings: RenderSettings = FINAL):
    """Per pixel (c0, c1), each [H, W, 3], with linear radiance = c0 + c1 * albedo, and alpha [H, W]; rendered
    by the product's own renderer so the inverse matches what relighting will do."""

    r0 = render(with_materials(asset, 0.0, roughness, metallic), camera, env, settings)
    r1 = render(with_materials(asset, 1.0, roughness, metallic), camera, env, settings)
    a = np.maximum(r0.alpha, 1e-6)
    c0 = r0.hdr / a
    return c0, r1.hdr / a - c0, r0.alpha[..., 0], r0.passes
