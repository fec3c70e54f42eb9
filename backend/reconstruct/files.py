"""A ReconstructedMesh's files: the GLB (glTF metallic-roughness with a normal map) and the OBJ + MTL folder, through
export.reconstructed (which takes plain arrays: export does not import reconstruct)."""

from pathlib import Path

from ..export import reconstructed
from .views import ReconstructedMesh


def glb_bytes(mesh: ReconstructedMesh, name: str = "reconstruction") -> bytes:
    """The baked mesh as one GLB file's bytes."""
    return reconstructed.glb_bytes(mesh.vertices, mesh.normals, mesh.tangents, mesh.uvs, mesh.faces, mesh.albedo,
                                   mesh.roughness, mesh.metallic, mesh.normal_map, name=name)  # fmt: skip


def write_obj(mesh: ReconstructedMesh, folder: Path, name: str = "reconstruction") -> Path:
    """The baked mesh as name.obj + name.mtl + PNG maps in `folder`; returns the .obj's path."""
    return reconstructed.write_obj(Path(folder), mesh.vertices, mesh.normals, mesh.uvs, mesh.faces, mesh.albedo,
                                   mesh.roughness, mesh.metallic, mesh.normal_map, name=name)  # fmt: skip
