"""The lamps' direct light per pixel as one numba pass (the live preview's fast path); lamps.shade_lamps(impl="numpy")
is the vectorised reference with the same maths, and the tests compare the two."""

import numba
import numpy as np

from ..core.jit import njit_cached

KINDS = {"sun": 0, "point": 1, "spot": 2, "area": 3}


def lamp_table(lamps: tuple) -> tuple[np.ndarray, ...]:
    """lamps (lamps.Lamp) -> the kernel's per-lamp arrays: (kind [K] int64 (KINDS), radiant [K, 3] colour x energy,
    position [K, 3] world, axis [K, 3] unit world where it shines, cos_edge [K] and spread [K] of a spot's cone)."""
    kind = np.array([KINDS[lamp.kind] for lamp in lamps], np.int64)
    radiant = np.array([np.asarray(lamp.color, np.float64) * lamp.energy for lamp in lamps]).reshape(-1, 3)
    position = np.array([lamp.position for lamp in lamps], np.float64).reshape(-1, 3)
    axis = np.array([lamp.direction for lamp in lamps], np.float64).reshape(-1, 3)
    cos_edge = np.array([np.cos(lamp.spot_size / 2) for lamp in lamps], np.float64)
    spread = np.maximum((1.0 - cos_edge) * np.array([lamp.spot_blend for lamp in lamps], np.float64), 1e-6)
    return kind, radiant, position, axis, cos_edge, spread


@njit_cached(parallel=True, fastmath=True)
def shade_lamps_kernel(idx, W, normal, albedo, rough, metal, vis, depth, alpha, fx, fy, cx, cy, R, eye,
                       kind, radiant, position, axis, cos_edge, spread, min_rough, out):  # pragma: no cover - jitted
    """out[p] (p in idx: flat pixel indices, W the width) = alpha x the lamps' Lambert + GGX light at pixel p (as
    lamps.shade_lamps documents), from the flat passes normal, albedo [HW, 3], rough, metal [HW], the visibility
    vis [HW, K], the depth along the camera axis depth [HW] (world units), the intrinsics fx, fy, cx, cy, the
    world-to-camera rotation R [3, 3] and the camera's centre eye [3] (world), and the lamp_table arrays."""
    for q in numba.prange(idx.shape[0]):
        p = idx[q]
        dx = (p % W + 0.5 - cx) / fx
        dy = (p // W + 0.5 - cy) / fy
        rx = R[0, 0] * dx + R[1, 0] * dy + R[2, 0]  # R^T (dx, dy, 1): the pixel's ray, world
        ry = R[0, 1] * dx + R[1, 1] * dy + R[2, 1]
        rz = R[0, 2] * dx + R[1, 2] * dy + R[2, 2]
        z = depth[p]
        px, py, pz = eye[0] + rx * z, eye[1] + ry * z, eye[2] + rz * z
        rn = np.sqrt(rx * rx + ry * ry + rz * rz)
        vx, vy, vz = -rx / rn, -ry / rn, -rz / rn  # towards the camera
        nx, ny, nz = normal[p, 0], normal[p, 1], normal[p, 2]
        nv = min(max(nx * vx + ny * vy + nz * vz, 1e-4), 1.0)
        r = max(rough[p], min_rough)
        a2 = (r * r) ** 2
        k = r * r / 2
        m = metal[p]
        acc0 = acc1 = acc2 = 0.0
        for j in range(kind.shape[0]):
            if kind[j] == 0:
                lx, ly, lz = -axis[j, 0], -axis[j, 1], -axis[j, 2]
                e = 1.0
            else:
                tx, ty, tz = position[j, 0] - px, position[j, 1] - py, position[j, 2] - pz
                d2 = max(tx * tx + ty * ty + tz * tz, 1e-8)
                dl = np.sqrt(d2)
                lx, ly, lz = tx / dl, ty / dl, tz / dl
                cos_out = -(lx * axis[j, 0] + ly * axis[j, 1] + lz * axis[j, 2])
                if kind[j] == 3:
                    e = max(cos_out, 0.0) / np.pi / d2
                else:
                    e = 1.0 / (4.0 * np.pi) / d2
                    if kind[j] == 2:
                        x = min(max((cos_out - cos_edge[j]) / spread[j], 0.0), 1.0)
                        e *= x * x * (3.0 - 2.0 * x)
            nl = min(max(nx * lx + ny * ly + nz * lz, 0.0), 1.0)
            w = e * nl * vis[p, j]
            if w <= 0.0:
                continue
            hx, hy, hz = vx + lx, vy + ly, vz + lz
            hn = max(np.sqrt(hx * hx + hy * hy + hz * hz), 1e-8)
            hx, hy, hz = hx / hn, hy / hn, hz / hn
            nh = min(max(nx * hx + ny * hy + nz * hz, 0.0), 1.0)
            vh = min(max(vx * hx + vy * hy + vz * hz, 0.0), 1.0)
            den = nh * nh * (a2 - 1.0) + 1.0
            D = a2 / (np.pi * den * den)
            G = nv / (nv * (1.0 - k) + k) * nl / (nl * (1.0 - k) + k)
            s = D * G / (4.0 * nv * max(nl, 1e-4))
            fw = (1.0 - vh) ** 5
            for c in range(3):
                f0 = 0.04 * (1.0 - m) + albedo[p, c] * m
                val = (albedo[p, c] * (1.0 - m) / np.pi + (f0 + (1.0 - f0) * fw) * s) * w * radiant[j, c]
                if c == 0:
                    acc0 += val
                elif c == 1:
                    acc1 += val
                else:
                    acc2 += val
        a = alpha[p]
        out[p, 0] = acc0 * a
        out[p, 1] = acc1 * a
        out[p, 2] = acc2 * a
