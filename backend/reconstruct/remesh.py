"""Mesh upkeep between optimisation phases: clean-up, quadric decimation to a face budget, edge flips towards valence
6, and a remesh (every edge split at its midpoint, collapsed back to the budget, flipped) that evens out triangles the
optimisation has stretched."""

import fast_simplification
import numpy as np
import trimesh

from ..render.mesh_antialias import antialias_construct_topology_hash


def clean(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop faces with a repeated corner and the vertices no face uses.
    -> (vertices [V', 3] float32, faces [F', 3] int64)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[ok]  # zero-area faces with distinct corners stay: removing them would open holes in a closed surface
    used = np.unique(f)
    remap = np.full(len(v), -1, np.int64)
    remap[used] = np.arange(len(used))
    return v[used].astype(np.float32), remap[f]


def decimate(vertices: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric edge collapse (fast-simplification) down to about `target_faces`; unchanged if already below."""
    if len(faces) <= target_faces:
        return clean(vertices, faces)
    v, f = fast_simplification.simplify(np.asarray(vertices, np.float64), np.asarray(faces, np.int32),
                                        target_count=int(target_faces))
    return clean(v, f)


def remesh(vertices: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Split every edge at its midpoint (1 -> 4 faces, conforming), collapse back to `target_faces` (the quadric
    collapse removes the short edges of flat regions first, so stretched and slivered triangles are replaced by even
    ones where the surface is flat and kept small where it bends), then flip edges towards valence 6."""
    v, f = trimesh.remesh.subdivide(np.asarray(vertices, np.float64), np.asarray(faces, np.int64))
    v, f = decimate(v, f, target_faces)
    return v, flip_for_valence(v, f)


def mean_edge_length(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Mean length of the faces' edges (each interior edge counted twice), world units."""
    t = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]
    return float(np.linalg.norm(t - np.roll(t, 1, axis=1), axis=2).mean())


def _valence(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """[V] number of distinct edges at each vertex."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.sort(e, 1), axis=0)
    return np.bincount(e.reshape(-1), minlength=n_vertices)


def flip_for_valence(vertices: np.ndarray, faces: np.ndarray, passes: int = 3,
                     min_cos: float = 0.9) -> np.ndarray:
    """Flip interior edges where it brings the four vertices' valences closer to 6 (sum of |valence - 6|), on nearly
    flat pairs only (the two faces' normals agree to `min_cos`, and so do the new faces'), never creating an edge that
    exists. Orientation is kept. -> faces [F, 3] int64 (the vertices are unchanged)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64).copy()
    for _ in range(passes):
        # the face across each edge (-1 boundary, -2 non-manifold: both are left alone), as the antialias pass builds it
        nb = antialias_construct_topology_hash(f).numpy()
        val = _valence(f, len(v))
        F = len(f)
        fi, k = np.nonzero(nb >= 0)
        g = nb[fi, k]
        keep = fi < g
        fi, k, g = fi[keep], k[keep], g[keep]
        c, a, b = f[fi, k], f[fi, (k + 1) % 3], f[fi, (k + 2) % 3]
        d = f[g].sum(1) - a - b  # g's vertex off the edge
        before = np.abs(val[a] - 6) + np.abs(val[b] - 6) + np.abs(val[c] - 6) + np.abs(val[d] - 6)
        after = np.abs(val[a] - 7) + np.abs(val[b] - 7) + np.abs(val[c] - 5) + np.abs(val[d] - 5)
        n_old1, n_old2 = _normal(v, c, a, b), _normal(v, d, b, a)
        n_new1, n_new2 = _normal(v, c, a, d), _normal(v, c, d, b)
        ok = (after < before) & ((n_old1 * n_old2).sum(1) > min_cos) & ((n_new1 * n_new2).sum(1) > min_cos)
        ok &= ((n_new1 * n_old1).sum(1) > min_cos) & (c != d)
        edges = set(map(tuple, np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1).tolist()))
        used = np.zeros(F, bool)
        flipped = 0
        for i in np.nonzero(ok)[0][np.argsort((after - before)[ok], kind="stable")]:
            if used[fi[i]] or used[g[i]] or (min(c[i], d[i]), max(c[i], d[i])) in edges:
                continue
            used[fi[i]] = used[g[i]] = True
            edges.add((min(c[i], d[i]), max(c[i], d[i])))
            f[fi[i]] = (c[i], a[i], d[i])
            f[g[i]] = (c[i], d[i], b[i])
            flipped += 1
        if flipped == 0:
            break
    return f


def _normal(v: np.ndarray, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """[N, 3] unit normals of triangles (i, j, k)."""
    n = np.cross(v[j] - v[i], v[k] - v[i])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
