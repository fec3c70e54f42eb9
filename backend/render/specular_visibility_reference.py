"""Plain numpy reference of the lobe-visibility kernel (specular_visibility._lobe_visibility behind
lobe_visibility): the same definition, vectorised over directions in float64, for validation."""

import numpy as np

from ..core.visibility_rays import VIS_DIRECTIONS, sphere_directions, unpack_bits


def lobe_visibility_reference(bits, means, normals, roughness, eye, dirs=None, weights=None,
                              cells=None) -> np.ndarray:
    """Arguments as lobe_visibility. For each point i, with v its unit direction towards eye, n its unit normal,
    alpha = roughness^2, over the directions d_k above its tangent plane (n . d_k > 0), h_k = unit(v + d_k):
    w_k = weight_k D'(h_k) G1(d_k) (weights default 1), D' the GGX distribution at
    alpha'^2 = alpha^2 + cell_k / (4 pi v.h_k) (cells default 4 pi / VIS_DIRECTIONS)
    (v.h_k floored at 1e-4), G1(l) = 2 n.l / (n.l + sqrt(alpha^2 + (1 - alpha^2) (n.l)^2)); the result is
    sum_k w_k bit_k / sum_k w_k, 1 where no direction counts. -> [N] float64."""
    d = np.asarray(sphere_directions() if dirs is None else dirs, np.float32).astype(np.float64)  # [D, 3]
    vis = unpack_bits(np.asarray(bits, np.uint8), len(d))  # [N, D] bool
    p = np.asarray(means, np.float32).astype(np.float64)
    n = np.asarray(normals, np.float32).astype(np.float64)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    v = np.asarray(eye, np.float64)[None] - p
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    a2 = (np.asarray(roughness, np.float32).astype(np.float64) ** 4)[:, None]  # [N, 1] alpha^2
    h = d[None] + v[:, None]  # [N, D, 3]
    h /= np.linalg.norm(h, axis=-1, keepdims=True)
    ndh = np.einsum("nkc,nc->nk", h, n)
    vdh = np.maximum(np.einsum("nkc,nc->nk", h, v), 1e-4)
    ndl = n @ d.T  # [N, D]
    ck = np.full(len(d), 4.0 * np.pi / VIS_DIRECTIONS) if cells is None else np.asarray(cells, np.float64)
    aw2 = a2 + ck[None] / (4.0 * np.pi * vdh)
    t = (aw2 - 1.0) * ndh * ndh + 1.0
    ndl_c = np.maximum(ndl, 0.0)
    g1 = 2.0 * ndl_c / (ndl_c + np.sqrt(a2 + (1.0 - a2) * ndl_c * ndl_c))
    wk = np.ones(len(d)) if weights is None else np.asarray(weights, np.float64)
    w = np.where(ndl > 0.0, wk[None] * aw2 / (np.pi * t * t) * g1, 0.0)
    den = w.sum(1)
    return np.where(den > 0.0, (w * vis).sum(1) / np.where(den > 0.0, den, 1.0), 1.0)
