"""Rasterize 3D Gaussians with N-D features into per-camera images: the public entry point and its torch reference.

Semantics match gsplat 1.5.3 `rasterization(..., sh_degree=None, packed=False, rasterize_mode="classic",
render_mode="RGB+ED")`. Backends: "native" (numba, splat_native), "torch" (differentiable reference below),
"gsplat" (CUDA only).
"""

import numpy as np
import torch
from torch import Tensor

from .splat_project import ALPHA_THRESHOLD, project, tile_grid

TILE = 16  # tile edge in pixels (gsplat's default tile_size)
MAX_ALPHA = 0.999  # per-Gaussian alpha clamp
T_STOP = 1e-4  # a pixel stops before the Gaussian that would take its transmittance to or below this
BACKENDS = ("auto", "native", "torch", "gsplat")
NEAR, FAR = 0.01, 1e10  # camera z range kept (camera units)


def rasterize(
    means,  # [N, 3] world
    quats,  # [N, 4] (w, x, y, z), any norm
    scales,  # [N, 3] linear std devs
    opacities,  # [N] in [0, 1]
    features,  # [N, D] any D (e.g. the 9 G-buffer channels)
    viewmats,  # [C, 4, 4] world-to-camera, OpenCV (x right, y down, looks +Z)
    Ks,  # [C, 3, 3] pixels; pixel centres at integer + 0.5
    width: int,
    height: int,
    *,
    near: float = NEAR,
    far: float = FAR,
    eps2d: float = 0.3,
    backend: str = "auto",
):
    """Composite Gaussians front to back into C images.

    Returns (colors [C, H, W, D] alpha-premultiplied sum_i w_i f_i, alphas [C, H, W, 1],
    depths [C, H, W, 1] expected camera z = sum_i w_i z_i / alpha, 0 where alpha is 0).
    numpy in -> numpy float32 out; torch in -> torch out (on the input's device).
    backend: "native" (numba, CPU; no gradients), "torch" (differentiable reference, slow), "gsplat" (CUDA only),
    "auto" (gsplat for CUDA tensors, native otherwise). For gradients on CPU call with backend="torch"."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    args = (means, quats, scales, opacities, features, viewmats, Ks)
    _check_shapes(*args)
    is_torch = isinstance(means, Tensor)
    if backend == "auto":
        backend = "gsplat" if is_torch and means.is_cuda and torch.cuda.is_available() else "native"
    width, height = int(width), int(height)

    if backend == "native":
        from .splat_native import rasterize_native

        out = rasterize_native(*(_to_numpy(a) for a in args), width, height, near, far, eps2d)
        if is_torch:
            return tuple(torch.from_numpy(o).to(means.device) for o in out)
        return out

    if backend == "gsplat":
        if not torch.cuda.is_available():
            raise RuntimeError("backend='gsplat' needs CUDA; use backend='native' on this machine")
        targs = [torch.as_tensor(a, dtype=torch.float32, device="cuda") for a in args]
        out = _rasterize_gsplat(*targs, width, height, near, far, eps2d)
    else:
        dev = means.device if is_torch else "cpu"
        targs = [torch.as_tensor(a, dtype=torch.float32, device=dev) for a in args]
        out = rasterize_torch(*targs, width, height, near=near, far=far, eps2d=eps2d)
    if is_torch:
        return tuple(o.to(means.device) for o in out)
    return tuple(o.detach().cpu().numpy() for o in out)


def rasterize_torch(
    means: Tensor,  # [N, 3] world
    quats: Tensor,  # [N, 4] (w, x, y, z)
    scales: Tensor,  # [N, 3] linear std devs
    opacities: Tensor,  # [N]
    features: Tensor,  # [N, D]
    viewmats: Tensor,  # [C, 4, 4] world-to-camera
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    *,
    near: float = 0.01,
    far: float = 1e10,
    eps2d: float = 0.3,
) -> tuple[Tensor, Tensor, Tensor]:
    """Plain-torch reference of `rasterize`, differentiable w.r.t. means, quats, scales, opacities and features.

    Tile by tile, every pixel evaluates all Gaussians whose box touches the tile, in depth order; alphas below
    1/255 are dropped and the pixel stops before the Gaussian that would take transmittance to <= 1e-4."""
    _check_shapes(means, quats, scales, opacities, features, viewmats, Ks)
    n_cam, n_feat = viewmats.shape[0], features.shape[1]
    dev, dt = means.device, features.dtype
    radii, means2d, depths, conics = project(
        means, quats, scales, opacities, viewmats, Ks, width, height, near=near, far=far, eps2d=eps2d
    )
    tiles_x, tiles_y = tile_grid(width, height, TILE)
    out_c, out_a, out_d = [], [], []
    for c in range(n_cam):
        img = torch.zeros(height, width, n_feat + 2, device=dev, dtype=dt)  # features, alpha, sum w z
        visible = torch.nonzero((radii[c] > 0).any(-1)).flatten()
        order = torch.sort(depths[c, visible].detach(), stable=True).indices
        ids = visible[order]  # [M] visible Gaussians, front to back
        if ids.numel() > 0:
            m2 = means2d[c, ids].detach()
            r = radii[c, ids].to(m2.dtype)
            tx0 = torch.floor((m2[:, 0] - r[:, 0]) / TILE).clamp(0, tiles_x)
            tx1 = torch.ceil((m2[:, 0] + r[:, 0]) / TILE).clamp(0, tiles_x)
            ty0 = torch.floor((m2[:, 1] - r[:, 1]) / TILE).clamp(0, tiles_y)
            ty1 = torch.ceil((m2[:, 1] + r[:, 1]) / TILE).clamp(0, tiles_y)
            # per-Gaussian values gathered once for this camera: x, y, conic a, b, c, opacity, depth
            g_xy, g_con = means2d[c, ids], conics[c, ids]
            g_op, g_z, g_f = opacities[ids], depths[c, ids], features[ids]
            for ty in range(tiles_y):
                rows = (ty0 <= ty) & (ty < ty1)
                y0, y1 = ty * TILE, min((ty + 1) * TILE, height)
                for tx in range(tiles_x):
                    sel = torch.nonzero(rows & (tx0 <= tx) & (tx < tx1)).flatten()  # depth order kept
                    if sel.numel() == 0:
                        continue
                    x0, x1 = tx * TILE, min((tx + 1) * TILE, width)
                    w = _tile_weights(g_xy[sel], g_con[sel], g_op[sel], x0, x1, y0, y1)  # [P, K]
                    vals = torch.cat([g_f[sel], torch.ones_like(g_z[sel, None]), g_z[sel, None]], dim=1)
                    img[y0:y1, x0:x1] = (w @ vals).reshape(y1 - y0, x1 - x0, n_feat + 2)
        alpha = img[..., n_feat : n_feat + 1]
        depth = torch.where(alpha > 0, img[..., n_feat + 1 :] / alpha.clamp(min=1e-10), torch.zeros_like(alpha))
        out_c.append(img[..., :n_feat])
        out_a.append(alpha)
        out_d.append(depth)
    return torch.stack(out_c), torch.stack(out_a), torch.stack(out_d)


def _tile_weights(xy: Tensor, con: Tensor, op: Tensor, x0: int, x1: int, y0: int, y1: int) -> Tensor:
    """Blend weights [P, K] of K depth-sorted Gaussians (xy [K, 2], conics [K, 3], opacities [K]) at the P pixels
    of the tile [x0, x1) x [y0, y1), row-major."""
    py, px = torch.meshgrid(
        torch.arange(y0, y1, device=xy.device, dtype=xy.dtype) + 0.5,
        torch.arange(x0, x1, device=xy.device, dtype=xy.dtype) + 0.5,
        indexing="ij",
    )
    dx = xy[None, :, 0] - px.reshape(-1, 1)  # [P, K]
    dy = xy[None, :, 1] - py.reshape(-1, 1)
    sigma = 0.5 * (con[None, :, 0] * dx * dx + con[None, :, 2] * dy * dy) + con[None, :, 1] * dx * dy
    alpha = torch.clamp(op[None, :] * torch.exp(-sigma), max=MAX_ALPHA)
    alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_THRESHOLD), alpha, torch.zeros_like(alpha))
    t_after = torch.cumprod(1.0 - alpha, dim=1)  # transmittance after each Gaussian
    t_before = torch.cat([torch.ones_like(t_after[:, :1]), t_after[:, :-1]], dim=1)
    alive = (t_after > T_STOP).detach()  # monotone: once a pixel is done it stays done
    return alpha * t_before * alive


def _rasterize_gsplat(means, quats, scales, opacities, features, viewmats, Ks, width, height, near, far, eps2d):
    """CUDA path: gsplat's fused kernels, split into (colors, alphas, expected depths)."""
    import gsplat  # lazy: CUDA sources compile at the first call

    colors, alphas, _ = gsplat.rasterization(
        means, quats, scales, opacities, features, viewmats, Ks, width, height,
        near_plane=near, far_plane=far, eps2d=eps2d, sh_degree=None, packed=False,
        rasterize_mode="classic", render_mode="RGB+ED",
    )
    return colors[..., :-1], alphas, colors[..., -1:] * (alphas > 0)


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _check_shapes(means, quats, scales, opacities, features, viewmats, Ks) -> None:
    """Exact messages for the shapes rasterize accepts."""
    n = means.shape[0] if means.ndim == 2 else -1
    expect = {
        "means": (means, (n, 3)),
        "quats": (quats, (n, 4)),
        "scales": (scales, (n, 3)),
        "opacities": (opacities, (n,)),
    }
    for name, (a, shape) in expect.items():
        if tuple(a.shape) != shape or n < 0:
            raise ValueError(f"{name} must have shape {shape} with N = {n} from means [N, 3], got {tuple(a.shape)}")
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(f"features must have shape [N={n}, D], got {tuple(features.shape)}")
    if viewmats.ndim != 3 or tuple(viewmats.shape[1:]) != (4, 4):
        raise ValueError(f"viewmats must have shape [C, 4, 4], got {tuple(viewmats.shape)}")
    if tuple(Ks.shape) != (viewmats.shape[0], 3, 3):
        raise ValueError(f"Ks must have shape [C={viewmats.shape[0]}, 3, 3], got {tuple(Ks.shape)}")
