"""Lighting homogenization: remove the light baked into the input photo by inverse rendering against the geometry.

The forward model is the renderer itself (render.frame.render, forward.py): for fixed roughness and metallic, every pixel's linear
radiance is affine in albedo, I = c0 + c1 * albedo, so two renders of the asset with albedo 0 and 1 from the input
camera give the exact per-pixel inverse, shadows, AO and highlights included. Roughness is the global value whose
locally constant albedo re-renders the photo best (a highlight or a reflection the material does not explain is
left as a residual). Metal or not is decided by whether the photo's brightness follows the metal's reflection
pattern or the dielectric's shading (metal_slope) when the light is given; with an unknown light, by how much
of the contrast the albedo of a dielectric would need (albedo_contrast: a metal shows the room, tens to one) a light
fitted through a metal's reflection explains (a texture's contrast stays under any light). The input light is the
given HDRI when the hint is `world`; otherwise a non-negative mix of lobes fitted to the image's luminance (broad
lobes through a dielectric, narrower ones through a metal's reflection; neutral colour, scale fixed by an albedo
prior). Pixels the inverse is unsure of (little response, clipped highlights) lean
on the local estimate; the unseen side is completed from the reliable seen points, fading to their mean colour.
"""

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt

from ...core.camera import Camera
from ...core.colour import LUMINANCE as LUM  # [3] float64
from ...core.envmap import Environment
from ...render.occlusion import facing
from .albedo_fit import fit_seen_albedo
from .forward import LIGHT_FIT_RENDER, METAL_FIT_RENDER, affine_response
from .light_fit import albedo_contrast, estimate_light, estimate_metal_light
from .materials import (
    LOCAL_SIGMA,
    METAL_MIN_ALBEDO,
    regularised_inverse,
    search_material,
    unsaturated,
)
from .unseen import complete_unseen, sample_image, visible_points

DEFAULT_ROUGHNESS = 0.5
DEFAULT_METALLIC = 0.0
ALBEDO_P95 = 0.8  # unknown light: the scale ambiguity is resolved by putting the 95th-percentile albedo here
# (for a metal, unless that takes its 5th percentile below METAL_MIN_ALBEDO: then the 5th percentile goes there)
SEARCH_SIDE = 192  # the material search runs at most at this resolution
METAL_CONTRAST = 5.5  # unknown light: a metal is tested for when a dielectric's albedo would span more than this
# (albedo_contrast), and taken when ...
METAL_EVIDENCE = 20.0  # ... the metal hypothesis, with a light fitted through its reflection, shrinks that span at
# least this many times, or ...
METAL_SPAN = 4.0  # ... leaves an albedo spanning no more than a metal's plausibly does (normal-incidence
# reflectances of real metals run 0.5-1, a texture on top a little more).
# Measured as (dielectric span, metal span, their ratio): textured dielectrics whose span suggested a metal (print,
# checks; random suite seed 0, first 19 cases) at (12-89, 7.8-21, 0.8-7.6); metals at (17-73, 2.0-6.9, 3.4-20) on
# `relight eval relight`'s vase and steel box (the box under the studio, (23, 6.9), still reads as a dielectric) and
# (14-45900, 2.0-12.4, 7-4600) on the suite. A metal read as a
# dielectric keeps its reflections baked in, as the baseline does; a dielectric read as a metal relights as chrome,
# so both bars sit clear of the dielectrics
METAL_PRIOR_ROUGHNESS = 0.3  # unknown light, metal: roughness (not separable from the light's sharpness)
FACING_MIN = 0.25  # seen points at grazing view (cosine below this) are re-estimated from their reliable neighbours


def reduce_to_search_side(image: np.ndarray, mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """The reduced view the material search (and the self-check) work at: image [H, W, 3] and mask [H, W] bool ->
    (k, [H // k, W // k, 3] mean over k x k blocks, [H // k, W // k] blocks wholly inside the mask), with k the
    smallest integer that brings the longer side to at most SEARCH_SIDE."""
    H, W = mask.shape
    k = max(1, int(np.ceil(max(H, W) / SEARCH_SIDE)))
    small_img = image[: (H // k) * k, : (W // k) * k].reshape(H // k, k, W // k, k, 3).mean((1, 3))
    small_mask = mask[: (H // k) * k, : (W // k) * k].reshape(H // k, k, W // k, k).all((1, 3))
    return k, small_img, small_mask


@dataclass
class Materials:
    albedo: np.ndarray  # [N, 3] linear
    roughness: np.ndarray  # [N]
    metallic: np.ndarray  # [N]
    seen: np.ndarray  # [N] bool, visible in the input image
    light_sh9: np.ndarray  # [9, 3] estimated input radiance in SH (world frame)
    scores: dict  # "(roughness, metallic)" -> residual_score (lower is better); "metal_slope", "albedo_contrast"
    light: Environment | None = None  # the input light the materials were solved under (scaled as the albedo was)


def delight(
    image: np.ndarray,  # [H, W, 3] linear radiance of the input photo
    mask: np.ndarray,  # [H, W] bool object mask
    asset,  # RelightableAsset with geometry Gaussians (placeholder materials), input camera in asset space
    camera_world: Camera,  # the input camera in world space
    light_hint: str = "unknown",
    world: Environment | None = None,
    spacing: float = 0.01,
    enabled: bool = True,
    ceiling: float = 1.0,  # the input's clipping level, linear (InputImage.ceiling; inf for a float render)
    progress=None,
) -> Materials:
    """Recover per-Gaussian PBR materials from the photo."""
    step = progress or (lambda *a, **k: None)
    g = asset.gaussians
    seen, xy = visible_points(asset.input_camera, asset.vertices, asset.faces, g.means, g.normals, mask)
    if seen.sum() < 16:
        raise ValueError("the geometry and the image do not line up: fewer than 16 surface points are visible")
    H, W = mask.shape
    valid = binary_erosion(mask, iterations=1)
    reliable = seen.copy()

    inflated = bool(asset.meta.get("provider") == "inflate") if asset.meta else False
    if not enabled:  # the baseline: the photo's colours taken as albedo, baked light and all
        albedo_px, rough, metal, light, scores = image, DEFAULT_ROUGHNESS, DEFAULT_METALLIC, np.zeros((9, 3)), {}
        solved_under = None
    else:
        # the search runs on a reduced image; the final inverse at full resolution
        k, small_img, small_valid = reduce_to_search_side(image, valid)
        small_cam = camera_world.resized(W // k, H // k)
        known = light_hint == "world" and world is not None
        scores = {}
        # a clipped pixel only bounds its radiance from below: the light fits leave it out (the contrast tests keep
        # it: there a lower bound on a bright pixel can only understate the contrast)
        fit_valid = small_valid & unsaturated(small_img, ceiling)
        step("delight", 0.5, "the input light: given" if known else "estimating the input light")
        env = world if known else estimate_light(asset, small_cam, small_img, fit_valid)
        contrast = 0.0
        # the contrast test trusts the geometry's shading: an inflated shape's normals are a guess, and their
        # errors alone put tens-to-one into the implied albedo (the inflated torus read as metal), so only the
        # scene's own mesh is tested
        if not known and not inflated:
            c0d, c1d, alpha_s, _ = affine_response(asset, small_cam, env, 0.6, 0.0, LIGHT_FIT_RENDER)
            contrast = albedo_contrast(small_img, c0d, c1d, small_valid & (alpha_s > 0.99))
            scores["albedo_contrast"] = contrast
        metal_env = None
        if not known and contrast > METAL_CONTRAST:
            # a radiance range a dielectric's shading cannot give: a metal reflecting the room, or a texture of
            # high contrast (print, paint). Only the metal is explained by a light fitted through its reflection:
            # its albedo then spans little, while a texture keeps its contrast under any light
            step("delight", 0.55, f"dielectric albedo would span {contrast:.0f}:1: testing a metal's reflection")
            metal_env = estimate_metal_light(asset, small_cam, small_img, fit_valid, METAL_PRIOR_ROUGHNESS)
            c0m, c1m, alpha_m, _ = affine_response(asset, small_cam, metal_env, METAL_PRIOR_ROUGHNESS, 1.0,
                                                   METAL_FIT_RENDER)  # fmt: skip
            contrast_m = albedo_contrast(small_img, c0m, c1m, small_valid & (alpha_s > 0.99) & (alpha_m > 0.99))
            scores["metal_albedo_contrast"] = contrast_m
            if contrast < METAL_EVIDENCE * contrast_m and contrast_m > METAL_SPAN:
                metal_env = None
        if metal_env is not None:
            # unknown light and a radiance range only a reflection of the room gives: a metal. Its roughness and
            # the light's sharpness trade off (a sharp room on a rough metal looks like a blurred room on a smooth
            # one), so the roughness is a prior and the light is the one fitted through the metal's reflection
            step("delight", 0.6, f"metal (albedo {contrast:.0f}:1 as a dielectric, {contrast_m:.0f}:1 as a metal)")
            metal, rough, env = 1.0, METAL_PRIOR_ROUGHNESS, metal_env
        else:
            rough, metal = search_material(small_img, small_valid, asset, small_cam, env, known, scores, step,
                                           ceiling)  # fmt: skip
        step("delight", 0.9, f"albedo at full resolution (roughness {rough:.2f}, metallic {metal:.1f})")
        c0, c1, _, _ = affine_response(asset, camera_world, env, rough, metal)
        lo = METAL_MIN_ALBEDO * metal
        albedo_px = np.clip(regularised_inverse(image, c0, c1, valid, 2.0 * LOCAL_SIGMA * k, lo, ceiling), lo, None)
        light = env.sh9
        if not known:
            y = albedo_px[valid] @ LUM  # [P] albedo luminance before the scale prior
            scale = ALBEDO_P95 / max(float(np.percentile(y, 95)), 1e-6)
            if metal:  # the prior may not take a metal below its reflectance floor (the inverse's bound above)
                scale = max(scale, METAL_MIN_ALBEDO / max(float(np.percentile(y, 5)), 1e-6))
            albedo_px = albedo_px * scale
            light = light / scale
            env = env.with_transform(env.rotation_z, env.strength / scale)
        solved_under = env
        # grazing points: the inverse there rests on Fresnel and silhouette pixels; let reliable neighbours decide
        towards = facing(asset.input_camera, g.normals, g.means) > FACING_MIN  # [N] asset space
        if (seen & towards).sum() >= 16:
            reliable = seen & towards
    # fill pixels outside the valid area from their nearest valid pixel, then read each seen Gaussian's albedo
    if (~valid).any() and valid.any():
        _, (iy, ix) = distance_transform_edt(~valid, return_indices=True)
        albedo_px = albedo_px[iy, ix]
    step("delight", 0.95, "completing the side the photo does not show")
    albedo_seen = np.clip(sample_image(albedo_px, xy[reliable]), 0.0, 1.0)
    albedo = complete_unseen(g.means, reliable, albedo_seen, asset.input_camera, spacing, mirror=inflated,
                             smooth_steps=3 if inflated else 10, fade=not inflated)
    step("delight", 0.955, "fitting the seen albedo to the photo's edges")
    albedo = fit_seen_albedo(asset, camera_world, albedo_px, valid, albedo, reliable, xy, METAL_MIN_ALBEDO * metal,
                             progress=lambda f: step("delight", 0.955 + 0.01 * f, "fitting the seen albedo"))
    N = len(g)
    return Materials(
        albedo.astype(np.float32),
        np.full(N, rough, np.float32),
        np.full(N, metal, np.float32),
        seen,
        np.asarray(light, np.float32),
        scores,
        solved_under,
    )
