"""Tile-based CPU Gaussian-splat rasterizer compiled with numba: the fast path behind splat_raster.rasterize.

Same semantics as the torch reference in splat_raster (gsplat 1.5.3 classic): project in parallel over Gaussians,
radix-sort the visible ones by depth and bin them into 16x16 pixel tiles with a counting sort into flat arrays
(splat_bin: each tile's list is already front to back), and composite front to back with per-pixel early stop, in
parallel over tiles. Within a tile each Gaussian touches only its opacity-aware box; alphas are computed 16 pixels
at a time (SIMD) and blending walks a bit mask of the pixels that count.
"""

import math

import numba
import numpy as np

from ..core.bits import bits_f32, ctz
from ..core.jit import njit_cached as _jit
from .splat_bin import bin_tiles

TILE = 16  # tile edge in pixels
ALPHA_THRESHOLD = 1.0 / 255.0  # skip a Gaussian at a pixel where its alpha is below this
MAX_ALPHA = 0.999  # alpha clamp
T_STOP = 1e-4  # a pixel is done when its transmittance would drop to or below this
MAX_EXTEND = 3.33  # bounding box half-size in standard deviations (before the opacity-aware bound)
FOV_CLAMP = 0.3  # Jacobian clamps x/z, y/z to the image edges plus 0.3 * tan(fov / 2)
# exp(-s) = 2^k 2^f: Taylor coefficients ln(2)^i / i! of 2^f for f in [-0.5, 0.5]
_LOG2E = np.float32(1.4426950408889634)
_P0, _P1, _P2, _P3, _P4, _P5, _P6 = (np.float32(math.log(2.0) ** i / math.factorial(i)) for i in range(7))
# columns of the per-Gaussian raster parameters gp [N, N_GP]
G_X, G_Y = 0, 1  # projected mean, pixels
G_A, G_B, G_C = 2, 3, 4  # conic: inverse 2D covariance [[a, b], [b, c]]
G_OP = 5  # opacity
G_Z = 6  # camera-space depth
G_SMAX = 7  # ln(255 opacity): alpha >= 1/255 exactly where sigma <= this
G_EXT_X, G_EXT_Y = 8, 9  # half-width and half-height of that ellipse, pixels
N_GP = 10




@_jit(parallel=True)
def project_kernel(means, quats, scales, opacities, viewmat, K, width, height, near, far, eps2d, gp, rect):
    """Project N Gaussians into one camera.

    means [N, 3], quats [N, 4] (w, x, y, z), scales [N, 3], opacities [N], viewmat [4, 4], K [3, 3];
    writes gp [N, N_GP] float32 per-Gaussian raster parameters (see the G_* column indices) and
    rect [N, 4] int32 tile range (x0, x1, y0, y1), half-open; empty (all 0) when culled."""
    n = means.shape[0]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_x = 0.5 * width / fx
    tan_y = 0.5 * height / fy
    lim_xp = (width - cx) / fx + FOV_CLAMP * tan_x
    lim_xn = cx / fx + FOV_CLAMP * tan_x
    lim_yp = (height - cy) / fy + FOV_CLAMP * tan_y
    lim_yn = cy / fy + FOV_CLAMP * tan_y
    tiles_x = (width + TILE - 1) // TILE
    tiles_y = (height + TILE - 1) // TILE
    for i in numba.prange(n):
        rect[i, 0] = 0
        rect[i, 1] = 0
        rect[i, 2] = 0
        rect[i, 3] = 0
        mx, my, mz = means[i, 0], means[i, 1], means[i, 2]
        x = viewmat[0, 0] * mx + viewmat[0, 1] * my + viewmat[0, 2] * mz + viewmat[0, 3]
        y = viewmat[1, 0] * mx + viewmat[1, 1] * my + viewmat[1, 2] * mz + viewmat[1, 3]
        z = viewmat[2, 0] * mx + viewmat[2, 1] * my + viewmat[2, 2] * mz + viewmat[2, 3]
        gp[i, G_Z] = z
        op = opacities[i]
        if not (z > near and z < far) or not (op >= ALPHA_THRESHOLD):
            continue
        # world covariance M M^T with M = R S
        qw, qx, qy, qz = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        qn = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        if qn == 0.0:
            continue
        qw, qx, qy, qz = qw / qn, qx / qn, qy / qn, qz / qn
        sx, sy, sz = scales[i, 0], scales[i, 1], scales[i, 2]
        r00 = 1 - 2 * (qy * qy + qz * qz)
        r01 = 2 * (qx * qy - qw * qz)
        r02 = 2 * (qx * qz + qw * qy)
        r10 = 2 * (qx * qy + qw * qz)
        r11 = 1 - 2 * (qx * qx + qz * qz)
        r12 = 2 * (qy * qz - qw * qx)
        r20 = 2 * (qx * qz - qw * qy)
        r21 = 2 * (qy * qz + qw * qx)
        r22 = 1 - 2 * (qx * qx + qy * qy)
        # camera-space M_c = W R S (W = rotation part of viewmat)
        m00 = (viewmat[0, 0] * r00 + viewmat[0, 1] * r10 + viewmat[0, 2] * r20) * sx
        m01 = (viewmat[0, 0] * r01 + viewmat[0, 1] * r11 + viewmat[0, 2] * r21) * sy
        m02 = (viewmat[0, 0] * r02 + viewmat[0, 1] * r12 + viewmat[0, 2] * r22) * sz
        m10 = (viewmat[1, 0] * r00 + viewmat[1, 1] * r10 + viewmat[1, 2] * r20) * sx
        m11 = (viewmat[1, 0] * r01 + viewmat[1, 1] * r11 + viewmat[1, 2] * r21) * sy
        m12 = (viewmat[1, 0] * r02 + viewmat[1, 1] * r12 + viewmat[1, 2] * r22) * sz
        m20 = (viewmat[2, 0] * r00 + viewmat[2, 1] * r10 + viewmat[2, 2] * r20) * sx
        m21 = (viewmat[2, 0] * r01 + viewmat[2, 1] * r11 + viewmat[2, 2] * r21) * sy
        m22 = (viewmat[2, 0] * r02 + viewmat[2, 1] * r12 + viewmat[2, 2] * r22) * sz
        # perspective Jacobian rows at the clamped mean; project M_c: A = J M_c (2x3), cov2d = A A^T
        rz = 1.0 / z
        u = min(lim_xp, max(-lim_xn, x * rz))
        v = min(lim_yp, max(-lim_yn, y * rz))
        j00, j02 = fx * rz, -fx * u * rz
        j11, j12 = fy * rz, -fy * v * rz
        a0 = j00 * m00 + j02 * m20
        a1 = j00 * m01 + j02 * m21
        a2 = j00 * m02 + j02 * m22
        b0 = j11 * m10 + j12 * m20
        b1 = j11 * m11 + j12 * m21
        b2 = j11 * m12 + j12 * m22
        ca = a0 * a0 + a1 * a1 + a2 * a2 + eps2d
        cb = a0 * b0 + a1 * b1 + a2 * b2
        cc = b0 * b0 + b1 * b1 + b2 * b2 + eps2d
        det = ca * cc - cb * cb
        if not det > 0.0:
            continue
        extend = min(MAX_EXTEND, math.sqrt(2.0 * math.log(op / ALPHA_THRESHOLD)))
        rx = math.ceil(extend * math.sqrt(ca))
        ry = math.ceil(extend * math.sqrt(cc))
        if rx <= 0.0 and ry <= 0.0:
            continue
        px = fx * x * rz + cx
        py = fy * y * rz + cy
        if px + rx <= 0.0 or px - rx >= width or py + ry <= 0.0 or py - ry >= height:
            continue
        gp[i, G_X] = px
        gp[i, G_Y] = py
        gp[i, G_A] = cc / det
        gp[i, G_B] = -cb / det
        gp[i, G_C] = ca / det
        gp[i, G_OP] = op
        gp[i, G_SMAX] = math.log(op / ALPHA_THRESHOLD)
        # half-width and half-height of the ellipse {sigma <= smax}, pixels (ca, cc: the 2D covariance's diagonal)
        gp[i, G_EXT_X] = math.sqrt(2.0 * gp[i, G_SMAX] * ca)
        gp[i, G_EXT_Y] = math.sqrt(2.0 * gp[i, G_SMAX] * cc)
        rect[i, 0] = min(max(0, int(math.floor((px - rx) / TILE))), tiles_x)
        rect[i, 1] = min(max(0, int(math.ceil((px + rx) / TILE))), tiles_x)
        rect[i, 2] = min(max(0, int(math.floor((py - ry) / TILE))), tiles_y)
        rect[i, 3] = min(max(0, int(math.ceil((py + ry) / TILE))), tiles_y)


@_jit(inline="always")
def _exp_neg(s):
    """float32 exp(-s) for s >= 0, relative error < 1e-6 on [0, 6]; exp(-6) beyond, where alpha < 1/255 anyway.

    Branch-free and inlined so the span loop vectorises (a libm call there would not, and spills registers)."""
    x = -min(s, np.float32(6.0)) * _LOG2E  # [-8.66, 0]
    k = np.int32(x - np.float32(0.5))  # truncation toward 0 of x - 0.5 rounds x <= 0 to nearest
    f = x - np.float32(k)  # [-0.5, 0.5]
    p = (((((_P6 * f + _P5) * f + _P4) * f + _P3) * f + _P2) * f + _P1) * f + _P0
    return p * bits_f32((k + np.int32(127)) << np.int32(23))  # p * 2^k


@_jit(inline="always")
def span_start(v, lo, hi):
    """ceil(v) clamped to [lo, hi], lo >= 0; cheaper than math.ceil."""
    if v <= lo:
        return lo
    if v >= hi:
        return hi
    i = int(v)  # v > lo >= 0: truncation is floor
    return i + 1 if i < v else i


@_jit(inline="always")
def span_stop(v, lo, hi):
    """floor(v) + 1 clamped to [lo, hi], lo >= 0: one past the last integer <= v."""
    if v < lo:
        return lo
    if v >= hi - 1:
        return hi
    return int(v) + 1


@_jit(error_model="numpy")
def _composite_tile(gp, features, x0, x1, y0, y1, trans, acc, accz, seg, rec_pix, rec_id, rec_w, rec_at):
    """Composite one tile's Gaussians (gp [K, N_GP], features [K, D], front to back) into per-pixel state,
    row-major over the tile [x0, x1) x [y0, y1).

    Each Gaussian visits only the pixels in the box of its ellipse {sigma <= ln(255 opacity)}: outside it,
    alpha < 1/255 and gsplat skips the Gaussian there anyway. trans [P] transmittance, negated once the pixel is
    done (it would drop to <= 1e-4); acc [P, D] and accz [P] the weighted feature and depth sums.
    Recording (rec_pix an array, not None): each blend, in blending order, as (tile pixel, seg [K] global id,
    weight) into rec_pix / rec_id / rec_w from index rec_at on. Returns the number of blends recorded. numba compiles
    the None case on its own, without the recording branch, so a frame that does not record pays nothing for it."""
    n_rec = 0
    tw = x1 - x0
    n_pix = tw * (y1 - y0)
    n_feat = features.shape[1]
    half = np.float32(0.5)
    n_done = 0
    row_alpha = np.empty(TILE, dtype=np.float32)  # alphas along one tile row
    row_done = np.zeros(TILE, dtype=np.int64)  # bit x - x0 set: pixel (x, y) of the tile row y - y0 is done
    for i in range(gp.shape[0]):
        gx, gy = gp[i, G_X], gp[i, G_Y]
        ca, cb, cc = gp[i, G_A], gp[i, G_B], gp[i, G_C]
        op, gz = gp[i, G_OP], gp[i, G_Z]
        # the box of the ellipse {sigma <= ln(255 opacity)}, clipped to the tile
        ext_x = gp[i, G_EXT_X] + np.float32(1e-3)
        ext_y = gp[i, G_EXT_Y] + np.float32(1e-3)
        c0 = span_start(gx - ext_x - half, x0, x1)
        c1 = span_stop(gx + ext_x - half, x0, x1)
        r0 = span_start(gy - ext_y - half, y0, y1)
        r1 = span_stop(gy + ext_y - half, y0, y1)
        n_span = c1 - c0
        if n_span <= 0:
            continue
        span_bits = ((np.int64(1) << n_span) - 1) << (c0 - x0)
        for py in range(r0, r1):
            if row_done[py - y0] & span_bits == span_bits:  # every pixel of this span is done
                continue
            dy = gy - (np.float32(py) + half)
            bdy = cb * dy
            cdy = cc * dy * dy
            # pass 1 over the whole tile row, a constant 16 wide so it vectorises without a remainder loop:
            # alphas, and a bit mask of the pixels where alpha counts
            live = np.int64(0)
            for j in range(TILE):
                dx = gx - (np.float32(x0 + j) + half)
                sigma = half * (ca * dx * dx + cdy) + bdy * dx
                a = min(np.float32(MAX_ALPHA), op * _exp_neg(max(sigma, np.float32(0.0))))
                row_alpha[j] = a
                live |= np.int64((sigma >= 0.0) & (a >= ALPHA_THRESHOLD)) << j
            # pass 2, front-to-back blending over the set bits only (no unpredictable branches): pixels of the
            # box where alpha counts and that are not done
            live &= span_bits & ~row_done[py - y0]
            row = (py - y0) * tw
            while live != 0:
                j = ctz(live)
                live &= live - 1
                alpha = row_alpha[j]
                p = row + j
                T = trans[p]
                t_next = T * (np.float32(1.0) - alpha)
                if t_next <= T_STOP:
                    trans[p] = -T
                    n_done += 1
                    row_done[py - y0] |= np.int64(1) << j
                    continue
                w = alpha * T
                for d in range(n_feat):
                    acc[p, d] += w * features[i, d]
                accz[p] += w * gz
                trans[p] = t_next
                if rec_pix is not None:
                    rec_pix[rec_at + n_rec] = p
                    rec_id[rec_at + n_rec] = seg[i]
                    rec_w[rec_at + n_rec] = w
                    n_rec += 1
        if n_done == n_pix:
            break
    return n_rec


@_jit(parallel=True)
def _composite(gp, features, offsets, ids, width, height, tiles_x, colors, alphas, depths, rec_pix, rec_id, rec_w,
               rec_start, rec_count):  # fmt: skip
    """Front-to-back compositing, parallel over tiles.

    colors [H, W, D] premultiplied features, alphas [H, W], depths [H, W] expected depth (0 where alpha is 0).
    Recording (rec_pix not None, blend_record.py): tile t's blends go to rec_* [rec_start[t]:] (room for
    record_bounds' count), and their number to rec_count [n_tiles]."""
    n_tiles = offsets.shape[0] - 1
    n_feat = features.shape[1]
    for t in numba.prange(n_tiles):
        x0 = (t % tiles_x) * TILE
        y0 = (t // tiles_x) * TILE
        x1 = min(x0 + TILE, width)
        y1 = min(y0 + TILE, height)
        n_pix = (x1 - x0) * (y1 - y0)
        # this tile's Gaussians, front to back, copied next to each other: the compositing loop then reads
        # memory in order instead of chasing ids through the whole scene
        seg = ids[offsets[t] : offsets[t + 1]]
        n_seg = seg.shape[0]
        tile_gp = np.empty((n_seg, N_GP), dtype=np.float32)
        tile_feat = np.empty((n_seg, n_feat), dtype=np.float32)
        for k in range(n_seg):
            i = seg[k]
            for j in range(N_GP):
                tile_gp[k, j] = gp[i, j]
            for j in range(n_feat):
                tile_feat[k, j] = features[i, j]
        trans = np.ones(n_pix, dtype=np.float32)
        acc = np.zeros((n_pix, n_feat), dtype=np.float32)
        accz = np.zeros(n_pix, dtype=np.float32)
        rec_count[t] = _composite_tile(tile_gp, tile_feat, x0, x1, y0, y1, trans, acc, accz, seg, rec_pix, rec_id,
                                       rec_w, rec_start[t])  # fmt: skip
        p = 0
        for py in range(y0, y1):
            for px in range(x0, x1):
                a = np.float32(1.0) - abs(trans[p])
                for d in range(n_feat):
                    colors[py, px, d] = acc[p, d]
                alphas[py, px] = a
                depths[py, px] = accz[p] / a if a > 0.0 else np.float32(0.0)
                p += 1


def rasterize_native(means, quats, scales, opacities, features, viewmats, Ks, width, height, near, far, eps2d,
                     record: bool = False):  # fmt: skip
    """numpy in, numpy out (float32). Shapes and semantics as splat_raster.rasterize. record=True (one camera):
    also returns the view's blend_record.BlendRecord, (colors, alphas, depths, record)."""
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    means, quats, scales, features = f32(means), f32(quats), f32(scales), f32(features)
    opacities = f32(opacities).reshape(-1)
    viewmats, Ks = f32(viewmats).reshape(-1, 4, 4), f32(Ks).reshape(-1, 3, 3)
    n, n_feat, n_cam = means.shape[0], features.shape[1], viewmats.shape[0]
    if record and n_cam != 1:
        raise ValueError(f"a blend record is of one view; got {n_cam} cameras")
    width, height = int(width), int(height)
    # empty, not zeros: _composite writes every pixel of every tile (a 512² G-buffer's zeros cost ~3 ms a frame)
    empty = n == 0 or width == 0 or height == 0
    alloc = np.zeros if empty else np.empty
    colors = alloc((n_cam, height, width, n_feat), dtype=np.float32)
    alphas = alloc((n_cam, height, width, 1), dtype=np.float32)
    depths = alloc((n_cam, height, width, 1), dtype=np.float32)
    tiles_x, tiles_y = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    no_room = (np.zeros(0, np.uint8), np.zeros(0, np.int32), np.zeros(0, np.float32))
    rec_start = np.zeros(tiles_x * tiles_y, np.int64)
    rec_count = np.zeros(tiles_x * tiles_y, np.int64)
    room = (None, None, None)  # no recording
    if empty:
        if record:
            from .blend_record import compacted

            return colors, alphas, depths, compacted(width, height, rec_start, rec_count, *no_room)
        return colors, alphas, depths
    # per-Gaussian raster parameters, reused across cameras: project_kernel writes every row's depth and tile range,
    # and the rest of the rows it does not cull, the only rows read later
    gp = np.empty((n, N_GP), dtype=np.float32)
    rect = np.empty((n, 4), dtype=np.int32)
    for c in range(n_cam):
        project_kernel(means, quats, scales, opacities, viewmats[c], Ks[c], width, height,
                 float(near), float(far), float(eps2d), gp, rect)
        depth_bits = np.ascontiguousarray(gp[:, G_Z]).view(np.uint32)
        offsets, ids = bin_tiles(rect, depth_bits, tiles_x * tiles_y, tiles_x)
        if record:
            from .blend_record import record_bounds

            bounds = record_bounds(gp, offsets, ids, width, height, tiles_x)
            np.cumsum(bounds[:-1], out=rec_start[1:])
            total = int(bounds.sum())
            room = (np.empty(total, np.uint8), np.empty(total, np.int32), np.empty(total, np.float32))
        old_chunk = numba.set_parallel_chunksize(4)  # tiles differ a lot in cost: hand them out in small chunks
        try:
            _composite(gp, features, offsets, ids, width, height, tiles_x,
                       colors[c], alphas[c, :, :, 0], depths[c, :, :, 0], *room, rec_start, rec_count)
        finally:
            numba.set_parallel_chunksize(old_chunk)
    if record:
        from .blend_record import compacted

        return colors, alphas, depths, compacted(width, height, rec_start, rec_count, *room)
    return colors, alphas, depths
