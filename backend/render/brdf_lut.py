"""The split-sum BRDF table (Karis 2013): GGX D, height-correlated Smith G, Schlick Fresnel, generated here.

specular ~= prefiltered_radiance(r, roughness) * (F0 * A + B), with (A, B) = brdf_lut[roughness, n.v]."""

import os
import threading

import numpy as np

from ..core.cache import cache_root
from ..core.sampling import hammersley

LUT_SAMPLES = 2048  # importance samples per table entry
_VERSION = 1  # bump when the generator changes, to invalidate cached tables
_TABLES: dict[int, np.ndarray] = {}
_LOCK = threading.Lock()


def smith_ggx_correlated_vis(n_dot_v, n_dot_l, alpha):
    """Height-correlated Smith visibility V = G2 / (4 n.l n.v) for GGX (Heitz 2014, eq. 99)."""
    a2 = alpha * alpha
    gv = n_dot_l * np.sqrt(n_dot_v * n_dot_v * (1 - a2) + a2)
    gl = n_dot_v * np.sqrt(n_dot_l * n_dot_l * (1 - a2) + a2)
    return 0.5 / np.maximum(gv + gl, 1e-12)


def _lut_rows(roughness: np.ndarray, n_dot_v: np.ndarray, n_samples: int) -> np.ndarray:
    """[R, V, 2] (A, B) for perceptual roughness values [R] and n.v values [V]."""
    alpha = roughness[:, None, None] ** 2  # [R, 1, 1]
    a2 = alpha * alpha
    xi1, xi2 = hammersley(n_samples)
    # half vectors h ~ D(h) (n.h) in the frame n = z, with v in the xz plane
    cos_h = np.sqrt((1 - xi1) / (1 + (a2 - 1) * xi1))  # [R, 1, S]
    sin_h = np.sqrt(np.maximum(0.0, 1 - cos_h * cos_h))
    hx = sin_h * np.cos(2 * np.pi * xi2)
    nv = n_dot_v[None, :, None]  # [1, V, 1]
    vx = np.sqrt(1 - nv * nv)
    v_dot_h = vx * hx + nv * cos_h  # [R, V, S]
    n_dot_l = 2 * v_dot_h * cos_h - nv  # l = 2 (v.h) h - v
    ok = (n_dot_l > 0) & (v_dot_h > 0)
    nl = np.where(ok, n_dot_l, 0.0)
    # BRDF * n.l / pdf(l) with pdf(l) = D (n.h) / (4 v.h):  V * 4 (n.l)(v.h) / (n.h)
    w = np.where(ok, smith_ggx_correlated_vis(nv, nl, alpha) * 4 * nl * np.maximum(v_dot_h, 0) / cos_h, 0.0)
    fc = (1 - np.clip(v_dot_h, 0, 1)) ** 5
    return np.stack([((1 - fc) * w).mean(axis=-1), (fc * w).mean(axis=-1)], axis=-1)


def generate_brdf_lut(size: int = 64, n_samples: int = LUT_SAMPLES) -> np.ndarray:
    """[size (roughness rows), size (n.v columns), 2] float32 (A, B) by GGX importance sampling (Hammersley).

    Row i holds perceptual roughness (i + 0.5) / size (alpha = r^2); column j holds n.v = (j + 0.5) / size.
    A = E[(1 - Fc) w], B = E[Fc w] with w = f_spec n.l / pdf, Fc = (1 - v.h)^5, so that the directional
    albedo of the specular lobe is F0 * A + B."""
    c = (np.arange(size) + 0.5) / size
    table = np.empty((size, size, 2), dtype=np.float32)
    for r0 in range(0, size, 8):  # row blocks bound the memory to ~8 * size * n_samples doubles per array
        table[r0 : r0 + 8] = _lut_rows(c[r0 : r0 + 8], c, n_samples)
    return table


def brdf_lut(size: int = 64) -> np.ndarray:
    """[size, size, 2] float32 (A, B) table, rows roughness, columns n.v (see generate_brdf_lut).
    Generated once, then loaded from <cache_dir>/brdf_lut_ggx_v{_VERSION}_{size}.npy."""
    with _LOCK:
        table = _TABLES.get(size)
        if table is not None:
            return table
        path = cache_root() / f"brdf_lut_ggx_v{_VERSION}_{size}_{LUT_SAMPLES}.npy"
        table = None
        if path.is_file():
            try:
                table = np.load(path)
                if table.shape != (size, size, 2):
                    table = None
            except (OSError, ValueError):
                table = None
        if table is None:
            table = generate_brdf_lut(size)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, table)
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only cache is not an error; the table lives in memory
        table = np.ascontiguousarray(table, dtype=np.float32)
        _TABLES[size] = table
        return table


def average_albedo(size: int = 64) -> np.ndarray:
    """[size] float32 cosine-weighted average of the lobe's directional albedo E = A + B (Fresnel 1) over n.v,
    E_avg = 2 int_0^1 E(mu) mu dmu (midpoint rule on the table's columns), per roughness row."""
    table = brdf_lut(size)
    mu = (np.arange(size) + 0.5) / size
    return (2.0 / size * ((table[..., 0] + table[..., 1]) * mu).sum(axis=1)).astype(np.float32)


def lookup_average(roughness, size: int = 64, dtype=np.float32) -> np.ndarray:
    """E_avg (average_albedo) at perceptual roughness [...], linear between row centres (clamped). -> [...]
    Position and weights in dtype (np.float64: the shading kernel's precision, for its reference)."""
    r = np.asarray(roughness, dtype=dtype)
    y = np.clip(r * size - 0.5, 0, size - 1)
    y0 = np.minimum(y.astype(np.int64), size - 2)
    t = (y - y0).astype(dtype)
    e = average_albedo(size)
    return e[y0] * (1 - t) + e[y0 + 1] * t


def lookup(n_dot_v, roughness, size: int = 64, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear (A, B) at n.v [...] and perceptual roughness [...] (broadcast), clamped to the table's
    sample centres. -> (A [...], B [...]) in dtype (np.float64: the shading kernel's precision, for its reference)."""
    table = brdf_lut(size)
    nv = np.asarray(n_dot_v, dtype=dtype)
    r = np.asarray(roughness, dtype=dtype)
    nv, r = np.broadcast_arrays(nv, r)
    shape = nv.shape
    x = np.clip(nv.reshape(-1) * size - 0.5, 0, size - 1)  # column coordinate
    y = np.clip(r.reshape(-1) * size - 0.5, 0, size - 1)  # row coordinate
    x0 = np.minimum(x.astype(np.int64), size - 2)
    y0 = np.minimum(y.astype(np.int64), size - 2)
    fx = (x - x0).astype(dtype)[:, None]
    fy = (y - y0).astype(dtype)[:, None]
    flat = table.reshape(-1, 2)
    i00 = y0 * size + x0
    out = np.take(flat, i00, axis=0) * ((1 - fx) * (1 - fy))
    out += np.take(flat, i00 + 1, axis=0) * (fx * (1 - fy))
    out += np.take(flat, i00 + size, axis=0) * ((1 - fx) * fy)
    out += np.take(flat, i00 + size + 1, axis=0) * (fx * fy)
    return out[:, 0].reshape(shape), out[:, 1].reshape(shape)
