"""Texture sampling shaped like nvdiffrast's `texture`: 2D and cube-map textures, nearest, bilinear and mip-mapped
filtering (`texture_construct_mip`), differentiable w.r.t. the texture, uv and uv_da. Pixel conventions as in
mesh_raster."""


import numpy as np
import torch
import torch.nn.functional as tnf
from torch import Tensor

from .mesh_nvdiffrast import nvdiffrast_or_none

_FILTERS = ("auto", "nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear")
_BOUNDARIES = ("wrap", "clamp", "zero", "cube")


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
    dr = nvdiffrast_or_none(uv)
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
