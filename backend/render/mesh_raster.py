"""Differentiable triangle rasterizer in torch with an API shaped like nvdiffrast's: rasterize, interpolate, texture
(mip-mapped 2D and cube maps) and antialias (silhouette-edge coverage with gradients to vertex positions).

Conventions: row j of an image covers NDC y = (j + 0.5) / H * 2 - 1, column i covers NDC x = (i + 0.5) / W * 2 - 1
(with `clip_from_camera` below, row 0 is the top of an OpenCV camera's image). Pixel-space quantities (rast_db, uv_da)
are per pixel step along +column (X) and +row (Y). The CPU path is the reference; nvdiffrast is used only for CUDA
tensors and only when it imports. The maths here is derived independently (see each function's docstring).
"""


import numba
import numpy as np
import torch
import torch.nn.functional as tnf
from torch import Tensor

from ..core.camera import Camera
from ..core.jit import njit_cached as _jit

_EPS_INSIDE = -1e-7  # a pixel centre is inside when every 2D barycentric is >= this (edges are inclusive)
_BAND = 8  # rows per parallel band in the visibility kernel
_PARALLEL_PIXELS = 384 * 384  # smaller images rasterize on one thread (thread-pool start-up dominates)
_FILTERS = ("auto", "nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear")
_BOUNDARIES = ("wrap", "clamp", "zero", "cube")


# ----------------------------------------------------------------------------------------------------------- cameras


def clip_from_camera(camera: Camera, near: float = 0.01, far: float = 100.0) -> np.ndarray:
    """[4, 4] world -> clip space for an OpenCV pinhole camera; NDC y grows with image row, NDC z with depth."""
    fx, fy, cx, cy = camera.K[0, 0], camera.K[1, 1], camera.K[0, 2], camera.K[1, 2]
    W, H = camera.width, camera.height
    P = np.array(
        [
            [2 * fx / W, 0.0, 2 * cx / W - 1.0, 0.0],
            [0.0, 2 * fy / H, 2 * cy / H - 1.0, 0.0],
            [0.0, 0.0, (far + near) / (far - near), -2 * far * near / (far - near)],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )
    return P @ camera.viewmat


def to_clip(vertices: np.ndarray | Tensor, mvp: np.ndarray) -> Tensor:
    """[V, 3] positions, [4, 4] matrix -> [1, V, 4] clip-space positions (float32)."""
    v = torch.as_tensor(vertices, dtype=torch.float32)
    m = torch.as_tensor(mvp, dtype=torch.float32, device=v.device)
    vh = torch.cat([v, torch.ones_like(v[:, :1])], dim=1)
    return (vh @ m.T)[None]


# ------------------------------------------------------------------------------------------------------ nvdiffrast


_NVDR = {}


def _nvdiffrast(t: Tensor):
    """nvdiffrast.torch for CUDA tensors when it imports, else None (never required, imported lazily)."""
    if not (isinstance(t, Tensor) and t.is_cuda and torch.cuda.is_available()):
        return None
    if "dr" not in _NVDR:
        try:
            import nvdiffrast.torch as dr  # optional, CUDA only

            _NVDR["dr"] = dr
        except ImportError:
            _NVDR["dr"] = None
    return _NVDR["dr"]


def _nvdr_context(dr, device):
    key = ("ctx", str(device))
    if key not in _NVDR:
        _NVDR[key] = dr.RasterizeCudaContext(device=device)
    return _NVDR[key]


# ----------------------------------------------------------------------------------------------- visibility (no grad)




@_jit()
def _bin_faces(pos, tri, H, W, band):  # pragma: no cover - compiled
    """Screen positions of the vertices, each live triangle's pixel box, and the triangles of each band of rows.

    Returns sx, sy, sz [V] (pixels, pixels, NDC z), box [F, 4] (x0, x1, y0, y1: first pixel centre >= min, one past
    the last), start [n_bands + 1] and faces [sum] (each band's triangles in index order)."""
    V = pos.shape[0]
    F = tri.shape[0]
    sx = np.empty(V)
    sy = np.empty(V)
    sz = np.empty(V)
    okv = np.empty(V, np.bool_)
    for k in range(V):
        w = pos[k, 3]
        okv[k] = w > 1e-8
        ww = w if w > 1e-8 else 1.0
        sx[k] = (pos[k, 0] / ww + 1.0) * 0.5 * W
        sy[k] = (pos[k, 1] / ww + 1.0) * 0.5 * H
        sz[k] = pos[k, 2] / ww
    box = np.zeros((F, 4), np.int64)
    nb = (H + band - 1) // band
    start = np.zeros(nb + 1, np.int64)
    for f in range(F):
        a, b, c = tri[f, 0], tri[f, 1], tri[f, 2]
        if not (okv[a] and okv[b] and okv[c]):
            continue
        if min(sz[a], sz[b], sz[c]) > 1.0 or max(sz[a], sz[b], sz[c]) < -1.0:
            continue
        area = (sx[b] - sx[a]) * (sy[c] - sy[a]) - (sx[c] - sx[a]) * (sy[b] - sy[a])
        if abs(area) <= 1e-12:
            continue
        x0 = min(max(np.floor(min(sx[a], sx[b], sx[c]) - 0.5) + 1, 0), W)
        x1 = min(max(np.floor(max(sx[a], sx[b], sx[c]) - 0.5) + 1, 0), W)
        y0 = min(max(np.floor(min(sy[a], sy[b], sy[c]) - 0.5) + 1, 0), H)
        y1 = min(max(np.floor(max(sy[a], sy[b], sy[c]) - 0.5) + 1, 0), H)
        if x1 <= x0 or y1 <= y0:
            continue
        box[f, 0], box[f, 1], box[f, 2], box[f, 3] = x0, x1, y0, y1
        for q in range(y0 // band, (y1 - 1) // band + 1):
            start[q + 1] += 1
    for q in range(nb):
        start[q + 1] += start[q]
    fill = start[:-1].copy()
    faces = np.empty(start[nb], np.int64)
    for f in range(F):
        if box[f, 3] > box[f, 2]:
            for q in range(box[f, 2] // band, (box[f, 3] - 1) // band + 1):
                faces[fill[q]] = f
                fill[q] += 1
    return sx, sy, sz, box, start, faces


@_jit()
def _raster_band(q, band, H, W, sx, sy, sz, tri, box, start, faces, tid, zbest):  # pragma: no cover - compiled
    """Depth-test band q's triangles (in index order, so exact ties keep the lowest index) into tid / zbest."""
    r0 = q * band
    r1 = min(H, r0 + band)
    for n in range(start[q], start[q + 1]):
        f = faces[n]
        a, b, c = tri[f, 0], tri[f, 1], tri[f, 2]
        X0, X1, X2 = sx[a], sx[b], sx[c]
        Y0, Y1, Y2 = sy[a], sy[b], sy[c]
        Z0, Z1, Z2 = sz[a], sz[b], sz[c]
        inv = 1.0 / ((X1 - X0) * (Y2 - Y0) - (X2 - X0) * (Y1 - Y0))
        for j in range(max(box[f, 2], r0), min(box[f, 3], r1)):
            cy = j + 0.5
            for i in range(box[f, 0], box[f, 1]):
                cx = i + 0.5
                b0 = ((X1 - cx) * (Y2 - cy) - (X2 - cx) * (Y1 - cy)) * inv
                b1 = ((X2 - cx) * (Y0 - cy) - (X0 - cx) * (Y2 - cy)) * inv
                b2 = 1.0 - b0 - b1
                if b0 >= -1e-7 and b1 >= -1e-7 and b2 >= -1e-7:
                    z = b0 * Z0 + b1 * Z1 + b2 * Z2
                    p = j * W + i
                    if z >= -1.0 and z <= 1.0 and z < zbest[p]:
                        zbest[p] = z
                        tid[p] = f + 1


@_jit(parallel=True)
def _visible_parallel(pos, tri, H, W, band):  # pragma: no cover - compiled
    """pos [V, 4] float64 clip, tri [F, 3] int64 -> [H*W] int32 nearest covering triangle index + 1 (0 = empty).
    One thread per band of rows: no write conflicts, and the result does not depend on the thread count."""
    sx, sy, sz, box, start, faces = _bin_faces(pos, tri, H, W, band)
    tid = np.zeros(H * W, np.int32)
    zbest = np.full(H * W, np.inf)
    for q in numba.prange(len(start) - 1):
        _raster_band(q, band, H, W, sx, sy, sz, tri, box, start, faces, tid, zbest)
    return tid


@_jit()
def _visible_serial(pos, tri, H, W, band):  # pragma: no cover - compiled
    """Single-threaded _visible_parallel: small jobs, where starting the thread pool costs more than it saves."""
    sx, sy, sz, box, start, faces = _bin_faces(pos, tri, H, W, band)
    tid = np.zeros(H * W, np.int32)
    zbest = np.full(H * W, np.inf)
    for q in range(len(start) - 1):
        _raster_band(q, band, H, W, sx, sy, sz, tri, box, start, faces, tid, zbest)
    return tid


def _visible_torch(pos: Tensor, tri: Tensor, H: int, W: int, max_candidates: int = 1 << 22) -> Tensor:
    """Plain-torch reference of the visibility pass: [V, 4] clip, [F, 3] -> [H*W] int64 triangle index + 1.

    Every (pixel, triangle) pair in each triangle's bounding box is tested; the nearest wins through a scatter-min on
    packed (quantised depth, triangle) keys."""
    w = pos[:, 3]
    ok_v = w > 1e-8
    ndc = pos[:, :3] / torch.where(ok_v, w, torch.ones_like(w))[:, None]
    sx, sy, sz = (ndc[:, 0] + 1) * 0.5 * W, (ndc[:, 1] + 1) * 0.5 * H, ndc[:, 2]
    tx, ty, tz = sx[tri], sy[tri], sz[tri]  # [F, 3]
    x0 = torch.clamp(torch.floor(tx.min(1).values - 0.5).long() + 1, 0, W)
    x1 = torch.clamp(torch.floor(tx.max(1).values - 0.5).long() + 1, 0, W)
    y0 = torch.clamp(torch.floor(ty.min(1).values - 0.5).long() + 1, 0, H)
    y1 = torch.clamp(torch.floor(ty.max(1).values - 0.5).long() + 1, 0, H)
    bw, bh = (x1 - x0).clamp(min=0), (y1 - y0).clamp(min=0)
    area = (tx[:, 1] - tx[:, 0]) * (ty[:, 2] - ty[:, 0]) - (tx[:, 2] - tx[:, 0]) * (ty[:, 1] - ty[:, 0])
    live = ok_v[tri].all(1) & (bw > 0) & (bh > 0) & (area.abs() > 1e-12)
    live &= (tz.min(1).values <= 1) & (tz.max(1).values >= -1)
    ids = torch.nonzero(live).squeeze(1)
    big = torch.iinfo(torch.int64).max
    best = torch.full((H * W,), big, dtype=torch.int64)
    counts = (bw * bh)[ids]
    start = 0
    while start < ids.numel():
        csum = torch.cumsum(counts[start:], 0)
        stop = start + max(1, int(torch.searchsorted(csum, max_candidates, right=True)))
        f, n = ids[start:stop], counts[start:stop]
        fi = torch.repeat_interleave(f, n)
        local = torch.arange(int(n.sum())) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
        px, py = x0[fi] + local % bw[fi], y0[fi] + local // bw[fi]
        cx, cy = px.to(pos.dtype) + 0.5, py.to(pos.dtype) + 0.5
        X, Y, Z, a = tx[fi], ty[fi], tz[fi], area[fi]
        b0 = ((X[:, 1] - cx) * (Y[:, 2] - cy) - (X[:, 2] - cx) * (Y[:, 1] - cy)) / a
        b1 = ((X[:, 2] - cx) * (Y[:, 0] - cy) - (X[:, 0] - cx) * (Y[:, 2] - cy)) / a
        b2 = 1 - b0 - b1
        inside = (b0 >= _EPS_INSIDE) & (b1 >= _EPS_INSIDE) & (b2 >= _EPS_INSIDE)
        z = b0 * Z[:, 0] + b1 * Z[:, 1] + b2 * Z[:, 2]
        inside &= (z >= -1) & (z <= 1)
        key = (((z.clamp(-1, 1) + 1) * 0.5 * (2**30 - 1)).long() << 32) | fi
        best.scatter_reduce_(0, (py * W + px)[inside], key[inside], reduce="amin")
        start = stop
    return torch.where(best != big, (best & 0xFFFFFFFF) + 1, torch.zeros_like(best))


def visible_triangles(pos: Tensor, tri, resolution: tuple[int, int], backend: str = "native") -> Tensor:
    """[V, 4] clip positions, [F, 3] -> [H, W] int64 nearest covering triangle index + 1 (0 = empty). No gradients.

    backend: "native" (numba, parallel over row bands) or "torch" (reference). Triangles with a vertex at w <= 0
    are dropped (no near-plane clipping); a pixel keeps depth z/w only inside [-1, 1]."""
    H, W = resolution
    if backend == "torch":
        t = torch.as_tensor(tri, dtype=torch.int64).cpu().reshape(-1, 3)
        return _visible_torch(pos.detach().cpu().double(), t, H, W).reshape(H, W)
    p = np.ascontiguousarray(pos.detach().cpu().numpy(), dtype=np.float64)
    t = np.ascontiguousarray(np.asarray(tri.cpu() if isinstance(tri, Tensor) else tri), dtype=np.int64).reshape(-1, 3)
    kernel = _visible_parallel if H * W >= _PARALLEL_PIXELS and numba.get_num_threads() > 1 else _visible_serial
    return torch.from_numpy(kernel(p, t, H, W, _BAND).astype(np.int64)).reshape(H, W)


# ------------------------------------------------------------------------------------------- rasterize (with grads)


def _face_table(p: Tensor, tri: Tensor, H: int, W: int) -> Tensor:
    """[V, 4] clip, [F, 3] -> [F, 14] per-triangle screen-space coefficients (differentiable w.r.t. p).

    Columns: x0, y0 (vertex 0 in pixels), a[3] = d(lambda)/dX, b[3] = d(lambda)/dY, 1/w[3], z/w[3]. The 2D
    barycentrics lambda are affine in the pixel position (X, Y): lambda = a (X - x0) + b (Y - y0) + (1, 0, 0)."""
    v = p[tri]  # [F, 3, 4]
    w = v[..., 3]
    w = torch.where(w.abs() > 1e-12, w, torch.full_like(w, 1e-12))
    x = (v[..., 0] / w + 1) * (0.5 * W)
    y = (v[..., 1] / w + 1) * (0.5 * H)
    x0, x1, x2 = x.unbind(1)
    y0, y1, y2 = y.unbind(1)
    D = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    D = torch.where(D.abs() > 1e-20, D, torch.full_like(D, 1e-20))
    a = torch.stack([y1 - y2, y2 - y0, y0 - y1], 1) / D[:, None]
    b = torch.stack([x2 - x1, x0 - x2, x1 - x0], 1) / D[:, None]
    return torch.cat([x0[:, None], y0[:, None], a, b, 1 / w, v[..., 2] / w], 1)


def _lambda(T: Tensor, X: Tensor, Y: Tensor) -> Tensor:
    """[P, 14] gathered face table, pixel positions [P] -> [P, 3] 2D (screen-affine) barycentrics."""
    lam = T[:, 2:5] * (X - T[:, 0])[:, None] + T[:, 5:8] * (Y - T[:, 1])[:, None]
    return lam + torch.tensor([1.0, 0.0, 0.0], dtype=T.dtype, device=T.device)


def rasterize(pos: Tensor, tri, resolution: tuple[int, int], ranges=None, grad_db: bool = True,
              backend: str = "native"):
    """pos [B, V, 4] clip space, tri [F, 3] int, (H, W) -> (rast [B, H, W, 4], rast_db [B, H, W, 4] or None).

    rast = (u, v, z/w, triangle_id + 1), 0 everywhere on empty pixels. u weights the triangle's vertex 0, v its vertex
    1, 1 - u - v its vertex 2 (perspective-correct). rast_db = (du/dX, du/dY, dv/dX, dv/dY) per pixel step (X along
    a row, Y down the rows), or None when grad_db is False. u, v, z/w and rast_db are differentiable w.r.t. `pos`;
    which triangle covers a pixel is not (use `antialias` for silhouette gradients).

    Maths: the 2D barycentrics l_i are affine in the pixel position; the perspective-correct ones are
    (l_i / w_i) / sum_k (l_k / w_k), and z/w = sum_i l_i z_i / w_i. Their pixel derivatives follow from the quotient
    rule: d b_i/dX = (a_i / w_i - b_i sum_k a_k / w_k) / sum_k (l_k / w_k), with a_i = d l_i / dX.
    `ranges` (nvdiffrast's instanced mode) is not supported."""
    if ranges is not None:
        raise NotImplementedError("rasterize: range mode is not supported; pass pos as [B, V, 4]")
    if pos.dim() != 3 or pos.shape[-1] != 4:
        raise ValueError(f"rasterize: pos must be [B, V, 4] clip-space positions, got {tuple(pos.shape)}")
    dr = _nvdiffrast(pos)
    if dr is not None:
        t32 = torch.as_tensor(tri, dtype=torch.int32, device=pos.device).contiguous()
        return dr.rasterize(_nvdr_context(dr, pos.device), pos.contiguous(), t32, resolution, grad_db=grad_db)
    H, W = int(resolution[0]), int(resolution[1])
    tri = torch.as_tensor(tri, dtype=torch.int64, device=pos.device).reshape(-1, 3)
    rasts, dbs = [], []
    for bi in range(pos.shape[0]):
        p = pos[bi]
        tid = visible_triangles(p, tri, (H, W), backend=backend).reshape(-1).to(pos.device)  # [H*W]
        cov = torch.nonzero(tid > 0).squeeze(1)
        f = tid[cov] - 1
        X = (cov % W).to(p.dtype) + 0.5
        Y = torch.div(cov, W, rounding_mode="floor").to(p.dtype) + 0.5
        r, db = _RasterPixels.apply(_face_table(p, tri, H, W), f, X, Y, cov, H * W, grad_db)  # [H*W, 4] each
        rasts.append(r.reshape(H, W, 4))
        dbs.append(db.reshape(H, W, 4))
    return torch.stack(rasts), (torch.stack(dbs) if grad_db else None)


def _pixels_reference(T: Tensor, f: Tensor, X: Tensor, Y: Tensor) -> Tensor:
    """Autograd reference of _RasterPixels: [F, 14] face table, [P] faces, [P] pixel centres -> [P, 8] =
    (u, v, z/w, 0, du/dX, du/dY, dv/dX, dv/dY)."""
    T = T[f]
    lam = _lambda(T, X, Y)
    q = lam * T[:, 8:11]
    S = q.sum(1, keepdim=True)
    bary = q / S
    z = (lam * T[:, 11:14]).sum(1)
    ga, gb = T[:, 2:5] * T[:, 8:11], T[:, 5:8] * T[:, 8:11]  # d(l/w)/dX, d(l/w)/dY
    dX = (ga - bary * ga.sum(1, keepdim=True)) / S
    dY = (gb - bary * gb.sum(1, keepdim=True)) / S
    return torch.stack([bary[:, 0], bary[:, 1], z, torch.zeros_like(z), dX[:, 0], dY[:, 0], dX[:, 1], dY[:, 1]], 1)


def _pixel_terms(table: Tensor, f: Tensor, X: Tensor, Y: Tensor):
    """Shared by _RasterPixels' forward and backward: the gathered face rows T [P, 14], the pixel offsets dX, dY
    [P], the table's parts a, b, r, zn [P, 3], screen-affine barycentrics lam [P, 3], S = sum(lam r) [P, 1] and the
    perspective-correct barycentrics [P, 3]."""
    T = table[f]
    dX, dY = X - T[:, 0], Y - T[:, 1]
    a, b, r, zn = T[:, 2:5], T[:, 5:8], T[:, 8:11], T[:, 11:14]
    lam = _lambda(T, X, Y)
    q = lam * r
    S = q.sum(1, keepdim=True)
    return T, dX, dY, a, b, r, zn, lam, S, q / S


class _RasterPixels(torch.autograd.Function):
    """Per covered pixel: perspective-correct barycentrics, z/w and their pixel derivatives from the face table,
    with a hand-written backward (one scatter into the [F, 14] table instead of autograd's many full-size slices).
    Same maths as _pixels_reference."""

    @staticmethod
    def forward(ctx, table, f, X, Y, cov, n_pix, with_db):
        """-> (rast [n_pix, 4] = (u, v, z/w, f + 1), rast_db [n_pix, 4]); pixels `cov` hold faces `f`."""
        T, dX, dY, a, b, r, zn, lam, S, bary = _pixel_terms(table, f, X, Y)
        rast = torch.zeros(n_pix, 4, dtype=table.dtype, device=table.device)
        rast[cov, 0] = bary[:, 0]
        rast[cov, 1] = bary[:, 1]
        rast[cov, 2] = (lam * zn).sum(1)
        rast[cov, 3] = (f + 1).to(table.dtype)
        db = torch.zeros(n_pix, 4, dtype=table.dtype, device=table.device)
        if with_db:
            ga, gb = a * r, b * r
            DX = (ga - bary * ga.sum(1, keepdim=True)) / S
            DY = (gb - bary * gb.sum(1, keepdim=True)) / S
            db[cov] = torch.stack([DX[:, 0], DY[:, 0], DX[:, 1], DY[:, 1]], 1)
        ctx.save_for_backward(table, f, X, Y, cov)
        ctx.with_db = with_db
        ctx.mark_non_differentiable(db) if not with_db else None
        return rast, db

    @staticmethod
    def backward(ctx, g_rast, g_db):
        table, f, X, Y, cov = ctx.saved_tensors
        g = torch.cat([g_rast[cov], g_db[cov]], 1)  # [P, 8]
        T, dX, dY, a, b, r, zn, lam, S, bary = _pixel_terms(table, f, X, Y)  # recomputed, not saved: memory
        gbary = torch.zeros_like(bary)
        gbary[:, :2] = g[:, :2]
        gz = g[:, 2:3]
        gS = torch.zeros_like(S)
        ga_ = torch.zeros_like(a)
        gb_ = torch.zeros_like(b)
        if ctx.with_db:
            for ca, gcol, grad_c in ((a, (4, 6), ga_), (b, (5, 7), gb_)):
                gc = ca * r  # d(l/w) per pixel step
                Gc = gc.sum(1, keepdim=True)
                D = (gc - bary * Gc) / S
                gD = torch.zeros_like(D)
                gD[:, 0], gD[:, 1] = g[:, gcol[0]], g[:, gcol[1]]
                grad_c += gD / S - (gD * bary).sum(1, keepdim=True) / S  # through gc (and its sum Gc)
                gbary -= gD * Gc / S
                gS -= (gD * D).sum(1, keepdim=True) / S
        gq = (gbary - (gbary * bary).sum(1, keepdim=True)) / S + gS
        glam = gq * r + gz * zn
        gT = torch.empty_like(T)
        gT[:, 0] = -(glam * a).sum(1)
        gT[:, 1] = -(glam * b).sum(1)
        gT[:, 2:5] = glam * dX[:, None] + ga_ * r
        gT[:, 5:8] = glam * dY[:, None] + gb_ * r
        gT[:, 8:11] = gq * lam + ga_ * a + gb_ * b
        gT[:, 11:14] = gz * lam
        return torch.zeros_like(table).index_add_(0, f, gT), None, None, None, None, None, None


# ------------------------------------------------------------------------------------------------------ interpolate


def interpolate(attr: Tensor, rast: Tensor, tri, rast_db: Tensor | None = None, diff_attrs=None):
    """attr [V, C] or [B, V, C], rast [B, H, W, 4], tri [F, 3] -> (out [B, H, W, C], out_da or None).

    out = u A0 + v A1 + (1 - u - v) A2 of the pixel's triangle, 0 where uncovered; differentiable w.r.t. attr and
    rast. With rast_db and diff_attrs ("all" or a list of channel indices), out_da [B, H, W, 2 * n] holds, per
    listed channel c, (dA_c/dX, dA_c/dY) next to each other: dA/dX = du/dX (A0 - A2) + dv/dX (A1 - A2).
    That is the `uv_da` layout `texture` expects."""
    dr = _nvdiffrast(rast)
    if dr is not None:
        t32 = torch.as_tensor(tri, dtype=torch.int32, device=rast.device).contiguous()
        return dr.interpolate(attr.contiguous(), rast, t32, rast_db=rast_db, diff_attrs=diff_attrs)
    tri = torch.as_tensor(tri, dtype=torch.int64, device=rast.device).reshape(-1, 3)
    B, H, W, _ = rast.shape
    a = attr if attr.dim() == 3 else attr[None]
    if a.shape[0] not in (1, B):
        raise ValueError(f"interpolate: attr batch {a.shape[0]} does not match rast batch {B}")
    with torch.no_grad():
        tid = rast[..., 3].reshape(-1).long()  # [B*H*W]
        cov = torch.nonzero(tid > 0).squeeze(1)
        corner = tri[tid[cov] - 1]  # [P, 3] vertex ids
        if a.shape[0] > 1:
            corner = corner + torch.div(cov, H * W, rounding_mode="floor")[:, None] * a.shape[1]
    out = _Interpolate.apply(a.reshape(-1, a.shape[-1]), rast.reshape(-1, 4), cov, corner)
    out = out.reshape(B, H, W, -1)
    if rast_db is None or diff_attrs is None:
        return out, None
    ch = list(range(a.shape[-1])) if diff_attrs == "all" else [int(c) for c in diff_attrs]
    av = a.reshape(-1, a.shape[-1])[:, ch][corner]  # [P, 3, n]
    e0, e1 = av[:, 0] - av[:, 2], av[:, 1] - av[:, 2]
    db = rast_db.reshape(-1, 4)[cov]
    dX = e0 * db[:, 0:1] + e1 * db[:, 2:3]
    dY = e0 * db[:, 1:2] + e1 * db[:, 3:4]
    da = torch.zeros(B * H * W, 2 * len(ch), dtype=out.dtype, device=out.device)
    da = da.index_copy(0, cov, torch.stack([dX, dY], -1).reshape(len(cov), 2 * len(ch)))
    return out, da.reshape(B, H, W, 2 * len(ch))


class _Interpolate(torch.autograd.Function):
    """out[cov] = A[c0] u + A[c1] v + A[c2] (1 - u - v), zero elsewhere, with a hand-written backward to the
    attributes (one scatter) and to u, v."""

    @staticmethod
    def forward(ctx, attr, rast, cov, corner):  # attr [N, C], rast [n_pix, 4], cov [P], corner [P, 3]
        uv = rast[cov, :2]
        A0, A1, A2 = attr[corner[:, 0]], attr[corner[:, 1]], attr[corner[:, 2]]
        out = torch.zeros(rast.shape[0], attr.shape[1], dtype=attr.dtype, device=attr.device)
        out[cov] = A2 + (A0 - A2) * uv[:, 0:1] + (A1 - A2) * uv[:, 1:2]
        ctx.save_for_backward(attr, rast, cov, corner)
        return out

    @staticmethod
    def backward(ctx, g):
        attr, rast, cov, corner = ctx.saved_tensors
        uv = rast[cov, :2]
        gp = g[cov]  # [P, C]
        g_attr = g_rast = None
        if ctx.needs_input_grad[0]:
            w = torch.stack([uv[:, 0], uv[:, 1], 1 - uv[:, 0] - uv[:, 1]], 1)  # [P, 3]
            src = (w[:, :, None] * gp[:, None, :]).reshape(-1, attr.shape[1])
            g_attr = torch.zeros_like(attr).index_add_(0, corner.reshape(-1), src)
        if ctx.needs_input_grad[1]:
            A2 = attr[corner[:, 2]]
            g_rast = torch.zeros_like(rast)
            g_rast[cov, 0] = (gp * (attr[corner[:, 0]] - A2)).sum(1)
            g_rast[cov, 1] = (gp * (attr[corner[:, 1]] - A2)).sum(1)
        return g_attr, g_rast, None, None


# ---------------------------------------------------------------------------------------------------------- texture

# Cube-map faces, in order +X, -X, +Y, -Y, +Z, -Z (OpenGL's table of major axes). For face f the rows of _CUBE[f] give
# (sc, tc, ma) as linear functions of the direction; the face is read at column s = (sc / ma + 1) / 2 and row
# t = (tc / ma + 1) / 2 (both in [0, 1] across the face). E.g. +X: sc = -z, tc = -y; +Y: sc = x, tc = z;
# +Z: sc = x, tc = -y. The rows are orthonormal, so the inverse is the transpose.
_CUBE = np.array(
    [
        [[0, 0, -1], [0, -1, 0], [1, 0, 0]],  # +X
        [[0, 0, 1], [0, -1, 0], [-1, 0, 0]],  # -X
        [[1, 0, 0], [0, 0, 1], [0, 1, 0]],  # +Y
        [[1, 0, 0], [0, 0, -1], [0, -1, 0]],  # -Y
        [[1, 0, 0], [0, -1, 0], [0, 0, 1]],  # +Z
        [[-1, 0, 0], [0, -1, 0], [0, 0, -1]],  # -Z
    ],
    dtype=np.float64,
)


def cube_face(d: Tensor) -> Tensor:
    """[..., 3] directions -> [...] int64 face index (0..5 = +X, -X, +Y, -Y, +Z, -Z); ties prefer x, then y."""
    ad = d.abs()
    x_major = (ad[..., 0] >= ad[..., 1]) & (ad[..., 0] >= ad[..., 2])
    ax = torch.where(x_major, 0, torch.where(ad[..., 1] >= ad[..., 2], 1, 2))
    comp = torch.gather(d, -1, ax[..., None])[..., 0]
    return ax * 2 + (comp < 0).long()


def _cube_st(d: Tensor, face: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """[N, 3] directions on `face` [N] -> (s, t in [0, 1] across the face, ma > 0 the major-axis length)."""
    R = torch.as_tensor(_CUBE, dtype=d.dtype, device=d.device)[face]  # [N, 3, 3]
    sct = (R @ d[..., None])[..., 0]
    ma = sct[:, 2].clamp(min=1e-12)
    return (sct[:, 0] / ma + 1) * 0.5, (sct[:, 1] / ma + 1) * 0.5, ma


def texture_construct_mip(tex: Tensor, max_mip_level: int | None = None, cube_mode: bool | None = None) -> list[Tensor]:
    """[B, H, W, C] (or cube [B, 6, H, W, C]) -> list of levels, level 0 = tex, each next one a 2x2 box filter of the
    previous (odd sizes average the texels that exist), down to 1x1 or `max_mip_level`. Differentiable w.r.t. tex;
    pass the list as `texture(..., mip=...)` to reuse it."""
    cube = tex.dim() == 5 if cube_mode is None else cube_mode
    t = tex if cube else tex[:, None]  # [B, Fc, H, W, C]
    B, Fc, H, W, C = t.shape
    levels = [t]
    while (H > 1 or W > 1) and (max_mip_level is None or len(levels) <= max_mip_level):
        x = levels[-1].reshape(B * Fc, H, W, C).permute(0, 3, 1, 2)
        x = tnf.avg_pool2d(x, (2 if H > 1 else 1, 2 if W > 1 else 1), ceil_mode=True)
        H, W = x.shape[-2:]
        levels.append(x.permute(0, 2, 3, 1).reshape(B, Fc, H, W, C))
    return levels if cube else [lv[:, 0] for lv in levels]


def _taps(level: Tensor, bi: Tensor, face: Tensor, s: Tensor, t: Tensor, boundary: str, nearest: bool) -> Tensor:
    """Sample one level [Bt, Fc, h, w, C] at N points (batch bi, face, s, t in [0, 1]) -> [N, C], bilinear or nearest.

    Texel (i, j) has its centre at ((i + 0.5) / w, (j + 0.5) / h). Cube taps that fall off a face are re-projected
    through their 3D direction onto the neighbouring face, so filtering is seamless across cube edges."""
    Bt, Fc, h, w, C = level.shape
    flat = level.reshape(-1, C)
    bi = bi if Bt > 1 else torch.zeros_like(bi)
    if nearest:
        cols = [(torch.floor(s * w).long(), torch.ones_like(s))]
        rows = [(torch.floor(t * h).long(), torch.ones_like(t))]
    else:
        x, y = s * w - 0.5, t * h - 0.5
        x0, y0 = torch.floor(x), torch.floor(y)
        fx, fy = x - x0, y - y0
        x0, y0 = x0.long(), y0.long()
        cols = [(x0, 1 - fx), (x0 + 1, fx)]
        rows = [(y0, 1 - fy), (y0 + 1, fy)]
    out = 0
    for j0, wy in rows:
        for i0, wx in cols:
            i, j = i0, j0
            wgt = wx * wy
            f = face
            if boundary == "wrap":
                i, j = torch.remainder(i, w), torch.remainder(j, h)
            elif boundary == "zero":
                wgt = wgt * ((i >= 0) & (i < w) & (j >= 0) & (j < h)).to(wgt.dtype)
                i, j = i.clamp(0, w - 1), j.clamp(0, h - 1)
            elif boundary == "cube":
                off = (i < 0) | (i >= w) | (j < 0) | (j >= h)
                if bool(off.any()):
                    sc = (i[off].to(s.dtype) + 0.5) / w * 2 - 1
                    tc = (j[off].to(s.dtype) + 0.5) / h * 2 - 1
                    R = torch.as_tensor(_CUBE, dtype=s.dtype, device=s.device)[face[off]]
                    d = (R.transpose(1, 2) @ torch.stack([sc, tc, torch.ones_like(sc)], 1)[..., None])[..., 0]
                    f2 = cube_face(d)
                    s2, t2, _ = _cube_st(d, f2)
                    i, j, f = i.clone(), j.clone(), face.clone()
                    i[off] = torch.floor(s2 * w).long()
                    j[off] = torch.floor(t2 * h).long()
                    f[off] = f2
                i, j = i.clamp(0, w - 1), j.clamp(0, h - 1)
            else:  # clamp
                i, j = i.clamp(0, w - 1), j.clamp(0, h - 1)
            idx = ((bi * Fc + f) * h + j) * w + i
            out = out + flat[idx] * wgt[:, None]
    return out


def texture(
    tex: Tensor,
    uv: Tensor,
    uv_da: Tensor | None = None,
    mip_level_bias: Tensor | None = None,
    mip: list[Tensor] | None = None,
    filter_mode: str = "auto",
    boundary_mode: str = "wrap",
    max_mip_level: int | None = None,
) -> Tensor:
    """Sample a texture; differentiable w.r.t. tex (and mip), uv and uv_da.

    2D: tex [B or 1, Ht, Wt, C], uv [B, H, W, 2] with u across columns and v down the rows, both in [0, 1] over the
    texture (texel (i, j) centred at ((i + 0.5) / Wt, (j + 0.5) / Ht)); uv_da [B, H, W, 4] =
    (du/dX, du/dY, dv/dX, dv/dY) as `interpolate(..., diff_attrs="all")` gives it.
    Cube (boundary_mode="cube"): tex [B or 1, 6, S, S, C] with faces +X, -X, +Y, -Y, +Z, -Z (see _CUBE for their
    orientation), uv [B, H, W, 3] a direction (any length), uv_da [B, H, W, 6] = (dx/dX, dx/dY, dy/dX, dy/dY,
    dz/dX, dz/dY).
    Mip level: lod = log2(max(|d(texel)/dX|, |d(texel)/dY|)) + mip_level_bias [B, H, W] (isotropic, in level-0
    texels). filter_mode "auto" is linear-mipmap-linear when uv_da or mip_level_bias is given, else linear.
    mip: levels from `texture_construct_mip` (level 0 = tex), built here when needed and not given.
    Returns [B, H, W, C]."""
    if filter_mode not in _FILTERS:
        raise ValueError(f"texture: filter_mode must be one of {_FILTERS}, got {filter_mode!r}")
    if boundary_mode not in _BOUNDARIES:
        raise ValueError(f"texture: boundary_mode must be one of {_BOUNDARIES}, got {boundary_mode!r}")
    cube = boundary_mode == "cube"
    if cube and (tex.dim() != 5 or tex.shape[1] != 6 or uv.shape[-1] != 3):
        raise ValueError(f"texture: a cube map needs tex [B, 6, S, S, C] and uv [B, H, W, 3], "
                         f"got {tuple(tex.shape)}, {tuple(uv.shape)}")
    if not cube and (tex.dim() != 4 or uv.shape[-1] != 2):
        raise ValueError(f"texture: a 2D texture needs tex [B, H, W, C] and uv [B, H, W, 2], "
                         f"got {tuple(tex.shape)}, {tuple(uv.shape)}")
    if filter_mode == "auto":
        filter_mode = "linear-mipmap-linear" if (uv_da is not None or mip_level_bias is not None) else "linear"
    dr = _nvdiffrast(uv)
    if dr is not None:
        if isinstance(mip, list):  # ours include level 0; nvdiffrast's custom mip lists start at level 1
            mip = mip[1:]
        return dr.texture(tex.contiguous(), uv.contiguous(), uv_da=uv_da, mip_level_bias=mip_level_bias, mip=mip,
                          filter_mode=filter_mode, boundary_mode=boundary_mode, max_mip_level=max_mip_level)
    B, H, W = uv.shape[:3]
    N = B * H * W
    bi = torch.arange(B, device=uv.device).repeat_interleave(H * W)
    u = uv.reshape(N, -1)
    if cube:
        face = cube_face(u)
        s, t, ma = _cube_st(u, face)
        size = (tex.shape[3], tex.shape[2])  # (w, h) of a face
    else:
        face = torch.zeros(N, dtype=torch.int64, device=uv.device)
        s, t = u[:, 0], u[:, 1]
        size = (tex.shape[2], tex.shape[1])

    mipmapped = filter_mode.startswith("linear-mipmap")
    if mipmapped:
        levels = mip if mip is not None else texture_construct_mip(tex, max_mip_level, cube_mode=cube)
        levels = [lv if cube else lv[:, None] for lv in levels]
        if max_mip_level is not None:
            levels = levels[: max_mip_level + 1]
        lod = torch.zeros(N, dtype=uv.dtype, device=uv.device)
        if uv_da is not None:
            da = uv_da.reshape(N, -1)
            if cube:  # derivative of (sc/ma, tc/ma) by the quotient rule, in face texels
                R = torch.as_tensor(_CUBE, dtype=uv.dtype, device=uv.device)[face]
                sct = (R @ u[..., None])[..., 0]  # [N, 3]
                d = [(R @ da[:, k::2][..., None])[..., 0] for k in (0, 1)]  # d(sc, tc, ma)/dX, /dY
                m = sct[:, 2:3].clamp(min=1e-12)
                gX = (d[0][:, :2] * m - sct[:, :2] * d[0][:, 2:3]) / m**2 * 0.5
                gY = (d[1][:, :2] * m - sct[:, :2] * d[1][:, 2:3]) / m**2 * 0.5
            else:
                gX, gY = da[:, 0::2], da[:, 1::2]  # (du, dv)/dX, (du, dv)/dY
            sc = torch.tensor(size, dtype=uv.dtype, device=uv.device)
            rho2 = torch.maximum(((gX * sc) ** 2).sum(1), ((gY * sc) ** 2).sum(1))
            lod = 0.5 * torch.log2(rho2.clamp(min=1e-20))
        if mip_level_bias is not None:
            lod = lod + mip_level_bias.reshape(N)
        top = len(levels) - 1
        lod = lod.clamp(0, top)
        if filter_mode == "linear-mipmap-nearest":
            l0 = torch.floor(lod + 0.5).long().clamp(0, top)
            pick = [(l0, torch.ones_like(lod))]
        else:
            l0 = torch.floor(lod).long().clamp(0, top)
            frac = lod - l0.to(lod.dtype)
            pick = [(l0, 1 - frac), ((l0 + 1).clamp(max=top), frac)]
        out = torch.zeros(N, tex.shape[-1], dtype=tex.dtype, device=tex.device)
        for k in range(top + 1):
            wk = sum((lv == k).to(lod.dtype) * wt for lv, wt in pick)
            sel = torch.nonzero(wk > 0).squeeze(1)
            if sel.numel():
                val = _taps(levels[k], bi[sel], face[sel], s[sel], t[sel], boundary_mode, nearest=False)
                out = out.index_add(0, sel, val * wk[sel, None])
    else:
        lv = tex if cube else tex[:, None]
        out = _taps(lv, bi, face, s, t, boundary_mode, nearest=filter_mode == "nearest")
    return out.reshape(B, H, W, -1)


# -------------------------------------------------------------------------------------------------------- antialias


def antialias_construct_topology_hash(tri) -> Tensor:
    """[F, 3] -> [F, 3] int64: for edge k of each triangle (the edge opposite vertex k) the other triangle sharing
    it, -1 on a boundary edge, -2 on a non-manifold edge (three or more triangles). Reusable across antialias calls."""
    t = np.asarray(tri.cpu() if isinstance(tri, Tensor) else tri, dtype=np.int64).reshape(-1, 3)
    F = len(t)
    a = np.concatenate([t[:, 1], t[:, 2], t[:, 0]])  # edge k: vertices (k+1)%3, (k+2)%3
    b = np.concatenate([t[:, 2], t[:, 0], t[:, 1]])
    key = np.minimum(a, b) * (int(t.max(initial=0)) + 1) + np.maximum(a, b)
    slot = np.arange(3 * F)  # slot = k * F + f
    order = np.argsort(key, kind="stable")
    ks = key[order]
    start = np.r_[0, np.nonzero(np.diff(ks))[0] + 1]
    count = np.diff(np.r_[start, len(ks)])
    nb = np.full(3 * F, -1, np.int64)
    two = start[count == 2]
    s0, s1 = slot[order[two]], slot[order[two + 1]]
    nb[s0], nb[s1] = s1 % F, s0 % F
    many = np.repeat(count > 2, count)
    nb[order[many]] = -2
    return torch.from_numpy(nb.reshape(3, F).T.copy())


def antialias(color: Tensor, rast: Tensor, pos: Tensor, tri, topology_hash: Tensor | None = None,
              pos_gradient_boost: float = 1.0) -> Tensor:
    """color [B, H, W, C], rast [B, H, W, 4] from `rasterize(pos, tri)`, pos [B, V, 4] -> [B, H, W, C].

    Blends colour across silhouette edges by their analytic coverage, so the image (and any loss on it) varies
    continuously with the vertex positions and gives gradients to `pos` at silhouettes.
    For each pair of 4-neighbour pixels with different triangles, the segment between the two pixel centres is
    followed from the occluding side (the nearer triangle, or the only one) across same-facing neighbouring triangles
    until it leaves through a silhouette edge (a boundary edge, or one whose two triangles face opposite ways on
    screen), at fraction t (0 at the covered centre, 1 at the other). Each edge is handled by the pixel pairs that
    cross it more squarely (horizontal pairs for steep edges, vertical pairs for flat ones), so it counts once. If
    t > 1/2 the edge lies in the other pixel, which takes (t - 1/2) of the covered side's colour; if t < 1/2 the
    covered pixel takes (1/2 - t) of the other colour. The pixels' summed coverage then moves by the edge's length
    per pixel of normal displacement, as the true area does. topology_hash: from antialias_construct_topology_hash
    (rebuilt per call when None). pos_gradient_boost scales the gradient to pos."""
    dr = _nvdiffrast(color)
    if dr is not None:
        t32 = torch.as_tensor(tri, dtype=torch.int32, device=color.device).contiguous()
        return dr.antialias(color.contiguous(), rast, pos.contiguous(), t32, pos_gradient_boost=pos_gradient_boost)
    B, H, W, C = color.shape
    trit = torch.as_tensor(tri, dtype=torch.int64, device=color.device).reshape(-1, 3)
    nb = topology_hash if topology_hash is not None else antialias_construct_topology_hash(trit)
    nb_np = np.ascontiguousarray(nb.cpu().numpy(), dtype=np.int64)
    tri_np = np.ascontiguousarray(trit.cpu().numpy())
    p_all = pos if pos.dim() == 3 else pos[None]
    flat = color.reshape(B * H * W, C)
    out = flat
    tid_np = rast[..., 3].detach().cpu().numpy().astype(np.int64).reshape(B, H * W)
    z_np = rast[..., 2].detach().cpu().double().numpy().reshape(B, H * W)
    for bi in range(B):
        p = p_all[bi if p_all.shape[0] > 1 else 0]
        pd = np.ascontiguousarray(p.detach().cpu().double().numpy())
        pin, pout, face, edge, step = (torch.from_numpy(x).to(color.device) for x in
                                       _silhouette_pairs(pd, tri_np, nb_np, tid_np[bi], z_np[bi], H, W, _AA_WALK))
        if pin.numel() == 0:
            continue
        if pos_gradient_boost != 1.0:
            p = _GradScale.apply(p, pos_gradient_boost)
        T = _face_table(p, trit, H, W)[face]  # [P, 14] with gradients to p
        X = (pin % W).to(p.dtype) + 0.5
        Y = torch.div(pin, W, rounding_mode="floor").to(p.dtype) + 0.5
        k = edge[:, None]
        lam = _lambda(T, X, Y).gather(1, k)[:, 0]  # the edge's barycentric at the covered centre
        sdx, sdy = step[:, 0:1].to(p.dtype), step[:, 1:2].to(p.dtype)
        slope = (T[:, 2:5] * sdx + T[:, 5:8] * sdy).gather(1, k)[:, 0]  # its change over the step
        t = (lam / (-slope)).clamp(0, 1)  # where the segment crosses the silhouette edge
        off = bi * H * W
        cin, cout = flat[off + pin], flat[off + pout]
        out = out.index_add(0, off + pout, (t - 0.5).clamp(min=0)[:, None].to(flat.dtype) * (cin - cout))
        out = out.index_add(0, off + pin, (0.5 - t).clamp(min=0)[:, None].to(flat.dtype) * (cout - cin))
    return out.reshape(B, H, W, C)


_AA_WALK = 8  # triangles crossed at most between a covered pixel centre and the silhouette edge


@_jit()
def _silhouette_pairs(pos, tri, nb, tid, z, H, W, walk):  # pragma: no cover - compiled
    """The non-differentiable half of antialias: which pixel pairs straddle which silhouette edge.

    pos [V, 4] float64 clip, tri [F, 3], nb [F, 3] edge neighbours, tid / z [H*W] from rast -> (pin, pout [P] pixel
    of the covered side and of the other, face, edge [P] the silhouette edge (edge k is opposite vertex k), step
    [P, 2] the pixel step from pin to pout). From the covered centre, the segment is followed across same-facing
    neighbours (at most `walk` of them): thin triangles along a contour often cover no pixel centre."""
    V = pos.shape[0]
    F = tri.shape[0]
    sx = np.empty(V)
    sy = np.empty(V)
    for v in range(V):
        w = pos[v, 3] if abs(pos[v, 3]) > 1e-12 else 1e-12
        sx[v] = (pos[v, 0] / w + 1.0) * 0.5 * W
        sy[v] = (pos[v, 1] / w + 1.0) * 0.5 * H
    facing = np.empty(F, np.bool_)
    for f in range(F):
        a, b, c = tri[f, 0], tri[f, 1], tri[f, 2]
        facing[f] = (sx[b] - sx[a]) * (sy[c] - sy[a]) - (sx[c] - sx[a]) * (sy[b] - sy[a]) > 0
    cap = 2 * H * W
    pin = np.empty(cap, np.int64)
    pout = np.empty(cap, np.int64)
    face = np.empty(cap, np.int64)
    edge = np.empty(cap, np.int64)
    step = np.empty((cap, 2), np.int64)
    n = 0
    lam = np.empty(3)
    slope = np.empty(3)
    for d in range(2):
        dx, dy = (1, 0) if d == 0 else (0, 1)
        for j in range(H - dy):
            for i in range(W - dx):
                pa = j * W + i
                pb = (j + dy) * W + i + dx
                if tid[pa] == tid[pb]:
                    continue
                for side in range(2):
                    p0, p1, sgn = (pa, pb, 1) if side == 0 else (pb, pa, -1)
                    if tid[p0] == 0 or not (tid[p1] == 0 or z[p0] < z[p1]):
                        continue
                    X = (p0 % W) + 0.5
                    Y = (p0 // W) + 0.5
                    sdx, sdy = sgn * dx, sgn * dy
                    f = tid[p0] - 1
                    for _ in range(walk):
                        vi = (tri[f, 0], tri[f, 1], tri[f, 2])
                        x0, x1, x2 = sx[vi[0]], sx[vi[1]], sx[vi[2]]
                        y0, y1, y2 = sy[vi[0]], sy[vi[1]], sy[vi[2]]
                        D = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
                        if D == 0.0:
                            break
                        # edge functions (2D barycentrics) at the covered centre and their change over the step
                        lam[0] = ((x1 - X) * (y2 - Y) - (x2 - X) * (y1 - Y)) / D
                        lam[1] = ((x2 - X) * (y0 - Y) - (x0 - X) * (y2 - Y)) / D
                        lam[2] = 1.0 - lam[0] - lam[1]
                        slope[0] = ((y1 - y2) * sdx + (x2 - x1) * sdy) / D
                        slope[1] = ((y2 - y0) * sdx + (x0 - x2) * sdy) / D
                        slope[2] = -slope[0] - slope[1]
                        best, k = np.inf, -1
                        for e in range(3):
                            if slope[e] < 0:
                                te = -lam[e] / slope[e]
                                if te < best:
                                    best, k = te, e
                        if k < 0 or best > 1.0:
                            break  # the segment ends inside this face
                        g = nb[f, k]
                        if g < 0 or facing[g] != facing[f]:  # silhouette edge
                            ea, eb = vi[(k + 1) % 3], vi[(k + 2) % 3]
                            steep = abs(sy[eb] - sy[ea]) >= abs(sx[eb] - sx[ea])
                            if steep == (d == 0):
                                pin[n], pout[n], face[n], edge[n] = p0, p1, f, k
                                step[n, 0], step[n, 1] = sdx, sdy
                                n += 1
                            break
                        f = g
    return pin[:n].copy(), pout[:n].copy(), face[:n].copy(), edge[:n].copy(), step[:n].copy()


class _GradScale(torch.autograd.Function):
    """Identity forward, gradient scaled by `k` backward."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None
