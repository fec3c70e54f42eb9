"""A reconstruction as a RelightableAsset, so the store, the renderer and the add-on treat it like any generated
asset: surface Gaussians sampled on the baked mesh take their albedo, roughness and metallic from its UV maps, and
their visibility from the same ray march the generator uses."""

import hashlib

import numpy as np

from .. import __version__
from ..core.asset import RelightableAsset
from ..core.colour import linear_to_srgb, to_uint8
from ..core.frames import camera_to_asset, normalise
from ..core.surface import sample_surface, vertex_normals
from ..generate.gaussians import surface_gaussians
from ..generate.visibility import sealed, surface_visibility
from ..generate.voxel import assign, voxelize
from .views import MultiViewSet, ReconstructedMesh

RECONSTRUCT_VERSION = "r0.1"  # part of every reconstructed asset's id


def sample_map(tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of tex [S, S, C] (or [S, S]) at glTF uvs [N, 2] ((0, 0) the top-left texel corner), clamped
    at the border -> [N, C] (or [N])."""
    S_h, S_w = tex.shape[:2]
    x = np.clip(uv[:, 0] * S_w - 0.5, 0, S_w - 1)
    y = np.clip(uv[:, 1] * S_h - 0.5, 0, S_h - 1)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, S_w - 1), np.minimum(y0 + 1, S_h - 1)
    fx, fy = x - x0, y - y0
    if tex.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    top = tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx
    bottom = tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def content_id(views: MultiViewSet, settings: str) -> str:
    """24 hex digits over the views' pixels, cameras and the reconstruction settings."""
    h = hashlib.sha256(f"{RECONSTRUCT_VERSION}|{settings}".encode())
    for name in ("mask", "rgb", "normal", "depth", "albedo", "roughness", "metallic"):
        a = getattr(views, name)
        if a is not None:
            h.update(name.encode())
            h.update(np.ascontiguousarray(a).tobytes())
    for cam in views.cameras:
        h.update(repr(cam.to_dict()).encode())
    return h.hexdigest()[:24]


def asset_from_reconstruction(mesh: ReconstructedMesh, views: MultiViewSet, asset_id: str, name: str = "reconstruction",
                              n_gaussians: int = 100_000, baked_glb: bytes | None = None) -> RelightableAsset:  # fmt: skip
    """The baked mesh (world = the views' frame) -> RelightableAsset in asset space (unit cube), its model matrix
    mapping back to the views' frame, the first view as the input camera and its picture as the thumbnail;
    baked_glb: the reconstruction's own GLB (files.glb_bytes), which `bake` then returns as it is."""
    faces = np.asarray(mesh.faces, np.int64)
    v_a, M = normalise(np.asarray(mesh.vertices, np.float64))  # [V, 3] asset space, [4, 4] asset -> world
    v_a = v_a.astype(np.float32)
    vn = vertex_normals(v_a, faces)
    voxels = voxelize(v_a, faces, vn)
    pts, nrm, fid, bary, spacing = sample_surface(v_a, faces, vn, n_gaussians, seed=0)
    uv = np.einsum("nk,nkc->nc", bary, mesh.uvs[faces[fid]])  # [N, 2] glTF uvs of each sample
    ao, bits = surface_visibility(v_a, faces, vn, pts, nrm)
    keep = ~sealed(bits)
    pts, nrm, ao, bits, uv = pts[keep], nrm[keep], ao[keep], bits[keep], uv[keep]
    g = surface_gaussians(pts, nrm, ao, bits, assign(pts, voxels), spacing)
    g.albedo = np.clip(sample_map(mesh.albedo, uv), 0, 1).astype(np.float32)
    g.roughness = np.clip(sample_map(mesh.roughness, uv), 0.02, 1).astype(np.float32)
    g.metallic = np.clip(sample_map(mesh.metallic, uv), 0, 1).astype(np.float32)
    picture = views.rgb[0] if views.rgb is not None else views.albedo[0]  # [H, W, 3] linear
    alpha = views.mask[0][..., None].astype(np.float32)
    thumb = to_uint8(np.concatenate([linear_to_srgb(np.clip(picture, 0, 1)), alpha], -1))
    return RelightableAsset(
        asset_id=asset_id, name=name, vertices=v_a, faces=faces.astype(np.int32), vertex_normals=vn, gaussians=g,
        voxels=voxels, model_matrix=M, input_camera=camera_to_asset(views.cameras[0], M), thumbnail=thumb,
        meta={"provider": "reconstruct", "relight_version": __version__, "reconstruct_version": RECONSTRUCT_VERSION,
              "views": views.n_views, "faces": int(len(faces)), "gaussians": len(g), "voxels": int(len(voxels)),
              "roughness": float(g.roughness.mean()), "metallic": float(g.metallic.mean()),
              "timings": dict(mesh.meta.get("timings", {})), "warnings": list(mesh.meta.get("warnings", []))},
        baked_glb=baked_glb,
    )
