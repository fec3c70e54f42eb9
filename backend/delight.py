"""Lighting homogenization: remove the light baked into the input photo by inverse rendering against the geometry.

v0 model: observed linear radiance I = albedo * S(n) * AO, S the diffuse shading of the input light (order-2 SH
fitted to the image when the light is unknown, the given HDRI's irradiance when the hint is `world`); the specular
term of the given HDRI is subtracted first when it is known. Roughness and metallic are not yet estimated.
"""

from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import map_coordinates
from scipy.spatial import cKDTree

from .camera import Camera
from .envmap import SH9_COSINE_LOBE, Environment, sh9_basis
from .mesh_raster import clip_from_camera, interpolate, rasterize, to_clip

DEFAULT_ROUGHNESS = 0.5
DEFAULT_METALLIC = 0.0
ALBEDO_P95 = 0.8  # unknown light: the scale ambiguity is resolved by putting the 95th-percentile albedo here


@dataclass
class Materials:
    albedo: np.ndarray  # [N, 3] linear
    roughness: np.ndarray  # [N]
    metallic: np.ndarray  # [N]
    seen: np.ndarray  # [N] bool, visible in the input image
    light_sh9: np.ndarray  # [9, 3] estimated input radiance in SH (world frame)


def visible_points(camera: Camera, vertices, faces, points, normals, mask) -> tuple[np.ndarray, np.ndarray]:
    """Which points the input camera sees -> (seen [N] bool, pixel coords [N, 2] (x, y) continuous)."""
    H, W = camera.height, camera.width
    pos = to_clip(vertices, clip_from_camera(camera))
    rast, _ = rasterize(pos, faces, (H, W))
    zc = (np.c_[vertices, np.ones(len(vertices))] @ camera.viewmat.T)[:, 2:3]  # [V, 1] camera depth
    with torch.no_grad():
        zbuf = interpolate(torch.as_tensor(zc, dtype=torch.float32), rast, faces)[0][0, ..., 0].numpy()
    cov = rast[0, ..., 3].numpy() > 0
    pc = np.c_[points, np.ones(len(points))] @ camera.viewmat.T  # [N, 4] camera space
    z = pc[:, 2]
    x = camera.K[0, 0] * pc[:, 0] / np.maximum(z, 1e-9) + camera.K[0, 2]
    y = camera.K[1, 1] * pc[:, 1] / np.maximum(z, 1e-9) + camera.K[1, 2]
    ix, iy = np.floor(x).astype(int), np.floor(y).astype(int)
    inb = (z > 0) & (ix >= 0) & (iy >= 0) & (ix < W) & (iy < H)
    seen = np.zeros(len(points), bool)
    i = np.nonzero(inb)[0]
    zb = zbuf[iy[i], ix[i]]
    extent = float(np.ptp(vertices, axis=0).max())
    facing = (normals[i] @ -camera.viewmat[2, :3]) > 0.05  # normal towards the camera (camera looks down +z)
    seen[i] = cov[iy[i], ix[i]] & mask[iy[i], ix[i]] & (np.abs(z[i] - zb) < 0.01 * extent) & facing
    return seen, np.stack([x, y], 1)


def sample_image(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """[H, W, C] image, [N, 2] continuous pixel coords (centres at +0.5) -> [N, C] bilinear."""
    coords = [xy[:, 1] - 0.5, xy[:, 0] - 0.5]
    return np.stack([map_coordinates(img[..., c], coords, order=1, mode="nearest") for c in range(img.shape[-1])], 1)


def fit_sh_shading(normals: np.ndarray, ao: np.ndarray, radiance: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """Least-squares [9, 3] coefficients c with radiance ~ ao * sum_k c_k Y_k(n) (albedo folded into c)."""
    Y = sh9_basis(normals) * ao[:, None]  # [N, 9]
    reg = ridge * len(normals) * np.diag([0.0] + [1.0] * 3 + [4.0] * 5)  # damp the higher bands
    return np.linalg.solve(Y.T @ Y + reg, Y.T @ radiance)


def delight(
    image: np.ndarray,
    mask: np.ndarray,
    camera: Camera,
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    normals: np.ndarray,
    ao: np.ndarray,
    normal_matrix: np.ndarray,
    light_hint: str = "unknown",
    world: Environment | None = None,
    spacing: float = 0.01,
) -> Materials:
    """Recover per-point PBR materials. image [H, W, 3] linear; points, normals [N, 3] asset space; ao [N]."""
    seen, xy = visible_points(camera, vertices, faces, points, normals, mask)
    if seen.sum() < 16:
        raise ValueError("the geometry and the image do not line up: fewer than 16 surface points are visible")
    n_world = normals @ np.asarray(normal_matrix).T  # [N, 3]
    obs = sample_image(image, xy[seen])  # [S, 3] linear radiance
    ns, aos = n_world[seen], np.maximum(ao[seen], 0.05)
    if light_hint == "world" and world is not None:
        shading = world.irradiance(ns) * aos[:, None]  # [S, 3] radiance of a white Lambertian surface
        # remove the known specular reflection of a dielectric (F0 = 0.04) before dividing out the diffuse light
        cam_pos = np.linalg.inv(camera.viewmat)[:3, 3]
        v = cam_pos[None] - points[seen]
        v = (v / np.linalg.norm(v, axis=1, keepdims=True)) @ np.asarray(normal_matrix).T
        nv = np.clip(np.sum(ns * v, 1), 1e-4, 1)
        r = 2 * nv[:, None] * ns - v
        from .brdf_lut import lookup  # split-sum scale and bias

        A, B = lookup(nv, np.full_like(nv, DEFAULT_ROUGHNESS))
        spec = world.specular(r, np.full_like(nv, DEFAULT_ROUGHNESS)) * (0.04 * A + B)[:, None] * aos[:, None]
        albedo_seen = np.maximum(obs - spec, 0) / np.maximum(shading, 1e-4)
        light = world.sh9
    else:
        # the light's colour and the albedo's are ambiguous; assume a neutral (white-balanced) light, so the
        # shading is fitted to luminance and all colour stays in the albedo
        lum_w = np.array([0.2126, 0.7152, 0.0722])
        c = fit_sh_shading(ns, aos, (obs @ lum_w)[:, None])  # [9, 1]
        shading = np.maximum(sh9_basis(ns) @ c, 1e-4) * aos[:, None]  # [S, 1]
        floor = 0.05 * np.percentile(shading, 99)
        albedo_seen = obs / np.maximum(shading, floor)
        lum = albedo_seen @ lum_w
        scale = ALBEDO_P95 / max(float(np.percentile(lum, 95)), 1e-6)
        albedo_seen *= scale
        c = np.repeat(c, 3, axis=1)
        light = c / scale * np.pi / SH9_COSINE_LOBE[:, None]  # radiance SH of the estimated light
    albedo_seen = np.clip(albedo_seen, 0.0, 1.0)
    albedo = complete_unseen(points, seen, albedo_seen, camera, spacing)
    N = len(points)
    return Materials(
        albedo.astype(np.float32),
        np.full(N, DEFAULT_ROUGHNESS, np.float32),
        np.full(N, DEFAULT_METALLIC, np.float32),
        seen,
        np.asarray(light, np.float32),
    )


def complete_unseen(points, seen, values_seen, camera: Camera, spacing: float) -> np.ndarray:
    """Fill the side the image does not show: mirror across the plane through the centre facing the camera when
    a seen point lies there (inflated and roughly symmetric shapes), else the nearest seen point; then smooth."""
    out = np.zeros((len(points), values_seen.shape[1]), np.float64)
    out[seen] = values_seen
    tree = cKDTree(points[seen])
    un = np.nonzero(~seen)[0]
    if un.size == 0:
        return out
    fwd = camera.viewmat[2, :3]  # camera viewing direction in asset space
    c = points.mean(0)
    p = points[un]
    mirrored = p - 2 * ((p - c) @ fwd)[:, None] * fwd[None]
    d_m, i_m = tree.query(mirrored)
    _, i_n = tree.query(p)
    use_m = d_m < 4 * spacing
    out[un] = np.where(use_m[:, None], values_seen[i_m], values_seen[i_n])
    # a few Jacobi steps of neighbour averaging over the filled points only, to hide the seam
    all_tree = cKDTree(points)
    _, nb = all_tree.query(p, k=8)
    for _ in range(3):
        out[un] = 0.5 * out[un] + 0.5 * out[nb].mean(1)
    return out
