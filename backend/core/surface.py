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


def split_by_normals(vertices: np.ndarray, faces: np.ndarray, corner_normals: np.ndarray, tol_deg: float = 1.0):
    """A mesh whose normals are set per face corner (flat faces, sharp edges, custom split normals) as one with a
    normal per vertex: corners that share a vertex and (within tol_deg) a normal share one output vertex; a vertex
    on a sharp edge becomes one copy per side. vertices [V, 3], faces [F, 3], corner_normals [F, 3, 3] ->
    (vertices [V', 3] float32, faces [F, 3] int32, vertex_normals [V', 3] float32 unit)."""
    f = np.asarray(faces, np.int64)
    n = np.asarray(corner_normals, np.float64).reshape(-1, 3)  # [3F, 3] one per corner
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    q = np.round(n / (2.0 * np.sin(np.radians(tol_deg) / 2.0))).astype(np.int64)  # cells about tol_deg wide
    key = np.concatenate([f.reshape(-1, 1), q], 1)  # [3F, 4] (vertex, quantised normal)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    vn = np.zeros((len(first), 3))
    np.add.at(vn, inverse, n)  # the mean normal of the corners merged into each output vertex
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
    v = np.asarray(vertices, np.float64)[f.reshape(-1)[first]]
    return v.astype(np.float32), inverse.reshape(-1, 3).astype(np.int32), vn.astype(np.float32)
