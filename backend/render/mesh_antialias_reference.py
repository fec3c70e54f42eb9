"""Plain Python reference of antialias's silhouette search (the numba kernel `_silhouette_pairs` in mesh_antialias):
the same definition, one pixel pair at a time, for tests, not for speed.

Every floating-point decision (which way a face faces, which edge the segment leaves through, whether it leaves
before the other centre, whether an edge is steep) uses the kernel's float64 expressions in the kernel's order, so the
two round identically and their integer outputs can be compared exactly."""

import numpy as np


def screen_positions(pos: np.ndarray, H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """pos [V, 4] float64 clip -> (sx, sy) [V] pixels (x along a row, y down the rows). A w with |w| <= 1e-12 counts
    as +1e-12 (whatever its sign), as in mesh_raster.face_table."""
    w = np.where(np.abs(pos[:, 3]) > 1e-12, pos[:, 3], 1e-12)
    return (pos[:, 0] / w + 1.0) * 0.5 * W, (pos[:, 1] / w + 1.0) * 0.5 * H


def screen_facing(sx: np.ndarray, sy: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """[F] bool: the triangle's signed screen area (vertex order 0, 1, 2) is positive."""
    x0, x1, x2 = sx[tri[:, 0]], sx[tri[:, 1]], sx[tri[:, 2]]
    y0, y1, y2 = sy[tri[:, 0]], sy[tri[:, 1]], sy[tri[:, 2]]
    return (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0) > 0


def straddling_pairs(tid: np.ndarray, z: np.ndarray, H: int, W: int):
    """Yield (p0, p1, (sdx, sdy), horizontal) for each pair of 4-neighbour pixels with different triangles where one
    side occludes: p0 is covered and p1 is empty or farther (larger z). An equal-depth pair of two covered pixels
    yields nothing. Order: all horizontal pairs row by row, then all vertical pairs row by row (the kernel's order).
    tid [H*W] triangle id + 1 (0 = empty), z [H*W]; the step (sdx, sdy) goes from p0 to p1."""
    for dx, dy in ((1, 0), (0, 1)):
        for j in range(H - dy):
            for i in range(W - dx):
                a, b = j * W + i, (j + dy) * W + i + dx
                if tid[a] == tid[b]:
                    continue
                if tid[a] != 0 and (tid[b] == 0 or z[a] < z[b]):
                    yield a, b, (dx, dy), dx == 1
                elif tid[b] != 0 and (tid[a] == 0 or z[b] < z[a]):
                    yield b, a, (-dx, -dy), dx == 1


def exit_edge(xs, ys, X: float, Y: float, sdx: int, sdy: int) -> tuple[int, float] | None:
    """Where the segment from (X, Y) to (X + sdx, Y + sdy) leaves the triangle with screen corners xs, ys [3]:
    (edge k, opposite vertex k; fraction t along the segment), or None for a zero-area triangle.

    lam_e, the 2D barycentric of vertex e at (X, Y), falls by -slope_e over the step, so the segment reaches edge e at
    t = -lam_e / slope_e if slope_e < 0; it leaves through the edge it reaches first (the lowest index on a tie).
    The kernel's arithmetic: lam_0, lam_1 and slope_0, slope_1 from the edge functions, lam_2 = 1 - lam_0 - lam_1,
    slope_2 = -slope_0 - slope_1. t may be negative (a centre just outside its face); k = -1 when no edge falls."""
    (x0, x1, x2), (y0, y1, y2) = xs, ys
    D = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    if D == 0.0:
        return None
    lam, slope = [0.0] * 3, [0.0] * 3
    for e in range(2):
        xa, ya = xs[(e + 1) % 3], ys[(e + 1) % 3]
        xb, yb = xs[(e + 2) % 3], ys[(e + 2) % 3]
        lam[e] = ((xa - X) * (yb - Y) - (xb - X) * (ya - Y)) / D
        slope[e] = ((ya - yb) * sdx + (xb - xa) * sdy) / D
    lam[2] = 1.0 - lam[0] - lam[1]
    slope[2] = -slope[0] - slope[1]
    k, t = -1, np.inf
    for e in range(3):
        if slope[e] < 0 and -lam[e] / slope[e] < t:
            k, t = e, -lam[e] / slope[e]
    return k, t


def first_silhouette(sx, sy, tri, nb, facing, f: int, X: float, Y: float, sdx: int, sdy: int, walk: int):
    """Follow the segment from pixel centre (X, Y) one pixel step (sdx, sdy) on, starting in face f, across neighbours
    that face the same way on screen, visiting at most `walk` faces. -> (face, edge) of the silhouette edge it leaves
    through (a boundary or non-manifold edge, nb < 0, or one whose neighbour faces the other way), or None if it
    ends inside a face (t > 1 or no falling edge), meets a zero-area face, or is still walking after `walk` faces."""
    for _ in range(walk):
        v = tri[f]
        hit = exit_edge(sx[v], sy[v], X, Y, sdx, sdy)
        if hit is None or hit[0] < 0 or hit[1] > 1.0:
            return None
        k = hit[0]
        g = nb[f, k]
        if g < 0 or facing[g] != facing[f]:
            return f, k
        f = g
    return None


def is_steep(sx, sy, a: int, b: int) -> bool:
    """The screen edge between vertices a and b is at least as tall as it is wide (crossed more squarely by
    horizontal pixel pairs)."""
    return abs(sy[b] - sy[a]) >= abs(sx[b] - sx[a])


def silhouette_pairs_reference(pos, tri, nb, tid, z, H: int, W: int, walk: int):
    """Same arguments and result as mesh_antialias._silhouette_pairs: pos [V, 4] float64 clip, tri [F, 3], nb [F, 3]
    from antialias_construct_topology_hash, tid [H*W] int64 triangle id + 1, z [H*W] float64 -> (pin, pout [P] the
    covered pixel and the other, face, edge [P] the silhouette edge, step [P, 2] the pixel step pin -> pout), int64.

    A straddling pair is kept when its segment, followed from the covered side, leaves through a silhouette edge that
    this pair's direction handles: steep edges by horizontal pairs, the others by vertical pairs."""
    sx, sy = screen_positions(pos, H, W)
    facing = screen_facing(sx, sy, tri)
    rows = []
    for p0, p1, (sdx, sdy), horizontal in straddling_pairs(tid, z, H, W):
        X, Y = (p0 % W) + 0.5, (p0 // W) + 0.5
        hit = first_silhouette(sx, sy, tri, nb, facing, tid[p0] - 1, X, Y, sdx, sdy, walk)
        if hit is None:
            continue
        f, k = hit
        if is_steep(sx, sy, tri[f, (k + 1) % 3], tri[f, (k + 2) % 3]) == horizontal:
            rows.append((p0, p1, f, k, sdx, sdy))
    out = np.array(rows, np.int64).reshape(-1, 6)
    return out[:, 0], out[:, 1], out[:, 2], out[:, 3], out[:, 4:6].copy()
