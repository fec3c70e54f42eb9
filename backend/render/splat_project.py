"""EWA projection of 3D Gaussians into pinhole cameras, in plain differentiable torch.

Conventions follow gsplat 1.5.3 (`fully_fused_projection`, pinhole, packed=False): OpenCV cameras, pixel centres at
integer + 0.5, Jacobian evaluated at the mean clamped to 1.3x the field of view, eps2d added to the 2D covariance.
"""

import math

import torch
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0  # a Gaussian whose alpha at a pixel is below this is skipped there
MAX_EXTEND = 3.33  # bounding box half-size in standard deviations, before the opacity-aware bound
FOV_CLAMP = 0.3  # the Jacobian uses x/z, y/z clamped to the image edges plus 0.3 * tan(fov / 2)


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """[..., 4] (w, x, y, z), any norm -> [..., 3, 3] rotation matrices."""
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def covariance(quats: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
    """quats [..., 4], scales [..., 3] linear std devs -> (covariance, precision), each [..., 3, 3].

    covariance = R S S R^T, precision = its inverse R S^-1 S^-1 R^T."""
    R = quat_to_rotmat(quats)
    RS = R * scales[..., None, :]
    RSi = R / scales[..., None, :]
    return RS @ RS.transpose(-1, -2), RSi @ RSi.transpose(-1, -2)


def project(
    means: Tensor,  # [N, 3] world
    quats: Tensor,  # [N, 4] (w, x, y, z)
    scales: Tensor,  # [N, 3] linear std devs
    opacities: Tensor | None,  # [N] in [0, 1]; None: fixed 3.33-sigma boxes, no opacity cull
    viewmats: Tensor,  # [C, 4, 4] world-to-camera, OpenCV
    Ks: Tensor,  # [C, 3, 3] pixels
    width: int,
    height: int,
    *,
    near: float = 0.01,
    far: float = 1e10,
    eps2d: float = 0.3,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Project Gaussians into C cameras.

    Returns radii [C, N, 2] int32 (pixels, x and y; 0 = culled), means2d [C, N, 2] pixels, depths [C, N] camera z,
    conics [C, N, 3] (a, b, c) of the inverse 2D covariance [[a, b], [b, c]]. Differentiable in means2d, depths and
    conics; radii are not. Values of culled Gaussians are computed but meaningless."""
    cov3, _ = covariance(quats, scales)  # [N, 3, 3]
    R = viewmats[:, :3, :3]  # [C, 3, 3]
    t = viewmats[:, :3, 3]  # [C, 3]
    p = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # [C, N, 3] camera space
    cov_c = R[:, None] @ cov3[None] @ R[:, None].transpose(-1, -2)  # [C, N, 3, 3]

    x, y, z = p.unbind(-1)  # [C, N]
    z = torch.where(z.abs() > 1e-12, z, torch.full_like(z, 1e-12))  # no 0/0 even for culled Gaussians
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    u = torch.clamp(x / z, min=-(cx / fx + FOV_CLAMP * tan_x), max=(width - cx) / fx + FOV_CLAMP * tan_x)
    v = torch.clamp(y / z, min=-(cy / fy + FOV_CLAMP * tan_y), max=(height - cy) / fy + FOV_CLAMP * tan_y)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * u / z, zero, fy / z, -fy * v / z], dim=-1).reshape(z.shape + (2, 3))
    cov2 = J @ cov_c @ J.transpose(-1, -2)  # [C, N, 2, 2]

    a = cov2[..., 0, 0] + eps2d
    b = 0.5 * (cov2[..., 0, 1] + cov2[..., 1, 0])
    c = cov2[..., 1, 1] + eps2d
    det = a * c - b * b
    det_safe = det.clamp(min=1e-10)
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)  # [C, N, 3]
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)  # [C, N, 2]

    with torch.no_grad():
        extend = torch.full_like(z, MAX_EXTEND)
        valid = (det > 0) & (z > near) & (z < far)
        if opacities is not None:
            op = opacities.detach().expand_as(z)
            valid &= op >= ALPHA_THRESHOLD
            # Opacity-aware box (gsplat, arXiv:2402.00525 B.2): beyond it alpha < ALPHA_THRESHOLD.
            extend = torch.minimum(extend, torch.sqrt(2.0 * torch.log(op.clamp(min=ALPHA_THRESHOLD) / ALPHA_THRESHOLD)))
        rx = torch.ceil(extend * torch.sqrt(a.detach().clamp(min=0)))
        ry = torch.ceil(extend * torch.sqrt(c.detach().clamp(min=0)))
        m = means2d.detach()
        valid &= (rx > 0) | (ry > 0)
        valid &= (m[..., 0] + rx > 0) & (m[..., 0] - rx < width) & (m[..., 1] + ry > 0) & (m[..., 1] - ry < height)
        radii = torch.stack([rx, ry], dim=-1) * valid[..., None]
        radii = torch.nan_to_num(radii, nan=0.0).to(torch.int32)
    return radii, means2d, p[..., 2], conics


def tile_grid(width: int, height: int, tile: int = 16) -> tuple[int, int]:
    """Number of tiles (across, down) covering the image."""
    return math.ceil(width / tile), math.ceil(height / tile)
