"""Roughness and metallic from the photo: the per-pixel albedo inverse of the affine response, the residual that
scores a candidate material, and the search over candidates (metal or not by the reflection-pattern slope when the
light is known)."""

import numpy as np
from scipy.ndimage import gaussian_filter

from ...core.camera import Camera
from ...core.colour import LUMINANCE as LUM  # [3] float64
from ...core.envmap import Environment
from .forward import SEARCH_RENDER, affine_response

ROUGHNESS_CANDIDATES = (0.1, 0.2, 0.3, 0.45, 0.65, 0.85)
METALLIC_CANDIDATES = (0.0, 1.0)
SATURATED = 0.98  # of the input's ceiling (InputImage.ceiling): a pixel there only bounds its radiance from below
LOCAL_SIGMA = 1.5  # search-resolution pixels: the window over which the residual score holds albedo constant
METAL_SLOPE = 0.5  # metal when the photo follows the reflection pattern at least this much (metal_slope: 1 metal, 0 not)
METAL_TEST_MAX_ROUGHNESS = 0.45  # the metal hypothesis of the slope test is at most this rough (a sharp pattern)
RIDGE = 0.1  # final inverse: pull towards the local albedo, relative to the median squared response
METAL_MIN_ALBEDO = 0.3  # a metal's albedo is its normal-incidence reflectance: >= ~0.5 for common metals (gold's blue ~0.35)


def _invert(obs, c0, c1):
    return (obs - c0) / np.maximum(c1, 1e-4)


def local_albedo(
    obs: np.ndarray,  # [H, W, 3] linear radiance
    c0: np.ndarray,  # [H, W, 3] radiance at albedo 0
    c1: np.ndarray,  # [H, W, 3] radiance per unit albedo
    weight: np.ndarray,  # [H, W] or per channel [H, W, 3], float or bool: 0 where a pixel must not count
    sigma: float,  # window, pixels
    lo: float = 0.0,  # albedo bounds
    hi: float = 1.0,
) -> np.ndarray:
    """[H, W, 3] the albedo that is constant over a Gaussian window around each pixel: per channel weighted least
    squares of obs = c0 + c1 a (pixels that respond strongly to albedo dominate), clipped to [lo, hi]."""
    w = np.asarray(weight, np.float64)
    w = w[..., None] if w.ndim == 2 else w  # [H, W, 1] or per channel [H, W, 3]
    num = gaussian_filter(w * c1 * (obs - c0), (sigma, sigma, 0))
    den = gaussian_filter(w * c1 * c1, (sigma, sigma, 0))
    return np.clip(num / np.maximum(den, 1e-10), lo, hi)


def unclipped(obs: np.ndarray, ceiling: float = 1.0) -> np.ndarray:
    """[H, W, 3] bool: the channels of obs [H, W, 3] below the input's clipping level (`ceiling`, linear; inf:
    none). A clipped channel only bounds its radiance from below; the pixel's other channels are still measured
    (a white print under a warm sun, exposed for its luminance, clips in red alone over half its surface)."""
    return obs < SATURATED * ceiling


def unsaturated(obs: np.ndarray, ceiling: float = 1.0) -> np.ndarray:
    """[H, W] bool: no channel of obs [H, W, 3] at the input's clipping level (`ceiling`, linear; inf: none)."""
    return unclipped(obs, ceiling).all(-1)


def residual_score(obs, c0, c1, ok, sigma: float = LOCAL_SIGMA, lo: float = 0.0, hi: float = 1.0,
                   ceiling: float = 1.0) -> float:  # fmt: skip
    """Lower explains the photo better: mean |sqrt(re-render) - sqrt(photo)| over `ok` [H, W] pixels, where the
    re-render uses the locally constant albedo (local_albedo) and clips like the photo. With the right material
    only the texture's variation inside the window is left; a highlight or reflection the candidate does not
    produce (or produces where the photo has none) is left whole; so is a material that needs an albedo outside
    [lo, hi] (a metal reflecting a bright room cannot be made dark enough by a plausible albedo). Arrays as in
    local_albedo; `ceiling` the input's clipping level (InputImage.ceiling)."""
    a = local_albedo(obs, c0, c1, ok[..., None] & unclipped(obs, ceiling), sigma, lo, hi)
    pred = np.minimum(c0 + c1 * a, ceiling)
    return float(np.mean(np.abs(np.sqrt(np.maximum(pred, 0.0)) - np.sqrt(np.maximum(obs, 0.0)))[ok]))


def regularised_inverse(obs, c0, c1, valid, sigma: float, lo: float = 0.0, ceiling: float = 1.0,
                        per_channel: bool = True) -> np.ndarray:  # fmt: skip
    """[H, W, 3] per-pixel albedo, ridge-pulled towards a local albedo where the pixel says little: weak response
    (a metal reflecting a dark part of the room, deep shadow) or a clipped highlight. The local albedo is itself
    ridge-pulled towards a wider one, and that towards the object's mean, so a whole dark face still gets the
    albedo its brighter surroundings show. Arrays as in local_albedo; `valid` [H, W] bool. per_channel: a clipped
    channel bounds its albedo from below and the pixel's other channels count (the right reading when c0 and c1
    come from the true light, which makes the photo's highlights); otherwise a pixel with any channel clipped is
    left out whole (under a fitted lobe light, which makes no sharp highlight, a clipped pixel is mostly a
    highlight, and its bound or its other channels would put the highlight into the albedo)."""
    clip = unclipped(obs, ceiling) if per_channel else unsaturated(obs, ceiling)[..., None]
    measured = clip & valid[..., None]  # [H, W, 3] or [H, W, 1]
    w = measured.astype(np.float64)
    if not valid.any():
        return _invert(obs, c0, c1)
    lam = RIDGE * np.median((c1 * c1)[valid], axis=0)  # [3]
    num, den = w * c1 * (obs - c0), w * c1 * c1
    a = np.clip(num.sum((0, 1)) / np.maximum(den.sum((0, 1)), 1e-10), lo, None)  # [3] the whole object
    for s in (4.0 * sigma, sigma):
        a = (gaussian_filter(num, (s, s, 0)) + lam * a) / (gaussian_filter(den, (s, s, 0)) + lam)
    albedo = (num + lam * a) / (den + lam)
    if not per_channel:
        return albedo
    # a clipped channel's radiance is at least the ceiling, so its albedo at least what the ceiling implies: the
    # neighbours' estimate (the ink around a clipped paper) never pulls it below that
    floor = np.where(measured | ~valid[..., None], -np.inf, _invert(obs, c0, c1))
    return np.maximum(albedo, floor)


def metal_slope(obs, diel: tuple, metal: tuple, ok, ceiling: float = 1.0) -> float:
    """How much the photo's brightness follows a metal's reflection pattern rather than a dielectric's shading:
    the least-squares slope b of log(obs - c0_d) - log(c1_d) on log(c1_m) - log(c1_d) over `ok` pixels (luminance).
    A dielectric's photo is albedo x irradiance + its own highlight, so b ~ 0; a metal's is albedo x the reflected
    room, so b ~ 1. The texture is independent of both patterns and only adds noise. obs [H, W, 3]; diel and metal
    are (c0, c1) pairs of [H, W, 3] for the two hypotheses (metal c0 is unused); ok [H, W] bool."""
    d = (obs - diel[0]) @ LUM
    c1d, c1m = diel[1] @ LUM, metal[1] @ LUM
    k = ok & unsaturated(obs, ceiling) & (d > 1e-5) & (c1d > 1e-6) & (c1m > 1e-6)
    if k.sum() < 16:
        return 0.0
    y = np.log(d[k]) - np.log(c1d[k])
    x = np.log(c1m[k]) - np.log(c1d[k])
    x, y = x - x.mean(), y - y.mean()
    return float(np.dot(x, y) / max(np.dot(x, x), 1e-12))


def search_material(image, valid, asset, camera: Camera, env: Environment, known: bool, scores: dict,
                    step, ceiling: float = 1.0) -> tuple[float, float, dict, dict]:  # fmt: skip
    """(roughness, metallic, {metallic: best roughness}, {(roughness, metallic): (c0, c1, ok)}): the material whose
    locally constant albedo re-renders image [H, W, 3] (valid [H, W], camera: the reduced search camera) best under
    env, with the light known metal or not by metal_slope; the best roughness of each metallic searched; and every
    candidate's affine response at the search resolution. Each candidate's residual, and the slope, go into
    scores."""
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
        s = residual_score(image, c0, c1, ok, LOCAL_SIGMA, METAL_MIN_ALBEDO * m, hi, ceiling)
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
        slope = metal_slope(image, (c0d, c1d), responses[(r_test, 1.0)][:2], ok, ceiling)
        scores["metal_slope"] = slope
        metal = 1.0 if slope > METAL_SLOPE else 0.0
    return best[metal][1], metal, {m: r for m, (_, r) in best.items()}, responses
