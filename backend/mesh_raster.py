"""Differentiable triangle rasterizer in plain torch, with an API shaped like nvdiffrast's.

rasterize() finds the nearest triangle per pixel without gradients, then recomputes perspective-correct barycentrics
differentiably from the clip-space positions. Row j of the output covers NDC y = (j + 0.5) / H * 2 - 1, so with
`clip_from_camera` below row 0 is the top of an OpenCV camera's image. nvdiffrast is used only when importable on CUDA.
"""

import numpy as np
import torch

from .camera import Camera

_MAX_CANDIDATES = 1 << 22  # pixel-triangle pairs tested per chunk (memory bound)


def clip_from_camera(camera: Camera, near: float = 0.01, far: float = 100.0) -> np.ndarray:
    """[4, 4] world -> clip space for an OpenCV pinhole camera; NDC y grows with image row."""
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


def to_clip(vertices: np.ndarray | torch.Tensor, mvp: np.ndarray) -> torch.Tensor:
    """[V, 3] positions, [4, 4] matrix -> [1, V, 4] clip-space positions (float32)."""
    v = torch.as_tensor(vertices, dtype=torch.float32)
    m = torch.as_tensor(mvp, dtype=torch.float32)
    vh = torch.cat([v, torch.ones_like(v[:, :1])], dim=1)
    return (vh @ m.T)[None]


def _visible_triangles(pos: torch.Tensor, tri: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """[V, 4] clip positions, [F, 3] -> [H*W] int64 triangle index + 1 of the nearest cover (0 = empty)."""
    w = pos[:, 3]
    ok_v = w > 1e-8
    ndc = pos[:, :3] / torch.where(ok_v, w, torch.ones_like(w))[:, None]
    sx = (ndc[:, 0] + 1) * 0.5 * W  # continuous pixel coordinates
    sy = (ndc[:, 1] + 1) * 0.5 * H
    sz = ndc[:, 2]
    t_ok = ok_v[tri].all(dim=1)
    tx, ty, tz = sx[tri], sy[tri], sz[tri]  # [F, 3]
    x0 = torch.clamp(torch.floor(tx.min(1).values - 0.5).long() + 1, 0, W)  # first pixel centre >= min
    x1 = torch.clamp(torch.floor(tx.max(1).values - 0.5).long() + 1, 0, W)  # one past the last
    y0 = torch.clamp(torch.floor(ty.min(1).values - 0.5).long() + 1, 0, H)
    y1 = torch.clamp(torch.floor(ty.max(1).values - 0.5).long() + 1, 0, H)
    bw, bh = (x1 - x0).clamp(min=0), (y1 - y0).clamp(min=0)
    area = (tx[:, 1] - tx[:, 0]) * (ty[:, 2] - ty[:, 0]) - (tx[:, 2] - tx[:, 0]) * (ty[:, 1] - ty[:, 0])
    live = t_ok & (bw > 0) & (bh > 0) & (area.abs() > 1e-12) & (tz.min(1).values <= 1) & (tz.max(1).values >= -1)
    ids = torch.nonzero(live).squeeze(1)
    best = torch.full((H * W,), torch.iinfo(torch.int64).max, dtype=torch.int64)
    counts = (bw * bh)[ids]
    start = 0
    while start < ids.numel():
        csum = torch.cumsum(counts[start:], 0)
        stop = start + max(1, int(torch.searchsorted(csum, _MAX_CANDIDATES, right=True)))
        f = ids[start:stop]
        n = counts[start:stop]
        fi = torch.repeat_interleave(f, n)
        local = torch.arange(int(n.sum())) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
        px = x0[fi] + local % bw[fi]
        py = y0[fi] + local // bw[fi]
        cx, cy = px.float() + 0.5, py.float() + 0.5
        X, Y, Z = tx[fi], ty[fi], tz[fi]
        a = area[fi]
        # 2D barycentrics of the pixel centre
        b0 = ((X[:, 1] - cx) * (Y[:, 2] - cy) - (X[:, 2] - cx) * (Y[:, 1] - cy)) / a
        b1 = ((X[:, 2] - cx) * (Y[:, 0] - cy) - (X[:, 0] - cx) * (Y[:, 2] - cy)) / a
        b2 = 1 - b0 - b1
        eps = -1e-7
        inside = (b0 >= eps) & (b1 >= eps) & (b2 >= eps)
        z = b0 * Z[:, 0] + b1 * Z[:, 1] + b2 * Z[:, 2]
        inside &= (z >= -1) & (z <= 1)
        zq = ((z.clamp(-1, 1) + 1) * 0.5 * (2**30 - 1)).long()
        key = (zq << 32) | fi
        pix = py * W + px
        best.scatter_reduce_(0, pix[inside], key[inside], reduce="amin")
        start = stop
    found = best != torch.iinfo(torch.int64).max
    return torch.where(found, (best & 0xFFFFFFFF) + 1, torch.zeros_like(best))


def rasterize(pos: torch.Tensor, tri, resolution: tuple[int, int]) -> tuple[torch.Tensor, None]:
    """pos [B, V, 4] clip space, tri [F, 3] int, (H, W) -> (rast [B, H, W, 4] = (u, v, z/w, triangle_id + 1), None).

    u weights the triangle's vertex 0, v its vertex 1, 1 - u - v its vertex 2 (perspective-correct). u, v and z/w
    carry gradients to `pos`; coverage itself does not (no antialias term yet)."""
    if pos.is_cuda:
        try:
            import nvdiffrast.torch as dr  # optional; only on CUDA

            return dr.rasterize(dr.RasterizeCudaContext(), pos, torch.as_tensor(tri, dtype=torch.int32, device=pos.device), resolution)
        except ImportError:
            pass
    H, W = resolution
    tri = torch.as_tensor(tri, dtype=torch.int64)
    out = []
    for b in range(pos.shape[0]):
        p = pos[b]
        with torch.no_grad():
            tid = _visible_triangles(p.detach().float(), tri, H, W)  # [H*W]
        rast = torch.zeros(H * W, 4, dtype=p.dtype)
        cov = torch.nonzero(tid > 0).squeeze(1)
        if cov.numel():
            t = tri[tid[cov] - 1]  # [P, 3]
            jj = (cov // W).to(p.dtype) + 0.5
            ii = (cov % W).to(p.dtype) + 0.5
            v = p[t]  # [P, 3, 4]
            w = v[..., 3]
            sx = (v[..., 0] / w + 1) * 0.5 * W
            sy = (v[..., 1] / w + 1) * 0.5 * H
            area = (sx[:, 1] - sx[:, 0]) * (sy[:, 2] - sy[:, 0]) - (sx[:, 2] - sx[:, 0]) * (sy[:, 1] - sy[:, 0])
            b0 = ((sx[:, 1] - ii) * (sy[:, 2] - jj) - (sx[:, 2] - ii) * (sy[:, 1] - jj)) / area
            b1 = ((sx[:, 2] - ii) * (sy[:, 0] - jj) - (sx[:, 0] - ii) * (sy[:, 2] - jj)) / area
            b2 = 1 - b0 - b1
            zndc = b0 * v[:, 0, 2] / w[:, 0] + b1 * v[:, 1, 2] / w[:, 1] + b2 * v[:, 2, 2] / w[:, 2]
            q = torch.stack([b0 / w[:, 0], b1 / w[:, 1], b2 / w[:, 2]], dim=1)
            q = q / q.sum(dim=1, keepdim=True)  # perspective-correct
            vals = torch.stack([q[:, 0], q[:, 1], zndc, tid[cov].to(p.dtype)], dim=1)
            rast = rast.index_put((cov,), vals)
        out.append(rast.reshape(H, W, 4))
    return torch.stack(out), None


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tri, rast_db=None, diff_attrs=None):
    """attr [V, C] or [B, V, C], rast [B, H, W, 4], tri [F, 3] -> ([B, H, W, C], None). Zero where uncovered."""
    tri = torch.as_tensor(tri, dtype=torch.int64, device=rast.device)
    B, H, W, _ = rast.shape
    a = attr if attr.dim() == 3 else attr[None].expand(B, *attr.shape)
    tid = rast[..., 3].long()  # [B, H, W]
    cov = tid > 0
    t = tri[(tid - 1).clamp(min=0)]  # [B, H, W, 3]
    bidx = torch.arange(B, device=rast.device)[:, None, None, None].expand_as(t)
    av = a[bidx, t]  # [B, H, W, 3, C]
    u, v = rast[..., 0:1], rast[..., 1:2]
    out = av[..., 0, :] * u + av[..., 1, :] * v + av[..., 2, :] * (1 - u - v)
    return out * cov[..., None].to(out.dtype), None


def texture(tex: torch.Tensor, uv: torch.Tensor, filter_mode: str = "linear", boundary_mode: str = "wrap") -> torch.Tensor:
    """tex [B, Ht, Wt, C], uv [B, H, W, 2] in [0, 1] (u right, v down the rows) -> [B, H, W, C] bilinear."""
    grid = uv * 2 - 1
    pad = {"wrap": "border", "clamp": "border", "zero": "zeros"}[boundary_mode]
    if boundary_mode == "wrap":
        grid = torch.remainder(uv, 1.0) * 2 - 1
    mode = "bilinear" if filter_mode == "linear" else "nearest"
    out = torch.nn.functional.grid_sample(tex.permute(0, 3, 1, 2), grid, mode=mode, padding_mode=pad, align_corners=False)
    return out.permute(0, 2, 3, 1)
