"""Relight an asset: rasterize its Gaussians into G-buffers, turn the light into per-Gaussian shadows from the
precomputed visibility, split-sum shade under an environment, add an optional shadow-catching ground plane, AgX."""

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .asset import RelightableAsset
from .camera import Camera
from .colour import agx, agx_rgba8, to_uint8
from .envmap import Environment
from .gaussians import GBUFFER_CHANNELS, GBUFFER_LAYOUT
from .geometry.base import camera_to_asset
from .occlusion import facing, on_surface
from .splat_raster import rasterize
from .transfer import TRANSFER_RANK

GROUND_GRID = 160  # shadow samples per side of the ground patch around the asset
GROUND_EXTENT = 3.0  # ground patch half-size in units of the asset's bounding radius
SUPERSAMPLE = 2  # G-buffers are rasterized and shaded at this many samples per pixel edge, then box-filtered
SPECULAR_SAMPLES = 128  # GGX samples per pixel for the specular lobe (0: split-sum prefiltered lookup only)
# Named settings. "preview" is the interactive one (the add-on's Preview, world rotation and camera drags): one
# sample per pixel and prefiltered lookups only. "final" is the reference quality the evaluations measure.
# "preview" also takes a new light's shadows from the precomputed transfer (transfer.py) instead of every direction.
QUALITY_PRESETS = {
    "preview": {"supersample": 1, "specular_samples": 0, "shadow_rank": TRANSFER_RANK},
    "final": {"supersample": SUPERSAMPLE, "specular_samples": SPECULAR_SAMPLES, "shadow_rank": 0},
}
HIDDEN_DEPTH_SIDE = 256  # px: the z-buffer that finds hidden Gaussians is at most this size (its cost is per frame)
EPS2D = 0.01  # px^2 added to each projected covariance: small, so dense surface splats keep a crisp silhouette


def _noop(stage: str, fraction: float, message: str = "") -> None:
    pass


@dataclass(frozen=True)
class GroundPlane:
    """A horizontal ground square (world Z up) that receives the asset's cast shadow, with a Principled
    dielectric material (specular 0.5)."""

    z: float = 0.0  # world height
    albedo: tuple = (0.5, 0.5, 0.5)  # linear Rec.709
    roughness: float = 0.9
    size: float = 40.0  # edge length, centred at `center`
    center: tuple = (0.0, 0.0)  # world (x, y)


@dataclass
class RenderResult:
    rgba8: np.ndarray  # [H, W, 4] uint8: AgX sRGB, straight alpha
    hdr: np.ndarray  # [H, W, 3] float32 linear, premultiplied by alpha (or composited over the background)
    alpha: np.ndarray  # [H, W, 1]
    passes: dict  # albedo, roughness, metallic, normal, visibility (AO), shadow (RGB), ground_shadow: [H, W, C]
    timings: dict = field(default_factory=dict)  # seconds per stage


def gaussian_shadows(asset: RelightableAsset, env: Environment, ground: GroundPlane | None = None,
                     interreflection: bool = True, rank: int = 0) -> np.ndarray | None:  # fmt: skip
    """[N, 3] light-dependent diffuse visibility of each Gaussian under `env` (None when the asset has no
    precomputed visibility bits). Directions the object blocks see its own light (approximated by the Gaussian's
    own diffuse radiance when interreflection is on); below a ground plane they see the lit ground.
    rank 0 sums every visibility direction; rank > 0 uses the asset's precomputed transfer with this many basis
    directions (transfer.py: the same quantity, a few matrix products per light)."""
    from .visibility import directional_bounce, light_visibility, sphere_directions

    g = asset.gaussians
    if g.vis_bits is None:
        return None
    R = asset.rotation
    dirs = sphere_directions() @ R.T.astype(np.float32)  # [D, 3] world
    radiance = env.cell_radiance(dirs)
    up = gr = None
    if ground is not None:
        up = np.array([0.0, 0.0, 1.0], np.float32)
        gr = np.asarray(ground.albedo, np.float32) * env.irradiance(up[None])[0]
    if rank > 0:
        from .transfer import transfer_shadows

        below = None if up is None else dirs @ up < 0.0
        return transfer_shadows(_transfer_for(asset, rank), radiance, g.albedo * (1.0 - g.metallic[:, None]),
                                below, gr, interreflection)  # fmt: skip
    n_world = (g.normals @ R.T).astype(np.float32)
    shadow = light_visibility(g.vis_bits, n_world, dirs, radiance, up, gr)
    if not interreflection:
        return shadow
    # one bounce: an occluded ray meets the asset's own surfaces facing back along it; their diffuse radiance
    # comes from this first, direct-only pass
    diffuse = g.albedo * (1.0 - g.metallic[:, None]) * env.irradiance(n_world) * shadow  # [N, 3]
    bounce_dir = directional_bounce(n_world, diffuse, g.visibility, dirs)
    return light_visibility(g.vis_bits, n_world, dirs, radiance, up, gr, bounce_dir=bounce_dir)


_TRANSFER_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_TRANSFER_LOCK = threading.Lock()


def _transfer_for(asset: RelightableAsset, rank: int):
    """The asset's transfer.Transfer (built on first use, ~1 s per 100k Gaussians; kept for the last few assets,
    keyed on the arrays it is built from, which the entry holds so their ids stay unique)."""
    from .transfer import build_transfer

    g = asset.gaussians
    key = (asset.asset_id, id(g.vis_bits), id(g.normals), id(g.visibility), int(rank))
    with _TRANSFER_LOCK:
        hit = _TRANSFER_CACHE.get(key)
        if hit is not None:
            _TRANSFER_CACHE.move_to_end(key)
            return hit[1]
    value = build_transfer(g.vis_bits, g.normals, g.visibility, rank)
    with _TRANSFER_LOCK:
        _TRANSFER_CACHE[key] = ((g.vis_bits, g.normals, g.visibility), value)
        while len(_TRANSFER_CACHE) > 4:
            _TRANSFER_CACHE.popitem(last=False)
    return value


def prepare_preview(asset: RelightableAsset) -> None:
    """Build what the "preview" preset needs per asset (the shadow transfer) now, e.g. right after generation,
    so the artist's first preview does not wait for it."""
    rank = QUALITY_PRESETS["preview"]["shadow_rank"]
    if rank > 0 and asset.gaussians.vis_bits is not None:
        _transfer_for(asset, rank)


_GROUND_CACHE: dict = {}
_GROUND_LOCK = threading.Lock()


def _ground_bits(asset: RelightableAsset, ground: GroundPlane):
    """Visibility bits of a grid of ground points around the asset (cached per asset and plane).
    -> (x0, y0, cell, bits [G*G, D/8], ao [G*G])."""
    from .visibility import ao_from_bits, sphere_directions, surface_occupancy, visibility_bits

    key = (asset.asset_id, ground)
    with _GROUND_LOCK:
        if key in _GROUND_CACHE:
            return _GROUND_CACHE[key]
    M = asset.model_matrix
    c = M[:3, 3]
    half = GROUND_EXTENT * asset.scale * np.sqrt(3) / 2
    xs = np.linspace(c[0] - half, c[0] + half, GROUND_GRID)
    ys = np.linspace(c[1] - half, c[1] + half, GROUND_GRID)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    pw = np.stack([X.ravel(), Y.ravel(), np.full(X.size, ground.z)], 1)  # [G*G, 3] world
    pa = (pw - c) @ (M[:3, :3] / asset.scale**2)  # world -> asset (similarity inverse: R^T / s)
    up_a = asset.rotation.T @ np.array([0.0, 0.0, 1.0])
    occ = surface_occupancy(asset.vertices, asset.faces, asset.vertex_normals)
    dirs = sphere_directions()
    bits = visibility_bits(occ, pa.astype(np.float32), np.tile(up_a.astype(np.float32), (len(pa), 1)), dirs,
                           offset_voxels=0.0)  # fmt: skip
    ao = ao_from_bits(bits, np.tile(up_a.astype(np.float32), (len(pa), 1)), dirs)
    out = (xs[0], ys[0], xs[1] - xs[0], bits, ao)
    with _GROUND_LOCK:
        if len(_GROUND_CACHE) > 16:
            _GROUND_CACHE.clear()
        _GROUND_CACHE[key] = out
    return out


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
    from .visibility import light_visibility, sphere_directions

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
    ratio = light_visibility(bits, np.repeat(up, len(bits), 0), dirs, env.cell_radiance(dirs), bounce=bounce)
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


def hidden_gaussians(asset: RelightableAsset, view: Camera) -> np.ndarray:
    """[N] bool: Gaussians the asset's mesh hides from `view` (asset space) and that face away from it. Their splats
    are left out: surface splats are random samples, and where the front's coverage thins a back surface would
    show through (dark specks on a metal, whose back reflects a different part of the room). Facing away: a point
    on an open surface seen from behind is covered only by itself."""
    g = asset.gaussians
    k = min(1.0, HIDDEN_DEPTH_SIDE / max(view.width, view.height))
    if k < 1.0:  # the test is conservative (3 x 3 pixels), so a coarser z-buffer only keeps a few more near edges
        view = view.resized(max(1, round(view.width * k)), max(1, round(view.height * k)))
    away = np.nonzero(facing(view, g.normals, g.means) < 0)[0]  # only these can be left out: test only them
    hidden = np.zeros(len(g), bool)
    hidden[away] = on_surface(view, asset.vertices, asset.faces, g.means[away])[1]
    return hidden


def _box_down(x: np.ndarray, ss: int) -> np.ndarray:
    """[H*ss, W*ss, C] -> [H, W, C] mean over ss x ss blocks."""
    H, W, C = x.shape[0] // ss, x.shape[1] // ss, x.shape[2]
    return x.reshape(H, ss, W, ss, C).mean((1, 3), dtype=np.float32)


_SHADOW_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_SHADOW_CACHE_SIZE = 4
_SHADOW_LOCK = threading.Lock()


def _cached_shadows(asset: RelightableAsset, env: Environment, ground: GroundPlane | None, rank: int):
    """gaussian_shadows, remembered per (asset Gaussians, environment, rotation, strength, ground): orbiting the
    camera re-renders under the same light without recomputing the per-Gaussian shadowing. Entries hold references
    to the arrays and prefiltered data they are keyed on, so an id in a key is never reused while cached."""
    g = asset.gaussians
    key = (asset.asset_id, id(g), id(g.albedo), id(g.metallic), id(g.vis_bits) if getattr(g, "vis_bits", None) is not None else 0,
           id(env._data), env.rotation_z, env.strength, None if ground is None else repr(ground), int(rank))
    with _SHADOW_LOCK:
        hit = _SHADOW_CACHE.get(key)
        if hit is not None:
            _SHADOW_CACHE.move_to_end(key)
            return hit[1]
    value = gaussian_shadows(asset, env, ground, rank=rank)
    with _SHADOW_LOCK:
        _SHADOW_CACHE[key] = ((g, g.albedo, g.metallic, env._data), value)
        while len(_SHADOW_CACHE) > _SHADOW_CACHE_SIZE:
            _SHADOW_CACHE.popitem(last=False)
    return value


_HIDDEN_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_HIDDEN_LOCK = threading.Lock()


def _unhidden_opacities(asset: RelightableAsset, view: Camera) -> np.ndarray:
    """[N] float32 opacities with the Gaussians hidden from `view` (hidden_gaussians) at 0, remembered for the last
    few (geometry arrays, view) pairs: delight renders one asset's geometry (with trial materials) from one camera
    under many lights, and a world rotation drag re-renders from an unchanged camera. Entries hold the arrays they
    are keyed on, so an id in a key is never reused while cached."""
    g = asset.gaussians
    arrays = (g.means, g.normals, g.opacities, asset.vertices, asset.faces)
    key = (asset.asset_id, *map(id, arrays), view.viewmat.tobytes(), view.K.tobytes(), view.width, view.height)
    with _HIDDEN_LOCK:
        hit = _HIDDEN_CACHE.get(key)
        if hit is not None:
            _HIDDEN_CACHE.move_to_end(key)
            return hit[1]
    value = np.where(hidden_gaussians(asset, view), 0.0, g.opacities).astype(np.float32)
    with _HIDDEN_LOCK:
        _HIDDEN_CACHE[key] = (arrays, value)
        while len(_HIDDEN_CACHE) > 4:
            _HIDDEN_CACHE.popitem(last=False)
    return value


_FEATURES_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_FEATURES_LOCK = threading.Lock()


def _features(asset: RelightableAsset, shadow: np.ndarray | None) -> np.ndarray:
    """The Gaussians' [N, GBUFFER_CHANNELS] G-buffer features with world normals and `shadow` (or the AO),
    remembered for the last few (asset arrays, shadow) pairs: orbiting the camera reuses them as they are, and a
    new light only rewrites the shadow channels of a copy. Entries hold the arrays they are keyed on."""
    g = asset.gaussians
    arrays = (g.albedo, g.roughness, g.metallic, g.normals, g.visibility)
    base_key = (asset.asset_id, id(g), *map(id, arrays), asset.rotation.tobytes())
    key = (*base_key, id(shadow))
    with _FEATURES_LOCK:
        hit = _FEATURES_CACHE.get(key)
        base = next((v[1] for k, v in _FEATURES_CACHE.items() if k[:-1] == base_key), None) if hit is None else None
    if hit is not None:
        return hit[1]
    if base is None:
        feats = g.features(normal_matrix=asset.rotation, shadow=shadow)
    else:
        feats = base.copy()
        feats[:, GBUFFER_LAYOUT["shadow"]] = np.repeat(g.visibility[:, None], 3, 1) if shadow is None else shadow
    with _FEATURES_LOCK:
        _FEATURES_CACHE[key] = ((g, *arrays, shadow), feats)
        while len(_FEATURES_CACHE) > 4:
            _FEATURES_CACHE.popitem(last=False)
    return feats


def render(asset: RelightableAsset, camera: Camera, env: Environment, background: bool = False,
           progress=_noop, backend: str = "auto", *, ground: GroundPlane | None = None,
           shadows: bool = True, supersample: int = SUPERSAMPLE,
           specular_samples: int = SPECULAR_SAMPLES, shadow_rank: int = 0) -> RenderResult:  # fmt: skip
    """Relight the asset under `env` from a world-space camera: G-buffers (without the Gaussians the mesh hides,
    hidden_gaussians), shadows from precomputed visibility, split-sum shading, optional ground plane with the cast
    shadow, AgX.

    shadows=False shades with the light-independent ambient occlusion instead (the pre-visibility behaviour).
    supersample: samples per pixel edge; the shaded image is box-filtered down (antialiased silhouettes: dense
    surface splats saturate alpha, so blurring them instead would grow the silhouette).
    specular_samples: GGX lobe samples per pixel (shading.shade); 0 = split-sum lookup only (fastest).
    shadow_rank: 0 = a new light's shadows sum every visibility direction; > 0 = from the precomputed transfer
    (gaussian_shadows(rank=...): ~5x faster per light, mean error ~0.1 % of the irradiance)."""
    ss = max(1, int(supersample))
    final = camera
    camera = camera.resized(camera.width * ss, camera.height * ss)
    from .shading import composite, environment_background, shade  # numba kernels: load on first render

    timings = {}
    t = time.perf_counter()
    shadow = _cached_shadows(asset, env, ground, shadow_rank) if shadows else None
    timings["visibility"] = time.perf_counter() - t
    t = time.perf_counter()
    view = camera_to_asset(camera, asset.model_matrix)
    g = asset.gaussians
    feats = _features(asset, shadow)
    opacities = _unhidden_opacities(asset, camera_to_asset(final, asset.model_matrix))
    colors, alphas, _ = rasterize(g.means, g.quats, g.scales, opacities, feats, view.viewmat[None].astype(np.float32),
                                  view.K[None].astype(np.float32), camera.width, camera.height, backend=backend,
                                  eps2d=EPS2D)  # fmt: skip
    timings["rasterize"] = time.perf_counter() - t
    progress("render", 0.5, "shading")
    t = time.perf_counter()
    out = shade(colors[0], alphas[0], camera, env, specular_samples=specular_samples)
    alpha = out["alpha"]
    hdr = out["hdr"]
    passes = {k: out[k] for k in ("albedo", "roughness", "metallic", "normal", "visibility", "shadow") if k in out}
    if ground is not None:
        gf, ga = ground_gbuffer(asset, camera, env, ground)
        gout = shade(gf, ga, camera, env, specular_samples=specular_samples)
        keep = 1.0 - alpha  # the asset stands on the ground: it is always in front
        hdr = hdr + keep * gout["hdr"]
        for k in passes:
            passes[k] = passes[k] + keep * gout[k] * (gout["alpha"] > 0)
        passes["ground_shadow"] = np.where(gout["alpha"] > 0, gout["shadow"].mean(-1, keepdims=True), 1.0).astype(np.float32)
        passes["ground_alpha"] = gout["alpha"]
        alpha = alpha + keep * gout["alpha"]
    if ss > 1:
        hdr = _box_down(hdr, ss)
        plain = {k: _box_down(passes.pop(k), ss) for k in ("ground_shadow", "ground_alpha") if k in passes}
        passes = {k: _box_down(p * alpha, ss) for k, p in passes.items()}
        alpha = _box_down(alpha, ss)
        passes = {k: np.where(alpha > 0, p / np.maximum(alpha, 1e-6), 0.0).astype(np.float32) for k, p in passes.items()}
        passes.update(plain)
        camera = final
    timings["shade"] = time.perf_counter() - t
    t = time.perf_counter()
    if background:
        rgb_lin = composite(hdr, alpha, environment_background(camera, env))
        rgba8 = np.concatenate([to_uint8(agx(rgb_lin)), np.full(alpha.shape, 255, np.uint8)], -1)
    else:
        rgb_lin = hdr
        rgba8 = agx_rgba8(hdr, alpha)  # straight alpha AgX sRGB and 8-bit in one pass
    timings["tonemap"] = time.perf_counter() - t
    hdr_out = rgb_lin if background else hdr
    return RenderResult(rgba8, hdr_out.astype(np.float32), alpha, passes, timings)
