"""The Generate, Render and Bake pipeline: stage boundaries in one place, each stage a replaceable function.

Progress is reported through `progress(stage, fraction, message)`; a job runner may raise from it to cancel.
"""

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from . import __version__
from .asset import RelightableAsset
from .camera import Camera
from .colour import linear_to_srgb, to_uint8
from .render import RenderResult, _noop, render  # noqa: F401  (re-exported: the service and CLI call pipeline.render)
from .delight import delight
from .envmap import Environment, builtin_hdris
from .gaussians import SurfaceGaussians, quats_from_normals
from .geometry.base import GeometryResult, camera_to_asset, camera_to_world, normalise, vertex_normals
from .geometry.inflate import inflate
from .segment import segment
from .surface import sample_surface
from .visibility import VIS_DIRECTIONS, sealed, surface_visibility
from .voxel import assign, voxelize

PIPELINE_VERSION = "v0.2"  # part of every asset id: a pipeline change makes new assets, never stale ones
DEFAULT_GAUSSIANS = 100_000
PROVIDERS = ("inflate", "scene")


@dataclass
class GenerateInputs:
    image: np.ndarray  # [H, W, 4] float32 linear RGBA, straight alpha, row 0 = top
    name: str = "asset"
    provider: str = "auto"  # auto | inflate | scene
    light_hint: str = "unknown"  # unknown | world
    mesh: tuple[np.ndarray, np.ndarray] | None = None  # (vertices [V, 3] world, faces [F, 3])
    camera: Camera | None = None  # the image's camera, world space
    world: Environment | None = None  # the input light when light_hint == "world"
    n_gaussians: int = DEFAULT_GAUSSIANS
    delight: bool = True  # False: the baseline that takes the photo's colours as albedo

    def content_id(self) -> str:
        h = hashlib.sha256()
        h.update(f"{PIPELINE_VERSION}|{self.provider}|{self.light_hint}|{self.n_gaussians}|{self.delight}".encode())
        h.update(np.ascontiguousarray(self.image, np.float32).tobytes())
        if self.mesh is not None:
            h.update(np.ascontiguousarray(self.mesh[0], np.float32).tobytes())
            h.update(np.ascontiguousarray(self.mesh[1], np.int64).tobytes())
        if self.camera is not None:
            h.update(repr(self.camera.to_dict()).encode())
        if self.light_hint == "world" and self.world is not None:
            h.update(np.ascontiguousarray(self.world.equirect[::8, ::8]).tobytes())
            h.update(f"{self.world.rotation_z:.6f}|{self.world.strength:.6f}".encode())
        return h.hexdigest()[:24]


def scene_geometry(vertices: np.ndarray, faces: np.ndarray, camera: Camera | None, image_hw) -> GeometryResult:
    """`scene` provider: the mesh sent with the request, normalised; the image's camera is the given one."""
    if camera is None:
        # no camera: look at the mesh from -Y (Blender's front view) with the default lens, framing it
        lo, hi = vertices.min(0), vertices.max(0)
        c, r = 0.5 * (lo + hi), float(np.linalg.norm(hi - lo)) / 2
        H, W = image_hw
        camera = Camera.look_at(c + np.array([0, -3.2 * r, 0]), c, 39.6, W, H)
    v_a, M = normalise(np.asarray(vertices, np.float64))
    return GeometryResult(v_a, np.asarray(faces, np.int32), camera_to_asset(camera, M), M, "scene")


def generate(inputs: GenerateInputs, progress=_noop) -> RelightableAsset:
    """Image (+ optional mesh, camera, input light) -> RelightableAsset. Raises ValueError for unusable input."""
    t0 = time.perf_counter()
    timings = {}
    img = np.asarray(inputs.image, np.float32)
    if img.ndim != 3 or img.shape[-1] != 4:
        raise ValueError(f"image must be [H, W, 4] RGBA, got shape {img.shape}")
    if inputs.light_hint not in ("unknown", "world"):
        raise ValueError(f"light_hint must be 'unknown' or 'world', not {inputs.light_hint!r}")
    if inputs.light_hint == "world" and inputs.world is None:
        raise ValueError("light_hint is 'world' but no world environment was sent with the request")
    provider = inputs.provider
    if provider == "auto":
        provider = "scene" if inputs.mesh is not None else "inflate"
    if provider not in PROVIDERS:
        raise ValueError(f"unknown geometry provider {provider!r}; available: {', '.join(PROVIDERS)}")
    if provider == "scene" and inputs.mesh is None:
        raise ValueError("provider 'scene' needs a mesh: select a mesh object in the Relight panel")

    progress("segment", 0.02, "finding the object")
    srgb_for_seg = np.concatenate([linear_to_srgb(img[..., :3]), img[..., 3:]], -1)
    mask = segment(srgb_for_seg)
    timings["segment"] = time.perf_counter() - t0

    progress("geometry", 0.08, f"geometry provider '{provider}'")
    t = time.perf_counter()
    if provider == "scene":
        geo = scene_geometry(inputs.mesh[0], inputs.mesh[1], inputs.camera, img.shape[:2])
    else:
        geo = inflate(mask, inputs.camera)
    vn = vertex_normals(geo.vertices, geo.faces)
    timings["geometry"] = time.perf_counter() - t

    progress("voxelize", 0.2, "sparse 64^3 voxels")
    t = time.perf_counter()
    voxels = voxelize(geo.vertices, geo.faces, vn)
    pts, nrm, _, _, spacing = sample_surface(geo.vertices, geo.faces, vn, inputs.n_gaussians, seed=0)
    timings["voxelize"] = time.perf_counter() - t

    progress("visibility", 0.3, f"visibility of {len(pts)} Gaussians over {VIS_DIRECTIONS} directions")
    t = time.perf_counter()
    ao, vis_bits = surface_visibility(geo.vertices, geo.faces, vn, pts, nrm)  # AO [N], bits [N, D / 8]
    keep = ~sealed(vis_bits)  # points inside the surface would show through it as dark specks
    pts, nrm, ao, vis_bits = pts[keep], nrm[keep], ao[keep], vis_bits[keep]
    timings["visibility"] = time.perf_counter() - t

    progress("gaussians", 0.45, f"{len(pts)} surface Gaussians")
    sigma = 0.75 * spacing
    n = len(pts)
    g = SurfaceGaussians(
        means=pts,
        quats=quats_from_normals(nrm),
        scales=np.tile(np.array([sigma, sigma, 0.1 * sigma], np.float32), (n, 1)),
        opacities=np.full(n, 0.98, np.float32),
        albedo=np.full((n, 3), 0.5, np.float32), roughness=np.full(n, 0.5, np.float32),
        metallic=np.zeros(n, np.float32), normals=nrm, visibility=ao, voxel=assign(pts, voxels), vis_bits=vis_bits,
    )
    thumb = to_uint8(np.concatenate([linear_to_srgb(img[..., :3]), img[..., 3:]], -1))
    asset = RelightableAsset(
        asset_id=inputs.content_id(), name=inputs.name, vertices=geo.vertices, faces=geo.faces, vertex_normals=vn,
        gaussians=g, voxels=voxels, model_matrix=geo.model_matrix, input_camera=geo.camera, thumbnail=thumb,
        meta={"provider": provider},
    )

    progress("delight", 0.5, f"removing the input lighting ({inputs.light_hint})")
    t = time.perf_counter()
    cam_world = camera_to_world(geo.camera, geo.model_matrix)
    mats = delight(img[..., :3], mask, asset, cam_world, inputs.light_hint, inputs.world, spacing,
                   enabled=inputs.delight, progress=progress)
    g.albedo, g.roughness, g.metallic = mats.albedo, mats.roughness, mats.metallic
    timings["delight"] = time.perf_counter() - t
    asset.meta = {
        "provider": provider, "light_hint": inputs.light_hint, "relight_version": __version__,
        "pipeline_version": PIPELINE_VERSION, "seen_fraction": float(mats.seen.mean()),
        "estimated_light_sh9": mats.light_sh9.tolist(), "material_search": mats.scores,
        "roughness": float(mats.roughness.mean()), "metallic": float(mats.metallic.mean()), "timings": timings,
        "gaussians": len(g), "faces": int(len(geo.faces)), "voxels": int(len(voxels)),
    }
    timings["total"] = time.perf_counter() - t0
    progress("done", 1.0, f"asset {asset.asset_id}: {len(g)} Gaussians, {len(voxels)} voxels")
    return asset


def bake_glb(asset: RelightableAsset, texture_size: int = 1024, progress=_noop) -> bytes:
    """Baked PBR mesh as GLB bytes, placed in world space by the asset's model matrix."""
    from .bake import bake
    from .gltf import encode_textures, write_glb

    baked = bake(asset, texture_size, progress)
    M = asset.model_matrix
    v_world = baked.vertices @ M[:3, :3].T + M[:3, 3]
    n_world = baked.normals @ asset.rotation.T
    progress("export", 0.95, "encoding GLB")
    base, orm = encode_textures(baked.albedo, baked.roughness, baked.metallic, baked.occlusion)
    return write_glb(v_world, n_world, baked.uvs, baked.faces, base, orm, name=_safe_name(asset.name))


def splats_ply(asset: RelightableAsset) -> bytes:
    """The asset's Gaussians in world space as a 3DGS PLY with PBR fields."""
    from .ply import gaussians_to_ply

    g, M, R, s = asset.gaussians, asset.model_matrix, asset.rotation, asset.scale
    means = g.means @ M[:3, :3].T + M[:3, 3]
    qm = _quat_from_matrix(R)
    quats = _quat_mul(qm, g.quats)
    return gaussians_to_ply(means, quats, g.scales * s, g.opacities, g.normals @ R.T, g.albedo, g.roughness,
                            g.metallic, g.visibility)


def environment_from_request(world: dict) -> Environment:
    """{equirect: [h, w, 3] float32 linear, rotation_z: radians, strength} -> Environment."""
    eq = np.asarray(world["equirect"], np.float32)
    if eq.ndim != 3 or eq.shape[-1] not in (3, 4) or min(eq.shape[:2]) < 2:
        raise ValueError(f"world equirect must be [h, w, 3] float32, got shape {eq.shape}")
    return Environment(eq[..., :3], float(world.get("rotation_z", 0.0)), float(world.get("strength", 1.0)))


def default_environment() -> Environment:
    """The studio HDRI shipped inside the bpy wheel, else a soft grey sky."""
    hdris = builtin_hdris()
    if "studio" in hdris:
        return Environment.from_file(hdris["studio"])
    return Environment.constant([0.8, 0.8, 0.8])


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:64] or "relight_asset"


def _quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """[3, 3] rotation -> [4] (w, x, y, z)."""
    w = np.sqrt(max(0.0, 1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = np.copysign(np.sqrt(max(0.0, 1 + R[0, 0] - R[1, 1] - R[2, 2])) / 2, R[2, 1] - R[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] + R[1, 1] - R[2, 2])) / 2, R[0, 2] - R[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] - R[1, 1] + R[2, 2])) / 2, R[1, 0] - R[0, 1])
    return np.array([w, x, y, z])


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[4] (w, x, y, z) times [N, 4] -> [N, 4]."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return np.stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], 1).astype(np.float32)
