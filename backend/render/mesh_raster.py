"""Differentiable triangle rasterizer in torch with an API shaped like nvdiffrast's: clip space, rasterize (with
rast_db) and interpolate. Beside it: mesh_visible_triangles (which triangle each pixel sees), mesh_texture (mip-mapped
2D and cube-map textures) and mesh_antialias (silhouette-edge coverage with gradients to vertex positions).

Conventions: row j of an image covers NDC y = (j + 0.5) / H * 2 - 1, column i covers NDC x = (i + 0.5) / W * 2 - 1
(with `clip_from_camera` below, row 0 is the top of an OpenCV camera's image). Pixel-space quantities (rast_db, uv_da)
are per pixel step along +column (X) and +row (Y). The CPU path is the reference; nvdiffrast is used only for CUDA
tensors and only when it imports. The maths here is derived independently (see each function's docstring).
"""


import numpy as np
import torch
from torch import Tensor

from ..core.camera import Camera
from .mesh_nvdiffrast import nvdiffrast_or_none, nvdiffrast_context
from .mesh_visible_triangles import visible_triangles

# ----------------------------------------------------------------------------------------------------------- cameras


NEAR, FAR = 0.01, 100.0  # clip_from_camera's default depth range (the camera's units)


def clip_from_camera(camera: Camera, near: float = NEAR, far: float = FAR) -> np.ndarray:
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

# ------------------------------------------------------------------------------------------- rasterize (with grads)


def face_table(p: Tensor, tri: Tensor, H: int, W: int) -> Tensor:
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


def edge_barycentrics(T: Tensor, X: Tensor, Y: Tensor) -> Tensor:
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
    dr = nvdiffrast_or_none(pos)
    if dr is not None:
        t32 = torch.as_tensor(tri, dtype=torch.int32, device=pos.device).contiguous()
        return dr.rasterize(nvdiffrast_context(dr, pos.device), pos.contiguous(), t32, resolution, grad_db=grad_db)
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
        r, db = _RasterPixels.apply(face_table(p, tri, H, W), f, X, Y, cov, H * W, grad_db)  # [H*W, 4] each
        rasts.append(r.reshape(H, W, 4))
        dbs.append(db.reshape(H, W, 4))
    return torch.stack(rasts), (torch.stack(dbs) if grad_db else None)


def _pixels_reference(T: Tensor, f: Tensor, X: Tensor, Y: Tensor) -> Tensor:
    """Autograd reference of _RasterPixels: [F, 14] face table, [P] faces, [P] pixel centres -> [P, 8] =
    (u, v, z/w, 0, du/dX, du/dY, dv/dX, dv/dY)."""
    T = T[f]
    lam = edge_barycentrics(T, X, Y)
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
    lam = edge_barycentrics(T, X, Y)
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
    dr = nvdiffrast_or_none(rast)
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

