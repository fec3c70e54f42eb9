"""The hidden-Gaussian cull's per-frame work as numba passes (every new view of the live preview pays it): the
z-buffer's camera depth from the visibility pass's NDC depth, and the facing-away-and-behind test per Gaussian.
occlusion.py keeps the numpy versions (depth_map's reference interpolation, facing + on_surface) as references."""

import numba
import numpy as np

from ..core.jit import njit_cached


@njit_cached(parallel=True, fastmath=False)
def camera_depth_from_ndc(z_ndc, near, far, zbuf):  # pragma: no cover - jitted
    """zbuf[p] = the camera depth of NDC depth z_ndc[p] (clip_from_camera's projection with this near and far:
    z_ndc = (f + n) / (f - n) - 2 f n / ((f - n) z)), where z_ndc[p] is finite; zbuf[p] left as it is elsewhere.
    z_ndc [P] float64, zbuf [P] float32."""
    a = far + near
    b = far - near
    c = 2.0 * far * near
    for p in numba.prange(z_ndc.shape[0]):
        z = z_ndc[p]
        if z < np.inf:
            zbuf[p] = c / (a - z * b)


@njit_cached(parallel=True, fastmath=False)
def hidden_away(means, normals, V, fx, fy, cx, cy, zbuf, cov, tol, out):  # pragma: no cover - jitted
    """out[i] = True for the Gaussians (means, normals [N, 3], the camera's space before V) that face away from the
    camera and sit on a covered pixel farther than tol behind the farthest covered depth of its 3 x 3 pixels
    (borders clamped): occlusion.facing(...) < 0 and on_surface(...)[1], in one pass. V [3, 4] world-to-camera,
    zbuf / cov [H, W] the z-buffer's depth and coverage."""
    H, W = zbuf.shape
    ex = -(V[0, 0] * V[0, 3] + V[1, 0] * V[1, 3] + V[2, 0] * V[2, 3])  # the camera's centre: -R^T t
    ey = -(V[0, 1] * V[0, 3] + V[1, 1] * V[1, 3] + V[2, 1] * V[2, 3])
    ez = -(V[0, 2] * V[0, 3] + V[1, 2] * V[1, 3] + V[2, 2] * V[2, 3])
    for i in numba.prange(means.shape[0]):
        px, py, pz = means[i, 0], means[i, 1], means[i, 2]
        if normals[i, 0] * (ex - px) + normals[i, 1] * (ey - py) + normals[i, 2] * (ez - pz) >= 0.0:
            continue  # facing the camera (or edge-on): never left out
        x = V[0, 0] * px + V[0, 1] * py + V[0, 2] * pz + V[0, 3]
        y = V[1, 0] * px + V[1, 1] * py + V[1, 2] * pz + V[1, 3]
        z = V[2, 0] * px + V[2, 1] * py + V[2, 2] * pz + V[2, 3]
        if z <= 0.0:
            continue
        u = fx * x / z + cx
        v = fy * y / z + cy
        if u < 0.0 or v < 0.0 or u >= W or v >= H:
            continue
        ix, iy = int(np.floor(u)), int(np.floor(v))
        if not cov[iy, ix]:
            continue
        far = -np.inf
        for yy in range(iy - 1, iy + 2):
            y0 = min(max(yy, 0), H - 1)
            for xx in range(ix - 1, ix + 2):
                x0 = min(max(xx, 0), W - 1)
                if cov[y0, x0] and zbuf[y0, x0] > far:
                    far = zbuf[y0, x0]
        out[i] = z - far >= tol
