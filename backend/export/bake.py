"""Bake the asset's Gaussian PBR attributes into UV textures: xatlas charts, a UV-space raster, nearest-Gaussian lookup."""

from dataclasses import dataclass

import numpy as np
import torch
import xatlas
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from ..core.asset import RelightableAsset
from ..core.progress import no_progress
from ..core.surface import vertex_normals
from ..render.mesh_raster import interpolate, rasterize
from .filenames import safe_filename
from .gltf import encode_textures, write_glb


@dataclass
class BakedMesh:
    vertices: np.ndarray  # [V, 3] float32 asset space (vertices split along UV seams)
    normals: np.ndarray  # [V, 3] float32
    uvs: np.ndarray  # [V, 2] float32 glTF convention: (0, 0) is the image's top-left texel corner
    faces: np.ndarray  # [F, 3] uint32
    albedo: np.ndarray  # [S, S, 3] float32 linear Rec.709
    roughness: np.ndarray  # [S, S] float32
    metallic: np.ndarray  # [S, S] float32
    occlusion: np.ndarray  # [S, S] float32 ambient occlusion


def unwrap(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, size: int):
    """xatlas charts packed for a size^2 texture -> (vmapping [V'], faces [F, 3], uvs [V', 2] in [0, 1])."""
    atlas = xatlas.Atlas()
    atlas.add_mesh(vertices.astype(np.float32), faces.astype(np.uint32), normals.astype(np.float32))
    po = xatlas.PackOptions()
    po.resolution = size
    po.padding = 2
    po.bilinear = True
    atlas.generate(xatlas.ChartOptions(), po)
    vmapping, indices, uvs = atlas[0]
    return vmapping, indices, uvs


MAX_BAKE_FACES = 10_000  # xatlas time grows fast with faces; detail lives in the textures, not the triangles


def simplify(vertices: np.ndarray, faces: np.ndarray, max_faces: int = MAX_BAKE_FACES):
    """Quadric decimation to at most max_faces -> (vertices [V', 3] float32, faces [F', 3] int64, normals)."""
    if len(faces) > max_faces:
        import fast_simplification

        vertices, faces = fast_simplification.simplify(vertices.astype(np.float32), faces.astype(np.int64),
                                                       target_count=max_faces)
    vertices, faces = vertices.astype(np.float32), faces.astype(np.int64)
    return vertices, faces, vertex_normals(vertices, faces)


def bake(asset: RelightableAsset, size: int = 1024, progress=None, max_faces: int = MAX_BAKE_FACES) -> BakedMesh:
    """Decimate, chart, then for every texel its surface point and the inverse-distance blend of the 4 nearest
    Gaussians."""
    step = progress or (lambda *a, **k: None)
    step("bake", 0.0, f"simplifying {len(asset.faces)} faces to at most {max_faces}")
    if len(asset.faces) <= max_faces:  # kept as is: the asset's own normals (sharp edges, flat faces) stay
        v0, f0 = asset.vertices.astype(np.float32), asset.faces.astype(np.int64)
        n0 = np.asarray(asset.vertex_normals, np.float32)
    else:
        v0, f0, n0 = simplify(asset.vertices, asset.faces, max_faces)
    step("bake", 0.05, f"unwrapping UVs of {len(f0)} faces (xatlas)")
    vmap, faces, uvs = unwrap(v0, f0, n0, size)
    verts = v0[vmap]
    normals = n0[vmap]
    step("bake", 0.4, f"rasterizing {len(faces)} triangles into a {size}x{size} atlas")
    clip = np.zeros((len(uvs), 4), np.float32)
    clip[:, 0] = uvs[:, 0] * 2 - 1
    clip[:, 1] = uvs[:, 1] * 2 - 1  # row j covers v = (j + 0.5) / size: row 0 is v = 0 (glTF's top)
    clip[:, 3] = 1
    rast, _ = rasterize(torch.from_numpy(clip)[None], faces.astype(np.int64), (size, size))
    with torch.no_grad():
        pos = interpolate(torch.from_numpy(verts), rast, faces.astype(np.int64))[0][0].numpy()  # [S, S, 3]
    covered = rast[0, ..., 3].numpy() > 0
    step("bake", 0.6, "looking up materials")
    g = asset.gaussians
    tree = cKDTree(g.means)
    d, idx = tree.query(pos[covered], k=4)
    w = 1.0 / np.maximum(d, 1e-6)
    w /= w.sum(1, keepdims=True)

    def blend(values):  # [N, C] -> [n_covered, C]
        return np.einsum("pk,pkc->pc", w, values[idx])

    chans = np.concatenate([g.albedo, g.roughness[:, None], g.metallic[:, None], g.visibility[:, None]], 1)
    tex = np.zeros((size, size, 6), np.float32)
    tex[covered] = blend(chans)
    step("bake", 0.85, "padding charts")
    if covered.any() and not covered.all():
        _, (iy, ix) = distance_transform_edt(~covered, return_indices=True)
        tex = tex[iy, ix]  # every empty texel copies its nearest covered texel: no dark seams under mip-mapping
    step("bake", 1.0, "baked")
    return BakedMesh(
        verts.astype(np.float32), normals.astype(np.float32), uvs.astype(np.float32), faces.astype(np.uint32),
        tex[..., :3], tex[..., 3], tex[..., 4], tex[..., 5],
    )


def bake_glb(asset: RelightableAsset, texture_size: int = 1024, progress=no_progress) -> bytes:
    """Baked PBR mesh as GLB bytes, placed in world space by the asset's model matrix."""
    baked = bake(asset, texture_size, progress)
    M = asset.model_matrix
    v_world = baked.vertices @ M[:3, :3].T + M[:3, 3]
    n_world = baked.normals @ asset.rotation.T
    progress("export", 0.95, "encoding GLB")
    base, orm = encode_textures(baked.albedo, baked.roughness, baked.metallic, baked.occlusion)
    return write_glb(v_world, n_world, baked.uvs, baked.faces, base, orm, name=safe_filename(asset.name))


def bake_obj_archive(asset: RelightableAsset, texture_size: int = 1024, progress=no_progress) -> bytes:
    """Baked PBR mesh as OBJ + MTL + PNG maps (albedo sRGB, roughness, metallic), world space, packed flat into one
    zip (relight_protocol.archive): what a bake request with format "obj" returns."""
    import tempfile

    from relight_protocol.archive import pack_folder

    from ..core.colour import linear_to_srgb, to_uint8
    from .gltf import png_bytes
    from .obj import write_obj_files

    baked = bake(asset, texture_size, progress)
    M = asset.model_matrix
    v_world = baked.vertices @ M[:3, :3].T + M[:3, 3]
    n_world = baked.normals @ asset.rotation.T
    progress("export", 0.95, "writing OBJ, MTL and PNG maps")
    textures = {"albedo": png_bytes(to_uint8(linear_to_srgb(np.clip(baked.albedo, 0.0, 1.0)))),
                "roughness": png_bytes(to_uint8(baked.roughness)), "metallic": png_bytes(to_uint8(baked.metallic))}
    with tempfile.TemporaryDirectory(prefix="relight-obj-") as folder:
        write_obj_files(folder, safe_filename(asset.name), v_world, n_world, baked.uvs, baked.faces, textures)
        return pack_folder(folder)

