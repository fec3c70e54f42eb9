"""The unknown input light: a non-negative mix of spherical-Gaussian lobes fitted to the photo's luminance through
the renderer (broad lobes through a dielectric, narrower ones through a metal's reflection), and the albedo contrast
test that tells a metal under such a light."""

from functools import lru_cache

import numpy as np

from ...core.camera import Camera
from ...core.colour import LUMINANCE as LUM  # [3] float64
from ...core.envmap import Environment
from ...core.envmap import lobe_environments
from ...core.prefilter import SH_Y00  # the mean radiance over the sphere is SH_Y00 x the SH DC term
from ...core.visibility_rays import sphere_directions
from ...render.frame import render
from .forward import LIGHT_FIT_RENDER, METAL_FIT_RENDER, with_materials

# The unknown light's scale (albedo_scale). A photo says nothing of how bright its light was (its exposure is the
# photographer's), so its albedo takes a prior: the 95th-percentile albedo luminance is put at ALBEDO_P95. A
# scene-referred input (a float linear render, as the add-on sends for a render made in Blender) keeps the world's
# level: the fitted light's mean radiance is put at WORLD_MEAN_RADIANCE, the median over the bpy wheel's 8 HDRIs at
# Blender's default Background strength 1 (night 0.17, sunset 0.49, sunrise 0.65, courtyard, studio and forest 0.77,
# city 0.94, interior 0.97), unless that would take the brightest albedo (99th percentile) above ALBEDO_MAX.
ALBEDO_P95 = 0.8
WORLD_MEAN_RADIANCE = 0.77
ALBEDO_MAX = 0.95
# A metal, from either input, takes neither: its albedo is its normal-incidence reflectance, and the median albedo
# luminance goes to METAL_MEDIAN, the median over common metals (silver 0.96, aluminium 0.92, gold 0.80, brass
# 0.78, copper 0.70, nickel 0.61, iron 0.57, chromium 0.56, titanium 0.50), no lower than puts its 5th percentile
# at the reflectance floor.
METAL_MEDIAN = 0.70
METAL_LOBES = 96  # unknown light, metal: lobes of the fitted light, and their sharpness (width ~ 1 / sqrt)
METAL_LOBE_SHARPNESS = 32.0


@lru_cache(maxsize=4)
def _lobe_set(n: int, sharpness: float, h: int, w: int) -> tuple[Environment, ...]:
    """n spherical-Gaussian lobes exp(sharpness (d . d_j - 1)) spread evenly (Fibonacci) over the sphere, a
    non-negative basis for the unknown input light: [h, w] equirect Environments, prefiltered."""
    return tuple(lobe_environments(sphere_directions(n), sharpness, h, w))


def estimate_light(asset, camera: Camera, image: np.ndarray, valid: np.ndarray) -> Environment:
    """Unknown input light: the non-negative mix of broad lobes whose render of the asset (uniform white albedo,
    the product's own shadows and AO included) best matches the image's luminance (NNLS). Neutral in colour."""
    return _fit_lobes(with_materials(asset, 1.0, 0.6, 0.0), camera, image, valid, _lobe_set(12, 3.0, 16, 32))


def estimate_metal_light(asset, camera: Camera, image: np.ndarray, valid: np.ndarray,
                         roughness: float) -> Environment:  # fmt: skip
    """Unknown input light for a metal: a mix of narrower lobes fitted through the metal's reflection (white
    albedo at `roughness`), so the reflected room is explained by the light, not baked into the albedo."""
    lights = _lobe_set(METAL_LOBES, METAL_LOBE_SHARPNESS, 32, 64)
    return _fit_lobes(with_materials(asset, 1.0, roughness, 1.0), camera, image, valid, lights, METAL_FIT_RENDER)


def _fit_lobes(white, camera: Camera, image: np.ndarray, valid: np.ndarray, lights: tuple,
               settings=LIGHT_FIT_RENDER) -> Environment:  # fmt: skip
    """NNLS of the image luminance ([H, W, 3], valid [H, W]) on the renders of `white` (an asset with uniform
    white albedo) under each neutral lobe light of `lights` (from _lobe_set), with a little ridge to keep the
    weights spread."""
    from scipy.optimize import nnls


    cols, ok = [], None
    for lobe_env in lights:
        r = render(white, camera, lobe_env, settings)
        a = r.alpha[..., 0]
        ok = valid & (a > 0.99) if ok is None else ok & (a > 0.99)
        cols.append((r.hdr / np.maximum(r.alpha, 1e-6)) @ LUM)
    A = np.stack([c[ok] for c in cols], 1)  # [P, n]
    b = image[ok] @ LUM
    lam = 1e-3 * float(np.mean(A * A))
    A_aug = np.concatenate([A, np.sqrt(lam * len(b)) * np.eye(A.shape[1])])
    wts, _ = nnls(A_aug, np.concatenate([b, np.zeros(A.shape[1])]))
    eq = sum(wj * lobe_env.equirect[..., 0] for wj, lobe_env in zip(wts, lights))
    return Environment(np.repeat(np.asarray(eq, np.float32)[..., None], 3, -1))


def albedo_contrast(image: np.ndarray, c0: np.ndarray, c1: np.ndarray, valid: np.ndarray) -> float:
    """p95 / p5 of the luminance of the albedo a dielectric would need, (image - c0) / c1, over `valid` pixels
    (arrays [H, W, 3] as in local_albedo, valid [H, W] bool; c0, c1 under the estimated lobe light). The light's
    own pattern (a hard sun, shadows) is divided out; what is left is the texture's contrast for a dielectric
    (2-5:1 over the evaluation objects under all 8 HDRIs), and the reflected room for a metal (6-175:1)."""
    y = ((image - c0) @ LUM / np.maximum(c1 @ LUM, 1e-6))[valid]
    if y.size < 16:
        return 1.0
    return float(np.percentile(y, 95) / max(float(np.percentile(y, 5)), 1e-4))


def albedo_scale(albedo_lum: np.ndarray, env: Environment, metal_floor: float, scene_referred: bool) -> float:
    """The factor the albedo is multiplied by (and the fitted light `env` divided by) to settle the unknown light's
    scale: albedo_lum [P] the solved albedo's luminance over the object's pixels; metal_floor the lowest albedo the
    material allows (a metal's reflectance floor, 0 for a dielectric), which the 5th percentile is kept above;
    scene_referred: the input is a float linear render (InputImage.ceiling is inf). See ALBEDO_P95 and
    METAL_MEDIAN."""
    if metal_floor > 0:  # a metal's albedo is its reflectance, whose level is known: see METAL_MEDIAN
        return max(METAL_MEDIAN / max(float(np.median(albedo_lum)), 1e-6),
                   metal_floor / max(float(np.percentile(albedo_lum, 5)), 1e-6))
    if scene_referred:
        level = float(env.sh9[0] @ LUM) * SH_Y00  # the fitted light's mean radiance (luminance)
        if level > 0:
            return min(level / WORLD_MEAN_RADIANCE, ALBEDO_MAX / max(float(np.percentile(albedo_lum, 99)), 1e-6))
    return ALBEDO_P95 / max(float(np.percentile(albedo_lum, 95)), 1e-6)
