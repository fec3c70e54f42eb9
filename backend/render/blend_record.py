"""The blends of one rasterized view, kept so that new per-Gaussian features can be composited again without
rasterizing: a G-buffer channel is sum_i w_pi f_i over the Gaussians i blended at pixel p, and the weights w_pi
depend on the view and the geometry only. A new light changes only the shadow channels (and the lamps'
visibility), so the live preview's world-rotation drag re-composites those from the record (render/gbuffer_reuse.py)
instead of rasterizing the whole G-buffer again.

The record is per 16 x 16 tile (splat_native.TILE), in blending order, so a re-composite does the rasterizer's own
float32 multiply-adds in its order and gives the very same values."""

from dataclasses import dataclass

import numba
import numpy as np

from ..core.jit import njit_cached
from .splat_native import G_EXT_X, G_EXT_Y, G_X, G_Y, TILE, span_start, span_stop


@dataclass
class BlendRecord:
    """Every blend of one view: tile t's are pix/ids/weights [start[t]:start[t] + count[t]], front to back per pixel."""

    width: int
    height: int
    start: np.ndarray  # [T] int64 first entry of each tile (T = tiles_x x tiles_y, row-major)
    count: np.ndarray  # [T] int64 entries of each tile
    pix: np.ndarray  # [E] uint8 pixel within its tile, row-major over the tile's (clipped) width
    ids: np.ndarray  # [E] int32 Gaussian index
    weights: np.ndarray  # [E] float32 blend weight alpha x transmittance

    @property
    def entries(self) -> int:
        return int(self.count.sum())

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.start, self.count, self.pix, self.ids, self.weights))


@njit_cached(parallel=True)
def record_bounds(gp, offsets, ids, width, height, tiles_x):  # pragma: no cover - jitted
    """[T] int64: per tile, the pixels of its Gaussians' boxes clipped to the tile, as splat_native._composite_tile
    walks them: no more blends than this can happen there (gp [N, N_GP], offsets/ids from splat_bin.bin_tiles)."""
    n_tiles = offsets.shape[0] - 1
    out = np.zeros(n_tiles, np.int64)
    half = np.float32(0.5)
    for t in numba.prange(n_tiles):
        x0 = (t % tiles_x) * TILE
        y0 = (t // tiles_x) * TILE
        x1 = min(x0 + TILE, width)
        y1 = min(y0 + TILE, height)
        total = 0
        for k in range(offsets[t], offsets[t + 1]):
            i = ids[k]
            gx, gy = gp[i, G_X], gp[i, G_Y]
            ext_x = gp[i, G_EXT_X] + np.float32(1e-3)
            ext_y = gp[i, G_EXT_Y] + np.float32(1e-3)
            c = span_stop(gx + ext_x - half, x0, x1) - span_start(gx - ext_x - half, x0, x1)
            r = span_stop(gy + ext_y - half, y0, y1) - span_start(gy - ext_y - half, y0, y1)
            if c > 0 and r > 0:
                total += c * r
        out[t] = total
    return out


@njit_cached(parallel=True)
def _compact(start, count, pix, ids, weights, new_start, out_pix, out_ids, out_w):  # pragma: no cover - jitted
    for t in numba.prange(start.shape[0]):
        s, d = start[t], new_start[t]
        for e in range(count[t]):
            out_pix[d + e] = pix[s + e]
            out_ids[d + e] = ids[s + e]
            out_w[d + e] = weights[s + e]


def compacted(width: int, height: int, start, count, pix, ids, weights) -> BlendRecord:
    """The record with each tile's unused room (record_bounds over-counts) dropped."""
    count = np.ascontiguousarray(count, np.int64)
    new_start = np.zeros(len(count), np.int64)
    np.cumsum(count[:-1], out=new_start[1:])
    e = int(count.sum())
    out = (np.empty(e, np.uint8), np.empty(e, np.int32), np.empty(e, np.float32))
    _compact(start, count, pix, ids, weights, new_start, *out)
    return BlendRecord(int(width), int(height), new_start, count, *out)


@njit_cached(parallel=True)  # not fastmath: the same float32 multiply and add, in the same order, as the rasterizer
def _gather(start, count, pix, ids, weights, features, channels, base, width, height, tiles_x, out):  # pragma: no cover - jitted
    """out [H, W, C] = base [H, W, C] with channels [L] replaced by the recomposited features [N, L]."""
    n_feat = features.shape[1]
    n_out = base.shape[2]
    for t in numba.prange(start.shape[0]):
        x0 = (t % tiles_x) * TILE
        y0 = (t // tiles_x) * TILE
        tw = min(x0 + TILE, width) - x0
        th = min(y0 + TILE, height) - y0
        acc = np.zeros((TILE * TILE, n_feat), np.float32)
        for e in range(start[t], start[t] + count[t]):
            p, i, w = np.int64(pix[e]), np.int64(ids[e]), weights[e]
            for d in range(n_feat):
                acc[p, d] += w * features[i, d]
        for r in range(th):  # rows and columns, not p // tw and p % tw: an integer division per pixel costs
            for c in range(tw):
                y, x = y0 + r, x0 + c
                for d in range(n_out):
                    out[y, x, d] = base[y, x, d]
                for d in range(n_feat):
                    out[y, x, channels[d]] = acc[r * tw + c, d]


def recomposite(rec: BlendRecord, features: np.ndarray, channels=None, base: np.ndarray | None = None) -> np.ndarray:
    """features [N, L] (the record's Gaussians) -> [H, W, L] float32 premultiplied sum_i w_pi f_i, as the
    rasterizer would composite them from the recorded view; with channels [L] (int) and base [H, W, C]: a new
    [H, W, C], base with those channels replaced by the result (one pass over the frame instead of a copy and a
    strided write)."""
    features = np.ascontiguousarray(features, np.float32)
    n = features.shape[1]
    if base is None:
        channels, base = np.arange(n), np.empty((rec.height, rec.width, 0), np.float32)
    channels = np.ascontiguousarray(channels, np.int64)
    if channels.shape != (n,) or base.shape[:2] != (rec.height, rec.width) or (n and channels.max() >= max(base.shape[2], n)):
        raise ValueError(f"channels {channels.shape} and base {base.shape} do not fit features {features.shape} "
                         f"on a {rec.width}x{rec.height} record")  # fmt: skip
    out = np.empty((rec.height, rec.width, max(base.shape[2], n)), np.float32)
    tiles_x = (rec.width + TILE - 1) // TILE
    old_chunk = numba.set_parallel_chunksize(8)  # tiles differ a lot in cost (as in splat_native._composite)
    try:
        _gather(rec.start, rec.count, rec.pix, rec.ids, rec.weights, features, channels,
                np.ascontiguousarray(base, np.float32), rec.width, rec.height, tiles_x, out)  # fmt: skip
    finally:
        numba.set_parallel_chunksize(old_chunk)
    return out
