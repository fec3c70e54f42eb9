"""Files of a reconstructed (baked) mesh: GLB bytes and an OBJ folder, from the plain arrays of
reconstruct.views.ReconstructedMesh (export does not import reconstruct; pass the fields). Maps are 8-bit PNGs:
albedo sRGB-encoded, roughness / metallic / normal non-colour."""

from pathlib import Path

import numpy as np

from ..core.colour import linear_to_srgb, to_uint8
from .filenames import safe_filename
from .gltf import png_bytes, write_glb
from .obj import write_obj_files


def encode_maps(albedo, roughness, metallic, normal_map) -> dict[str, bytes]:
    """Linear maps -> PNG bytes: {"albedo": [S, S, 3] sRGB, "roughness": [S, S] grey, "metallic": [S, S] grey,
    "normal": [S, S, 3] tangent-space n * 0.5 + 0.5, "orm": [S, S, 3] glTF's R occlusion (none: 1), G roughness,
    B metallic}."""
    rough = to_uint8(roughness)
    metal = to_uint8(metallic)
    return {
        "albedo": png_bytes(to_uint8(linear_to_srgb(np.clip(albedo, 0.0, 1.0)))),
        "roughness": png_bytes(rough),
        "metallic": png_bytes(metal),
        "normal": png_bytes(to_uint8(np.asarray(normal_map) * 0.5 + 0.5)),
        "orm": png_bytes(np.stack([np.full_like(rough, 255), rough, metal], -1)),
    }


def glb_bytes(
    vertices: np.ndarray,  # [V, 3] float32 Blender world
    normals: np.ndarray,  # [V, 3] unit
    tangents: np.ndarray,  # [V, 4] glTF tangents (xyz Blender world, w bitangent sign)
    uvs: np.ndarray,  # [V, 2] glTF convention
    faces: np.ndarray,  # [F, 3]
    albedo: np.ndarray,  # [S, S, 3] linear
    roughness: np.ndarray,  # [S, S]
    metallic: np.ndarray,  # [S, S]
    normal_map: np.ndarray,  # [S, S, 3] tangent-space unit normals (+Y the bitangent), not encoded
    name: str = "reconstruction",
) -> bytes:
    """The reconstructed mesh as a GLB: metallic-roughness material with base colour, metallic-roughness and normal
    textures, and the TANGENT attribute the normal map was baked against."""
    png = encode_maps(albedo, roughness, metallic, normal_map)
    return write_glb(vertices, normals, uvs, faces, png["albedo"], png["orm"], name=safe_filename(name),
                     tangents=tangents, normal_png=png["normal"], occlusion=False)


def write_obj(
    folder,
    vertices: np.ndarray,  # [V, 3] float32 Blender world
    normals: np.ndarray,  # [V, 3] unit
    uvs: np.ndarray,  # [V, 2] glTF convention
    faces: np.ndarray,  # [F, 3]
    albedo: np.ndarray,  # [S, S, 3] linear
    roughness: np.ndarray,  # [S, S]
    metallic: np.ndarray,  # [S, S]
    normal_map: np.ndarray,  # [S, S, 3] tangent-space unit normals
    name: str = "reconstruction",
) -> Path:
    """Write <name>.obj, <name>.mtl and <name>_{albedo,roughness,metallic,normal}.png into `folder`; returns the
    OBJ's path. OBJ carries no tangents: importers rebuild them from the UVs (MikkTSpace in Blender)."""
    png = encode_maps(albedo, roughness, metallic, normal_map)
    textures = {k: png[k] for k in ("albedo", "roughness", "metallic", "normal")}
    return write_obj_files(folder, safe_filename(name), vertices, normals, uvs, faces, textures)
