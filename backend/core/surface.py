"""The surface of a triangle mesh: area-uniform point sampling with smooth normals, and angle-weighted vertex normals."""

import numpy as np


def sample_surface(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, n: int, seed: int = 0):
    """[V, 3], [F, 3], [V, 3] vertex normals, count -> (points [n, 3], normals [n, 3], face ids [n],
    barycentrics [n, 3], spacing).

    Stratified: each face gets floor(n * area share) samples plus one more with the leftover probability, so points
    do not clump like plain random sampling. spacing: mean distance between neighbouring samples sqrt(area / n)."""
    rng = np.random.default_rng(seed)
    v = vertices.astype(np.float64)
    a = 0.5 * np.linalg.norm(np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]]), axis=1)
    total = a.sum()
    expect = a / total * n
    count = np.floor(expect).astype(np.int64)
    count += rng.random(len(faces)) < (expect - count)
    fid = np.repeat(np.arange(len(faces)), count)
    r1, r2 = rng.random(fid.size), rng.random(fid.size)
    s = np.sqrt(r1)
    b0, b1, b2 = 1 - s, s * (1 - r2), s * r2  # uniform barycentrics
    tri = faces[fid]
    p = b0[:, None] * v[tri[:, 0]] + b1[:, None] * v[tri[:, 1]] + b2[:, None] * v[tri[:, 2]]
    nn = b0[:, None] * normals[tri[:, 0]] + b1[:, None] * normals[tri[:, 1]] + b2[:, None] * normals[tri[:, 2]]
    nn /= np.maximum(np.linalg.norm(nn, axis=1, keepdims=True), 1e-12)
    spacing = float(np.sqrt(total / max(fid.size, 1)))
    bary = np.stack([b0, b1, b2], 1).astype(np.float32)
    return p.astype(np.float32), nn.astype(np.float32), fid.astype(np.int32), bary, spacing


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[F] triangle areas."""
    v = vertices.astype(np.float64)
    return 0.5 * np.linalg.norm(np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]]), axis=1)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3], [F, 3] -> [V, 3] unit vertex normals, each face's normal weighted by its angle at the vertex.

    Blender's smooth shading weights the same way, so a mesh sent from Blender is shaded with the normals Cycles
    and the viewport use (area weighting tilts a bevelled box's big flat faces by up to 6 degrees)."""
    v = vertices.astype(np.float64)
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])  # [F, 3]
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-30)
    n = np.zeros_like(v)
    for k in range(3):
        e1 = v[faces[:, (k + 1) % 3]] - v[faces[:, k]]  # [F, 3] the two edges leaving corner k
        e2 = v[faces[:, (k + 2) % 3]] - v[faces[:, k]]
        angle = np.arctan2(np.linalg.norm(np.cross(e1, e2), axis=1), (e1 * e2).sum(1))  # [F] radians
        np.add.at(n, faces[:, k], fn * angle[:, None])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)
