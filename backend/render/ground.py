"""The ground plane's G-buffer: where camera rays meet the plane, with the asset's cast shadow from the
visibility of a grid of ground points (ray-marched once per asset and plane)."""

import numpy as np

from ..core.asset import RelightableAsset
from ..core.camera import Camera
from ..core.envmap import Environment
from ..core.gaussians import GBUFFER_CHANNELS, GBUFFER_LAYOUT
from ..core.ground import GroundPlane
from relight_protocol.lru import LRU
from ..core.visibility_rays import ao_from_bits, sphere_directions, visibility_bits
from .light_visibility import light_visibility
from .strong_lights import asset_occupancy, light_bits, with_strong_lights

GROUND_GRID = 160  # shadow samples per side of the ground patch around the asset
GROUND_EXTENT = 3.0  # ground patch half-size in units of the asset's bounding radius

_GROUND_BITS = LRU(16)  # per (asset id, plane)


def _ground_bits(asset: RelightableAsset, ground: GroundPlane):
    """Visibility bits of a grid of ground points around the asset (cached per asset and plane).
    -> (x0, y0, cell, bits [G*G, D/8], ao [G*G])."""
    return _GROUND_BITS.get_or_make((asset.asset_id, ground), lambda: _ray_march_ground(asset, ground))


def _ground_grid(asset: RelightableAsset) -> tuple[float, float, float]:
    """(x0, y0, cell): the world x, y of the ground grid's first point and its spacing, around the asset."""
    c = asset.model_matrix[:3, 3]
    half = GROUND_EXTENT * asset.scale * np.sqrt(3) / 2
    return float(c[0] - half), float(c[1] - half), float(2 * half / (GROUND_GRID - 1))


def _ground_points(asset: RelightableAsset, x0: float, y0: float, cell: float, z: float = 0.0):
    """The ground grid's points in asset space [G*G, 3] float32 and the up direction there [3] float32."""
    M = asset.model_matrix
    xs, ys = x0 + cell * np.arange(GROUND_GRID), y0 + cell * np.arange(GROUND_GRID)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    pw = np.stack([X.ravel(), Y.ravel(), np.full(X.size, z)], 1)  # [G*G, 3] world
    pa = (pw - M[:3, 3]) @ (M[:3, :3] / asset.scale**2)  # world -> asset (similarity inverse: R^T / s)
    up_a = asset.rotation.T @ np.array([0.0, 0.0, 1.0])
    return pa.astype(np.float32), up_a.astype(np.float32)


def _ray_march_ground(asset: RelightableAsset, ground: GroundPlane):
    x0, y0, cell = _ground_grid(asset)
    pa, up_a = _ground_points(asset, x0, y0, cell, ground.z)
    occ = asset_occupancy(asset)
    dirs = sphere_directions()
    bits = visibility_bits(occ, pa, np.tile(up_a, (len(pa), 1)), dirs, offset_voxels=0.0)
    ao = ao_from_bits(bits, np.tile(up_a, (len(pa), 1)), dirs)
    return x0, y0, cell, bits, ao


def _bilinear(grid: np.ndarray, fx: np.ndarray, fy: np.ndarray, outside) -> np.ndarray:
    """grid [G, G, C] sampled at fractional indices (fx, fy) [M]; `outside` [C] beyond the grid."""
    G = grid.shape[0]
    inside = (fx >= 0) & (fy >= 0) & (fx <= G - 1) & (fy <= G - 1)
    x0 = np.clip(np.floor(fx).astype(np.int64), 0, G - 2)
    y0 = np.clip(np.floor(fy).astype(np.int64), 0, G - 2)
    tx = np.clip(fx - x0, 0, 1)[:, None]
    ty = np.clip(fy - y0, 0, 1)[:, None]
    v = ((1 - tx) * (1 - ty) * grid[x0, y0] + tx * (1 - ty) * grid[x0 + 1, y0]
         + (1 - tx) * ty * grid[x0, y0 + 1] + tx * ty * grid[x0 + 1, y0 + 1])  # fmt: skip
    return np.where(inside[:, None], v, np.asarray(outside, np.float32)[None])


def ground_gbuffer(asset: RelightableAsset, camera: Camera, env: Environment, ground: GroundPlane):
    """The ground plane's premultiplied G-buffer [H, W, GBUFFER_CHANNELS] and coverage [H, W, 1] from a world
    camera, with its cast shadow (light-dependent, from precomputed visibility) in the shadow channel."""
    o, d = camera.rays()
    H, W = d.shape[:2]
    d = d.reshape(-1, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ground.z - o[2]) / d[:, 2]
    p = o[None] + t[:, None] * d
    h = ground.size / 2
    hit = (t > 0) & np.isfinite(t) & (np.abs(p[:, 0] - ground.center[0]) <= h) & (np.abs(p[:, 1] - ground.center[1]) <= h)
    feats = np.zeros((H * W, GBUFFER_CHANNELS), np.float32)
    alpha = hit.astype(np.float32)
    if not hit.any():
        return feats.reshape(H, W, -1), alpha.reshape(H, W, 1)
    x0, y0, cell, bits, ao = _ground_bits(asset, ground)
    up = np.array([[0.0, 0.0, 1.0]], np.float32)
    dirs = sphere_directions() @ asset.rotation.T.astype(np.float32)
    # directions the asset blocks see its mean diffuse radiance (a one-bounce estimate of its interreflection)
    g = asset.gaussians
    n_world = (g.normals @ asset.rotation.T).astype(np.float32)
    bounce = np.mean(g.albedo * (1.0 - g.metallic[:, None]) * env.irradiance(n_world) * g.visibility[:, None], 0)

    def ground_bits_towards(d):  # only under a strong light: the ground grid's points and the march towards it
        pa, up_a = _ground_points(asset, x0, y0, cell, ground.z)
        return light_bits(asset, d, pa, np.tile(up_a, (len(pa), 1)), ("ground", repr(ground)), offset_voxels=0.0)

    bits, dirs, radiance = with_strong_lights(env, bits, dirs, env.cell_radiance(dirs), ground_bits_towards)
    ratio = light_visibility(bits, np.repeat(up, len(bits), 0), dirs, radiance, bounce=bounce)
    G = GROUND_GRID
    q = p[hit]
    fx, fy = (q[:, 0] - x0) / cell, (q[:, 1] - y0) / cell
    shadow = _bilinear(ratio.reshape(G, G, 3), fx, fy, np.ones(3))
    occl = _bilinear(ao.reshape(G, G, 1), fx, fy, np.ones(1))
    f = feats[hit]
    f[:, GBUFFER_LAYOUT["albedo"]] = ground.albedo
    f[:, GBUFFER_LAYOUT["roughness"]] = ground.roughness
    f[:, GBUFFER_LAYOUT["normal"]] = up
    f[:, GBUFFER_LAYOUT["visibility"]] = occl
    f[:, GBUFFER_LAYOUT["shadow"]] = shadow
    feats[hit] = f
    return feats.reshape(H, W, -1), alpha.reshape(H, W, 1)
