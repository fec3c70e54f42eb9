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
prior, or for a float render by the world's usual level: light_fit.albedo_scale). Pixels the inverse is unsure of
(little response, clipped highlights) lean on the local estimate; with the light given, per channel: a channel at
the input's ceiling only bounds its albedo from below, and the pixel's other channels are still measured
(materials.unclipped); the unseen side is completed from the reliable seen points, fading to their mean colour.

`prepare` builds the problem, `first_hypothesis` reads a material and a light from the photo, `solve` inverts the
albedo under one reading, `alternatives` names the safer readings; generate.self_check weighs them by how well each
reproduces the photo.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt

from ...core.camera import Camera
from ...core.colour import LUMINANCE as LUM  # [3] float64
from ...core.envmap import Environment
from ...render.occlusion import facing
from .albedo_fit import fit_seen_albedo
from .forward import LIGHT_FIT_RENDER, METAL_FIT_RENDER, affine_response
from .light_fit import albedo_contrast, albedo_scale, estimate_light, estimate_metal_light
from .regions import albedo_regions, full_resolution, metal_regions
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
SAFE_ROUGHNESS = 0.65  # the fallback's rough dielectric: relit, a wrong guess at this roughness errs least
# Light given: a per-region metal decision checked against the one material (regions.py; prepare's per_region).
# On by default since the forward model's metal fixes (stops 22-23): on the random suite's painted metals
# (metal_paint) it was kept in 3 of 12 cases of seed 0 and 4 of 12 of seed 1 (held out), each relit better under B
# (+0.56 to +2.53 dB) and none worse; on seed 0's other 60 cases it was a contender in 8 but never kept, so it
# changed no asset there, nor on the fixed objects (docs/relight_eval/stop24_per_region). It costs one more solve
# where the regions disagree.
# On a half-painted sphere (tests/test_self_check.py) it is kept and right on over 90 % of the surface.
PER_REGION = True
MIN_FIT_PIXELS = 16  # an unknown light is fitted to at least this many pixels of the search view (_light_fit_pixels)
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
    hypothesis: "Hypothesis | None" = None  # what was solved (None: the baseline)


@dataclass(frozen=True)
class Hypothesis:
    """One reading of the photo: a material for the whole object and the light its albedo is solved under."""

    roughness: float
    metallic: float
    env: Environment  # the input light (unknown: the fitted one, before the albedo prior sets its scale)
    how: str  # how it was reached: "search", "metal reflection" (unknown light), "other metallic", "rough dielectric",
    # "per region"
    metal_map: tuple | None = None  # per region: ([h, w] bool metal, [h, w] bool decided) at the search resolution;
    # the metal's roughness is metal_roughness, and `metallic` the metal share of the object's pixels
    metal_roughness: float = 0.0


@dataclass
class Problem:
    """A delighting problem: the photo, the asset's geometry, the input light if given, and what every hypothesis
    shares (the visible Gaussians, the reduced view the searches run at)."""

    image: np.ndarray  # [H, W, 3] linear radiance of the input photo
    valid: np.ndarray  # [H, W] bool: the object mask eroded by a pixel
    asset: object  # RelightableAsset with geometry Gaussians
    camera_world: Camera  # the input camera, world space
    known: bool  # the input light is given (light hint "world")
    world: Environment | None  # ... and this is it
    spacing: float
    ceiling: float  # the input's clipping level, linear (InputImage.ceiling; inf for a float render)
    inflated: bool  # geometry inflated from the mask (its normals are a guess)
    seen: np.ndarray  # [N] bool, visible in the input image
    xy: np.ndarray  # [N, 2] their pixel coordinates
    k: int  # reduction factor of the search view (reduce_to_search_side)
    small_img: np.ndarray  # [h, w, 3] the reduced photo
    small_valid: np.ndarray  # [h, w] bool
    small_cam: Camera  # the reduced input camera, world space
    per_region: bool = PER_REGION  # light given: also read metal or not per region (a contender, see regions.py)
    best_roughness: dict = field(default_factory=dict)  # metallic -> best roughness the search found (light given)
    contenders: list = field(default_factory=list)  # hypotheses always checked against the first (per region)


def prepare(image, mask, asset, camera_world: Camera, light_hint: str = "unknown", world: Environment | None = None,
            spacing: float = 0.01, ceiling: float = 1.0, per_region: bool = PER_REGION) -> Problem:  # fmt: skip
    """The shared part of a delighting problem (arguments as in delight; per_region: see PER_REGION). Raises
    ValueError when the geometry and the image do not line up."""
    g = asset.gaussians
    seen, xy = visible_points(asset.input_camera, asset.vertices, asset.faces, g.means, g.normals, mask)
    if seen.sum() < 16:
        raise ValueError("the geometry and the image do not line up: fewer than 16 surface points are visible")
    H, W = mask.shape
    valid = binary_erosion(mask, iterations=1)
    k, small_img, small_valid = reduce_to_search_side(image, valid)
    inflated = bool(asset.meta.get("provider") == "inflate") if asset.meta else False
    return Problem(image, valid, asset, camera_world, light_hint == "world" and world is not None, world, spacing,
                   ceiling, inflated, seen, xy, k, small_img, small_valid, camera_world.resized(W // k, H // k),
                   per_region)  # fmt: skip


def _clipped_throughout(p: Problem) -> bool:
    """Fewer than MIN_FIT_PIXELS of the search view's pixels have no channel clipped."""
    return int((p.small_valid & unsaturated(p.small_img, p.ceiling)).sum()) < MIN_FIT_PIXELS


def _light_fit_pixels(p: Problem) -> np.ndarray:
    """[h, w] bool: the search view's pixels the unknown light is fitted to, those with no channel clipped; when a
    photo clips (nearly) everywhere, all of them, each clipped one then taken at its lower bound (the fit would
    otherwise have nothing to go on)."""
    return p.small_valid if _clipped_throughout(p) else p.small_valid & unsaturated(p.small_img, p.ceiling)


def first_hypothesis(p: Problem, scores: dict, step) -> Hypothesis:
    """The material and light read from the photo: the given light or a fitted one; with an unknown light metal or
    not by the albedo contrast test, then the material search (roughness, and metal or not when the light is
    given). Diagnostics go into scores."""
    # a clipped pixel only bounds its radiance from below: the light fits leave it out unless nothing else is left
    # (the contrast tests keep it: there a lower bound on a bright pixel can only understate the contrast)
    fit_valid = _light_fit_pixels(p)
    step("delight", 0.5, "the input light: given" if p.known else "estimating the input light")
    env = p.world if p.known else estimate_light(p.asset, p.small_cam, p.small_img, fit_valid)
    contrast = 0.0
    # the contrast test trusts the geometry's shading: an inflated shape's normals are a guess, and their
    # errors alone put tens-to-one into the implied albedo (the inflated torus read as metal), so only the
    # scene's own mesh is tested
    if not p.known and not p.inflated:
        c0d, c1d, alpha_s, _ = affine_response(p.asset, p.small_cam, env, 0.6, 0.0, LIGHT_FIT_RENDER)
        contrast = albedo_contrast(p.small_img, c0d, c1d, p.small_valid & (alpha_s > 0.99))
        scores["albedo_contrast"] = contrast
    if not p.known and contrast > METAL_CONTRAST:
        # a radiance range a dielectric's shading cannot give: a metal reflecting the room, or a texture of
        # high contrast (print, paint). Only the metal is explained by a light fitted through its reflection:
        # its albedo then spans little, while a texture keeps its contrast under any light
        step("delight", 0.55, f"dielectric albedo would span {contrast:.0f}:1: testing a metal's reflection")
        metal_env = estimate_metal_light(p.asset, p.small_cam, p.small_img, fit_valid, METAL_PRIOR_ROUGHNESS)
        c0m, c1m, alpha_m, _ = affine_response(p.asset, p.small_cam, metal_env, METAL_PRIOR_ROUGHNESS, 1.0,
                                               METAL_FIT_RENDER)  # fmt: skip
        contrast_m = albedo_contrast(p.small_img, c0m, c1m, p.small_valid & (alpha_s > 0.99) & (alpha_m > 0.99))
        scores["metal_albedo_contrast"] = contrast_m
        if contrast >= METAL_EVIDENCE * contrast_m or contrast_m <= METAL_SPAN:
            # unknown light and a radiance range only a reflection of the room gives: a metal. Its roughness and
            # the light's sharpness trade off (a sharp room on a rough metal looks like a blurred room on a smooth
            # one), so the roughness is a prior and the light is the one fitted through the metal's reflection
            step("delight", 0.6, f"metal (albedo {contrast:.0f}:1 as a dielectric, {contrast_m:.0f}:1 as a metal)")
            return Hypothesis(METAL_PRIOR_ROUGHNESS, 1.0, metal_env, "metal reflection")
    rough, metal, p.best_roughness, responses = search_material(p.small_img, p.small_valid, p.asset, p.small_cam, env,
                                                                p.known, scores, step, p.ceiling)  # fmt: skip
    if p.known and p.per_region:
        rd, rm = p.best_roughness[0.0], p.best_roughness[1.0]
        (c0d, c1d, ok_d), (c0m, c1m, ok_m) = responses[(rd, 0.0)], responses[(rm, 1.0)]
        labels = albedo_regions(p.small_img, c0d, c1d, ok_d & ok_m)
        metal_map = metal_regions(p.small_img, (c0d, c1d), (c0m, c1m), labels, scores, p.ceiling)
        if metal_map is not None:  # some regions read as metal, others not: checked against the one material
            share = float(metal_map.sum() / max((labels >= 0).sum(), 1))
            p.contenders.append(Hypothesis(rd, share, env, "per region", (metal_map, labels >= 0), rm))
    return Hypothesis(rough, metal, env, "search")


def solve(p: Problem, hyp: Hypothesis, scores: dict, step) -> Materials:
    """Per-Gaussian materials under one hypothesis: the albedo inverse at full resolution (scaled by the albedo
    prior when the light is unknown), then completed on the side the photo does not show."""
    g = p.asset.gaussians
    if hyp.metal_map is not None:
        return _solve_regions(p, hyp, scores, step)
    rough, metal, env = hyp.roughness, hyp.metallic, hyp.env
    step("delight", 0.9, f"albedo at full resolution (roughness {rough:.2f}, metallic {metal:.1f})")
    c0, c1, _, _ = affine_response(p.asset, p.camera_world, env, rough, metal)
    lo = METAL_MIN_ALBEDO * metal
    # a clipped channel is read as a bound only under the given light (or when nothing else is left): a fitted
    # lobe light makes no highlight, so there a clipped pixel is left out whole (regularised_inverse's per_channel)
    albedo_px = np.clip(regularised_inverse(p.image, c0, c1, p.valid, 2.0 * LOCAL_SIGMA * p.k, lo, p.ceiling,
                                            per_channel=p.known or _clipped_throughout(p)), lo, None)  # fmt: skip
    light = env.sh9
    if not p.known:
        y = albedo_px[p.valid] @ LUM  # [P] albedo luminance before the scale prior
        scale = albedo_scale(y, env, lo, scene_referred=bool(np.isinf(p.ceiling)))
        albedo_px = albedo_px * scale
        light = light / scale
        env = env.with_transform(env.rotation_z, env.strength / scale)
    # grazing points: the inverse there rests on Fresnel and silhouette pixels; let reliable neighbours decide
    reliable = p.seen
    towards = facing(p.asset.input_camera, g.normals, g.means) > FACING_MIN  # [N] asset space
    if (p.seen & towards).sum() >= 16:
        reliable = p.seen & towards
    albedo = _albedo_per_gaussian(p, albedo_px, reliable, step, lo)
    N = len(g)
    return Materials(albedo, np.full(N, rough, np.float32), np.full(N, metal, np.float32), p.seen,
                     np.asarray(light, np.float32), scores, env, hyp)  # fmt: skip


def _solve_regions(p: Problem, hyp: Hypothesis, scores: dict, step) -> Materials:
    """solve() for a per-region hypothesis (light given): each pixel's albedo inverted under its region's material,
    each region's inverse leaning on its own neighbours; the metal map carried to the Gaussians like the albedo."""
    g, env = p.asset.gaussians, hyp.env
    small, decided = hyp.metal_map
    metal_px = full_resolution(small, decided, p.k, p.valid.shape)  # [H, W] bool
    step("delight", 0.9, f"albedo at full resolution per region ({hyp.metallic:.0%} metal)")
    sigma = 2.0 * LOCAL_SIGMA * p.k
    c0, c1, _, _ = affine_response(p.asset, p.camera_world, env, hyp.roughness, 0.0)
    paint = np.clip(regularised_inverse(p.image, c0, c1, p.valid & ~metal_px, sigma, 0.0, p.ceiling), 0.0, None)
    c0, c1, _, _ = affine_response(p.asset, p.camera_world, env, hyp.metal_roughness, 1.0)
    metal = np.clip(regularised_inverse(p.image, c0, c1, p.valid & metal_px, sigma, METAL_MIN_ALBEDO, p.ceiling),
                    METAL_MIN_ALBEDO, None)  # fmt: skip
    albedo_px = np.where(metal_px[..., None], metal, paint)
    towards = facing(p.asset.input_camera, g.normals, g.means) > FACING_MIN  # [N] asset space
    reliable = p.seen & towards if (p.seen & towards).sum() >= 16 else p.seen
    albedo = _albedo_per_gaussian(p, albedo_px, reliable, step)
    metallic = _albedo_per_gaussian(p, np.repeat(metal_px[..., None], 3, -1).astype(np.float64), reliable,
                                    step, fit=False)[:, 0] > 0.5  # fmt: skip
    return Materials(albedo, np.where(metallic, hyp.metal_roughness, hyp.roughness).astype(np.float32),
                     metallic.astype(np.float32), p.seen, np.asarray(env.sh9, np.float32), scores, env, hyp)


def _albedo_per_gaussian(p: Problem, albedo_px: np.ndarray, reliable: np.ndarray, step, lo: float = 0.0,
                         fit: bool = True) -> np.ndarray:  # fmt: skip
    """[N, 3] float32: per-pixel albedo [H, W, 3] read at the `reliable` [N] seen Gaussians, the rest completed; with
    `fit`, the seen ones then fitted through the renderer to albedo_px (albedo_fit; values in [lo, 1])."""
    valid = p.valid
    # fill pixels outside the valid area from their nearest valid pixel, then read each seen Gaussian's albedo
    if (~valid).any() and valid.any():
        _, (iy, ix) = distance_transform_edt(~valid, return_indices=True)
        albedo_px = albedo_px[iy, ix]
    step("delight", 0.95, "completing the side the photo does not show")
    albedo_seen = np.clip(sample_image(albedo_px, p.xy[reliable]), 0.0, 1.0)
    albedo = complete_unseen(p.asset.gaussians.means, reliable, albedo_seen, p.asset.input_camera, p.spacing,
                             mirror=p.inflated, smooth_steps=3 if p.inflated else 10, fade=not p.inflated)
    if fit:
        step("delight", 0.955, "fitting the seen albedo to the photo's edges")
        albedo = fit_seen_albedo(p.asset, p.camera_world, albedo_px, valid, albedo, reliable, p.xy, lo,
                                 progress=lambda f: step("delight", 0.955 + 0.01 * f, "fitting the seen albedo"))
    return albedo.astype(np.float32)


def alternatives(p: Problem, first: Hypothesis) -> list[Hypothesis]:
    """What to try when `first` reproduces the photo poorly, safest last. With the light given: the other side of
    the metal decision at the roughness the search found best for it, then a rough dielectric (its albedo absorbs
    what the light does not explain, as the baseline does, but the light's shading is divided out). With an
    unknown light only a metal's reading is questioned (a high-contrast texture can pass for a reflection): a rough
    dielectric under the broad fitted light instead. A dielectric's roughness is not: under a fitted light the
    self-check barely moves with it (random suite seed 0, cases 25-30: within 1.5 dB from roughness 0.1 to 0.85),
    and on `relight eval relight`'s held-out polished sphere (interior -> forest) a rough dielectric checked 0.9 dB
    better and relit 0.8 dB worse (22.2 against 23.0 dB, below the baseline's 22.6)."""
    if not p.known:
        if not first.metallic:
            return []
        env = estimate_light(p.asset, p.small_cam, p.small_img, _light_fit_pixels(p))
        return [Hypothesis(SAFE_ROUGHNESS, 0.0, env, "rough dielectric")]
    out = []
    other = 1.0 - first.metallic
    if other in p.best_roughness:
        out.append(Hypothesis(p.best_roughness[other], other, first.env, "other metallic"))
    if (first.metallic, first.roughness) != (0.0, SAFE_ROUGHNESS):
        out.append(Hypothesis(SAFE_ROUGHNESS, 0.0, first.env, "rough dielectric"))
    return out


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
    """Recover per-Gaussian PBR materials from the photo: the first hypothesis, solved (see self_check for the
    fallbacks when it reproduces the photo poorly)."""
    step = progress or (lambda *a, **k: None)
    p = prepare(image, mask, asset, camera_world, light_hint, world, spacing, ceiling)
    if not enabled:  # the baseline: the photo's colours taken as albedo, baked light and all
        return baseline(p)
    scores = {}
    return solve(p, first_hypothesis(p, scores, step), scores, step)


def baseline(p: Problem) -> Materials:
    """No delighting: the photo's colours taken as albedo, baked light and all, at the default material."""
    N = len(p.asset.gaussians)
    albedo = _albedo_per_gaussian(p, p.image, p.seen, lambda *a, **k: None)
    return Materials(albedo, np.full(N, DEFAULT_ROUGHNESS, np.float32), np.full(N, DEFAULT_METALLIC, np.float32),
                     p.seen, np.zeros((9, 3), np.float32), {})  # fmt: skip
