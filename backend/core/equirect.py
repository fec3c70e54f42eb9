"""Equirectangular maps as Blender's Environment Texture reads them (the one place for that mapping): direction <->
uv, pixel directions, texel solid angles, bilinear lookups (numpy, and scalar numba versions for kernels), cube maps."""

import numpy as np

from .jit import njit_cached

# ----------------------------------------------------------------------------------------------------------
# Equirect mapping. Blender's Environment Texture (equirectangular), world Z up, for a direction (x, y, z):
#   u = 0.5 - atan2(y, x) / (2 pi)   left -> right across the image (+X at the centre, +Y at u = 0.25)
#   v = 0.5 + asin(z) / pi           v = 1 is the top row = row 0 of the array
# Pixel (row j, column i) of an [H, W] image has its centre at u = (i + 0.5) / W, v = 1 - (j + 0.5) / H.
# ----------------------------------------------------------------------------------------------------------


def dir_to_equirect_uv(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., 3] world directions (need not be unit) -> (u [...], v [...]) in [0, 1]."""
    d = np.asarray(d)
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    r = np.sqrt(x * x + y * y + z * z)
    r = np.where(r > 0, r, 1)
    u = 0.5 - np.arctan2(y, x) * (0.5 / np.pi)
    v = 0.5 + np.arcsin(np.clip(z / r, -1.0, 1.0)) * (1.0 / np.pi)
    return u, v


def equirect_uv_to_dir(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(u [...], v [...]) -> [..., 3] unit world directions (inverse of dir_to_equirect_uv)."""
    phi = (0.5 - np.asarray(u)) * (2 * np.pi)  # azimuth from +X towards +Y
    theta = (np.asarray(v) - 0.5) * np.pi  # elevation above the XY plane
    c = np.cos(theta)
    return np.stack([c * np.cos(phi), c * np.sin(phi), np.sin(theta)], axis=-1)


def equirect_pixel_dirs(h: int, w: int) -> np.ndarray:
    """[h, w, 3] unit world direction through each pixel centre of an h x w equirect image."""
    v = 1.0 - (np.arange(h) + 0.5) / h
    u = (np.arange(w) + 0.5) / w
    uu, vv = np.meshgrid(u, v)
    return equirect_uv_to_dir(uu, vv)


def equirect_texel_solid_angles(h: int, w: int) -> np.ndarray:
    """[h] solid angle (sr) of one texel in each row of an h x w equirect image (sums to 4 pi over the image)."""
    top = np.pi / 2 - np.arange(h) * (np.pi / h)  # elevation of each row's upper edge
    return (2 * np.pi / w) * (np.sin(top) - np.sin(top - np.pi / h))


def sample_equirect(img: np.ndarray, u: np.ndarray, v: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Bilinear lookup of an [H, W, C] equirect image at (u, v) [...]: wraps in u, clamps in v. -> [..., C].
    Texel positions and weights in dtype: np.float32 (the renderer's lookups) or np.float64 (the precision of
    nb_sample_equirect, for the numba kernels' references)."""
    H, W, C = img.shape
    shape = np.shape(u)
    x = np.asarray(u, dtype=dtype).reshape(-1) * dtype(W) - dtype(0.5)  # texel-centre coords
    y = (dtype(1) - np.asarray(v, dtype=dtype).reshape(-1)) * dtype(H) - dtype(0.5)
    x0f = np.floor(x)
    y0f = np.floor(y)
    fx = x - x0f
    fy = y - y0f
    x0 = x0f.astype(np.int64) % W
    x1 = x0 + 1
    x1[x1 == W] = 0
    y0 = y0f.astype(np.int64)
    fy[y0 < 0] = 0  # above the first row's centre: clamp to row 0
    y1 = np.minimum(y0 + 1, H - 1) * W
    y0 = np.clip(y0, 0, H - 1) * W
    flat = img.reshape(-1, C)
    gx = 1 - fx
    gy = 1 - fy
    out = np.take(flat, y0 + x0, axis=0) * (gx * gy)[:, None]
    out += np.take(flat, y0 + x1, axis=0) * (fx * gy)[:, None]
    out += np.take(flat, y1 + x0, axis=0) * (gx * fy)[:, None]
    out += np.take(flat, y1 + x1, axis=0) * (fx * fy)[:, None]
    return out.reshape(*shape, C)


@njit_cached()
def nb_dir_to_uv(x, y, z):
    """Scalar dir_to_equirect_uv for numba kernels (same mapping, unit or non-unit direction)."""
    r = np.sqrt(x * x + y * y + z * z)
    if r <= 0.0:
        r = 1.0
    s = min(max(z / r, -1.0), 1.0)
    return 0.5 - np.arctan2(y, x) * (0.5 / np.pi), 0.5 + np.arcsin(s) * (1.0 / np.pi)


@njit_cached()
def nb_sample_equirect(flat, offset, H, W, u, v):
    """Scalar sample_equirect for numba kernels: bilinear (r, g, b) of the [H, W] level stored row-major at
    flat[offset : offset + H * W] ([M, 3])."""
    x = u * W - 0.5
    y = (1.0 - v) * H - 0.5
    x0f = np.floor(x)
    y0f = np.floor(y)
    fx = x - x0f
    fy = y - y0f
    x0 = int(x0f) % W
    x1 = x0 + 1
    if x1 == W:
        x1 = 0
    y0 = int(y0f)
    if y0 < 0:
        fy = 0.0
    y1 = min(y0 + 1, H - 1)
    y0 = min(max(y0, 0), H - 1)
    r0 = offset + y0 * W
    r1 = offset + y1 * W
    w00 = (1.0 - fx) * (1.0 - fy)
    w01 = fx * (1.0 - fy)
    w10 = (1.0 - fx) * fy
    w11 = fx * fy
    r = w00 * flat[r0 + x0, 0] + w01 * flat[r0 + x1, 0] + w10 * flat[r1 + x0, 0] + w11 * flat[r1 + x1, 0]
    g = w00 * flat[r0 + x0, 1] + w01 * flat[r0 + x1, 1] + w10 * flat[r1 + x0, 1] + w11 * flat[r1 + x1, 1]
    b = w00 * flat[r0 + x0, 2] + w01 * flat[r0 + x1, 2] + w10 * flat[r1 + x0, 2] + w11 * flat[r1 + x1, 2]
    return r, g, b


@njit_cached()
def nb_sample_lod(flat, table, lod, u, v):
    """Trilinear (r, g, b) from a packed mip chain (flat [M, 3], table [L, 3] of (offset, h, w)): bilinear within
    the two levels around `lod` (clamped to [0, L - 1]), linear between them."""
    n_lv = table.shape[0]
    lod = min(max(lod, 0.0), n_lv - 1.0)
    k0 = int(lod)
    t = lod - k0
    r, g, b = nb_sample_equirect(flat, table[k0, 0], table[k0, 1], table[k0, 2], u, v)
    if t > 1e-3 and k0 + 1 < n_lv:
        r1, g1, b1 = nb_sample_equirect(flat, table[k0 + 1, 0], table[k0 + 1, 1], table[k0 + 1, 2], u, v)
        r = r * (1 - t) + r1 * t
        g = g * (1 - t) + g1 * t
        b = b * (1 - t) + b1 * t
    return r, g, b


# ----------------------------------------------------------------------------------------------------------
# Cube maps. Faces in OpenGL order (+X, -X, +Y, -Y, +Z, -Z) and OpenGL orientation, applied to the world axes
# as they are (no Y-up conversion). For face pixel (row j, column i) with s = 2 (i + 0.5) / size - 1 and
# t = 2 (j + 0.5) / size - 1 the direction is:
#   +X: ( 1, -t, -s)   -X: (-1, -t,  s)   +Y: ( s,  1,  t)   -Y: ( s, -1, -t)   +Z: ( s, -t,  1)   -Z: (-s, -t, -1)
# ----------------------------------------------------------------------------------------------------------


def cubemap_face_dirs(size: int) -> np.ndarray:
    """[6, size, size, 3] unit world direction through each cube-map texel centre."""
    c = (np.arange(size) + 0.5) / size * 2 - 1
    t, s = np.meshgrid(c, c, indexing="ij")  # t: rows (down), s: columns (right)
    one = np.ones_like(s)
    faces = [
        (one, -t, -s),
        (-one, -t, s),
        (s, one, t),
        (s, -one, -t),
        (s, -t, one),
        (-s, -t, -one),
    ]
    d = np.stack([np.stack(f, axis=-1) for f in faces])
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _dir_to_cube_face(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[N, 3] directions -> face index [N], s [N], t [N] in [-1, 1] (inverse of cubemap_face_dirs)."""
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    face = np.where((ax >= ay) & (ax >= az), np.where(x > 0, 0, 1), np.where(ay >= az, np.where(y > 0, 2, 3), np.where(z > 0, 4, 5)))
    s = np.empty_like(x)
    t = np.empty_like(x)
    for f, (sv, tv, ma) in enumerate(
        [(-z, -y, ax), (z, -y, ax), (x, z, ay), (x, -z, ay), (x, -y, az), (-x, -y, az)]
    ):
        m = face == f
        s[m] = sv[m] / ma[m]
        t[m] = tv[m] / ma[m]
    return face, s, t


def equirect_to_cubemap(eq: np.ndarray, size: int) -> np.ndarray:
    """[H, W, C] equirect -> [6, size, size, C] cube map (bilinear resampling)."""
    u, v = dir_to_equirect_uv(cubemap_face_dirs(size))
    return sample_equirect(np.asarray(eq, dtype=np.float32), u, v)


def cubemap_to_equirect(cube: np.ndarray, h: int, w: int) -> np.ndarray:
    """[6, S, S, C] cube map -> [h, w, C] equirect (bilinear within each face, clamped at face edges)."""
    cube = np.asarray(cube, dtype=np.float32)
    S = cube.shape[1]
    face, s, t = _dir_to_cube_face(equirect_pixel_dirs(h, w).reshape(-1, 3))
    x = np.clip((s + 1) * 0.5 * S - 0.5, 0, S - 1)
    y = np.clip((t + 1) * 0.5 * S - 0.5, 0, S - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), S - 2) if S > 1 else np.zeros_like(x, dtype=np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), S - 2) if S > 1 else np.zeros_like(y, dtype=np.int64)
    x1 = np.minimum(x0 + 1, S - 1)
    y1 = np.minimum(y0 + 1, S - 1)
    fx = (x - x0)[:, None]
    fy = (y - y0)[:, None]
    top = cube[face, y0, x0] * (1 - fx) + cube[face, y0, x1] * fx
    bot = cube[face, y1, x0] * (1 - fx) + cube[face, y1, x1] * fx
    return (top * (1 - fy) + bot * fy).reshape(h, w, -1).astype(np.float32)

