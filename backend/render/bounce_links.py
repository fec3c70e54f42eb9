"""Where the asset's blocked visibility rays land: for one Gaussian in REPRESENTATIVE_EVERY (its representative),
each blocked direction's ray is marched to the surface it meets and linked to the Gaussian there that faces back
along it. Each bounce of a light's interreflection (shadows.gaussian_shadows) then reads that Gaussian's diffuse
radiance from the bounce before, rather than the mean of every occluded surface facing that way: the sunlit wall of
a bowl lights the wall opposite it, not the whole object's average."""

import numpy as np

from ..core.asset import RelightableAsset
from ..core.visibility_rays import hit_points, sphere_directions
from relight_protocol.lru import LRU
from .strong_lights import asset_occupancy

REPRESENTATIVE_EVERY = 8  # one Gaussian in this many marches its blocked rays; the rest share the nearest one's
NORMAL_WEIGHT = 0.1  # asset units per unit of normal difference when pairing a Gaussian with a representative,
# so the two faces of a thin wall (text strokes ~0.05 thick) never share one
HIT_CANDIDATES = 8  # nearest Gaussians to a ray's landing point searched for one facing back along the ray
CHUNK = 65536  # blocked rays linked at a time ([CHUNK, HIT_CANDIDATES, 3] normals)

_LINKS = LRU(4)  # per asset geometry and Gaussians: (rep [N], hit [K, D], reps [K]) int32


def bounce_links(asset: RelightableAsset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The asset's (rep [N] int32: each Gaussian's representative, a row of hit; hit [K, D] int32: per
    representative and visibility direction (sphere_directions, asset space) the Gaussian its blocked ray lands
    on, -1 where it escapes or points below the tangent plane; reps [K] int32: the representatives' own Gaussians),
    remembered per geometry and Gaussians (~1 s per 100k Gaussians)."""
    g = asset.gaussians
    key = (asset.asset_id, id(asset.vertices), id(asset.faces), id(g.means), id(g.normals))
    return _LINKS.get_or_make(key, lambda: links(asset_occupancy(asset), g.means, g.normals, sphere_directions()),
                              pin=(asset.vertices, asset.faces, g.means, g.normals))  # fmt: skip


def links(occ: np.ndarray, means: np.ndarray, normals: np.ndarray,
          dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """bounce_links for Gaussians means [N, 3] with normals [N, 3] (asset space) over dirs [D, 3] through the
    occupancy grid occ [G]^3."""
    from scipy.spatial import cKDTree

    means = np.asarray(means, np.float32)
    normals = np.asarray(normals, np.float32)
    n = len(means)
    k = max(1, n // REPRESENTATIVE_EVERY)
    reps = np.sort(np.random.default_rng(0).choice(n, k, replace=False))
    feat = np.concatenate([means, normals * NORMAL_WEIGHT], 1)
    rep = cKDTree(feat[reps]).query(feat, workers=-1)[1].astype(np.int32)  # [N]
    tree = cKDTree(means)
    hit = np.full((k, len(dirs)), -1, np.int32)
    ii, kk, where = hit_points(occ, means[reps], normals[reps], dirs)
    for a in range(0, len(ii), CHUNK):
        i, d = ii[a:a + CHUNK], kk[a:a + CHUNK]
        cand = tree.query(where[a:a + CHUNK], k=HIT_CANDIDATES, workers=-1)[1]  # [M, C] nearest first
        facing = np.einsum("mcj,mj->mc", normals[cand], dirs[d]) < 0.0  # faces back along the ray
        first = np.argmax(facing, 1)
        hit[i, d] = np.where(facing.any(1), cand[np.arange(len(cand)), first], cand[:, 0])
    return rep, hit, reps.astype(np.int32)
