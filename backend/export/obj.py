"""Wavefront OBJ + MTL writer for a UV-mapped PBR mesh, with the PBR extensions of the MTL format that Blender's OBJ
importer reads (Pr / map_Pr roughness, Pm / map_Pm metallic, map_Bump -bm for a tangent-space normal map).

No bpy here. Positions arrive in Blender world space (Z up); the file is Y up, forward -Z (the OBJ exporter's and
importer's default axes in Blender, which is the same rotation as glTF's: axes.blender_to_gltf_points)."""

import io
from pathlib import Path

import numpy as np

from ..core import axes


def _rows(prefix: str, values: np.ndarray, fmt: str) -> str:
    """[N, C] numbers -> N lines "prefix v0 v1 ..." (savetxt formatting)."""
    buf = io.StringIO()
    np.savetxt(buf, values, fmt=fmt, delimiter=" ")
    return "".join(f"{prefix} {line}\n" for line in buf.getvalue().splitlines())


def obj_text(
    vertices: np.ndarray,  # [V, 3] Blender world space
    normals: np.ndarray,  # [V, 3] Blender world space, unit
    uvs: np.ndarray,  # [V, 2] glTF convention: v = 0 at the image's top
    faces: np.ndarray,  # [F, 3] counter-clockwise seen from outside
    mtl_name: str,
    material: str,
    name: str,
) -> str:
    """The OBJ file's text: one object, one material, per-corner position / uv / normal sharing one index (vertices
    are already split along UV seams). OBJ's v is 0 at the image's bottom, so vt = (u, 1 - v)."""
    p = axes.blender_to_gltf_points(np.asarray(vertices, np.float64))
    n = axes.blender_to_gltf_points(np.asarray(normals, np.float64))
    t = np.asarray(uvs, np.float64).copy()
    t[:, 1] = 1.0 - t[:, 1]
    f = np.asarray(faces, np.int64) + 1
    corners = np.repeat(f, 3, axis=1)  # [F, 9] a a a b b b c c c -> a/a/a b/b/b c/c/c
    return "".join([
        "# Relight reconstructed mesh\n",
        f"mtllib {mtl_name}\n",
        f"o {name}\n",
        _rows("v", p, "%.6f"),
        _rows("vt", t, "%.6f"),
        _rows("vn", n, "%.5f"),
        f"usemtl {material}\n",
        "s 1\n",
        _rows("f", corners, " ".join(["%d/%d/%d"] * 3)),
    ])


def mtl_text(material: str, albedo_file: str, roughness_file: str, metallic_file: str,
             normal_file: str | None = None) -> str:
    """The MTL file's text for one PBR material whose maps are image files next to it. Factors are 1 so the maps
    carry the values (Kd 1 1 1 multiplies the base colour map, Pr 1 and Pm 1 the roughness and metallic maps)."""
    lines = [
        f"newmtl {material}",
        "Kd 1.000000 1.000000 1.000000",
        "Ks 0.500000 0.500000 0.500000",
        "Ns 250.000000",
        "d 1.000000",
        "illum 2",
        "Pr 1.000000",
        "Pm 1.000000",
        f"map_Kd {albedo_file}",
        f"map_Pr {roughness_file}",
        f"map_Pm {metallic_file}",
    ]
    if normal_file is not None:
        lines.append(f"map_Bump -bm 1.000000 {normal_file}")  # Blender: a Normal Map node (tangent space)
    return "\n".join(lines) + "\n"


def write_obj_files(folder, name: str, vertices, normals, uvs, faces, textures: dict[str, bytes]) -> Path:
    """Write name.obj, name.mtl and the PNG textures into `folder` (created); returns the OBJ's path.

    textures: {"albedo": sRGB PNG, "roughness": grey PNG, "metallic": grey PNG, "normal": PNG (optional)}, written
    as name_<key>.png."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, data in textures.items():
        files[key] = f"{name}_{key}.png"
        (folder / files[key]).write_bytes(data)
    material = f"{name}_pbr"
    (folder / f"{name}.mtl").write_text(
        mtl_text(material, files["albedo"], files["roughness"], files["metallic"], files.get("normal")))
    path = folder / f"{name}.obj"
    path.write_text(obj_text(vertices, normals, uvs, faces, f"{name}.mtl", material, name))
    return path
