"""generate(): the stages in the order they run, image -> segment -> geometry -> voxels -> visibility -> Gaussians ->
delight -> RelightableAsset. Each stage is a replaceable function; this module is where their boundaries meet.

Progress is reported through `progress(stage, fraction, message)` (core.progress); a job runner may raise from it to
cancel between steps."""

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from relight_protocol.vocabulary import DEFAULT_GAUSSIANS, GEOMETRY_PROVIDERS, LIGHT_HINTS

from .. import __version__
from ..core.asset import RelightableAsset
from ..core.camera import Camera
from ..core.colour import to_uint8
from ..core.envmap import Environment
from ..core.frames import camera_to_world
from ..core.input_image import InputImage
from ..core.progress import no_progress
from ..core.surface import sample_surface, vertex_normals
from ..core.visibility_rays import VIS_DIRECTIONS
from .delight.homogenize import baseline, first_hypothesis, prepare, solve
from .gaussians import surface_gaussians
from .geometry.generators import GeneratorSettings, generator_identity, make_generator
from .geometry.inflate import inflate
from .geometry.scene import scene_geometry
from .segment import segment, user_mask
from .self_check import checked, warnings_for
from .visibility import sealed, surface_visibility
from .voxel import assign, voxelize

PIPELINE_VERSION = "v0.6"  # part of every asset id: a pipeline change makes new assets, never stale ones


@dataclass
class GenerateInputs:
    image: InputImage  # the photo, linear and sRGB-encoded
    name: str = "asset"
    provider: str = "auto"  # auto | inflate | scene | hunyuan3d | command (relight_protocol.vocabulary)
    light_hint: str = "unknown"  # unknown | world
    mesh: tuple[np.ndarray, np.ndarray] | None = None  # (vertices [V, 3] world, faces [F, 3])
    corner_normals: np.ndarray | None = None  # [F, 3, 3] world: the mesh's own shading per face corner (None: smooth)
    mask: np.ndarray | None = None  # [H, W] the object, as the user gave it (None: alpha, else GrabCut)
    camera: Camera | None = None  # the image's camera, world space
    world: Environment | None = None  # the input light when light_hint == "world"
    n_gaussians: int = DEFAULT_GAUSSIANS
    delight: bool = True  # False: the baseline that takes the photo's colours as albedo
    generators: GeneratorSettings | None = None  # where the hunyuan3d / command providers are (None: environment)

    def content_id(self) -> str:
        h = hashlib.sha256()
        h.update(f"{PIPELINE_VERSION}|{self.provider}|{self.light_hint}|{self.n_gaussians}|{self.delight}|"
                 f"{self.image.ceiling}".encode())  # fmt: skip
        h.update(self.image.digest)
        if self.mask is not None:
            h.update(b"mask" + np.packbits(np.asarray(self.mask) > 0).tobytes())
        if self.mesh is not None:
            h.update(np.ascontiguousarray(self.mesh[0], np.float32).tobytes())
            h.update(np.ascontiguousarray(self.mesh[1], np.int64).tobytes())
            if self.corner_normals is not None:
                h.update(np.ascontiguousarray(self.corner_normals, np.float32).tobytes())
        if self.camera is not None:
            h.update(repr(self.camera.to_dict()).encode())
        if self.provider in ("hunyuan3d", "command"):
            h.update(generator_identity(self.provider, self.generators).encode())
        if self.light_hint == "world" and self.world is not None:
            h.update(f"{self.world.identity}|{self.world.rotation_z:.6f}|{self.world.strength:.6f}".encode())
        return h.hexdigest()[:24]


def generate(inputs: GenerateInputs, progress=no_progress) -> RelightableAsset:
    """Image (+ optional mesh, camera, input light) -> RelightableAsset. Raises ValueError for unusable input."""
    t0 = time.perf_counter()
    timings = {}
    if not isinstance(inputs.image, InputImage):
        raise TypeError("GenerateInputs.image must be an InputImage (InputImage.from_pixels or .from_file)")
    img = inputs.image.linear
    if inputs.light_hint not in LIGHT_HINTS:
        raise ValueError(f"light_hint must be one of {', '.join(map(repr, LIGHT_HINTS))}, not {inputs.light_hint!r}")
    if inputs.light_hint == "world" and inputs.world is None:
        raise ValueError("light_hint is 'world' but no world environment was sent with the request")
    provider = inputs.provider
    if provider == "auto":
        provider = "scene" if inputs.mesh is not None else "inflate"
    if provider not in GEOMETRY_PROVIDERS:
        raise ValueError(f"unknown geometry provider {provider!r}; available: {', '.join(GEOMETRY_PROVIDERS)}")
    if provider == "scene" and inputs.mesh is None:
        raise ValueError("provider 'scene' needs a mesh: select a mesh object in the Relight panel")

    progress("segment", 0.02, "finding the object")
    seg_warnings: list[str] = []
    if inputs.mask is not None:
        mask = user_mask(inputs.mask, inputs.image.shape)
    else:
        mask = segment(inputs.image.srgb, warnings=seg_warnings)
    timings["segment"] = time.perf_counter() - t0

    progress("geometry", 0.08, f"geometry provider '{provider}'")
    t = time.perf_counter()
    if provider == "scene":
        geo = scene_geometry(inputs.mesh[0], inputs.mesh[1], inputs.camera, mask,
                             progress=lambda _, f, m="": progress("geometry", 0.08 + 0.1 * f, m),
                             corner_normals=inputs.corner_normals)
    elif provider in ("hunyuan3d", "command"):  # a generator's mesh, then the camera fitted to the photo's mask
        generator = make_generator(provider, inputs.generators)
        picture = to_uint8(np.concatenate([inputs.image.srgb[..., :3], mask[..., None]], -1))  # alpha = the mask
        v_gen, f_gen = generator.generate_mesh(picture, progress=lambda _, f, m="": progress(provider, 0.08 + 0.07 * f, m))
        geo = scene_geometry(v_gen, f_gen, None, mask,
                             progress=lambda _, f, m="": progress("geometry", 0.15 + 0.05 * f, m))
        geo.provider = provider
    else:
        geo = inflate(mask, inputs.camera)
    vn = geo.vertex_normals if geo.vertex_normals is not None else vertex_normals(geo.vertices, geo.faces)
    timings["geometry"] = time.perf_counter() - t

    progress("voxelize", 0.2, "sparse 64^3 voxels")
    t = time.perf_counter()
    voxels = voxelize(geo.vertices, geo.faces, vn)
    pts, nrm, _, _, spacing = sample_surface(geo.vertices, geo.faces, vn, inputs.n_gaussians, seed=0)
    timings["voxelize"] = time.perf_counter() - t

    progress("visibility", 0.3, f"visibility of {len(pts)} Gaussians over {VIS_DIRECTIONS} directions")
    t = time.perf_counter()
    ao, vis_bits = surface_visibility(geo.vertices, geo.faces, vn, pts, nrm,  # AO [N], bits [N, D / 8]
                                      progress=lambda f: progress("visibility", 0.3 + 0.15 * f,
                                                                  f"ray casting: {f:.0%} of {len(pts)} Gaussians"))
    keep = ~sealed(vis_bits)  # points inside the surface would show through it as dark specks
    pts, nrm, ao, vis_bits = pts[keep], nrm[keep], ao[keep], vis_bits[keep]
    timings["visibility"] = time.perf_counter() - t

    progress("gaussians", 0.45, f"{len(pts)} surface Gaussians")
    g = surface_gaussians(pts, nrm, ao, vis_bits, assign(pts, voxels), spacing)
    thumb = to_uint8(inputs.image.srgb)
    asset = RelightableAsset(
        asset_id=inputs.content_id(), name=inputs.name, vertices=geo.vertices, faces=geo.faces, vertex_normals=vn,
        gaussians=g, voxels=voxels, model_matrix=geo.model_matrix, input_camera=geo.camera, thumbnail=thumb,
        meta={"provider": provider},
    )

    progress("delight", 0.5, f"removing the input lighting ({inputs.light_hint})")
    t = time.perf_counter()
    cam_world = camera_to_world(geo.camera, geo.model_matrix)
    problem = prepare(img[..., :3], mask, asset, cam_world, inputs.light_hint, inputs.world, spacing,
                      inputs.image.ceiling)  # fmt: skip
    if not inputs.delight:
        mats = baseline(problem)
    else:
        scores = {}
        mats = solve(problem, first_hypothesis(problem, scores, progress), scores, progress)
    timings["delight"] = time.perf_counter() - t

    reproduction, warnings, tried = None, [], []
    if mats.light is not None:  # the self-check: the asset under the light it was solved under, against the photo
        progress("self-check", 0.97, "re-rendering the input view under the solved light")
        t = time.perf_counter()
        mats, reproduction, tried = checked(problem, mats, mask, progress)
        warnings = warnings_for(reproduction, inputs.light_hint, tried)
        timings["self_check"] = time.perf_counter() - t
    g.albedo, g.roughness, g.metallic = mats.albedo, mats.roughness, mats.metallic
    asset.meta = {
        "provider": provider, "light_hint": inputs.light_hint, "relight_version": __version__,
        "pipeline_version": PIPELINE_VERSION, "seen_fraction": float(mats.seen.mean()),
        "estimated_light_sh9": mats.light_sh9.tolist(), "material_search": mats.scores,
        "roughness": float(mats.roughness.mean()), "metallic": float(mats.metallic.mean()), "timings": timings,
        "gaussians": len(g), "faces": int(len(geo.faces)), "voxels": int(len(voxels)),
        "reproduction_psnr": None if reproduction is None or not np.isfinite(reproduction) else float(reproduction),
        "material_readings": tried, "warnings": seg_warnings + geo.warnings + warnings, **geo.meta,
    }
    timings["total"] = time.perf_counter() - t0
    progress("done", 1.0, f"asset {asset.asset_id}: {len(g)} Gaussians, {len(voxels)} voxels")
    return asset
