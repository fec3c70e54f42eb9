"""How far apart two bilinear lookups of an equirect can land when they round differently: a per-sample tolerance
for tests that compare a float32 lookup path (Environment.radiance / specular / irradiance) with a float64 one.

An HDRI with a bright sun changes steeply from texel to texel, so a fixed relative tolerance holds on one machine
and not on the next (arctan2 / arcsin differ by a few ulps between libm and numpy's SIMD loops, and a sample near a
texel boundary lands on either side). The bound here is what the two lookups can differ by anywhere: the image's
local texel-to-texel change times how far apart (in texels) the two positions can be, plus the float32 rounding of
the bilinear sums."""

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 2^-23: one float32 ulp at 1 (twice the unit roundoff)
ULPS_TRANSCENDENTAL = 4  # arctan2 / arcsin in float32: <= 4 ulps (glibc ~1, numpy's SIMD loops <= 4)


def texel_position_error(d: np.ndarray, h: int, w: int, dir_err: float) -> tuple[np.ndarray, np.ndarray]:
    """(dx [N], dy [N]) bound in texels of an h x w equirect on how far apart two lookups of the unit directions
    d [N, 3] can land when their directions differ by at most dir_err rad and each computes its uv in float32.

    Per float32 lookup: arctan2 is off by <= 4 ulps of a result <= pi (8 EPS32 rad); z / r by <= ~2 EPS32 (taken
    as 4), which arcsin turns into <= 4 EPS32 / cos(elevation) rad (<= sqrt(8 EPS32) at the pole) plus its own 4
    ulps; u = 0.5 - a / (2 pi) rounds by <= 0.75 EPS32, and x = u W - 0.5 by <= EPS32 / 2 of W twice (likewise v
    and y): <= 2 EPS32 of the image width / height. Between the two directions the elevation differs by <= dir_err,
    the azimuth by <= dir_err / cos(elevation) (ill-conditioned at the poles)."""
    d = np.asarray(d, np.float64)
    rho = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-300)  # cos(elevation)
    ulps = ULPS_TRANSCENDENTAL * EPS32
    azimuth = dir_err / rho + 2 * 2 * ulps  # two lookups, ulps of a result up to pi (ulp(pi) = 2 EPS32)
    asin_in = 4 * EPS32
    elevation = dir_err + 2 * (np.minimum(asin_in / rho, np.sqrt(2 * asin_in)) + ulps)
    dx = w / (2 * np.pi) * azimuth + 2 * 2 * EPS32 * w
    dy = h / np.pi * elevation + 2 * 2 * EPS32 * h
    return dx, dy


def lookup_tolerance(img: np.ndarray, d: np.ndarray, dir_err: float) -> np.ndarray:
    """[N, C] bound on |lookup_1 - lookup_2| for two bilinear lookups (sample_equirect's maths: wrap in u, clamp in
    v) of an equirect img [H, W, C] along unit directions d [N, 3] (the image's frame) whose directions differ by at
    most dir_err rad and which compute uv and weights in float32 (one of them may be exact).

    The interpolant is piecewise bilinear over the texel centres, so along x its slope is at most the largest
    difference of horizontally adjacent texels in the rows it spans (likewise along y); for positions at most one
    texel apart these lie in the 4 x 4 texels around the sample: |change| <= Gx dx + Gy dy. Farther apart (only
    next to a pole, where the azimuth is ill-conditioned) the bound is the image's whole range. Each float32
    bilinear sum rounds by <= 8 EPS32 of the largest texel it reads."""
    img = np.asarray(img, np.float64)
    H, W, C = img.shape
    d = np.asarray(d, np.float64)
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    u = 0.5 - np.arctan2(y, x) / (2 * np.pi)
    v = 0.5 + np.arcsin(np.clip(z / np.linalg.norm(d, axis=1), -1, 1)) / np.pi
    tx = u * W - 0.5  # texel-centre coordinates, as sample_equirect
    ty = (1 - v) * H - 0.5
    cols = (np.floor(tx).astype(np.int64)[:, None] + np.arange(-1, 3)) % W  # [N, 4] wraps in u
    rows = np.clip(np.floor(ty).astype(np.int64)[:, None] + np.arange(-1, 3), 0, H - 1)  # [N, 4] clamps in v
    block = img[rows[:, :, None], cols[:, None, :]]  # [N, 4 rows, 4 cols, C]
    gx = np.abs(np.diff(block, axis=2)).max(axis=(1, 2))  # [N, C]
    gy = np.abs(np.diff(block, axis=1)).max(axis=(1, 2))
    dx, dy = texel_position_error(d, H, W, dir_err)
    near = (dx <= 1)[:, None] & (dy <= 1)[:, None]
    moved = np.where(near, gx * dx[:, None] + gy * dy[:, None], img.max(axis=(0, 1)) - img.min(axis=(0, 1)))
    return moved + 2 * 8 * EPS32 * np.abs(block).max(axis=(1, 2))


def assert_within(got: np.ndarray, want: np.ndarray, tol: np.ndarray, what: str = "") -> None:
    """Every |got - want| <= tol (broadcast), else an error naming the worst element and its excess."""
    err = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
    tol = np.broadcast_to(tol, err.shape)
    if np.all(err <= tol):
        return
    i = np.unravel_index(np.argmax(err - tol), err.shape)
    n_bad = int(np.count_nonzero(err > tol))
    raise AssertionError(f"{what}: {n_bad} of {err.size} elements off; worst at {i}: |{float(np.asarray(got)[i])} - "
                         f"{float(np.asarray(want)[i])}| = {float(err[i]):.3g} > tolerance {float(tol[i]):.3g}")
