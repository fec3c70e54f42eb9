"""The forward model delighting inverts: the product's own renderer, run with trial materials. For fixed roughness
and metallic every pixel's linear radiance is affine in albedo, I = c0 + c1 * albedo: exactly for a dielectric;
nearly for a metal, whose albedo is its Fresnel F0 (the multiple-scattering energy, and in a concavity the
reflection of its own reflection, add higher powers of it, which the two renders take as their secant)."""

from dataclasses import replace

import numpy as np

from ...core.camera import Camera
from ...core.envmap import Environment
from ...render.frame import render
from ...render.settings import FINAL, RenderSettings
from relight_protocol.lru import LRU

# the material search's trial renders, and the light fit's lobe renders (splat coverage: settings.mesh_coverage)
SEARCH_RENDER = RenderSettings(supersample=1, specular_samples=32, mesh_coverage=False)
# (the light fit renders a lobe light per basis lobe: specular occlusion from the AO, not recomputed per lobe)
# One bounce of the directional mean, as the preview: a lobe light's shadows are its render's main cost, and the fit
# renders dozens of lobes (eight linked bounces took generate from ~7 to ~30 s on the random suite)
LIGHT_FIT_RENDER = RenderSettings(supersample=1, specular_samples=0, mesh_coverage=False, specular_visibility=False,
                                  bounces=1, linked_bounces=False)  # fmt: skip
# ... through a metal: no diffuse term, so no light-dependent shadows to compute (a lobe light's shadows cost
# ~20x the rest of its render, and the metal fit renders 96 lobes)
METAL_FIT_RENDER = replace(LIGHT_FIT_RENDER, shadows=False)
SECANT_ALBEDO = 0.5  # a dielectric's affine response is the secant from albedo 0 to this
_UNIFORM = LRU(16)  # per (count, value): a read-only uniform per-Gaussian array


def _uniform(n: int, value, width: int = 0) -> np.ndarray:
    """[n] or [n, width] float32 filled with value, the same array object for the same (n, value): a trial asset's
    materials then keep their identity from one trial to the next, and the renderer's shadow cache (keyed on the
    material arrays, which the interreflection depends on) is reused across roughness trials."""
    v = np.asarray(value, np.float32)
    key = (n, width, v.tobytes())

    def make():
        a = np.broadcast_to(v, (n, width) if width else (n,)).copy()
        a.flags.writeable = False
        return a

    return _UNIFORM.get_or_make(key, make)


def with_materials(asset, albedo, roughness, metallic):
    g = asset.gaussians
    n = len(g)
    g2 = replace(g, albedo=_uniform(n, np.broadcast_to(np.asarray(albedo, np.float32), (3,)), 3),
                 roughness=_uniform(n, roughness), metallic=_uniform(n, metallic))
    return replace(asset, gaussians=g2)


def affine_response(asset, camera: Camera, env: Environment, roughness: float, metallic: float,
                    settings: RenderSettings = FINAL):
    """Per pixel (c0, c1), each [H, W, 3], with linear radiance = c0 + c1 * albedo, and alpha [H, W]; rendered
    by the product's own renderer so the inverse matches what relighting will do. A dielectric's diffuse
    interreflection adds higher powers of the albedo (a concavity's bounces reflect albedo^k of the light), so its
    secant is taken to SECANT_ALBEDO, amid real albedos, rather than to 1: eight bounces inside a cup at albedo 1
    would read ~2.5x the light they give at 0.5. A metal's diffuse term is 0, and its secant stays at 1."""
    a1 = 1.0 if metallic >= 1.0 else SECANT_ALBEDO
    r0 = render(with_materials(asset, 0.0, roughness, metallic), camera, env, settings)
    r1 = render(with_materials(asset, a1, roughness, metallic), camera, env, settings)
    a = np.maximum(r0.alpha, 1e-6)
    c0 = r0.hdr / a
    return c0, (r1.hdr / a - c0) / a1, r0.alpha[..., 0], r0.passes
