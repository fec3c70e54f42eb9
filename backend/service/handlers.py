"""The job handlers: a request's validated content (relight_protocol.messages returns final dtypes and defaults) ->
the product's inputs, built here once -> reply content. The server imports this module on the first job, as it
pulls in torch and numba; a failed import is reported by name to every job request."""

import time

import numpy as np
from relight_protocol.lru import LRU

from ..core.camera import Camera
from ..core.envmap import Environment, default_environment
from ..core.input_image import InputImage
from ..export.bake import bake_glb
from ..export.filenames import safe_filename
from ..generate.pipeline import GenerateInputs, generate
from ..render.frame import render
from ..render.settings import PRESETS
from ..render.shadows import prepare_preview

_DEFAULT_ENV = LRU(1)  # the studio HDRI, loaded on first use


def environment(world: dict | None) -> Environment:
    """A validated world {equirect [h, w, 3] float32, rotation_z, strength} -> Environment (prefiltered data is
    shared per image content: core.envmap keeps one cache by environment identity); None -> the default light."""
    if world is None:
        return _DEFAULT_ENV.get_or_make("default", default_environment)
    return Environment(world["equirect"], world["rotation_z"], world["strength"])


def camera(cam: dict) -> Camera:
    """A validated camera {viewmat [4, 4] world-to-camera OpenCV, K [3, 3], width, height} -> Camera."""
    return Camera(cam["viewmat"], cam["K"], cam["width"], cam["height"])


def mesh_to_world(mesh: dict) -> tuple[np.ndarray, np.ndarray]:
    """Validated object-space vertices [V, 3] and matrix_world [4, 4] -> (world vertices [V, 3] float32, faces)."""
    m = mesh["matrix_world"]
    v = mesh["vertices"].astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    return v.astype(np.float32), mesh["faces"]


def generate_inputs(req: dict) -> GenerateInputs:
    """A validated generate request -> the pipeline's inputs."""
    return GenerateInputs(
        image=InputImage.from_pixels(req["image"], req["colorspace"]),
        name=req["name"],
        provider=req["provider"],
        light_hint=req["light_hint"],
        mesh=mesh_to_world(req["mesh"]) if req["mesh"] is not None else None,
        camera=camera(req["camera"]) if req["camera"] is not None else None,
        world=environment(req["world"]) if req["world"] is not None else None,
    )


def run_generate(server, req: dict, progress) -> dict:
    t0 = time.perf_counter()
    inputs = generate_inputs(req)
    content_id = inputs.content_id()
    reused = server.store.has(content_id)
    if reused:  # same inputs as a stored asset: geometry is never recomputed
        asset = server.asset(content_id)
        progress("done", 1.0, f"asset {content_id} was generated before; reusing it")
    else:
        asset = generate(inputs, progress)
        server.store.put(asset)
    progress("done", 1.0, "preparing the interactive preview")
    prepare_preview(server.asset(asset.asset_id))  # the instance later renders get from the store's cache
    stats = {"seconds": round(time.perf_counter() - t0, 3), "reused": reused,
             "vertices": int(len(asset.vertices)), "faces": int(len(asset.faces)),
             "voxels": int(len(asset.voxels)), "gaussians": int(len(asset.gaussians)),
             "timings": asset.meta.get("timings", {})}  # fmt: skip
    return {"asset_id": asset.asset_id, "name": asset.name, "stats": stats, "self_check": self_check(asset)}


def self_check(asset) -> dict:
    """What the artist is shown of how sure the asset is: the reproduction figure (dB, None when not checked: no
    delighting, or an asset made before the check existed), the solved roughness and metallic, warnings."""
    meta = asset.meta or {}
    return {"reproduction_psnr": meta.get("reproduction_psnr"), "roughness": meta.get("roughness"),
            "metallic": meta.get("metallic"), "warnings": list(meta.get("warnings", []))}  # fmt: skip


def run_render(server, req: dict, progress) -> dict:
    t0 = time.perf_counter()
    asset = server.asset(req["asset_id"])
    result = render(asset, camera(req["camera"]), environment(req["world"]), PRESETS[req["quality"]],
                    background=req["background"], progress=progress)  # fmt: skip
    timings = dict(result.timings)
    timings["server_total"] = round(time.perf_counter() - t0, 4)
    return {"image": np.ascontiguousarray(result.rgba8, dtype=np.uint8), "timings": timings}


def run_bake(server, req: dict, progress) -> dict:
    asset = server.asset(req["asset_id"])
    data = bake_glb(asset, texture_size=req["texture_size"], progress=progress)
    return {"data": np.frombuffer(data, dtype=np.uint8), "filename": safe_filename(asset.name, ".glb"),
            "format": req["format"]}


JOB_HANDLERS = {"generate": run_generate, "render": run_render, "bake": run_bake}  # action -> handler
