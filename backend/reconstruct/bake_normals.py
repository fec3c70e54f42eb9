"""Tangent frames from UVs and the tangent-space normal map: per-vertex glTF tangents (angle-weighted per-corner
accumulation, MikkTSpace-like), and world normals <-> tangent-space normals against the mesh's interpolated frame.

Convention (glTF's, and Blender's normal-map node): the tangent T points along increasing u, the bitangent
B = w * cross(N, T) points up the image (along decreasing glTF v, i.e. increasing 1 - v), and a tangent-space normal
(x, y, z) means x T + y B + z N. A flat map is (0, 0, 1); it is stored encoded as n * 0.5 + 0.5 by the writers."""

import numpy as np

FLAT = np.array([0.0, 0.0, 1.0], np.float32)  # [3] tangent-space normal of an unperturbed surface


def _unit(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """[..., 3] -> [..., 3] unit vectors (zero vectors stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def any_perpendicular(n: np.ndarray) -> np.ndarray:
    """[P, 3] unit vectors -> [P, 3] unit vectors perpendicular to them (for degenerate UVs)."""
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    return _unit(np.cross(n, helper))


def vertex_tangents(
    vertices: np.ndarray,  # [V, 3] world
    normals: np.ndarray,  # [V, 3] unit vertex normals
    uvs: np.ndarray,  # [V, 2] glTF convention: v = 0 at the image's top
    faces: np.ndarray,  # [F, 3]
) -> np.ndarray:
    """[V, 4] float32 glTF tangents: xyz unit and perpendicular to the normal, w = +-1 the bitangent's sign.

    Per face, dP/du and dP/dv' (v' = 1 - v, so B points up the image) solve the face's 2x2 UV system; each is
    normalised and added to its three corners weighted by the corner's angle (MikkTSpace weights the same way). Per
    vertex, T is made perpendicular to N (Gram-Schmidt) and w = sign(cross(N, T) . B). Vertices whose faces all have
    degenerate UVs get an arbitrary perpendicular T and w = +1."""
    v = np.asarray(vertices, np.float64)
    n = _unit(np.asarray(normals, np.float64))
    f = np.asarray(faces, np.int64)
    uv = np.asarray(uvs, np.float64) * [1.0, -1.0]  # (u, -v): same derivatives as (u, 1 - v)
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    e1, e2 = p1 - p0, p2 - p0  # [F, 3]
    d1, d2 = uv[f[:, 1]] - uv[f[:, 0]], uv[f[:, 2]] - uv[f[:, 0]]  # [F, 2]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]  # [F]
    ok = np.abs(det) > 1e-14
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)[:, None]
    t_f = _unit((e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * inv)  # [F, 3] dP/du
    b_f = _unit((e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * inv)  # [F, 3] dP/dv'
    t = np.zeros_like(v)
    b = np.zeros_like(v)
    for k in range(3):
        a = v[f[:, (k + 1) % 3]] - v[f[:, k]]
        c = v[f[:, (k + 2) % 3]] - v[f[:, k]]
        angle = np.arctan2(np.linalg.norm(np.cross(a, c), axis=1), (a * c).sum(1))[:, None]  # [F, 1] radians
        np.add.at(t, f[:, k], t_f * angle)
        np.add.at(b, f[:, k], b_f * angle)
    t = t - n * (t * n).sum(1, keepdims=True)
    bad = np.linalg.norm(t, axis=1) < 1e-9
    t = _unit(t)
    if bad.any():
        t[bad] = any_perpendicular(n[bad])
    w = np.where((np.cross(n, t) * b).sum(1) < 0.0, -1.0, 1.0)
    return np.concatenate([t, w[:, None]], 1).astype(np.float32)


def tangent_frames(
    normals: np.ndarray,  # [P, 3] interpolated vertex normals (not necessarily unit)
    tangents: np.ndarray,  # [P, 4] interpolated vertex tangents
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-point orthonormal frame (T, B, N), each [P, 3], as a shader builds it from interpolated attributes:
    N normalised, T made perpendicular to N and normalised, B = sign(w) cross(N, T)."""
    n = _unit(np.asarray(normals, np.float64))
    t = np.asarray(tangents, np.float64)
    tx = t[:, :3] - n * (t[:, :3] * n).sum(1, keepdims=True)
    bad = np.linalg.norm(tx, axis=1) < 1e-9
    tx = _unit(tx)
    if bad.any():
        tx[bad] = any_perpendicular(n[bad])
    b = np.where(t[:, 3:4] < 0.0, -1.0, 1.0) * np.cross(n, tx)
    return tx, b, n


def world_to_tangent(world: np.ndarray, normals: np.ndarray, tangents: np.ndarray) -> np.ndarray:
    """[P, 3] world-space normals -> [P, 3] float32 unit tangent-space normals in the frame of (normals [P, 3],
    tangents [P, 4]). A world normal pointing into the surface (z < 0) is kept: the caller decides what to trust."""
    t, b, n = tangent_frames(normals, tangents)
    w = _unit(np.asarray(world, np.float64))
    out = np.stack([(w * t).sum(1), (w * b).sum(1), (w * n).sum(1)], 1)
    return _unit(out).astype(np.float32)


def tangent_to_world(tangent_space: np.ndarray, normals: np.ndarray, tangents: np.ndarray) -> np.ndarray:
    """[P, 3] tangent-space normals -> [P, 3] float32 unit world normals: x T + y B + z N (the shader's decode)."""
    t, b, n = tangent_frames(normals, tangents)
    ts = np.asarray(tangent_space, np.float64)
    return _unit(ts[:, :1] * t + ts[:, 1:2] * b + ts[:, 2:3] * n).astype(np.float32)
