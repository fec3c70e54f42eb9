"""Meshes from files: GLB, glTF (self-contained), OBJ, PLY and STL through trimesh, merged into one triangle mesh in
the backend's world frame (Blender's: Z up) and cleaned. The one reader of mesh files: `relight generate --mesh` and
the server's generate request (a mesh file sent as bytes) both come here.

Axes: glTF and GLB are Y up by the spec; OBJ is Y up by the common convention (Blender's and most tools' OBJ exporters
write Y up); both are turned to Z up through core.axes. PLY and STL carry no convention and are taken as they are
(Z up, as Blender and scanners write them). `up` overrides the default per file.
"""

import io
from pathlib import Path

import numpy as np
from relight_protocol.vocabulary import MESH_FORMATS as FORMATS, MESH_UP

from ...core.axes import gltf_to_blender_points

Y_UP = {"glb": True, "gltf": True, "obj": True, "ply": False, "stl": False}  # the default `up` of each format
MAX_FILE_BYTES = 512 * 1024 * 1024


class MeshFileError(ValueError):
    """A mesh file that cannot be used; the message names the file and what to do."""


def mesh_format(name: str) -> str:
    """'chair.GLB' -> 'glb'; MeshFileError for anything else."""
    fmt = Path(name).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise MeshFileError(f"{name}: unsupported mesh format {fmt or '(no extension)'!r}; use one of "
                            f"{', '.join('.' + f for f in FORMATS)}")
    return fmt


def read_mesh_bytes(data: bytes, fmt: str, name: str = "mesh", up: str = "auto", with_normals: bool = False):
    """The file's bytes in format `fmt` (FORMATS) -> (vertices [V, 3] float32 world, Z up; faces [F, 3] int32): every
    part of a scene merged with its node transform, then cleaned (clean_mesh). up: "auto" (the format's
    convention), "y" or "z". with_normals: also the file's own normals per face corner, [F, 3, 3] float32 unit
    world (None when the file has none: the caller then shades smooth), as a third value. Raises MeshFileError
    naming `name` for an unreadable file or one with no triangles."""
    import trimesh

    if fmt not in FORMATS:
        raise MeshFileError(f"{name}: unsupported mesh format {fmt!r}; use one of {', '.join(FORMATS)}")
    if up not in MESH_UP:
        raise MeshFileError(f"up must be 'auto', 'y' or 'z', not {up!r}")
    if len(data) > MAX_FILE_BYTES:
        raise MeshFileError(f"{name}: {len(data) / 2**20:.0f} MiB is over the {MAX_FILE_BYTES / 2**20:.0f} MiB limit")
    try:
        loaded = trimesh.load(io.BytesIO(bytes(data)), file_type=fmt, force="scene", process=False)
        parts, normals = [], []
        for node in loaded.graph.nodes_geometry:  # each placed instance of each geometry, with its world transform
            transform, geom_name = loaded.graph[node]
            geom = loaded.geometry[geom_name]
            if isinstance(geom, trimesh.Trimesh) and len(geom.faces):
                v = np.asarray(geom.vertices, np.float64) @ transform[:3, :3].T + transform[:3, 3]
                parts.append((v, np.asarray(geom.faces, np.int64)))
                # the file's own normals (trimesh caches them only when the file has them), per corner, in world
                has = "vertex_normals" in geom._cache.cache  # noqa: SLF001 - trimesh has no public "from the file" flag
                n = np.asarray(geom.vertex_normals, np.float64)[geom.faces] @ np.linalg.inv(transform[:3, :3]) if has else None
                normals.append(n)
    except MeshFileError:
        raise
    except Exception as e:  # noqa: BLE001 - trimesh raises many kinds for a broken file
        hint = " (a .gltf must embed its buffers; send a .glb)" if fmt == "gltf" else ""
        raise MeshFileError(f"{name}: could not read it as {fmt.upper()}{hint}: {type(e).__name__}: {e}") from None
    if not parts:
        raise MeshFileError(f"{name}: the file holds no triangles (points, lines or an empty scene); export the "
                            "object as a triangle or polygon mesh")
    offsets = np.cumsum([0] + [len(v) for v, _ in parts[:-1]])
    vertices = np.concatenate([v for v, _ in parts])
    faces = np.concatenate([f + o for (_, f), o in zip(parts, offsets)])
    corner = None
    if all(n is not None for n in normals):  # [F, 3, 3]: normals transform by the inverse transpose
        corner = np.concatenate(normals)
    y_up = Y_UP[fmt] if up == "auto" else up == "y"
    if y_up:
        vertices = gltf_to_blender_points(vertices)
        corner = gltf_to_blender_points(corner) if corner is not None else None
    v, f, kept = clean_mesh(vertices, faces, return_kept=True)
    if len(f) == 0:
        raise MeshFileError(f"{name}: every triangle is degenerate (zero area) or refers to a missing vertex")
    if not with_normals:
        return v, f
    if corner is not None:
        corner = corner[kept]
        corner = (corner / np.maximum(np.linalg.norm(corner, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
        corner = corner if np.isfinite(corner).all() else None
    return v, f, corner


def read_mesh_file(path, up: str = "auto", with_normals: bool = False):
    """A mesh file on disk -> read_mesh_bytes of its content (format from the extension)."""
    path = Path(path)
    fmt = mesh_format(path.name)
    if not path.is_file():
        raise MeshFileError(f"{path}: no such file")
    return read_mesh_bytes(path.read_bytes(), fmt, path.name, up, with_normals)


def clean_mesh(vertices: np.ndarray, faces: np.ndarray, return_kept: bool = False):
    """Vertices [V, 3], faces [F, 3] -> (vertices [V', 3] float32, faces [F', 3] int32) with non-finite vertices and
    the faces that use them dropped, faces with an out-of-range index dropped, coincident vertices merged
    (relative tolerance 1e-7 of the bounding box), degenerate (repeated-vertex or zero-area) and duplicate faces
    dropped, and unreferenced vertices removed. Non-manifold edges are kept: the renderer, the voxeliser and the
    visibility march treat the mesh as a triangle soup, so they do no harm there. return_kept: also the indices
    [F'] of the input faces kept, in order (to carry per-face data along)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    idx = np.arange(len(f))
    ok = (f >= 0).all(1) & (f < len(v)).all(1)
    f, idx = f[ok], idx[ok]
    finite = np.isfinite(v).all(1)
    ok = finite[f].all(1)
    f, idx = f[ok], idx[ok]
    if len(f) == 0:
        empty = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
        return (*empty, idx) if return_kept else empty
    used = np.unique(f)
    scale = float(np.ptp(v[used], axis=0).max()) or 1.0
    key = np.round(np.where(finite[:, None], v, 0.0) / (scale * 1e-7)).astype(np.int64)
    key[~finite] = np.iinfo(np.int64).min  # never merged with a real vertex (they are unreferenced now anyway)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    f = inverse.reshape(-1)[f]
    v = v[first]
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f, idx = f[ok], idx[ok]
    area2 = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    ok = area2 > (scale * 1e-9) ** 2
    f, idx = f[ok], idx[ok]
    _, uniq = np.unique(np.sort(f, axis=1), axis=0, return_index=True)  # the same triangle twice, any winding
    f, idx = f[np.sort(uniq)], idx[np.sort(uniq)]
    keep = np.unique(f)
    remap = np.full(len(v), -1, np.int64)
    remap[keep] = np.arange(len(keep))
    out = v[keep].astype(np.float32), remap[f].astype(np.int32)
    return (*out, idx) if return_kept else out
