"""Relight an asset: rasterize its Gaussians into G-buffers, turn the light into per-Gaussian shadows from the
precomputed visibility, split-sum shade under an environment, add an optional shadow-catching ground plane, AgX."""

import time
from dataclasses import dataclass, field

import numpy as np

from ..core.asset import RelightableAsset
from ..core.camera import Camera
from ..core.colour import agx, agx_rgba8, to_uint8
from ..core.envmap import Environment
from ..core.frames import camera_to_asset
from ..core.gaussians import GBUFFER_CHANNELS, GBUFFER_LAYOUT
from ..core.ground import GroundPlane
from relight_protocol.lru import LRU
from ..core.progress import no_progress
from .coverage_window import coverage_window, paste
from .ground import ground_gbuffer
from .mesh_coverage import fill_coverage, mesh_coverage
from .occlusion import depth_map, depth_tolerance, facing, on_surface
from .settings import FINAL, RenderSettings
from .shadows import cached_shadows
from .specular_visibility import specular_visibility
from .gbuffer_reuse import view_gbuffer

# px: the z-buffer that finds hidden Gaussians is at most this size (its cost is per new view). 512: the live
# preview's usual frame, whose coverage then comes with the cull (one mesh pass, not two: ~2 ms of a new 512² view)
HIDDEN_DEPTH_SIDE = 512
EPS2D = 0.01  # px^2 added to each projected covariance: small, so dense surface splats keep a crisp silhouette

_CULLED = LRU(4)  # per (geometry arrays, view): ([N] opacities, [h, w] bool z-buffer coverage)
_FEATURES = LRU(4)  # per (asset arrays, shadow): [N, GBUFFER_CHANNELS] features
_COVERAGE = LRU(4)  # per (mesh arrays, view): [H, W] bool mesh coverage
_TOLERANCE = LRU(4)  # per vertex array: the cull's depth tolerance (asset units)


@dataclass
class RenderResult:
    rgba8: np.ndarray  # [H, W, 4] uint8: AgX sRGB, straight alpha
    hdr: np.ndarray  # [H, W, 3] float32 linear, premultiplied by alpha (or composited over the background)
    alpha: np.ndarray  # [H, W, 1]
    passes: dict  # albedo, roughness, metallic, normal, visibility (AO; lobe visibility in a final render), shadow
    # (RGB), ground_shadow: [H, W, C]
    timings: dict = field(default_factory=dict)  # seconds per stage


def hidden_gaussians(asset: RelightableAsset, view: Camera) -> np.ndarray:
    """[N] bool: Gaussians the asset's mesh hides from `view` (asset space) and that face away from it. Their splats
    are left out: surface splats are random samples, and where the front's coverage thins a back surface would
    show through (dark specks on a metal, whose back reflects a different part of the room). Facing away: a point
    on an open surface seen from behind is covered only by itself."""
    return hidden_and_covered(asset, view)[0]


def hidden_and_covered(asset: RelightableAsset, view: Camera, impl: str = "numba") -> tuple[np.ndarray, np.ndarray]:
    """hidden_gaussians, with the mesh coverage its z-buffer finds on the way -> (hidden [N] bool, covered [h, w]
    bool: the z-buffer's pixels whose centre the mesh covers). The z-buffer is `view` itself (h, w its height and
    width) up to HIDDEN_DEPTH_SIDE px, else `view` scaled down to that: then covered is coarser than the view.
    impl: "numba" (occlusion_kernels.hidden_away, one pass: every new view of the live preview pays it) or "numpy"
    (facing + on_surface, the reference)."""
    if impl not in ("numba", "numpy"):
        raise ValueError(f"impl must be 'numba' or 'numpy', got {impl!r}")
    g = asset.gaussians
    k = min(1.0, HIDDEN_DEPTH_SIDE / max(view.width, view.height))
    if k < 1.0:  # the test is conservative (3 x 3 pixels), so a coarser z-buffer only keeps a few more near edges
        view = view.resized(max(1, round(view.width * k)), max(1, round(view.height * k)))
    depth = depth_map(view, asset.vertices, asset.faces)  # ([h, w] camera depth, [h, w] covered)
    hidden = np.zeros(len(g), bool)
    if impl == "numba":
        from .occlusion_kernels import hidden_away

        K = view.K
        hidden_away(g.means, g.normals, np.ascontiguousarray(view.viewmat[:3], np.float64), float(K[0, 0]),
                    float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), depth[0], depth[1], _depth_tolerance(asset.vertices),
                    hidden)  # fmt: skip
        return hidden, depth[1]
    away = np.nonzero(facing(view, g.normals, g.means) < 0)[0]  # only these can be left out: test only them
    hidden[away] = on_surface(view, asset.vertices, asset.faces, g.means[away], depth=depth)[1]
    return hidden, depth[1]


def _depth_tolerance(vertices: np.ndarray) -> float:
    """occlusion.depth_tolerance, remembered per vertex array (~1.5 ms of every new view at 10k vertices otherwise)."""
    return _TOLERANCE.get_or_make(id(vertices), lambda: depth_tolerance(vertices), pin=(vertices,))


def _box_down(x: np.ndarray, ss: int) -> np.ndarray:
    """[H*ss, W*ss, C] -> [H, W, C] mean over ss x ss blocks."""
    H, W, C = x.shape[0] // ss, x.shape[1] // ss, x.shape[2]
    return x.reshape(H, ss, W, ss, C).mean((1, 3), dtype=np.float32)


def _culled(asset: RelightableAsset, view: Camera) -> tuple[np.ndarray, np.ndarray]:
    """([N] float32 opacities with the Gaussians hidden from `view` at 0, [h, w] bool the mesh's coverage of the
    z-buffer that found them: hidden_and_covered), remembered for the last few (geometry arrays, view) pairs:
    delight renders one asset's geometry (with trial materials) from one camera under many lights, and a world
    rotation drag re-renders from an unchanged camera. Entries hold the arrays they are keyed on, so an id in a key
    is never reused while cached."""
    g = asset.gaussians
    arrays = (g.means, g.normals, g.opacities, asset.vertices, asset.faces)
    key = (asset.asset_id, *map(id, arrays), view.viewmat.tobytes(), view.K.tobytes(), view.width, view.height)

    def make():
        hidden, covered = hidden_and_covered(asset, view)
        return np.where(hidden, 0.0, g.opacities).astype(np.float32), covered

    return _CULLED.get_or_make(key, make, pin=arrays)


def _mesh_coverage(asset: RelightableAsset, view: Camera) -> np.ndarray:
    """[H, W] bool: the pixels of `view` (asset space, the G-buffer's size) the asset's mesh covers
    (mesh_coverage.mesh_coverage), remembered for the last few (mesh arrays, view) pairs like _culled.
    Entries hold the arrays they are keyed on."""
    arrays = (asset.vertices, asset.faces)
    key = (asset.asset_id, *map(id, arrays), view.viewmat.tobytes(), view.K.tobytes(), view.width, view.height)
    return _COVERAGE.get_or_make(key, lambda: mesh_coverage(view, *arrays), pin=arrays)


def _feature_key(asset: RelightableAsset) -> tuple[tuple, tuple]:
    """(key, arrays): what the G-buffer features other than the shadow are made of, arrays named by id()."""
    g = asset.gaussians
    arrays = (g.albedo, g.roughness, g.metallic, g.normals, g.visibility)
    return (asset.asset_id, id(g), *map(id, arrays), asset.rotation.tobytes()), arrays


def _features(asset: RelightableAsset, shadow: np.ndarray | None) -> np.ndarray:
    """The Gaussians' [N, GBUFFER_CHANNELS] G-buffer features with world normals and `shadow` (or the AO),
    remembered for the last few (asset arrays, shadow) pairs: orbiting the camera reuses them as they are, and a
    new light only rewrites the shadow channels of a copy. Entries hold the arrays they are keyed on."""
    g = asset.gaussians
    base_key, arrays = _feature_key(asset)
    key = (*base_key, id(shadow))
    hit = _FEATURES.get(key)
    if hit is not None:
        return hit
    bases = _FEATURES.values_where(lambda k: k[:-1] == base_key)
    base = bases[0] if bases else None
    if base is None:
        feats = g.features(normal_matrix=asset.rotation, shadow=shadow)
    else:
        feats = base.copy()
        feats[:, GBUFFER_LAYOUT["shadow"]] = np.repeat(g.visibility[:, None], 3, 1) if shadow is None else shadow
    _FEATURES.put(key, feats, pin=(g, *arrays, shadow))
    return feats


SHADE_BANDS = 8  # lobe-sampled shading (seconds at final quality) runs in this many row bands, progress between


def _shade_cancellable(colors: np.ndarray, alphas: np.ndarray, camera: Camera, env: Environment,
                       specular_samples: int, progress, passes: bool = True) -> dict:  # fmt: skip
    """shade(); when lobe sampling makes it the frame's long stage, in SHADE_BANDS row bands with a progress call
    after each, so a cancelled job (the live preview's final frame, overtaken by a new view) stops within a band.
    Each pixel is shaded on its own: the bands' pixels are the whole frame's."""
    from .shading import shade

    if specular_samples <= 0 or progress is no_progress:
        return shade(colors, alphas, camera, env, specular_samples=specular_samples, passes=passes)
    H = camera.height
    edges = np.linspace(0, H, SHADE_BANDS + 1).round().astype(int)
    parts = []
    for y0, y1 in zip(edges[:-1], edges[1:]):
        if y1 <= y0:
            continue
        band = camera.cropped(0, int(y0), camera.width, int(y1 - y0))  # its row j is the frame's row y0 + j
        parts.append(shade(colors[y0:y1], alphas[y0:y1], band, env, specular_samples=specular_samples, passes=passes))
        progress("render", 0.5 + 0.5 * float(y1) / H, "shading")
    return {k: np.concatenate([p[k] for p in parts], 0) for k in parts[0]}


def render(asset: RelightableAsset, camera: Camera, env: Environment, settings: RenderSettings = FINAL, *,
           background: bool = False, ground: GroundPlane | None = None, progress=no_progress,
           backend: str = "auto", lamps: tuple = (), passes: bool = True) -> RenderResult:  # fmt: skip
    """Relight the asset under `env` from a world-space camera: G-buffers (without the Gaussians the mesh hides,
    hidden_gaussians; made to cover exactly the mesh's silhouette, mesh_coverage), shadows from
    precomputed visibility, split-sum shading, optional ground plane with the cast shadow, AgX. `settings`
    (settings.RenderSettings) says how finely; background=True composites over the environment; backend picks the
    splat rasterizer (splat_raster.rasterize); lamps (lamps.Lamp: the scene's sun, point, spot and area lamps)
    add their direct light, each with its own shadow. passes=False leaves RenderResult.passes empty (the live
    preview's and a turntable's frames: the image only)."""
    ss = max(1, int(settings.supersample))
    specular_samples = settings.specular_samples
    want_passes = bool(passes)  # (`passes` names the passes' dict below)
    final = camera
    camera = camera.resized(camera.width * ss, camera.height * ss)
    from .shading import composite, environment_background, shade  # numba kernels: load on first render

    timings = {}
    t = time.perf_counter()
    shadow = None
    if settings.shadows:
        shadow = cached_shadows(asset, env, ground, settings.shadow_rank, settings.exact_lights, settings.bounces,
                                settings.linked_bounces)  # fmt: skip
    timings["visibility"] = time.perf_counter() - t
    t = time.perf_counter()
    view = camera_to_asset(camera, asset.model_matrix)
    g = asset.gaussians
    lamps = tuple(lamps)
    extra = []  # [N, k] feature channels after the G-buffer's
    if lamps:  # each lamp's per-Gaussian visibility rides along as one more feature channel, and for a point, spot
        # or area lamp each Gaussian's depth along the camera's axis (world units), for the pixels' own lamp directions
        from .lamp_shadows import lamp_visibility
        from .lamps import needs_depth

        extra = [lamp_visibility(asset, lamps, exact=settings.shadow_rank == 0)]
        if needs_depth(lamps):
            z = g.means @ view.viewmat[2, :3].astype(np.float32) + np.float32(view.viewmat[2, 3])  # [N] asset units
            extra.append((z * np.float32(asset.scale))[:, None])
    final_view = camera_to_asset(final, asset.model_matrix)
    opacities, covered = _culled(asset, final_view)
    # with the mesh's coverage, pixels outside its silhouette stay empty: only the silhouette's box of the G-buffer is
    # rasterized, filled and shaded (coverage_window), then pasted into the whole frame
    # covered is the G-buffer's own coverage only when the cull's z-buffer had the G-buffer's view: the same size
    # means the same view (that z-buffer's view is the frame's scaled by k <= 1, the G-buffer's by ss >= 1). Decided
    # here, before a window changes the G-buffer's size: a window can be as large as that z-buffer by chance (a
    # 64 px frame at ss = 2 with the asset filling half of it: a 64 px window), and that z-buffer is not its view
    own_covered = covered if covered.shape == (camera.height, camera.width) else None
    frame = camera
    window = coverage_window(view, asset.vertices, own_covered) if settings.mesh_coverage else None
    if window is not None:
        x0, y0, x1, y1 = window
        camera = frame.cropped(x0, y0, x1 - x0, y1 - y0)
        view = camera_to_asset(camera, asset.model_matrix)
        if own_covered is not None:
            own_covered = own_covered[y0:y1, x0:x1]
    # a view seen again under a new light re-composites only the light's channels (gbuffer_reuse.py): the shadow's
    # and the lamps'; the whole feature array is only made when the view is rasterized
    feature_key, feature_arrays = _feature_key(asset)
    geometry = (g.means, g.quats, g.scales, opacities)
    # the visibility channel: each Gaussian's lobe visibility from this view under this light (specular_visibility.py),
    # else its AO; then it changes with the light, like the shadow's channels
    lobe_vis = specular_visibility(asset, final_view.position, env, settings.exact_lights) \
        if settings.specular_visibility else None  # fmt: skip
    key = (*feature_key, *map(id, geometry), float(asset.scale), view.viewmat.tobytes(), view.K.tobytes(),
           camera.width, camera.height)  # a window's K does not say its size
    shadow_cols = range(GBUFFER_CHANNELS)[GBUFFER_LAYOUT["shadow"]]
    vis_cols = range(GBUFFER_CHANNELS)[GBUFFER_LAYOUT["visibility"]] if lobe_vis is not None else range(0)
    n_extra = sum(e.shape[1] for e in extra)
    light_channels = [*shadow_cols, *vis_cols, *range(GBUFFER_CHANNELS, GBUFFER_CHANNELS + n_extra)]
    shadow_feats = np.repeat(g.visibility[:, None], len(shadow_cols), 1) if shadow is None else shadow  # [N, 3]
    if lobe_vis is not None:
        shadow_feats = np.concatenate([shadow_feats, lobe_vis[:, None]], 1)  # [N, 4]

    def features():  # [N, GBUFFER_CHANNELS + n_extra]
        feats = _features(asset, shadow)
        if lobe_vis is not None:  # a copy: the cached features are shared across views
            feats = feats.copy()
            feats[:, GBUFFER_LAYOUT["visibility"]] = lobe_vis[:, None]
        return np.concatenate([feats, *extra], 1) if extra else feats

    colors, alphas = view_gbuffer(key, (*feature_arrays, *geometry), light_channels,
                                  np.concatenate([shadow_feats, *extra], 1) if extra else shadow_feats, features,
                                  *geometry, view.viewmat, view.K, camera.width, camera.height, EPS2D, backend)  # fmt: skip
    # colors [H, W, GBUFFER_CHANNELS (+ lamps')] premultiplied, alphas [H, W, 1]
    timings["rasterize"] = time.perf_counter() - t
    # Coverage from the mesh (issue 13): alpha 1 inside its silhouette, 0 outside, the splats' features over their
    # alpha; when supersampled, the box-down below antialiases the silhouette. At 1x (PREVIEW) up to
    # HIDDEN_DEPTH_SIDE px the cull's z-buffer has found it already (own_covered). Otherwise a visibility-only mesh
    # pass at the G-buffer's size (the cull's coarser coverage scaled up would be wrong at the silhouette): ~1 % of a
    # final frame, 7 ms on a new 1024 px preview view. The fill runs on every frame: 0.2 ms at 256 px, 1.3 at 512, 4
    # at 1024.
    t = time.perf_counter()
    if settings.mesh_coverage:
        covered = own_covered if own_covered is not None else _mesh_coverage(asset, view)
        colors, alphas = fill_coverage(colors, alphas, covered, out=colors)  # the rasterizer's buffer: ours to write
    timings["coverage"] = time.perf_counter() - t
    progress("render", 0.5, "shading")
    t = time.perf_counter()
    if lamps:  # shade() reads the G-buffer's channels only: no copy without the lamps' ones
        lamp_px = colors[..., GBUFFER_CHANNELS:] / np.maximum(alphas, 1e-6)  # [H, W, K (+1)] visibility (, depth)
    # the passes are made when asked for, and when the lamps' or the ground's shading reads them
    out = _shade_cancellable(colors, alphas, camera, env, specular_samples, progress,
                             want_passes or bool(lamps) or ground is not None)  # fmt: skip
    alpha = out["alpha"]
    hdr = out["hdr"]
    passes = {k: out[k] for k in ("albedo", "roughness", "metallic", "normal", "visibility", "shadow") if k in out}
    if lamps:
        from .lamps import shade_lamps

        K = len(lamps)
        depth = lamp_px[..., K:K + 1] if lamp_px.shape[-1] > K else None
        hdr = hdr + shade_lamps(passes, alpha, lamp_px[..., :K], lamps, camera, depth)
    if not want_passes and ground is None:  # the lamps' shading has read them: past here only the ground would
        passes = {}
    if window is not None:
        hdr, alpha = paste(hdr, window, frame.height, frame.width), paste(alpha, window, frame.height, frame.width)
        passes = {k: paste(p, window, frame.height, frame.width) for k, p in passes.items()}
        camera = frame
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
    if not want_passes:
        passes = {}
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
    return RenderResult(rgba8, hdr_out.astype(np.float32, copy=False), alpha, passes, timings)
