"""Lighting homogenization: remove the light baked into the input photo by inverse rendering against the geometry.

The forward model is the renderer itself (render.render): for fixed roughness and metallic, every pixel's linear
radiance is affine in albedo, I = c0 + c1 * albedo, so two renders of the asset with albedo 0 and 1 from the input
camera give the exact per-pixel inverse, shadows, AO and highlights included. Roughness is the global value whose
locally constant albedo re-renders the photo best (a highlight or a reflection the material does not explain is
left as a residual). Metal or not is decided by whether the photo's brightness follows the metal's reflection
pattern or the dielectric's shading (metal_slope) when the light is given; with an unknown light, by the contrast
the albedo of a dielectric would need (albedo_contrast: a metal shows the room, tens to one). The input light is the
given HDRI when the hint is `world`; otherwise a non-negative mix of lobes fitted to the image's luminance (broad
lobes through a dielectric, narrower ones through a metal's reflection; neutral colour, scale fixed by an albedo
prior). Pixels the inverse is unsure of (little response, clipped highlights) lean
on the local estimate; the unseen side is completed from the reliable seen points, fading to their mean colour.
"""

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt, gaussian_filter, map_coordinates
from scipy.spatial import cKDTree

from ..core.camera import Camera
from ..core.colour import LUMINANCE as LUM  # [3] float64
from ..core.envmap import Environment, lobe_environments
from ..core.visibility_rays import sphere_directions
from ..render.frame import render
from ..render.occlusion import facing, on_surface
from ..render.settings import FINAL, RenderSettings

DEFAULT_ROUGHNESS = 0.5
DEFAULT_METALLIC = 0.0
ALBEDO_P95 = 0.8  # unknown light: the scale ambiguity is resolved by putting the 95th-percentile albedo here
# (for a metal, unless that takes its 5th percentile below METAL_MIN_ALBEDO: then the 5th percentile goes there)
ROUGHNESS_CANDIDATES = (0.1, 0.2, 0.3, 0.45, 0.65, 0.85)
METALLIC_CANDIDATES = (0.0, 1.0)
SEARCH_SIDE = 192  # the material search runs at most at this resolution
SATURATED = 0.98  # linear; an 8-bit photo clips at 1.0, so such a pixel only bounds its radiance from below
LOCAL_SIGMA = 1.5  # search-resolution pixels: the window over which the residual score holds albedo constant
METAL_SLOPE = 0.5  # metal when the photo follows the reflection pattern at least this much (metal_slope: 1 metal, 0 not)
METAL_TEST_MAX_ROUGHNESS = 0.45  # the metal hypothesis of the slope test is at most this rough (a sharp pattern)
RIDGE = 0.1  # final inverse: pull towards the local albedo, relative to the median squared response
METAL_MIN_ALBEDO = 0.3  # a metal's albedo is its normal-incidence reflectance: >= ~0.5 for common metals (gold's blue ~0.35)
METAL_CONTRAST = 5.5  # unknown light: metal when a dielectric's albedo would span more than this (albedo_contrast)
METAL_PRIOR_ROUGHNESS = 0.3  # unknown light, metal: roughness (not separable from the light's sharpness)
METAL_LOBES = 96  # unknown light, metal: lobes of the fitted light, and their sharpness (width ~ 1 / sqrt)
METAL_LOBE_SHARPNESS = 32.0
FACING_MIN = 0.25  # seen points at grazing view (cosine below this) are re-estimated from their reliable neighbours
SEARCH_RENDER = RenderSettings(supersample=1, specular_samples=32)  # the material search's trial renders
LIGHT_FIT_RENDER = RenderSettings(supersample=1, specular_samples=0)  # the light fit's lobe renders


@dataclass
class Materials:
    albedo: np.ndarray  # [N, 3] linear
    roughness: np.ndarray  # [N]
    metallic: np.ndarray  # [N]
    seen: np.ndarray  # [N] bool, visible in the input image
    light_sh9: np.ndarray  # [9, 3] estimated input radiance in SH (world frame)
    scores: dict  # material search: "(roughness, metallic)" -> smoothness score (lower is better)


def visible_points(camera: Camera, vertices, faces, points, normals, mask) -> tuple[np.ndarray, np.ndarray]:
    """Which points the input camera sees -> (seen [N] bool, pixel coords [N, 2] (x, y) continuous)."""
    front, _, xy = on_surface(camera, vertices, faces, points)
    ix = np.clip(np.floor(xy[:, 0]).astype(np.int64), 0, camera.width - 1)
    iy = np.clip(np.floor(xy[:, 1]).astype(np.int64), 0, camera.height - 1)
    seen = front & mask[iy, ix] & (facing(camera, normals) > 0.05)  # normal towards the camera
    return seen, xy


def sample_image(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """[H, W, C] image, [N, 2] continuous pixel coords (centres at +0.5) -> [N, C] bilinear."""
    coords = [xy[:, 1] - 0.5, xy[:, 0] - 0.5]
    return np.stack([map_coordinates(img[..., c], coords, order=1, mode="nearest") for c in range(img.shape[-1])], 1)


@lru_cache(maxsize=4)
def _lobe_set(n: int, sharpness: float, h: int, w: int) -> tuple[Environment, ...]:
    """n spherical-Gaussian lobes exp(sharpness (d . d_j - 1)) spread evenly (Fibonacci) over the sphere, a
    non-negative basis for the unknown input light: [h, w] equirect Environments, prefiltered."""
    return tuple(lobe_environments(sphere_directions(n), sharpness, h, w))


def estimate_light(asset, camera: Camera, image: np.ndarray, valid: np.ndarray) -> Environment:
    """Unknown input light: the non-negative mix of broad lobes whose render of the asset (uniform white albedo,
    the product's own shadows and AO included) best matches the image's luminance (NNLS). Neutral in colour."""
    return _fit_lobes(_with_materials(asset, 1.0, 0.6, 0.0), camera, image, valid, _lobe_set(12, 3.0, 16, 32))


def estimate_metal_light(asset, camera: Camera, image: np.ndarray, valid: np.ndarray,
                         roughness: float) -> Environment:  # fmt: skip
    """Unknown input light for a metal: a mix of narrower lobes fitted through the metal's reflection (white
    albedo at `roughness`), so the reflected room is explained by the light, not baked into the albedo."""
    lights = _lobe_set(METAL_LOBES, METAL_LOBE_SHARPNESS, 32, 64)
    return _fit_lobes(_with_materials(asset, 1.0, roughness, 1.0), camera, image, valid, lights)


def _fit_lobes(white, camera: Camera, image: np.ndarray, valid: np.ndarray, lights: tuple) -> Environment:
    """NNLS of the image luminance ([H, W, 3], valid [H, W]) on the renders of `white` (an asset with uniform
    white albedo) under each neutral lobe light of `lights` (from _lobe_set), with a little ridge to keep the
    weights spread."""
    from scipy.optimize import nnls


    cols, ok = [], None
    for lobe_env in lights:
        r = render(white, camera, lobe_env, LIGHT_FIT_RENDER)
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


def _with_materials(asset, albedo, roughness, metallic):
    g = asset.gaussians
    n = len(g)
    g2 = replace(g, albedo=np.broadcast_to(np.asarray(albedo, np.float32), (n, 3)).copy(),
                 roughness=np.full(n, roughness, np.float32), metallic=np.full(n, metallic, np.float32))
    return replace(asset, gaussians=g2)


def affine_response(asset, camera: Camera, env: Environment, roughness: float, metallic: float,
                    settings: RenderSettings = FINAL):
    """Per pixel (c0, c1), each [H, W, 3], with linear radiance = c0 + c1 * albedo, and alpha [H, W]; rendered
    by the product's own renderer so the inverse matches what relighting will do."""

    r0 = render(_with_materials(asset, 0.0, roughness, metallic), camera, env, settings)
    r1 = render(_with_materials(asset, 1.0, roughness, metallic), camera, env, settings)
    a = np.maximum(r0.alpha, 1e-6)
    c0 = r0.hdr / a
    return c0, r1.hdr / a - c0, r0.alpha[..., 0], r0.passes


def _invert(obs, c0, c1):
    return (obs - c0) / np.maximum(c1, 1e-4)


def smoothness_score(albedo: np.ndarray, valid: np.ndarray) -> float:
    """Lower is cleaner: the median absolute log-luminance step between valid 4-neighbours (scale invariant; the
    median ignores the texture's own edges and counts the broad residue of a wrongly explained highlight), plus
    the fraction of physically impossible pixels: albedo above 1 (light the model cannot supply) or below 0."""
    lum = np.log(np.maximum(albedo @ LUM, 1e-3))
    steps = []
    for axis in (0, 1):
        n = valid.shape[axis]
        both = np.logical_and(np.take(valid, range(n - 1), axis), np.take(valid, range(1, n), axis))
        steps.append(np.abs(np.diff(lum, axis=axis))[both])
    steps = np.concatenate(steps)
    if steps.size == 0:
        return float("inf")
    over = float(np.mean((albedo[valid] > 1.0).any(-1)))
    neg = float(np.mean((albedo[valid] < 0.0).any(-1)))
    return float(np.median(steps)) + 0.5 * over + 1.0 * neg


def local_albedo(
    obs: np.ndarray,  # [H, W, 3] linear radiance
    c0: np.ndarray,  # [H, W, 3] radiance at albedo 0
    c1: np.ndarray,  # [H, W, 3] radiance per unit albedo
    weight: np.ndarray,  # [H, W] float or bool, 0 where a pixel must not count
    sigma: float,  # window, pixels
    lo: float = 0.0,  # albedo bounds
    hi: float = 1.0,
) -> np.ndarray:
    """[H, W, 3] the albedo that is constant over a Gaussian window around each pixel: per channel weighted least
    squares of obs = c0 + c1 a (pixels that respond strongly to albedo dominate), clipped to [lo, hi]."""
    w = np.asarray(weight, np.float64)[..., None]
    num = gaussian_filter(w * c1 * (obs - c0), (sigma, sigma, 0))
    den = gaussian_filter(w * c1 * c1, (sigma, sigma, 0))
    return np.clip(num / np.maximum(den, 1e-10), lo, hi)


def unsaturated(obs: np.ndarray) -> np.ndarray:
    """[H, W] bool: no channel at the photo's clipping level."""
    return ~(obs >= SATURATED).any(-1)


def residual_score(obs, c0, c1, ok, sigma: float = LOCAL_SIGMA, lo: float = 0.0, hi: float = 1.0) -> float:
    """Lower explains the photo better: mean |sqrt(re-render) - sqrt(photo)| over `ok` [H, W] pixels, where the
    re-render uses the locally constant albedo (local_albedo) and clips like the photo. With the right material
    only the texture's variation inside the window is left; a highlight or reflection the candidate does not
    produce (or produces where the photo has none) is left whole; so is a material that needs an albedo outside
    [lo, hi] (a metal reflecting a bright room cannot be made dark enough by a plausible albedo). Arrays as in
    local_albedo."""
    a = local_albedo(obs, c0, c1, ok & unsaturated(obs), sigma, lo, hi)
    pred = np.minimum(c0 + c1 * a, 1.0)
    return float(np.mean(np.abs(np.sqrt(np.maximum(pred, 0.0)) - np.sqrt(np.maximum(obs, 0.0)))[ok]))


def regularised_inverse(obs, c0, c1, valid, sigma: float, lo: float = 0.0) -> np.ndarray:
    """[H, W, 3] per-pixel albedo, ridge-pulled towards a local albedo where the pixel says little: weak response
    (a metal reflecting a dark part of the room, deep shadow) or a clipped highlight. The local albedo is itself
    ridge-pulled towards a wider one, and that towards the object's mean, so a whole dark face still gets the
    albedo its brighter surroundings show. Arrays as in local_albedo; `valid` [H, W] bool."""
    w = (unsaturated(obs) & valid)[..., None].astype(np.float64)  # [H, W, 1]
    if not valid.any():
        return _invert(obs, c0, c1)
    lam = RIDGE * np.median((c1 * c1)[valid], axis=0)  # [3]
    num, den = w * c1 * (obs - c0), w * c1 * c1
    a = np.clip(num.sum((0, 1)) / np.maximum(den.sum((0, 1)), 1e-10), lo, None)  # [3] the whole object
    for s in (4.0 * sigma, sigma):
        a = (gaussian_filter(num, (s, s, 0)) + lam * a) / (gaussian_filter(den, (s, s, 0)) + lam)
    return (num + lam * a) / (den + lam)


def metal_slope(obs, diel: tuple, metal: tuple, ok) -> float:
    """How much the photo's brightness follows a metal's reflection pattern rather than a dielectric's shading:
    the least-squares slope b of log(obs - c0_d) - log(c1_d) on log(c1_m) - log(c1_d) over `ok` pixels (luminance).
    A dielectric's photo is albedo x irradiance + its own highlight, so b ~ 0; a metal's is albedo x the reflected
    room, so b ~ 1. The texture is independent of both patterns and only adds noise. obs [H, W, 3]; diel and metal
    are (c0, c1) pairs of [H, W, 3] for the two hypotheses (metal c0 is unused); ok [H, W] bool."""
    d = (obs - diel[0]) @ LUM
    c1d, c1m = diel[1] @ LUM, metal[1] @ LUM
    k = ok & unsaturated(obs) & (d > 1e-5) & (c1d > 1e-6) & (c1m > 1e-6)
    if k.sum() < 16:
        return 0.0
    y = np.log(d[k]) - np.log(c1d[k])
    x = np.log(c1m[k]) - np.log(c1d[k])
    x, y = x - x.mean(), y - y.mean()
    return float(np.dot(x, y) / max(np.dot(x, x), 1e-12))


def search_material(image, valid, asset, camera: Camera, env: Environment, known: bool, scores: dict,
                    step) -> tuple[float, float]:  # fmt: skip
    """(roughness, metallic) whose locally constant albedo re-renders image [H, W, 3] (valid [H, W], camera: the
    reduced search camera) best under env; with the light known, metal or not by metal_slope. Each candidate's
    residual, and the slope, go into scores."""
    # a lobe light has no sharp reflections to tell a metal by, and its scale is arbitrary: with an unknown
    # light only dielectrics are searched, and the albedo is not bounded by 1 (the prior sets the scale later)
    metals = METALLIC_CANDIDATES if known else (0.0,)
    hi = 1.0 if known else np.inf
    cands = [(r, m) for m in metals for r in ROUGHNESS_CANDIDATES]

    responses = {}  # (roughness, metallic) -> (c0, c1, ok) at search resolution

    def score(r, m):
        c0, c1, alpha_s, _ = affine_response(asset, camera, env, r, m, SEARCH_RENDER)
        ok = valid & (alpha_s > 0.99)
        responses[(r, m)] = (c0, c1, ok)
        s = residual_score(image, c0, c1, ok, LOCAL_SIGMA, METAL_MIN_ALBEDO * m, hi)
        scores[f"({r:.3f}, {m})"] = s
        return s

    grid = sorted(ROUGHNESS_CANDIDATES)
    best = {}  # metallic -> (score, roughness)
    for i, (r, m) in enumerate(cands):
        step("delight", 0.5 + 0.25 * i / len(cands), f"testing roughness {r}, metallic {m}")
        s = score(r, m)
        if m not in best or s < best[m][0]:
            best[m] = (s, r)

    def refine(m, rs):
        for r in rs:
            s = score(float(np.clip(r, 0.03, 1.0)), m)
            if s < best[m][0]:
                best[m] = (s, float(np.clip(r, 0.03, 1.0)))

    # refine between the grid neighbours: a metal's residual is sharp in roughness; a dielectric's is only
    # informative when the light is known (with the lobe light its highlights are not where the photo's are)
    for m in best:
        if m == 1.0 or known:
            j = grid.index(best[m][1])
            refine(m, [(best[m][1] + grid[i]) / 2 for i in (j - 1, j + 1) if 0 <= i < len(grid)])
    metal = 0.0 if 0.0 in best else 1.0
    if 0.0 in best and 1.0 in best:  # the residual cannot tell a glossy dielectric from a metal; the slope can
        r_test = best[1.0][1]
        if r_test > METAL_TEST_MAX_ROUGHNESS:
            r_test = max(r for (r, m) in responses if m == 1.0 and r <= METAL_TEST_MAX_ROUGHNESS)
        c0d, c1d, ok = responses[(best[0.0][1], 0.0)]
        slope = metal_slope(image, (c0d, c1d), responses[(r_test, 1.0)][:2], ok)
        scores["metal_slope"] = slope
        metal = 1.0 if slope > METAL_SLOPE else 0.0
    return best[metal][1], metal


def delight(
    image: np.ndarray,  # [H, W, 3] linear radiance of the input photo
    mask: np.ndarray,  # [H, W] bool object mask
    asset,  # RelightableAsset with geometry Gaussians (placeholder materials), input camera in asset space
    camera_world: Camera,  # the input camera in world space
    light_hint: str = "unknown",
    world: Environment | None = None,
    spacing: float = 0.01,
    enabled: bool = True,
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
    else:
        # the search runs on a reduced image; the final inverse at full resolution
        k = max(1, int(np.ceil(max(H, W) / SEARCH_SIDE)))
        small_cam = camera_world.resized(W // k, H // k)
        small_img = image[: (H // k) * k, : (W // k) * k].reshape(H // k, k, W // k, k, 3).mean((1, 3))
        small_valid = valid[: (H // k) * k, : (W // k) * k].reshape(H // k, k, W // k, k).all((1, 3))
        known = light_hint == "world" and world is not None
        scores = {}
        env = world if known else estimate_light(asset, small_cam, small_img, small_valid)
        contrast = 0.0
        # the contrast test trusts the geometry's shading: an inflated shape's normals are a guess, and their
        # errors alone put tens-to-one into the implied albedo (the inflated torus read as metal), so only the
        # scene's own mesh is tested
        if not known and not inflated:
            c0d, c1d, alpha_s, _ = affine_response(asset, small_cam, env, 0.6, 0.0, LIGHT_FIT_RENDER)
            contrast = albedo_contrast(small_img, c0d, c1d, small_valid & (alpha_s > 0.99))
            scores["albedo_contrast"] = contrast
        if not known and contrast > METAL_CONTRAST:
            # unknown light and a radiance range only a reflection of the room gives: a metal. Its roughness and
            # the light's sharpness trade off (a sharp room on a rough metal looks like a blurred room on a smooth
            # one), so the roughness is a prior and the light is fitted through the metal's reflection
            step("delight", 0.55, f"metal (dielectric albedo would span {contrast:.0f}:1): fitting the light it reflects")
            metal, rough = 1.0, METAL_PRIOR_ROUGHNESS
            env = estimate_metal_light(asset, small_cam, small_img, small_valid, rough)
        else:
            rough, metal = search_material(small_img, small_valid, asset, small_cam, env, known, scores, step)
        c0, c1, _, _ = affine_response(asset, camera_world, env, rough, metal)
        lo = METAL_MIN_ALBEDO * metal
        albedo_px = np.clip(regularised_inverse(image, c0, c1, valid, 2.0 * LOCAL_SIGMA * k, lo), lo, None)
        light = env.sh9
        if not known:
            y = albedo_px[valid] @ LUM  # [P] albedo luminance before the scale prior
            scale = ALBEDO_P95 / max(float(np.percentile(y, 95)), 1e-6)
            if metal:  # the prior may not take a metal below its reflectance floor (the inverse's bound above)
                scale = max(scale, METAL_MIN_ALBEDO / max(float(np.percentile(y, 5)), 1e-6))
            albedo_px = albedo_px * scale
            light = light / scale
        # grazing points: the inverse there rests on Fresnel and silhouette pixels; let reliable neighbours decide
        towards = facing(asset.input_camera, g.normals, g.means) > FACING_MIN  # [N] asset space
        if (seen & towards).sum() >= 16:
            reliable = seen & towards
    # fill pixels outside the valid area from their nearest valid pixel, then read each seen Gaussian's albedo
    if (~valid).any() and valid.any():
        _, (iy, ix) = distance_transform_edt(~valid, return_indices=True)
        albedo_px = albedo_px[iy, ix]
    albedo_seen = np.clip(sample_image(albedo_px, xy[reliable]), 0.0, 1.0)
    albedo = complete_unseen(g.means, reliable, albedo_seen, asset.input_camera, spacing, mirror=inflated,
                             smooth_steps=3 if inflated else 10, fade=not inflated)
    N = len(g)
    return Materials(
        albedo.astype(np.float32),
        np.full(N, rough, np.float32),
        np.full(N, metal, np.float32),
        seen,
        np.asarray(light, np.float32),
        scores,
    )


def complete_unseen(points, seen, values_seen, camera: Camera, spacing: float, mirror: bool = True,
                    smooth_steps: int = 3, fade: bool = False) -> np.ndarray:
    """Fill the side the image does not show. points [N, 3], seen [N] bool, values_seen [S, C] -> [N, C].

    With `mirror` (inflated shapes, whose back is the front's mirror image), each unseen point takes the seen point
    at its reflection across the plane through the centre facing the camera when one lies there; otherwise the
    nearest seen point. With `fade`, the nearest seen value fades with distance d into the seen points' mean,
    weight exp(-d / (0.1 extent)): next to the seam the texture continues, far from it the least-squares guess is
    the mean colour. Then `smooth_steps` rounds of neighbour averaging over the unseen points soften the fill."""
    out = np.zeros((len(points), values_seen.shape[1]), np.float64)
    out[seen] = values_seen
    tree = cKDTree(points[seen])
    un = np.nonzero(~seen)[0]
    if un.size == 0:
        return out
    p = points[un]
    d_n, i_n = tree.query(p)
    out[un] = values_seen[i_n]
    if fade:
        extent = float(np.ptp(points, axis=0).max())
        w = np.exp(-d_n / max(0.1 * extent, 1e-9))[:, None]  # [U, 1]
        out[un] = w * values_seen[i_n] + (1 - w) * values_seen.mean(0)
    if mirror:
        fwd = camera.viewmat[2, :3]  # camera viewing direction in asset space
        c = points.mean(0)
        mirrored = p - 2 * ((p - c) @ fwd)[:, None] * fwd[None]
        d_m, i_m = tree.query(mirrored)
        use_m = d_m < 4 * spacing
        out[un[use_m]] = values_seen[i_m[use_m]]
    all_tree = cKDTree(points)
    _, nb = all_tree.query(p, k=8)
    for _ in range(smooth_steps):
        out[un] = 0.5 * out[un] + 0.5 * out[nb].mean(1)
    return out
