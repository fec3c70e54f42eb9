"""The splat rasterizer's depth sort and tile lists (splat_native): the visible Gaussians in a stable depth order by
an LSD radix sort on packed uint64 keys, then a counting sort of them into 16x16 pixel tiles, in parallel chunks."""

import numba
import numpy as np

from ..core.jit import njit_cached as _jit

RADIX_BITS = 12  # the depth sort's digit: 4096 buckets (a 32 KB histogram)


def bin_tiles(rect, depth_bits, n_tiles, tiles_x):
    """Depth-sort the visible Gaussians and bin them into tiles.

    rect [N, 4] tile ranges, depth_bits [N] uint32 (the float32 depths' bits). A stable LSD radix sort on depth
    (ties keep index order, like gsplat's sort), then a counting sort into tiles, which keeps that order.
    Returns offsets [n_tiles + 1] int64 and ids [n_isect] int32: tile t's Gaussians front to back are
    ids[offsets[t]:offsets[t + 1]]."""
    order, boxes = depth_order(rect, depth_bits)
    return tile_lists(order, boxes, n_tiles, tiles_x, numba.get_num_threads())


@_jit()
def depth_order(rect, depth_bits):
    """The visible Gaussians (rect [N, 4] not empty) in depth order, stably: (order [V] int32 their indices,
    boxes [V, 4] int32 their tile ranges in that order)."""
    n = rect.shape[0]
    # each visible Gaussian as one uint64: its depth key (an order-preserving map of the IEEE bits to unsigned ints;
    # negative depths only if near < 0) above its index, so a pass moves 8 bytes and ties keep index order
    packed = np.empty(n, dtype=np.uint64)
    n_vis = 0
    k_min = np.uint32(0xFFFFFFFF)
    k_max = np.uint32(0)
    for i in range(n):
        if rect[i, 1] > rect[i, 0] and rect[i, 3] > rect[i, 2]:
            b = depth_bits[i]
            k = ~b if b & np.uint32(0x80000000) else b | np.uint32(0x80000000)
            k_min = min(k_min, k)
            k_max = max(k_max, k)
            packed[n_vis] = (np.uint64(k) << np.uint64(32)) | np.uint64(i)
            n_vis += 1
    # sort on key - k_min: only as many RADIX_BITS digits as that range needs (an object's depths span a binade or
    # two, ~23 bits: two passes instead of three); the order is the one of the whole keys
    span = k_max - k_min if n_vis > 0 else np.uint32(0)
    base = np.uint64(k_min) << np.uint64(32)
    for j in range(n_vis):
        packed[j] -= base
    n_pass = 1
    while n_pass * RADIX_BITS < 32 and (np.uint64(span) >> np.uint64(n_pass * RADIX_BITS)) != 0:
        n_pass += 1
    other = np.empty(n_vis, dtype=np.uint64)
    n_bucket = 1 << RADIX_BITS
    mask = np.uint64(n_bucket - 1)
    hist = np.empty(n_bucket, dtype=np.int64)
    for p in range(n_pass):
        shift = np.uint64(32 + p * RADIX_BITS)
        hist[:] = 0
        for j in range(n_vis):
            hist[(packed[j] >> shift) & mask] += 1
        total = 0
        for b in range(n_bucket):
            c = hist[b]
            hist[b] = total
            total += c
        for j in range(n_vis):
            v = packed[j]
            b = (v >> shift) & mask
            h = hist[b]
            other[h] = v
            hist[b] = h + 1
        packed, other = other, packed
    order = np.empty(n_vis, dtype=np.int32)
    boxes = np.empty((n_vis, 4), dtype=np.int32)  # rect rows in depth order: tile_lists reads them in order
    for j in range(n_vis):
        i = np.int32(packed[j] & np.uint64(0xFFFFFFFF))
        order[j] = i
        boxes[j, 0] = rect[i, 0]
        boxes[j, 1] = rect[i, 1]
        boxes[j, 2] = rect[i, 2]
        boxes[j, 3] = rect[i, 3]
    return order, boxes


@_jit(parallel=True)
def tile_lists(order, boxes, n_tiles, tiles_x, n_chunk):
    """The counting sort of bin_tiles into tiles, in parallel: the depth-ordered Gaussians order [V] (boxes [V, 4]
    their tile ranges) split into n_chunk contiguous chunks (one per thread); each chunk counts per tile, and its
    entries go after those of the chunks before it, so each tile's list keeps the depth order. Returns
    (offsets [n_tiles + 1] int64, ids [n_isect] int32) as bin_tiles."""
    n_vis = order.shape[0]
    counts = np.zeros((n_chunk, n_tiles), dtype=np.int64)
    for c in numba.prange(n_chunk):
        for j in range(c * n_vis // n_chunk, (c + 1) * n_vis // n_chunk):
            for ty in range(boxes[j, 2], boxes[j, 3]):
                for tx in range(boxes[j, 0], boxes[j, 1]):
                    counts[c, ty * tiles_x + tx] += 1
    offsets = np.empty(n_tiles + 1, dtype=np.int64)
    offsets[0] = 0
    cursor = np.empty((n_chunk, n_tiles), dtype=np.int64)  # where chunk c writes its next entry of tile t
    for t in range(n_tiles):
        at = offsets[t]
        for c in range(n_chunk):
            cursor[c, t] = at
            at += counts[c, t]
        offsets[t + 1] = at
    ids = np.empty(offsets[n_tiles], dtype=np.int32)
    for c in numba.prange(n_chunk):
        for j in range(c * n_vis // n_chunk, (c + 1) * n_vis // n_chunk):
            i = order[j]
            for ty in range(boxes[j, 2], boxes[j, 3]):
                for tx in range(boxes[j, 0], boxes[j, 1]):
                    t = ty * tiles_x + tx
                    ids[cursor[c, t]] = i
                    cursor[c, t] += 1
    return offsets, ids
