"""The visibility ray march: the numba kernel behind visibility_bits against the plain fixed-step reference, on
seeded random occupancy grids and points, with the disagreement the two marches allow derived from their steps."""

import numpy as np
import pytest

from relight.core.visibility_rays import sphere_directions, unpack_bits, visibility_bits
from relight.core.visibility_rays_reference import visibility_bits_reference

KERNEL_STEP = 0.6  # cells between the kernel's samples near occupied cells (visibility_bits: 0.6 / g)
REFERENCE_STEP = 0.05  # cells between the reference's samples (its default step_voxels)


def random_occupancy(kind: str, g: int, rng) -> np.ndarray:
    """[g]^3 bool: "scattered" cells (2 %, the most corners to graze) or a few solid "blobs" (ellipsoids, like an
    object's voxels)."""
    if kind == "scattered":
        return rng.random((g, g, g)) < 0.02
    centres = (np.indices((g, g, g)).reshape(3, -1).T + 0.5) / g - 0.5  # [g^3, 3]
    occ = np.zeros(g**3, bool)
    for _ in range(4):
        c, axes = rng.uniform(-0.3, 0.3, 3), rng.uniform(0.06, 0.2, 3)
        occ |= (((centres - c) / axes) ** 2).sum(1) < 1
    return occ.reshape(g, g, g)


def longest_chord(occ: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """[N, D] the longest stretch (in cells) of each ray (t >= 0) from origins [N, 3] along dirs [D, 3] inside any
    one occupied cell, exactly (slab test against every occupied cell); 0 when the ray meets none."""
    g = occ.shape[0]
    lo = np.argwhere(occ) / g - 0.5  # [C, 3] cell corners
    d = dirs.astype(np.float64)
    flat = np.abs(d)[:, None, :] < 1e-12  # [D, 1, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
    out = np.zeros((len(origins), len(dirs)))
    for i, o in enumerate(origins):
        a, b = (lo - o) * inv[:, None], (lo + 1.0 / g - o) * inv[:, None]  # [D, C, 3]
        within = (o >= lo) & (o <= lo + 1.0 / g)  # [C, 3] inside the slab of a parallel direction
        t_in = np.where(flat, np.where(within, -np.inf, np.inf), np.minimum(a, b)).max(-1)
        t_out = np.where(flat, np.where(within, np.inf, -np.inf), np.maximum(a, b)).min(-1)
        out[i] = np.clip(t_out - np.maximum(t_in, 0.0), 0.0, None).max(1, initial=0.0) * g
    return out


@pytest.mark.parametrize("kind, offset, seed", [("scattered", 2.0, 0), ("blobs", 2.0, 1), ("blobs", 0.0, 2)])
def test_kernel_matches_the_fixed_step_reference(kind, offset, seed):
    """Both marches only report a hit from a sample that lies in an occupied cell, so a ray that meets none is
    visible in both. The kernel's distance skips never pass an occupied cell (it skips dist - 1.75 cells, and a
    sample is within sqrt(3)/2 of its cell centre, as is every point of the occupied cell), and near one it steps
    0.6 cells, so it lands in every stretch of 0.6 cells or longer inside one; the reference, every 0.05 cells, in
    every stretch of 0.05 or longer. So the two must agree on every ray whose longest stretch in one occupied cell L
    is 0 or >= 0.6 cells; rays that only graze cell corners or edges (0 < L < 0.6) may differ. Where the kernel's
    samples fall along such a ray is set by the skips before it: taking that offset as uniform, the ray escapes them
    with probability at most 1 - L / 0.6, which bounds the expected number of disagreements."""
    rng = np.random.default_rng(seed)
    g, n = 20, 300
    occ = random_occupancy(kind, g, rng)
    points = rng.uniform(-0.55, 0.55, (n, 3)).astype(np.float32)  # some outside the grid: rays enter it first
    normals = rng.normal(size=(n, 3))
    normals = (normals / np.linalg.norm(normals, axis=1, keepdims=True)).astype(np.float32)
    dirs = sphere_directions(64)
    fast = unpack_bits(visibility_bits(occ, points, normals, dirs, offset_voxels=offset), len(dirs))
    ref = unpack_bits(visibility_bits_reference(occ, points, normals, dirs, offset_voxels=offset), len(dirs))

    up = normals @ dirs.T > 0  # [N, D] above the tangent plane
    assert not fast[~up].any() and not ref[~up].any()
    origins = points.astype(np.float64) + normals.astype(np.float64) * (offset / g)
    L = longest_chord(occ, origins, dirs)
    clear, deep = up & (L == 0.0), up & (L >= KERNEL_STEP + 1e-6)
    assert clear.sum() > 0.5 * up.sum() and deep.sum() > 0.05 * up.sum()  # both kinds of ray are well sampled
    # both agree with the exact chords wherever their steps cannot miss
    assert fast[clear].all() and ref[clear].all()
    assert not fast[deep].any() and not ref[deep].any()
    assert not ref[up & (L >= REFERENCE_STEP + 1e-6)].any()
    # in the grazing band: no more disagreements than the kernel's expected misses allow (3 sigma)
    differ = fast != ref
    grazing = up & (L > 0.0) & (L < KERNEL_STEP)
    assert not (differ & ~grazing).any()
    expected = np.sum(1.0 - L[grazing] / KERNEL_STEP)
    assert differ.sum() <= expected + 3.0 * np.sqrt(expected)
    assert differ[up].mean() < (0.05 if kind == "scattered" else 0.01)  # a small share of all rays
