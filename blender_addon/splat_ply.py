"""Gaussian splat PLY files -> numpy arrays, without bpy: the standard 3DGS fields (x y z, f_dc, opacity logit,
log scales, rot quaternion) plus relight's PBR fields (albedo linear, roughness, metallic, normals) when present."""

from __future__ import annotations

import numpy as np

from .relight_protocol.conventions import srgb_to_linear

SH_C0 = 0.28209479177387814  # Y_0^0: 3DGS stores the base colour as (rgb - 0.5) / SH_C0
DEFAULT_ROUGHNESS = 0.5  # for a plain 3DGS file, which has no material
MAX_HEADER_BYTES = 64 * 1024
_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
          "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
          "double": "f8", "float64": "f8"}
REQUIRED = ("x", "y", "z", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3", "opacity")


class SplatFileError(ValueError):
    """A file that is not a Gaussian splat PLY this reader understands; the message says why."""


def _header(data: bytes) -> tuple[str, int, list[tuple[str, str]], int]:
    """(format, vertex count, [(property, numpy type)] of the vertex element, offset of the body)."""
    end = data.find(b"end_header", 0, MAX_HEADER_BYTES)
    if not data.startswith(b"ply") or end < 0:
        raise SplatFileError("not a PLY file (no 'ply' ... 'end_header' header)")
    body = data.index(b"\n", end) + 1
    fmt, count, props, element = "", -1, [], None
    for line in data[:end].decode("ascii", "replace").splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            element = words[1]
            if element == "vertex":
                count = int(words[2])
            elif count < 0:
                raise SplatFileError(f"the PLY's '{element}' element comes before its vertices; not a splat file")
        elif words[0] == "property" and element == "vertex":
            if words[1] == "list":
                raise SplatFileError("the PLY's vertices have list properties; not a splat file")
            if words[1] not in _TYPES:
                raise SplatFileError(f"unknown PLY property type {words[1]!r}")
            props.append((words[2], _TYPES[words[1]]))
    if count < 0:
        raise SplatFileError("the PLY has no vertex element")
    return fmt, count, props, body


def read_splat_ply(data: bytes) -> dict[str, np.ndarray]:
    """PLY bytes -> {positions [N, 3], quats [N, 4] (w, x, y, z) unit, scales [N, 3] standard deviations,
    opacities [N] in [0, 1], albedo [N, 3] linear, roughness [N], metallic [N], normals [N, 3] unit} float32,
    in the file's own (world) space."""
    fmt, count, props, body = _header(bytes(data[:MAX_HEADER_BYTES]))
    names = [p for p, _ in props]
    missing = [p for p in REQUIRED if p not in names]
    if missing:
        raise SplatFileError(f"the PLY lacks the 3D Gaussian fields {', '.join(missing)}; it is not a splat file")
    if fmt == "binary_little_endian":
        rec = np.frombuffer(data, np.dtype([(p, "<" + t) for p, t in props]), count=count, offset=body)
    elif fmt == "binary_big_endian":
        rec = np.frombuffer(data, np.dtype([(p, ">" + t) for p, t in props]), count=count, offset=body)
    elif fmt == "ascii":
        rows = np.loadtxt(bytes(data[body:]).decode("ascii").splitlines()[:count], ndmin=2)
        rec = {p: rows[:, i] for i, p in enumerate(names)}
    else:
        raise SplatFileError(f"unknown PLY format {fmt!r}")

    def col(*keys) -> np.ndarray:
        return np.stack([np.asarray(rec[k], np.float64) for k in keys], -1)

    quats = col("rot_0", "rot_1", "rot_2", "rot_3")
    quats /= np.maximum(np.linalg.norm(quats, axis=1, keepdims=True), 1e-12)
    scales = np.exp(col("scale_0", "scale_1", "scale_2"))  # stored as log
    opacities = 1.0 / (1.0 + np.exp(-np.asarray(rec["opacity"], np.float64)))  # stored as a logit
    if "albedo_0" in names:
        albedo = col("albedo_0", "albedo_1", "albedo_2")
    elif "f_dc_0" in names:
        albedo = srgb_to_linear(np.clip(0.5 + SH_C0 * col("f_dc_0", "f_dc_1", "f_dc_2"), 0.0, 1.0))
    else:
        albedo = np.full((count, 3), 0.8)
    n = len(quats)
    roughness = np.asarray(rec["roughness"], np.float64) if "roughness" in names else np.full(n, DEFAULT_ROUGHNESS)
    metallic = np.asarray(rec["metallic"], np.float64) if "metallic" in names else np.zeros(n)
    normals = col("nx", "ny", "nz") if "nx" in names else np.zeros((n, 3))
    flat = np.linalg.norm(normals, axis=1) < 1e-6  # no normal given: the Gaussian's shortest axis
    if flat.any():
        axes = quat_to_matrix(quats[flat])  # [M, 3, 3], columns are the local axes
        shortest = np.argmin(scales[flat], axis=1)
        normals[flat] = axes[np.arange(flat.sum()), :, shortest]
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    out = {"positions": col("x", "y", "z"), "quats": quats, "scales": scales, "opacities": opacities,
           "albedo": albedo, "roughness": roughness, "metallic": metallic, "normals": normals}
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """[N, 4] unit (w, x, y, z) -> [N, 3, 3] rotation matrices."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], 1)
