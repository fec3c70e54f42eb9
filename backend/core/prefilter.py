"""What shading precomputes from an HDRI, independent of its rotation and strength: GGX-prefiltered specular levels
over roughness, the diffuse irradiance map, SH9 coefficients, and the bright lights taken out for lobe sampling."""

import numba
import numpy as np

from .colour import LUMINANCE as _LUMINANCE_F64
from .equirect import equirect_pixel_dirs, equirect_texel_solid_angles, nb_dir_to_uv, nb_sample_lod
from .jit import njit_cached
from .sampling import hammersley

# ----------------------------------------------------------------------------------------------------------
# GGX specular levels over perceptual roughness (level 0 the source), and bright-light extraction constants.
# ----------------------------------------------------------------------------------------------------------

SPECULAR_LEVELS = 17  # roughness r_k = k / 16; level 0 is the source itself (a mirror). 17 rather than 9 levels
# gained 1-2 dB against Cycles on a polished (r = 0.08) metal: blending a mirror with a much wider lobe is poor
IRRADIANCE_SIZE = (32, 64)  # (h, w) of the irradiance map
MAX_LEVEL_WIDTH = 256
PREFILTER_VERSION = 3  # bump when the prefilter maths changes (names the disk cache)
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
LUMINANCE = _LUMINANCE_F64.astype(np.float32)  # [3] the light finder works in float32


def box_mips(img: np.ndarray, min_w: int = 8) -> list[np.ndarray]:
    """[H, W, 3] -> list of 2x2-downsampled equirects, full resolution first. Each texel is the solid-angle weighted
    mean of its four children: the two rows of a pair differ in solid angle by their cosines of elevation, so a plain
    mean overweights the row nearer a pole, and in a coarse level the bias compounds: a studio's top panel near a
    pole spans the whole width of its rows, and with a plain mean a 4 x 8 level's top row came out twice as bright
    as its footprint (tests/test_envmap.py's panel: +113 % on average). The lobe path's tail samples read such
    levels: a rough metal (0.77) under a studio with a top light shaded 23 % too bright at 128 samples, 1 % with
    this (docs/relight_eval/stop25_mips)."""
    mips = [img]
    w = equirect_texel_solid_angles(*img.shape[:2]).astype(np.float64)  # [H] sr per texel of each row
    while mips[-1].shape[1] > min_w and mips[-1].shape[0] % 2 == 0 and mips[-1].shape[1] % 2 == 0:
        m = mips[-1]
        cols = 0.5 * (m[:, 0::2] + m[:, 1::2])  # [H, W/2, 3] the columns of a row share its solid angle
        wa, wb = w[0::2], w[1::2]  # [H/2] each pair's upper and lower row
        share = (wa / (wa + wb)).astype(np.float32)[:, None, None]
        mips.append((share * cols[0::2] + (1 - share) * cols[1::2]).astype(img.dtype, copy=False))
        w = wa + wb
    return mips


def orthonormal_frame(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, 3] unit vectors -> tangents T, B [N, 3] (Duff et al. 2017, 'Building an Orthonormal Basis, Revisited')."""
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    sign = np.where(z >= 0, 1.0, -1.0)
    a = -1.0 / (sign + z)
    b = x * y * a
    T = np.stack([1 + sign * x * x * a, sign * b, -sign * x], axis=-1)
    B = np.stack([b, sign + y * y * a, -y], axis=-1)
    return T, B


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


def pack_levels(levels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Equirect levels -> (one [M, 3] float32 array, int64 [L, 3] table of (offset, h, w))."""
    table = np.zeros((len(levels), 3), dtype=np.int64)
    off = 0
    for k, lv in enumerate(levels):
        table[k] = (off, lv.shape[0], lv.shape[1])
        off += lv.shape[0] * lv.shape[1]
    return np.ascontiguousarray(np.concatenate([lv.reshape(-1, 3) for lv in levels]), dtype=np.float32), table


def prefilter_ggx(mips: list[np.ndarray], roughness: float, h: int, w: int, n_samples: int, packed=None) -> np.ndarray:
    """[h, w, 3] GGX-prefiltered radiance for perceptual roughness r (alpha = r^2), with n = v = r (Karis 2013),
    by filtered importance sampling (Colbert & Krivanek, GPU Gems 3 ch. 20): each GGX sample reads the source
    mip whose texel solid angle matches the sample's share of the lobe (no extra blur bias: with too few samples
    or a biased footprint, bright small lights leak far into the GGX tail). numba kernel."""
    R = equirect_pixel_dirs(h, w).reshape(-1, 3)
    return _prefilter_ggx_dirs(mips, roughness, R, n_samples, packed).reshape(h, w, 3)


def _prefilter_ggx_dirs(mips: list[np.ndarray], roughness: float, R: np.ndarray, n_samples: int,
                        packed=None) -> np.ndarray:  # fmt: skip
    """prefilter_ggx at arbitrary unit output directions R [N, 3] -> [N, 3] float32."""
    alpha = roughness * roughness
    a2 = alpha * alpha
    R = np.asarray(R, np.float64)  # [N, 3] output directions = normal = view
    T, B = (np.ascontiguousarray(a, dtype=np.float64) for a in orthonormal_frame(R))
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
    flat, table = packed if packed is not None else pack_levels(mips)
    out = np.empty((R.shape[0], 3), dtype=np.float64)
    _prefilter_kernel(flat, table, np.ascontiguousarray(R, dtype=np.float64), T, B, sx, sy, sz, n_dot_l[keep],
                      np.maximum(lods, 0.0), out)  # fmt: skip
    return out.astype(np.float32)


def level_width(k: int, src_width: int) -> int:
    """Equirect width of specular level k >= 1 (roughness k / (SPECULAR_LEVELS - 1)): ~4 texels across the lobe's
    angular radius (~alpha), width >= 4 pi / alpha as a power of 2, within [_MIN_LEVEL_WIDTH, MAX_LEVEL_WIDTH]
    and no wider than the source."""
    alpha = (k / (SPECULAR_LEVELS - 1)) ** 2
    w = 2 ** int(np.ceil(np.log2(4 * np.pi / alpha)))
    return int(np.clip(w, _MIN_LEVEL_WIDTH, min(MAX_LEVEL_WIDTH, src_width)))


def level_blend(r, k0, n_levels: int):
    """Blend weight of level k0 + 1 for perceptual roughness r in [k0, k0 + 1] / (n_levels - 1): linear in
    alpha = r^2 (levels sit at r_k = k / (n_levels - 1)). Works on scalars (numba) and arrays."""
    s = n_levels - 1
    a0 = (k0 / s) ** 2
    a1 = ((k0 + 1) / s) ** 2
    return (r * r - a0) / (a1 - a0)


nb_level_blend = njit_cached()(level_blend)


def lobe_levels(centres: np.ndarray, sharpness: float, h: int, w: int) -> list[list[np.ndarray]]:
    """The specular levels (source first, each [h_k, w_k, 3] float32) of neutral spherical-Gaussian lights
    exp(sharpness (d . c - 1)), one list per unit centre c of centres [n, 3], the source an [h, w] equirect.

    The GGX prefilter commutes with rotation, so every lobe's level is one profile: the prefilter of the lobe
    around +Z, taken along a finely sampled meridian (as a function of d . c), read at each texel's d . c. One
    prefilter for the whole set instead of one per lobe (~1 s each at 32 x 64)."""
    d = equirect_pixel_dirs(h, w)  # [h, w, 3]
    pole = np.exp(sharpness * (d[..., 2] - 1.0)).astype(np.float32)  # [h, w] the lobe around +Z
    mips = box_mips(np.ascontiguousarray(np.repeat(pole[..., None], 3, -1)))
    packed = pack_levels(mips)
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
            lw = level_width(k, w)
            if lw not in level_dirs:
                level_dirs[lw] = equirect_pixel_dirs(lw // 2, lw)
            lv = np.interp(level_dirs[lw] @ c, along, prof).astype(np.float32)
            levels.append(np.ascontiguousarray(np.repeat(lv[..., None], 3, -1)))
        out.append(levels)
    return out


# ----------------------------------------------------------------------------------------------------------
# Bright lights taken out of the map for per-pixel lobe sampling (constants above).
# ----------------------------------------------------------------------------------------------------------


def cell_factor(h: int, w: int, cell_width: int) -> int:
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
    f = cell_factor(H, W, cell_width)
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


# ----------------------------------------------------------------------------------------------------------
# Diffuse: the irradiance map and SH9 radiance coefficients.
# ----------------------------------------------------------------------------------------------------------


def irradiance_map(mips: list[np.ndarray], h: int, w: int, src_width: int = 128) -> np.ndarray:
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


SH_Y00 = 0.5 / np.sqrt(np.pi)  # the constant SH basis function: a radiance's mean over the sphere is SH_Y00 x its DC term


def sh9_basis(d: np.ndarray) -> np.ndarray:
    """[..., 3] unit directions -> [..., 9] real SH basis, order (l, m): (0,0), (1,-1), (1,0), (1,1), (2,-2),
    (2,-1), (2,0), (2,1), (2,2)."""
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    return np.stack(
        [
            SH_Y00 * np.ones_like(x),
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


def project_sh9(mips: list[np.ndarray], src_width: int = 256) -> np.ndarray:
    """[9, 3] SH radiance coefficients of the (unrotated) source by quadrature over a ~src_width mip."""
    src = next((m for m in mips if m.shape[1] <= src_width), mips[-1])
    rep = max(1, src_width // src.shape[1])  # small images: integrate the basis on a finer grid (nearest texel)
    src = np.repeat(np.repeat(src, rep, axis=0), rep, axis=1)
    sh, sw = src.shape[:2]
    Y = sh9_basis(equirect_pixel_dirs(sh, sw)).reshape(-1, 9)
    domega = np.repeat(equirect_texel_solid_angles(sh, sw), sw)
    return (Y * domega[:, None]).T @ src.reshape(-1, 3).astype(np.float64)
