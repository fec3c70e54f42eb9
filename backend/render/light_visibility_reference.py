"""Plain numpy reference of the light-dependent shadowing kernel (light_visibility._light_ratio behind
light_visibility): the same definition, vectorised over directions in float64, for validation."""

import numpy as np


def light_visibility_reference(bits: np.ndarray, normals: np.ndarray, dirs: np.ndarray, radiance: np.ndarray,
                               up=None, ground_radiance=None, bounce=None, bounce_dir=None, links=None) -> np.ndarray:  # fmt: skip
    """Arguments as light_visibility. For each point i, over the directions k above its tangent plane
    (c_ik = n_i . d_k > 0): ratio = sum_k L_ik c_ik / sum_k Lenv_k c_ik, where L_ik is the environment Lenv_k when
    bit k is set (the direction escapes), the ground radiance instead when d_k points below the ground
    (d_k . up < 0; no ground when up is 0), and bounce_i + bounce_dir_k when bit k is clear (blocked by the
    object), or bounce_i + source[h] when links (rep, hit, source) know where it lands: h = hit[rep_i, k] >= 0 for
    k < hit.shape[1]. A point with no direction above its plane gets 1. -> [N, 3] float64."""
    bits = np.asarray(bits)
    n_pts, n_dirs = len(bits), len(dirs)
    d = np.asarray(dirs, np.float64)  # [D, 3]
    env = np.asarray(radiance, np.float64)  # [D, 3]
    up = np.zeros(3) if up is None else np.asarray(up, np.float64)
    ground = np.zeros(3) if ground_radiance is None else np.asarray(ground_radiance, np.float64)
    bounce = np.zeros((n_pts, 3)) if bounce is None else np.broadcast_to(np.asarray(bounce, np.float64), (n_pts, 3))
    bounce_dir = np.zeros((n_dirs, 3)) if bounce_dir is None else np.asarray(bounce_dir, np.float64)
    escapes = np.unpackbits(bits, axis=1, bitorder="little")[:, :n_dirs].astype(bool)  # [N, D]
    below_ground = (d @ up) < 0.0  # [D]
    out = np.ones((n_pts, 3))
    for i in range(n_pts):
        c = d @ np.asarray(normals[i], np.float64)  # [D] cosines
        above = c > 0.0
        seen_env = np.where(below_ground[:, None], ground[None], env)  # [D, 3] what an escaping ray meets
        blocked = bounce[i][None] + bounce_dir  # [D, 3] what a blocked ray meets
        if links is not None:
            rep, hit, source = links
            h = np.full(n_dirs, -1)
            h[:hit.shape[1]] = np.asarray(hit)[rep[i]]
            blocked = np.where((h >= 0)[:, None], bounce[i][None] + np.asarray(source, np.float64)[np.maximum(h, 0)],
                               blocked)  # fmt: skip
        light = np.where(escapes[i][:, None], seen_env, blocked)  # [D, 3]
        num = (light[above] * c[above, None]).sum(0)
        den = (env[above] * c[above, None]).sum(0)
        out[i] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return out
