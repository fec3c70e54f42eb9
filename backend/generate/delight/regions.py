"""Materials per region: the photo's object split into regions of like albedo, and metal or not decided per region by
the reflection-pattern slope (materials.metal_slope), so a painted metal keeps its metal parts metal and its paint
paint. Light given only: a fitted light has no sharp reflections to tell a metal by."""

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.ndimage import distance_transform_edt

from .materials import METAL_SLOPE, metal_slope

REGIONS = 3  # albedo clusters: the paint, and a bare metal reflecting bright and dark parts of the room. On a sphere
# banded half metal, half paint under courtyard, studio and city (roughness 0.25, 0.5), the seen Gaussians given the
# wrong metallic: 12-36 % with 2 regions, 1-15 % with 3 (51 % in a sixth case either way: a region under MIN_REGION)
MIN_REGION = 0.1  # of the object's pixels: a smaller region is not decided on its own


def albedo_regions(image: np.ndarray, c0: np.ndarray, c1: np.ndarray, ok: np.ndarray, n: int = REGIONS) -> np.ndarray:
    """[h, w] int region of each `ok` pixel (-1 elsewhere): k-means (seeded) of the log albedo a dielectric would
    need, (image - c0) / c1, arrays [h, w, 3] at the search resolution. Texture colours separate; the light's
    shading is divided out first, so a region is a material, not a lit side."""
    a = np.clip((image - c0) / np.maximum(c1, 1e-4), 1e-3, 10.0)[ok]  # [P, 3]
    labels = np.full(ok.shape, -1, np.int64)
    if len(a) < 16 * n:
        labels[ok] = 0
        return labels
    _, lab = kmeans2(np.log(a), n, minit="++", seed=0)
    labels[ok] = lab
    return labels


def metal_regions(image, diel: tuple, metal: tuple, labels: np.ndarray, scores: dict,
                  ceiling: float = 1.0) -> np.ndarray | None:  # fmt: skip
    """[h, w] bool metal map when the regions disagree (some follow the metal's reflection pattern, metal_slope >
    METAL_SLOPE, and some do not), else None (one material for the whole object). diel and metal are (c0, c1)
    pairs [h, w, 3] of the two hypotheses; labels from albedo_regions; each region's slope goes into scores."""
    total = max(int((labels >= 0).sum()), 1)
    is_metal = {}
    for j in range(int(labels.max()) + 1):
        region = labels == j
        if region.sum() < MIN_REGION * total:
            continue
        slope = metal_slope(image, diel, metal, region, ceiling)
        scores[f"region_{j}_metal_slope"] = slope
        is_metal[j] = slope > METAL_SLOPE
    if len(set(is_metal.values())) < 2:
        return None
    return np.isin(labels, [j for j, m in is_metal.items() if m])


def full_resolution(small: np.ndarray, decided: np.ndarray, k: int, shape: tuple) -> np.ndarray:
    """[H, W] bool from a search-resolution map [h, w] (bool) over `decided` [h, w] pixels: each pixel takes its
    block's value, blocks outside `decided` the nearest decided one's."""
    if (~decided).any() and decided.any():
        _, (iy, ix) = distance_transform_edt(~decided, return_indices=True)
        small = small[iy, ix]
    H, W = shape
    ys = np.minimum(np.arange(H) // k, small.shape[0] - 1)
    xs = np.minimum(np.arange(W) // k, small.shape[1] - 1)
    return small[ys[:, None], xs[None, :]]
