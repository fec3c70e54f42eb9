"""The backend's colour conversions: AgX view transform, 8-bit encoding, and the sRGB transfer functions (those live
in relight_protocol.conventions, shared with the add-on, and are re-exported here)."""

import threading
from pathlib import Path

import numba
import numpy as np

from relight_protocol.conventions import linear_to_srgb, srgb_to_linear  # noqa: F401 (re-exported)

from .bits import bits_f32, f32_bits
from .jit import njit_cached as _jit

# Blender's AgX view (the "AgX Base sRGB" colour space of the OCIO config simple-ocio ships):
#   linear Rec.709 -> linear E-Gamut (3x3) -> lg2 allocation over [AGX_LOG2_MIN, AGX_LOG2_MAX] -> 57^3 3D LUT
#   (tetrahedral) -> x^2.4 -> sRGB piecewise encoding.
AGX_LOG2_MIN, AGX_LOG2_MAX = -12.47393, 12.5260688117  # AllocationTransform lg2 vars of "AgX Base sRGB"
AGX_CUBE = "AgX_Base_sRGB.cube"
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])  # [3] float64 Rec.709 luminance weights of linear RGB


_TONE_MAPPER = None
_TONE_MAPPER_LOCK = threading.Lock()
_AGX_TABLES = None  # (matrix [3, 3] float32 row-vector Rec.709 -> E-Gamut, cube [N, N, N, 3] float32 [b, g, r])
_AGX_TABLES_LOCK = threading.Lock()


def _agx_tone_mapper():
    """simple_ocio ToneMapper on Blender's OCIO config, AgX view, no look, exposure 0 (built once)."""
    global _TONE_MAPPER
    with _TONE_MAPPER_LOCK:
        if _TONE_MAPPER is None:
            from simple_ocio import ToneMapper

            _TONE_MAPPER = ToneMapper(view="AgX")  # the default view is Filmic; AgX is Blender 4.x's default
        return _TONE_MAPPER


def agx_ocio(rgb_linear: np.ndarray) -> np.ndarray:
    """AgX through OCIO's own CPU processor (simple-ocio): the exact path `agx` is validated against.

    [..., 3] scene-linear Rec.709 -> [..., 3] display sRGB in [0, 1]. The processor is shared: calls are serialised."""
    rgb = np.asarray(rgb_linear, dtype=np.float32)
    if rgb.shape[-1] != 3:
        raise ValueError(f"agx expects [..., 3] RGB, got shape {rgb.shape}")
    flat = np.nan_to_num(rgb.reshape(-1, 3), nan=0.0)
    tm = _agx_tone_mapper()
    with _TONE_MAPPER_LOCK:
        out = tm.hdr_to_ldr(flat, clip=True)  # copies, C-contiguous float32
    return out.reshape(rgb.shape)


def read_cube(path) -> np.ndarray:
    """A .cube 3D LUT (Adobe/Resolve text format, domain [0, 1]) -> [N, N, N, 3] float32 indexed [b, g, r]
    (red varies fastest in the file). The keyword lines are read one by one, the N^3 rows of numbers in one numpy
    parse (Blender's AgX cube has 185k rows: 1.2 s as Python floats, ~0.1 s so)."""
    size, rows = None, []
    for line in Path(path).read_text().splitlines():
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("TITLE"):
            continue
        if s.startswith("LUT_3D_SIZE"):
            size = int(s.split()[1])
        elif s.startswith("DOMAIN_MIN") or s.startswith("DOMAIN_MAX"):
            want = "0 0 0" if s.startswith("DOMAIN_MIN") else "1 1 1"
            if [float(v) for v in s.split()[1:]] != [float(v) for v in want.split()]:
                raise ValueError(f"{path}: only the [0, 1] domain is supported, got {s!r}")
        elif s[0].isdigit() or s[0] in "-.":
            rows.append(s)
    values = np.array(" ".join(rows).split(), dtype=np.float32)  # every row's numbers, in file order
    if size is None or len(rows) != size**3 or values.size != 3 * len(rows):
        raise ValueError(f"{path}: expected LUT_3D_SIZE and size^3 rows of 3 numbers, got size {size} and "
                         f"{len(rows)} rows of {values.size} numbers")
    return values.reshape(size, size, size, 3)


def _agx_tables():
    """(matrix [3, 3] row-vector linear Rec.709 -> linear E-Gamut, read from OCIO; cube [N, N, N, 3]), built once."""
    global _AGX_TABLES
    with _AGX_TABLES_LOCK:
        if _AGX_TABLES is None:
            import PyOpenColorIO as OCIO
            import simple_ocio

            tm = _agx_tone_mapper()
            proc = tm.config.getProcessor(OCIO.ROLE_SCENE_LINEAR, "Linear FilmLight E-Gamut").getDefaultCPUProcessor()
            m = np.eye(3, dtype=np.float32)
            proc.applyRGB(m)  # row k: the image of basis vector k
            cube = read_cube(Path(simple_ocio.__file__).parent / "ocio_data" / "luts" / AGX_CUBE)
            _AGX_TABLES = (np.ascontiguousarray(m), np.ascontiguousarray(cube))
        return _AGX_TABLES


_FAST = {"afn", "arcp", "contract", "nsz"}  # fast maths without assuming finite values (NaN checks stay)


@_jit(inline="always", fastmath=_FAST)
def _display_encode(v):
    """LUT output v -> v^2.4 -> sRGB piecewise encoding, clipped to [0, 1]. Above the linear segment
    (v^2.4 > 0.0031308) the two cancel to 1.055 v - 0.055."""
    v = max(v, np.float32(0.0))
    y = np.float32(1.055) * v - np.float32(0.055)
    if v <= np.float32(0.0905):  # 0.0031308^(1/2.4) = 0.090479
        lin = v ** np.float32(2.4)
        if lin <= np.float32(0.0031308):
            y = np.float32(12.92) * lin
    return min(max(y, np.float32(0.0)), np.float32(1.0))


@_jit(inline="always", fastmath=_FAST)
def _log2_pos(x):
    """log2 of a normal positive float32, absolute error < 1e-6: exponent from the bits, and
    ln(m) = 2 atanh((m - 1) / (m + 1)) for the mantissa m in [sqrt(1/2), sqrt(2)) (odd series to s^9)."""
    bits = f32_bits(np.float32(x))
    e = (bits >> np.int32(23)) - np.int32(127)
    m = bits_f32((bits & np.int32(0x7FFFFF)) | np.int32(0x3F800000))  # [1, 2)
    if m > np.float32(1.41421356):
        m = m * np.float32(0.5)
        e += np.int32(1)
    s = (m - np.float32(1.0)) / (m + np.float32(1.0))
    s2 = s * s
    p = s * (np.float32(2.0) + s2 * (np.float32(2.0 / 3.0) + s2 * (np.float32(0.4) + s2 * (np.float32(2.0 / 7.0) + s2 * np.float32(2.0 / 9.0)))))
    return np.float32(e) + p * np.float32(1.4426950408889634)


@_jit(inline="always", fastmath=_FAST)
def _lut_coord(e, n1):
    """Linear E-Gamut value -> LUT coordinate in [0, n1] through the lg2 allocation (NaN -> 0)."""
    lo = np.float32(2.0**AGX_LOG2_MIN)
    if not e > lo:  # also NaN
        e = lo
    t = (_log2_pos(e) - np.float32(AGX_LOG2_MIN)) * (
        np.float32(n1) / np.float32(AGX_LOG2_MAX - AGX_LOG2_MIN))
    return min(max(t, np.float32(0.0)), np.float32(n1))


@_jit(inline="always", fastmath=_FAST)
def _agx_pixel(r, g, b, m, cube, n_cube):
    """One pixel of the AgX view: linear Rec.709 (r, g, b) -> display sRGB (r, g, b) in [0, 1].

    Tetrahedral interpolation: the cell's corners 000 -> c1 -> c2 -> 111 along the edges in decreasing order of
    the fractions (f_a >= f_b >= f_c), weights 1 - f_a, f_a - f_b, f_b - f_c, f_c. cube is [n_cube^3, 3], row (b * n_cube + g) * n_cube + r."""
    n1 = n_cube - 1
    t0 = _lut_coord(r * m[0, 0] + g * m[1, 0] + b * m[2, 0], n1)
    t1 = _lut_coord(r * m[0, 1] + g * m[1, 1] + b * m[2, 1], n1)
    t2 = _lut_coord(r * m[0, 2] + g * m[1, 2] + b * m[2, 2], n1)
    i0, i1, i2 = min(int(t0), n1 - 1), min(int(t1), n1 - 1), min(int(t2), n1 - 1)
    fr, fg, fb = t0 - np.float32(i0), t1 - np.float32(i1), t2 - np.float32(i2)
    # corner offsets (dr, dg, db) of c1 and c2, and the sorted fractions
    if fr > fg:
        if fg > fb:  # r > g > b
            a1, a2, a3, r1, g1, b1, r2, g2, b2 = fr, fg, fb, 1, 0, 0, 1, 1, 0
        elif fr > fb:  # r > b >= g
            a1, a2, a3, r1, g1, b1, r2, g2, b2 = fr, fb, fg, 1, 0, 0, 1, 0, 1
        else:  # b >= r > g
            a1, a2, a3, r1, g1, b1, r2, g2, b2 = fb, fr, fg, 0, 0, 1, 1, 0, 1
    elif fb > fg:  # b > g >= r
        a1, a2, a3, r1, g1, b1, r2, g2, b2 = fb, fg, fr, 0, 0, 1, 0, 1, 1
    elif fb > fr:  # g >= b > r
        a1, a2, a3, r1, g1, b1, r2, g2, b2 = fg, fb, fr, 0, 1, 0, 0, 1, 1
    else:  # g >= r >= b
        a1, a2, a3, r1, g1, b1, r2, g2, b2 = fg, fr, fb, 0, 1, 0, 1, 1, 0
    w0, w1, w2 = np.float32(1.0) - a1, a1 - a2, a2 - a3
    s1 = n1 + 1  # flat row index of the corner (r, g, b): (b * s1 + g) * s1 + r
    k0 = (i2 * s1 + i1) * s1 + i0
    k1 = k0 + (b1 * s1 + g1) * s1 + r1
    k2 = k0 + (b2 * s1 + g2) * s1 + r2
    k3 = k0 + (s1 + 1) * s1 + 1
    v0 = w0 * cube[k0, 0] + w1 * cube[k1, 0] + w2 * cube[k2, 0] + a3 * cube[k3, 0]
    v1 = w0 * cube[k0, 1] + w1 * cube[k1, 1] + w2 * cube[k2, 1] + a3 * cube[k3, 1]
    v2 = w0 * cube[k0, 2] + w1 * cube[k1, 2] + w2 * cube[k2, 2] + a3 * cube[k3, 2]
    return _display_encode(v0), _display_encode(v1), _display_encode(v2)


@_jit(parallel=True, fastmath=_FAST)
def _agx_kernel(rgb, m, cube, n_cube, out):
    """rgb [P, 3] linear Rec.709 -> out [P, 3] display sRGB in [0, 1] (NaN counts as 0)."""
    for p in numba.prange(rgb.shape[0]):
        out[p, 0], out[p, 1], out[p, 2] = _agx_pixel(rgb[p, 0], rgb[p, 1], rgb[p, 2], m, cube, n_cube)


@_jit(inline="always")
def _u8(x):
    """[0, 1] -> uint8 rounded to nearest (as to_uint8)."""
    return np.uint8(min(max(x, np.float32(0.0)), np.float32(1.0)) * np.float32(255.0) + np.float32(0.5))


@_jit(parallel=True, fastmath=_FAST)
def _agx_rgba8_kernel(hdr, alpha, m, cube, n_cube, out):
    """hdr [P, 3] premultiplied linear, alpha [P] -> out [P, 4] uint8: AgX of the straight colour (black where
    alpha is 0), straight alpha."""
    for p in numba.prange(hdr.shape[0]):
        a = alpha[p]
        out[p, 3] = _u8(a)
        if a > 0.0:
            inv = np.float32(1.0) / max(a, np.float32(1e-6))
            r, g, b = _agx_pixel(hdr[p, 0] * inv, hdr[p, 1] * inv, hdr[p, 2] * inv, m, cube, n_cube)
            out[p, 0], out[p, 1], out[p, 2] = _u8(r), _u8(g), _u8(b)
        else:
            out[p, 0] = out[p, 1] = out[p, 2] = 0


def agx(rgb_linear: np.ndarray) -> np.ndarray:
    """[..., 3] scene-linear Rec.709 -> [..., 3] display sRGB in [0, 1] through Blender's AgX view (look None).

    The view's own maths (E-Gamut matrix read from OCIO, lg2 allocation, its 57^3 LUT with tetrahedral
    interpolation, 2.4 power, sRGB encoding) in one parallel numba pass; `agx_ocio` is the OCIO reference it is
    tested against (and Blender's view transform). NaN counts as 0."""
    rgb = np.asarray(rgb_linear, dtype=np.float32)
    if rgb.shape[-1] != 3:
        raise ValueError(f"agx expects [..., 3] RGB, got shape {rgb.shape}")
    m, cube = _agx_tables()
    flat = np.ascontiguousarray(rgb.reshape(-1, 3))
    out = np.empty_like(flat)
    _agx_kernel(flat, m, cube.reshape(-1, 3), cube.shape[0], out)
    return out.reshape(rgb.shape)


def agx_rgba8(hdr_premul: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Premultiplied linear [H, W, 3] and coverage [H, W, 1] -> [H, W, 4] uint8 straight-alpha AgX sRGB, in one
    pass. Equals concat(to_uint8(agx(hdr / max(alpha, 1e-6)) * (alpha > 0)), to_uint8(alpha))."""
    hdr = np.ascontiguousarray(hdr_premul, dtype=np.float32)
    if hdr.shape[-1] != 3:
        raise ValueError(f"hdr_premul must be [..., 3], got shape {hdr.shape}")
    a = np.ascontiguousarray(alpha, dtype=np.float32).reshape(-1)
    if a.size * 3 != hdr.size:
        raise ValueError(f"alpha {np.shape(alpha)} does not match hdr {hdr.shape}")
    m, cube = _agx_tables()
    out = np.empty((a.size, 4), dtype=np.uint8)
    _agx_rgba8_kernel(hdr.reshape(-1, 3), a, m, cube.reshape(-1, 3), cube.shape[0], out)
    return out.reshape(*hdr.shape[:-1], 4)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Display values in [0, 1] -> uint8 with rounding to nearest (values outside [0, 1] are clipped)."""
    return (np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
