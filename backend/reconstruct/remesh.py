"""Mesh upkeep between optimisation phases: clean-up, quadric decimation to a face budget, and a remesh (every edge
split at its midpoint, then collapsed back to the budget) that evens out triangles the optimisation has stretched."""

import fast_simplification
import numpy as np
import trimesh


def clean(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop faces with a repeated corner or zero area and the vertices no face uses.
    -> (vertices [V', 3] float32, faces [F', 3] int64)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[ok]
    t = v[f]
    area = np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)
    f = f[area > 1e-14 * max(float(np.ptp(v, 0).max()) ** 2, 1e-30)]
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
    """Split every edge at its midpoint (1 -> 4 faces, conforming), then collapse back to `target_faces`: the
    quadric collapse removes the short edges of flat regions first, so stretched and slivered triangles are
    replaced by even ones where the surface is flat and kept small where it bends."""
    v, f = trimesh.remesh.subdivide(np.asarray(vertices, np.float64), np.asarray(faces, np.int64))
    return decimate(v, f, target_faces)


def mean_edge_length(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Mean length of the faces' edges (each interior edge counted twice), world units."""
    t = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]
    return float(np.linalg.norm(t - np.roll(t, 1, axis=1), axis=2).mean())
