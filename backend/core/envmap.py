"""Equirectangular environment maps: Blender's Environment Texture mapping (the one place for it), cube maps,
and an `Environment` with GGX-prefiltered specular mips and a diffuse irradiance map for split-sum shading."""

import hashlib
import importlib.util
import os
import threading
from pathlib import Path

import numba
import numpy as np

from .colour import LUMINANCE as _LUMINANCE_F64
from .jit import njit_cached
from .lru import LRU
from .sampling import hammersley

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


def sample_equirect(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear lookup of an [H, W, C] equirect image at (u, v) [...]: wraps in u, clamps in v. -> [..., C]."""
    H, W, C = img.shape
    shape = np.shape(u)
    x = np.asarray(u, dtype=np.float32).reshape(-1) * np.float32(W) - np.float32(0.5)  # texel-centre coords
    y = (np.float32(1) - np.asarray(v, dtype=np.float32).reshape(-1)) * np.float32(H) - np.float32(0.5)
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


# ----------------------------------------------------------------------------------------------------------
# The HDRIs shipped inside the bpy wheel (Poly Haven, CC0), found without importing bpy.
# ----------------------------------------------------------------------------------------------------------


def builtin_hdris() -> dict[str, Path]:
    """{name: path} of the 8 CC0 studio-light HDRIs in the installed bpy wheel ({} if bpy is not installed)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None:
        return {}
    roots = list(spec.submodule_search_locations or [])
    if spec.origin:
        roots.append(str(Path(spec.origin).parent))
    for root in roots:
        found = sorted(Path(root).glob("*/datafiles/studiolights/world/*.exr"))
        if found:
            return {p.stem: p for p in found}
    return {}


# ----------------------------------------------------------------------------------------------------------
# Prefiltering: GGX specular mips over perceptual roughness, and a cosine-convolved irradiance map.
# ----------------------------------------------------------------------------------------------------------

SPECULAR_LEVELS = 17  # roughness r_k = k / 16; level 0 is the source itself (a mirror). 17 rather than 9 levels
# gained 1-2 dB against Cycles on a polished (r = 0.08) metal: blending a mirror with a much wider lobe is poor
IRRADIANCE_SIZE = (32, 64)  # (h, w) of the irradiance map
_MAX_LEVEL_WIDTH = 256
PREFILTER_VERSION = 2  # bump when the prefilter maths changes (names the disk cache)
PREFILTER_SAMPLES = 1024  # GGX samples per output texel (fewer let small bright lights leak into the tail)
_MIN_LEVEL_WIDTH = 32
# Bright-light extraction for per-pixel lobe sampling: radiance above a threshold is taken out of the map and kept
# as a list of directional lights (one per cell of an equirect cell grid that holds any), summed exactly per
# pixel; the clamped residual is smooth enough for a few filtered importance samples. Two grids: coarse cells
# gather more of a large lamp into MAX_LIGHTS lights (for wide lobes), fine cells keep sharp lobes from seeing
# the grid (shading picks one per pixel by its GGX alpha).
LIGHT_CELL_WIDTH = 256  # equirect width of the coarse cell grid (1.4 deg cells)
FINE_LIGHT_CELL_WIDTH = 512  # the fine grid (0.7 deg cells)
MAX_LIGHTS = 256  # at most this many light cells; the threshold rises to keep the brightest
LIGHT_THRESHOLD = 8.0  # radiance (luminance) above this multiple of the map's mean luminance counts as light


def _box_mips(img: np.ndarray, min_w: int = 8) -> list[np.ndarray]:
    """[H, W, 3] -> list of 2x2 box-downsampled equirects, full resolution first."""
    mips = [img]
    while mips[-1].shape[1] > min_w and mips[-1].shape[0] % 2 == 0 and mips[-1].shape[1] % 2 == 0:
        m = mips[-1]
        mips.append(0.25 * (m[0::2, 0::2] + m[1::2, 0::2] + m[0::2, 1::2] + m[1::2, 1::2]))
    return mips


def _orthonormal_frame(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, 3] unit vectors -> tangents T, B [N, 3] (Duff et al. 2017, 'Building an Orthonormal Basis, Revisited')."""
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    sign = np.where(z >= 0, 1.0, -1.0)
    a = -1.0 / (sign + z)
    b = x * y * a
    T = np.stack([1 + sign * x * x * a, sign * b, -sign * x], axis=-1)
    B = np.stack([b, sign + y * y * a, -y], axis=-1)
    return T, B


def _lookup_mips(mips: list[np.ndarray], u: np.ndarray, v: np.ndarray, lod: float) -> np.ndarray:
    """Trilinear lookup at a single (fractional) mip level for all points. -> [N, 3]."""
    lod = float(np.clip(lod, 0, len(mips) - 1))
    k = int(np.floor(lod))
    t = lod - k
    out = sample_equirect(mips[k], u, v)
    if t > 1e-3 and k + 1 < len(mips):
        out = out * (1 - t) + sample_equirect(mips[k + 1], u, v) * t
    return out


@njit_cached(parallel=True)
def _prefilter_kernel(flat, table, R, T, B, sx, sy, sz, wl, lods, out):  # pragma: no cover - jitted
    """out[i] = sum_k wl[k] L(l_ik) / sum_k wl[k], l_ik = sx[k] T_i + sy[k] B_i + sz[k] R_i, each L read trilinearly
    from the box mips packed in flat ([M, 3], table [L, 3] (offset, h, w)) at level lods[k]."""
    wsum = 0.0
    for k in range(wl.shape[0]):
        wsum += wl[k]
    for i in numba.prange(R.shape[0]):
        ar = ag = ab = 0.0
        for k in range(wl.shape[0]):
            lx = sx[k] * T[i, 0] + sy[k] * B[i, 0] + sz[k] * R[i, 0]
            ly = sx[k] * T[i, 1] + sy[k] * B[i, 1] + sz[k] * R[i, 1]
            lz = sx[k] * T[i, 2] + sy[k] * B[i, 2] + sz[k] * R[i, 2]
            u, v = nb_dir_to_uv(lx, ly, lz)
            r, g, b = nb_sample_lod(flat, table, lods[k], u, v)
            ar += wl[k] * r
            ag += wl[k] * g
            ab += wl[k] * b
        out[i, 0] = ar / wsum
        out[i, 1] = ag / wsum
        out[i, 2] = ab / wsum


def _pack_levels(levels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Equirect levels -> (one [M, 3] float32 array, int64 [L, 3] table of (offset, h, w))."""
    table = np.zeros((len(levels), 3), dtype=np.int64)
    off = 0
    for k, lv in enumerate(levels):
        table[k] = (off, lv.shape[0], lv.shape[1])
        off += lv.shape[0] * lv.shape[1]
    return np.ascontiguousarray(np.concatenate([lv.reshape(-1, 3) for lv in levels]), dtype=np.float32), table


def _prefilter_ggx(mips: list[np.ndarray], roughness: float, h: int, w: int, n_samples: int, packed=None) -> np.ndarray:
    """[h, w, 3] GGX-prefiltered radiance for perceptual roughness r (alpha = r^2), with n = v = r (Karis 2013),
    by filtered importance sampling (Colbert & Krivanek, GPU Gems 3 ch. 20): each GGX sample reads the source
    mip whose texel solid angle matches the sample's share of the lobe (no extra blur bias: with too few samples
    or a biased footprint, bright small lights leak far into the GGX tail). numba kernel."""
    R = equirect_pixel_dirs(h, w).reshape(-1, 3)
    return _prefilter_ggx_dirs(mips, roughness, R, n_samples, packed).reshape(h, w, 3)


def _prefilter_ggx_dirs(mips: list[np.ndarray], roughness: float, R: np.ndarray, n_samples: int,
                        packed=None) -> np.ndarray:  # fmt: skip
    """_prefilter_ggx at arbitrary unit output directions R [N, 3] -> [N, 3] float32."""
    alpha = roughness * roughness
    a2 = alpha * alpha
    R = np.asarray(R, np.float64)  # [N, 3] output directions = normal = view
    T, B = (np.ascontiguousarray(a, dtype=np.float64) for a in _orthonormal_frame(R))
    xi1, xi2 = hammersley(n_samples)
    cos_h = np.sqrt((1 - xi1) / (1 + (a2 - 1) * xi1))  # GGX-distributed half vectors
    sin_h = np.sqrt(np.maximum(0.0, 1 - cos_h * cos_h))
    phi = 2 * np.pi * xi2
    n_dot_l = 2 * cos_h * cos_h - 1  # l = reflect(-v, h) with n = v
    D = a2 / (np.pi * ((a2 - 1) * cos_h * cos_h + 1) ** 2)
    pdf_l = D / 4  # D(h) (n.h) / (4 (v.h)) with n = v
    H0, W0 = mips[0].shape[:2]
    texel0 = 2 * np.pi * np.pi / (W0 * H0)  # source texel solid angle at the equator
    keep = n_dot_l > 0
    lods = 0.5 * np.log2(np.maximum(1.0 / (n_samples * pdf_l[keep]), 1e-30) / texel0)
    # l = reflect(-R, h) = 2 (R.h) h - R, with h = (sin cos, sin sin, cos) in the frame (T, B, R)
    sx = (2 * cos_h * sin_h * np.cos(phi))[keep]
    sy = (2 * cos_h * sin_h * np.sin(phi))[keep]
    sz = (2 * cos_h * cos_h - 1)[keep]
    flat, table = packed if packed is not None else _pack_levels(mips)
    out = np.empty((R.shape[0], 3), dtype=np.float64)
    _prefilter_kernel(flat, table, np.ascontiguousarray(R, dtype=np.float64), T, B, sx, sy, sz, n_dot_l[keep],
                      np.maximum(lods, 0.0), out)  # fmt: skip
    return out.astype(np.float32)


def _level_width(k: int, src_width: int) -> int:
    """Equirect width of specular level k >= 1 (roughness k / (SPECULAR_LEVELS - 1)): ~4 texels across the lobe's
    angular radius (~alpha), width >= 4 pi / alpha as a power of 2, within [_MIN_LEVEL_WIDTH, _MAX_LEVEL_WIDTH]
    and no wider than the source."""
    alpha = (k / (SPECULAR_LEVELS - 1)) ** 2
    w = 2 ** int(np.ceil(np.log2(4 * np.pi / alpha)))
    return int(np.clip(w, _MIN_LEVEL_WIDTH, min(_MAX_LEVEL_WIDTH, src_width)))


def lobe_environments(centres: np.ndarray, sharpness: float, h: int, w: int) -> list["Environment"]:
    """Neutral spherical-Gaussian lights exp(sharpness (d . c - 1)), one per unit centre c of centres [n, 3], as
    [h, w] equirect Environments with their specular levels already prefiltered.

    The GGX prefilter commutes with rotation, so every lobe's level is one profile: the prefilter of the lobe
    around +Z, taken along a finely sampled meridian (as a function of d . c), read at each texel's d . c. One
    prefilter for the whole set instead of one per lobe (~1 s each at 32 x 64)."""
    d = equirect_pixel_dirs(h, w)  # [h, w, 3]
    pole = np.exp(sharpness * (d[..., 2] - 1.0)).astype(np.float32)  # [h, w] the lobe around +Z
    mips = _box_mips(np.ascontiguousarray(np.repeat(pole[..., None], 3, -1)))
    packed = _pack_levels(mips)
    elev = np.linspace(-np.pi / 2, np.pi / 2, 8 * h + 1)  # the meridian, south to north: d . z = sin(elev) rises
    meridian = np.stack([np.cos(elev), np.zeros_like(elev), np.sin(elev)], 1)
    meridian[0], meridian[-1] = (0.0, 0.0, -1.0), (0.0, 0.0, 1.0)
    profiles = [_prefilter_ggx_dirs(mips, k / (SPECULAR_LEVELS - 1), meridian, PREFILTER_SAMPLES, packed)[:, 0]
                for k in range(1, SPECULAR_LEVELS)]  # fmt: skip
    along = np.sin(elev)  # [8h + 1] d . z of the meridian's points, rising
    level_dirs = {}
    out = []
    for c in np.asarray(centres, np.float64):
        src = np.exp(sharpness * (d @ c - 1.0)).astype(np.float32)
        levels = [np.ascontiguousarray(np.repeat(src[..., None], 3, -1))]
        for k, prof in enumerate(profiles, start=1):
            lw = _level_width(k, w)
            if lw not in level_dirs:
                level_dirs[lw] = equirect_pixel_dirs(lw // 2, lw)
            lv = np.interp(level_dirs[lw] @ c, along, prof).astype(np.float32)
            levels.append(np.ascontiguousarray(np.repeat(lv[..., None], 3, -1)))
        out.append(Environment(None, _data=_Prefiltered(levels[0], specular=levels)))
    return out


def _cell_factor(h: int, w: int, cell_width: int) -> int:
    """Texels per light cell edge for an h x w equirect and a requested cell grid width (1: one texel a cell)."""
    f = max(1, w // cell_width)
    return 1 if h % f or w % f else f


def extract_lights(img: np.ndarray, cell_width: int = LIGHT_CELL_WIDTH, max_lights: int = MAX_LIGHTS,
                   threshold: float = LIGHT_THRESHOLD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split an equirect [H, W, 3] into a clamped residual plus directional lights, with residual + lights holding
    exactly the image's radiant energy.

    Texels whose luminance exceeds T = threshold x the mean luminance (solid-angle weighted) keep T (hue kept);
    the excess (L - residual) dw of each cell of a cell_width-wide grid becomes one light at the cell's
    excess-weighted mean direction. When more than max_lights cells hold an excess, T rises to the luminance that
    leaves max_lights cells. -> (residual [H, W, 3] float32, light directions [N, 3] unit (image frame),
    light flux [N, 3] float32, sum of (L - residual) dw over the cell in W/sr * sr units, i.e. irradiance-like)."""
    img = np.asarray(img, dtype=np.float32)
    H, W = img.shape[:2]
    f = _cell_factor(H, W, cell_width)
    dom = equirect_texel_solid_angles(H, W).astype(np.float32)  # [H]
    lum = img @ LUMINANCE  # [H, W]
    T = threshold * float((lum * dom[:, None]).sum() / (4 * np.pi))
    cell_max = lum.reshape(H // f, f, W // f, f).max(axis=(1, 3)).ravel()
    if np.count_nonzero(cell_max > T) > max_lights:
        T = float(np.partition(cell_max, -(max_lights + 1))[-(max_lights + 1)])
    scale = np.where(lum > T, T / np.maximum(lum, 1e-30), 1.0).astype(np.float32)
    residual = img * scale[..., None]
    excess = (img - residual) * dom[:, None, None]  # [H, W, 3] radiance x solid angle
    ex_lum = excess @ LUMINANCE
    dirs = equirect_pixel_dirs(H, W).astype(np.float32)
    cells = lambda x: x.reshape(H // f, f, W // f, f, -1).sum(axis=(1, 3)).reshape(-1, x.shape[-1])  # noqa: E731
    flux = cells(excess)
    centre = cells(dirs * ex_lum[..., None])
    keep = flux @ LUMINANCE > 0
    d = centre[keep]
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-30)
    return residual, d.astype(np.float32), flux[keep].astype(np.float32)


def _irradiance_map(mips: list[np.ndarray], h: int, w: int, src_width: int = 128) -> np.ndarray:
    """[h, w, 3] E(n) / pi (radiance of a white Lambertian surface) by direct cosine-weighted quadrature over a
    ~src_width-wide mip of the source; normalised so that a constant environment gives exactly itself."""
    src = next((m for m in mips if m.shape[1] <= src_width), mips[-1])
    sh, sw = src.shape[:2]
    L = src.reshape(-1, 3)
    dirs = equirect_pixel_dirs(sh, sw).reshape(-1, 3).astype(np.float32)
    domega = np.repeat(equirect_texel_solid_angles(sh, sw), sw).astype(np.float32)  # [sh * sw]
    n = equirect_pixel_dirs(h, w).reshape(-1, 3).astype(np.float32)
    K = n @ dirs.T  # [h * w, sh * sw] cosines
    np.maximum(K, 0.0, out=K)
    K *= domega
    E = (K @ L) / K.sum(axis=1, keepdims=True)  # = (1/pi) sum L cos dw  with sum cos dw -> pi
    return E.reshape(h, w, 3).astype(np.float32)


def sh9_basis(d: np.ndarray) -> np.ndarray:
    """[..., 3] unit directions -> [..., 9] real SH basis, order (l, m): (0,0), (1,-1), (1,0), (1,1), (2,-2),
    (2,-1), (2,0), (2,1), (2,2)."""
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    return np.stack(
        [
            0.282095 * np.ones_like(x),
            0.488603 * y,
            0.488603 * z,
            0.488603 * x,
            1.092548 * x * y,
            1.092548 * y * z,
            0.315392 * (3 * z * z - 1),
            1.092548 * x * z,
            0.546274 * (x * x - y * y),
        ],
        axis=-1,
    )


# Ramamoorthi & Hanrahan 2001: E(n) = sum_lm A_l L_lm Y_lm(n), A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4.
SH9_COSINE_LOBE = np.array([np.pi] + [2 * np.pi / 3] * 3 + [np.pi / 4] * 5)


def _project_sh9(mips: list[np.ndarray], src_width: int = 256) -> np.ndarray:
    """[9, 3] SH radiance coefficients of the (unrotated) source by quadrature over a ~src_width mip."""
    src = next((m for m in mips if m.shape[1] <= src_width), mips[-1])
    rep = max(1, src_width // src.shape[1])  # small images: integrate the basis on a finer grid (nearest texel)
    src = np.repeat(np.repeat(src, rep, axis=0), rep, axis=1)
    sh, sw = src.shape[:2]
    Y = sh9_basis(equirect_pixel_dirs(sh, sw)).reshape(-1, 9)
    domega = np.repeat(equirect_texel_solid_angles(sh, sw), sw)
    return (Y * domega[:, None]).T @ src.reshape(-1, 3).astype(np.float64)


class _Prefiltered:
    """Rotation- and strength-independent data derived from one HDRI, computed lazily once."""

    def __init__(self, equirect: np.ndarray, key: str = "", specular: list[np.ndarray] | None = None):
        self.source = equirect  # [H, W, 3] float32
        self.key = key  # content hash of the source (names the on-disk cache of the specular levels)
        self._lock = threading.Lock()
        self._specular = specular  # the prefiltered levels, source first, when the caller already has them
        self._irradiance: np.ndarray | None = None
        self._sh9: np.ndarray | None = None
        self._mips: list[np.ndarray] | None = None
        self._packed: tuple[np.ndarray, np.ndarray] | None = None
        self._lights: dict | None = None  # cell width -> lights()

    def mips(self) -> list[np.ndarray]:
        if self._mips is None:
            self._mips = _box_mips(self.source)
        return self._mips

    def specular(self) -> list[np.ndarray]:
        with self._lock:
            if self._specular is None:
                self._specular = self._load_specular()
            if self._specular is None:
                mips = self.mips()
                packed = _pack_levels(mips)
                W0 = self.source.shape[1]
                levels = [self.source]
                for k in range(1, SPECULAR_LEVELS):
                    w = _level_width(k, W0)
                    levels.append(_prefilter_ggx(mips, k / (SPECULAR_LEVELS - 1), w // 2, w, PREFILTER_SAMPLES, packed))
                self._specular = levels
                self._save_specular(levels)
            return self._specular

    def _cache_file(self) -> Path | None:
        root = os.environ.get("RELIGHT_CACHE_DIR")
        if not root or not self.key:
            return None
        tag = f"{self.key}_{SPECULAR_LEVELS}_{PREFILTER_SAMPLES}_{_MAX_LEVEL_WIDTH}_{PREFILTER_VERSION}"
        return Path(root) / "envmap_prefiltered" / f"{tag}.npz"

    def _load_specular(self) -> list[np.ndarray] | None:
        """Prefiltered levels from RELIGHT_CACHE_DIR (when set), else None."""
        path = self._cache_file()
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as z:
                levels = [self.source] + [z[f"l{k}"] for k in range(1, SPECULAR_LEVELS)]
        except (OSError, KeyError, ValueError):
            return None
        return levels

    def _save_specular(self, levels: list[np.ndarray]) -> None:
        path = self._cache_file()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **{f"l{k}": lv for k, lv in enumerate(levels) if k > 0})
            os.replace(tmp, path)
        except OSError:
            pass

    def packed_specular(self) -> tuple[np.ndarray, np.ndarray]:
        """All specular levels in one [M, 3] array and an int64 [L, 3] table of (offset, h, w) per level."""
        levels = self.specular()
        with self._lock:
            if self._packed is None:
                self._packed = _pack_levels(levels)
            return self._packed

    def lights(self, cell_width: int) -> tuple:
        """(residual box mips packed as (flat [M, 3], table [L, 3]), light dirs [N, 3] image frame, flux [N, 3])
        for a light cell grid cell_width wide."""
        with self._lock:
            if self._lights is None:
                self._lights = {}
            if cell_width not in self._lights:
                residual, dirs, flux = extract_lights(self.source, cell_width)
                self._lights[cell_width] = (_pack_levels(_box_mips(residual)), dirs, flux)
            return self._lights[cell_width]

    def irradiance(self) -> np.ndarray:
        with self._lock:
            if self._irradiance is None:
                self._irradiance = _irradiance_map(self.mips(), *IRRADIANCE_SIZE)
            return self._irradiance

    def sh9(self) -> np.ndarray:
        with self._lock:
            if self._sh9 is None:
                self._sh9 = _project_sh9(self.mips())
            return self._sh9


LUMINANCE = _LUMINANCE_F64.astype(np.float32)  # [3] the light finder works in float32
_PREFILTERED = LRU(16)  # environment identity (and the identity of the image as given) -> _Prefiltered


def environment_identity(equirect: np.ndarray) -> str:
    """The content id of an equirect as given (shape, dtype and pixels; SHA-1, ~13 ms for 2048 x 1024 RGB float32):
    the one identity of an environment, computed before any conversion so a repeated image costs only this."""
    a = np.ascontiguousarray(equirect)
    h = hashlib.sha1(f"{a.shape}|{a.dtype.str}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _prefiltered_for(equirect: np.ndarray) -> _Prefiltered:
    """The prefiltered data of an equirect [H, W, 3+] (any float dtype; NaN and negative radiance become 0), shared
    by every Environment of the same image."""
    raw_key = environment_identity(equirect)
    hit = _PREFILTERED.get(raw_key)
    if hit is not None:
        return hit
    eq = np.asarray(equirect)[..., :3].astype(np.float32)
    eq = np.ascontiguousarray(np.maximum(np.nan_to_num(eq, nan=0.0, posinf=0.0), 0.0))
    key = environment_identity(eq)  # the identity of the light itself: the image as the renderer sees it
    data = _PREFILTERED.get(key) if key != raw_key else None
    if data is None:
        data = _Prefiltered(eq, key)
        _PREFILTERED.put(key, data)
    _PREFILTERED.put(raw_key, data)  # the image as given is an alias: a repeated request costs one hash
    return data


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def level_blend(r, k0, n_levels: int):
    """Blend weight of level k0 + 1 for perceptual roughness r in [k0, k0 + 1] / (n_levels - 1): linear in
    alpha = r^2 (levels sit at r_k = k / (n_levels - 1)). Works on scalars (numba) and arrays."""
    s = n_levels - 1
    a0 = (k0 / s) ** 2
    a1 = ((k0 + 1) / s) ** 2
    return (r * r - a0) / (a1 - a0)


nb_level_blend = njit_cached()(level_blend)


class Environment:
    """An HDR environment (equirect, linear Rec.709) as Blender's world sees it through
    Environment Texture <- Mapping (Z rotation) and Background (strength).

    Rotation is applied to lookup directions: a world direction d reads the image at
    R_z(rotation_z) d, as a Mapping node of type Point with Z rotation does. Strength multiplies."""

    def __init__(self, equirect: np.ndarray, rotation_z: float = 0.0, strength: float = 1.0, _data=None):
        if _data is None:
            eq = np.asarray(equirect)
            if eq.ndim != 3 or eq.shape[-1] < 3 or min(eq.shape[:2]) < 2:
                raise ValueError(f"an environment's equirect must be [h, w, 3] with h, w >= 2, got shape {eq.shape}")
            _data = _prefiltered_for(eq)
        self._data = _data
        self.rotation_z = float(rotation_z)
        self.strength = float(strength)
        self._rot = _rot_z(self.rotation_z).astype(np.float32)  # [3, 3] world -> image frame

    @property
    def identity(self) -> str:
        """The content id of the source image (environment_identity); rotation and strength are not part of it."""
        return self._data.key

    @property
    def equirect(self) -> np.ndarray:
        """[H, W, 3] the source image (unrotated, strength 1)."""
        return self._data.source

    def with_transform(self, rotation_z: float, strength: float) -> "Environment":
        """Same HDRI, another rotation and strength; shares all prefiltered data."""
        return Environment(None, rotation_z, strength, _data=self._data)

    def prefilter(self) -> "Environment":
        """Compute (or fetch from the cache) all prefiltered data now. Returns self."""
        self._data.specular()
        self._data.irradiance()
        self._data.sh9()
        return self

    def _uv(self, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(dirs, dtype=np.float32)
        if d.shape[-1] != 3:
            raise ValueError(f"directions must be [..., 3], got shape {d.shape}")
        if self.rotation_z != 0.0:
            d = d @ self._rot.T
        return dir_to_equirect_uv(d)

    def radiance(self, dirs: np.ndarray) -> np.ndarray:
        """[..., 3] world directions -> [..., 3] linear radiance (bilinear, wraps in u)."""
        u, v = self._uv(dirs)
        return sample_equirect(self._data.source, u, v) * np.float32(self.strength)

    def specular(self, dirs: np.ndarray, roughness) -> np.ndarray:
        """[..., 3] reflection directions, [...] perceptual roughness in [0, 1] -> [..., 3] GGX-prefiltered
        radiance (bilinear within a level; between the two nearest roughness levels r0 < r <= r1, linear in
        GGX alpha = r^2, which keeps near-mirror lobes sharp)."""
        levels = self._data.specular()
        u, v = self._uv(dirs)
        shape = u.shape
        u = u.reshape(-1)
        v = v.reshape(-1)
        r = np.broadcast_to(np.asarray(roughness, dtype=np.float32), shape).reshape(-1)
        f = np.clip(r, 0.0, 1.0) * (len(levels) - 1)
        k0 = np.minimum(np.floor(f).astype(np.int64), len(levels) - 2)
        t = np.clip(level_blend(r, k0, len(levels)), 0.0, 1.0).astype(np.float32)
        out = np.zeros((u.shape[0], 3), dtype=np.float32)
        for k, level in enumerate(levels):
            for idx, w in ((np.nonzero(k0 == k)[0], None), (np.nonzero(k0 + 1 == k)[0], 1)):
                if idx.size == 0:
                    continue
                wt = t[idx] if w else 1 - t[idx]
                keep = wt > 0
                if not keep.all():
                    idx, wt = idx[keep], wt[keep]
                if idx.size:
                    out[idx] += sample_equirect(level, u[idx], v[idx]) * wt[:, None]
        return out.reshape(*shape, 3) * np.float32(self.strength)

    def irradiance(self, normals: np.ndarray) -> np.ndarray:
        """[..., 3] world normals -> [..., 3] E(n) / pi, the outgoing radiance of a white Lambertian surface."""
        u, v = self._uv(normals)
        return sample_equirect(self._data.irradiance(), u, v) * np.float32(self.strength)

    def cell_radiance(self, dirs: np.ndarray, src_width: int = 128) -> np.ndarray:
        """[D, 3] world directions -> [D, 3] mean radiance over each direction's Voronoi cell on the sphere
        (solid-angle weighted, so a small bright sun keeps its energy in the cell that holds it). Cells with no
        texel fall back to the bilinear radiance along the direction."""
        d = np.asarray(dirs, dtype=np.float32)
        mips = self._data.mips()
        src = min(mips, key=lambda m: abs(m.shape[1] - src_width))
        h, w = src.shape[:2]
        tex_dirs = equirect_pixel_dirs(h, w).reshape(-1, 3).astype(np.float32)  # image frame
        tex_world = tex_dirs @ self._rot  # image -> world: R^T t (row vectors)
        owner = np.argmax(tex_world @ d.T, axis=1)  # [h*w] nearest direction
        wgt = np.repeat(equirect_texel_solid_angles(h, w), w).astype(np.float64)
        rad = np.zeros((len(d), 3))
        np.add.at(rad, owner, src.reshape(-1, 3) * wgt[:, None])
        area = np.bincount(owner, wgt, minlength=len(d))
        out = np.where(area[:, None] > 0, rad / np.maximum(area, 1e-30)[:, None], 0.0).astype(np.float32)
        empty = area <= 0
        if np.any(empty):
            out[empty] = self.radiance(d[empty]) / np.float32(self.strength)
        return out * np.float32(self.strength)

    def mip_kernel_data(self) -> tuple:
        """(mip_flat [M, 3], mip_table [L, 3] (offset, h, w), texel0 sr) of the source's box mips, for kernels that
        sample the environment with filtered importance sampling (texel0: a level-0 texel's solid angle at the
        equator)."""
        d = self._data
        with d._lock:
            if getattr(d, "_packed_mips", None) is None:
                d._packed_mips = _pack_levels(d.mips())
        H0, W0 = d.source.shape[:2]
        return d._packed_mips[0], d._packed_mips[1], 2 * np.pi * np.pi / (W0 * H0)

    def light_kernel_data(self, cell_width: int = LIGHT_CELL_WIDTH) -> tuple:
        """The environment split for per-pixel lobe sampling (see extract_lights), in plain arrays:
        (residual mip_flat [M, 3], mip_table [L, 3] (offset, h, w), texel0 sr, light_dirs [N, 3] float64 unit world,
        light_flux [N, 3] float64 at strength 1, cell_omega sr: a light cell's solid angle at the equator).
        residual + lights = the environment."""
        (flat, table), dirs, flux = self._data.lights(cell_width)
        H0, W0 = self._data.source.shape[:2]
        wc = W0 // _cell_factor(H0, W0, cell_width)
        world = dirs.astype(np.float64) @ self._rot.astype(np.float64)  # image -> world: R^T d (row vectors)
        return (flat, table, 2 * np.pi * np.pi / (W0 * H0), np.ascontiguousarray(world), flux.astype(np.float64),
                4 * np.pi * np.pi / (wc * wc))  # fmt: skip

    def kernel_data(self) -> tuple:
        """Everything a numba shading kernel needs for specular/irradiance lookups, in plain arrays:
        (rot [3, 3] float32 world -> image frame, strength, spec_flat [M, 3], spec_table [L, 3] (offset, h, w),
        irr_flat [h * w, 3], irr_h, irr_w). Lookups in a kernel must equal .specular() / .irradiance()."""
        spec_flat, spec_table = self._data.packed_specular()
        irr = self._data.irradiance()
        return (self._rot, np.float32(self.strength), spec_flat, spec_table, irr.reshape(-1, 3), irr.shape[0], irr.shape[1])

    @property
    def sh9(self) -> np.ndarray:
        """[9, 3] SH radiance coefficients in the world frame (rotation and strength applied);
        order as sh9_basis. Irradiance from them: E(n) = sum_i SH9_COSINE_LOBE[i] sh9[i] Y_i(n)."""
        c = self._data.sh9()
        if self.rotation_z != 0.0:
            # Y(R d) = M Y(d) band by band; fit M on a spread of directions, then c_world = M^T c_src.
            d = equirect_pixel_dirs(8, 16).reshape(-1, 3)
            M_T, *_ = np.linalg.lstsq(sh9_basis(d), sh9_basis(d @ self._rot.T.astype(np.float64)), rcond=None)
            c = M_T @ c
        return (c * self.strength).astype(np.float32)

    @staticmethod
    def from_file(path, rotation_z: float = 0.0, strength: float = 1.0) -> "Environment":
        """Environment from an .exr or .hdr file."""
        from .hdri_io import read_hdr_image

        return Environment(read_hdr_image(path), rotation_z, strength)

    @staticmethod
    def constant(radiance, h: int = 16, w: int = 32) -> "Environment":
        """A uniform environment of the given RGB (or grey) radiance."""
        eq = np.empty((h, w, 3), dtype=np.float32)
        eq[:] = np.asarray(radiance, dtype=np.float32)
        return Environment(eq)


def default_environment() -> Environment:
    """The light when a request names none: the studio HDRI shipped inside the bpy wheel, else a soft grey sky."""
    hdris = builtin_hdris()
    if "studio" in hdris:
        return Environment.from_file(hdris["studio"])
    return Environment.constant([0.8, 0.8, 0.8])
