"""A RelightableAsset made straight from an exact mesh and one Principled material (no image, no delighting):
the renderer's input when it is compared against Cycles on the same geometry."""

import hashlib

import numpy as np

from ..core.asset import RelightableAsset
from ..core.camera import Camera
from ..core.gaussians import SurfaceGaussians, quats_from_normals
from ..core.frames import camera_to_asset, normalise
from ..core.surface import face_areas, sample_surface
from ..generate.visibility import sealed, surface_visibility
from ..generate.voxel import assign, voxelize


def subdivide_for_sampling(vertices, faces, normals, n_samples: int, per_face: float = 4.0):
    """Split large triangles 1 -> 4 at edge midpoints until each expects at most ~`per_face` of n_samples
    area-uniform samples, so stratified sampling leaves no random holes on big flat faces. Midpoint normals are
    the unnormalised mean, so barycentric normal interpolation is unchanged. -> (vertices, faces, normals)."""
    v = np.asarray(vertices, np.float64)
    n = np.asarray(normals, np.float64)
    f = np.asarray(faces, np.int64)
    for _ in range(8):
        a = face_areas(v, f)
        big = a / a.sum() * n_samples > per_face
        if not big.any():
            break
        fb = f[big]
        m = [len(v) + np.arange(len(fb)) * 3 + k for k in range(3)]  # midpoints of edges 01, 12, 20
        mids = [(v[fb[:, 0]] + v[fb[:, 1]]) / 2, (v[fb[:, 1]] + v[fb[:, 2]]) / 2, (v[fb[:, 2]] + v[fb[:, 0]]) / 2]
        nm = [(n[fb[:, 0]] + n[fb[:, 1]]) / 2, (n[fb[:, 1]] + n[fb[:, 2]]) / 2, (n[fb[:, 2]] + n[fb[:, 0]]) / 2]
        v = np.concatenate([v, np.stack(mids, 1).reshape(-1, 3)])
        n = np.concatenate([n, np.stack(nm, 1).reshape(-1, 3)])
        new = np.concatenate([np.stack([fb[:, 0], m[0], m[2]], 1), np.stack([m[0], fb[:, 1], m[1]], 1),
                              np.stack([m[2], m[1], fb[:, 2]], 1), np.stack([m[0], m[1], m[2]], 1)])  # fmt: skip
        f = np.concatenate([f[~big], new])
    return v.astype(np.float32), f.astype(np.int32), n.astype(np.float32)


def asset_from_mesh(
    vertices: np.ndarray,  # [V, 3] world
    faces: np.ndarray,  # [F, 3] int
    vertex_normals: np.ndarray,  # [V, 3] unit, world (the normals the reference renderer shades with)
    base_color,  # [3] linear Rec.709
    roughness: float,
    metallic: float,
    n_gaussians: int = 150_000,
    name: str = "reference",
    camera: Camera | None = None,  # world camera stored as the asset's input camera (default: from -Y)
) -> RelightableAsset:
    """Surface Gaussians on the exact mesh (smooth interpolated normals) with a uniform material and
    precomputed visibility, placed in world space by the model matrix."""
    v_a, M = normalise(np.asarray(vertices, np.float64))
    faces = np.asarray(faces, np.int32)
    vn = np.asarray(vertex_normals, np.float32)  # normalise() is a scale + translation: normals unchanged
    sv, sf, sn = subdivide_for_sampling(v_a, faces, vn, n_gaussians)
    pts, nrm, _, _, spacing = sample_surface(sv, sf, sn, n_gaussians, seed=0)
    ao, bits = surface_visibility(v_a, faces, vn, pts, nrm)
    keep = ~sealed(bits)  # points inside the surface would show through it as dark specks
    pts, nrm, ao, bits = pts[keep], nrm[keep], ao[keep], bits[keep]
    sigma = 0.75 * spacing
    n = len(pts)
    g = SurfaceGaussians(
        means=pts, quats=quats_from_normals(nrm),
        scales=np.tile(np.array([sigma, sigma, 0.1 * sigma], np.float32), (n, 1)),
        opacities=np.full(n, 0.98, np.float32),
        albedo=np.tile(np.asarray(base_color, np.float32), (n, 1)),
        roughness=np.full(n, roughness, np.float32), metallic=np.full(n, metallic, np.float32),
        normals=nrm, visibility=ao, voxel=np.zeros(n, np.int32), vis_bits=bits,
    )  # fmt: skip
    voxels = voxelize(v_a, faces, vn)
    g.voxel = assign(pts, voxels)
    if camera is None:
        c = 0.5 * (vertices.min(0) + vertices.max(0))
        camera = Camera.look_at(c + np.array([0.0, -4.0, 1.0]), c, 40.0, 256, 256)
    h = hashlib.sha1(np.ascontiguousarray(v_a).tobytes())
    h.update(f"{base_color}|{roughness}|{metallic}|{n_gaussians}".encode())
    return RelightableAsset(
        asset_id=h.hexdigest()[:24], name=name, vertices=v_a, faces=faces, vertex_normals=vn, gaussians=g,
        voxels=voxels, model_matrix=M, input_camera=camera_to_asset(camera, M),
        thumbnail=np.zeros((8, 8, 4), np.uint8), meta={"provider": "reference"},
    )  # fmt: skip
