"""The job handlers: a request's validated content (relight_protocol.messages returns final dtypes and defaults) ->
the product's inputs, built here once -> reply content. The server imports this module on the first job, as it
pulls in torch and numba; a failed import is reported by name to every job request."""

import os
import tempfile
import time

import numpy as np
from relight_protocol.archive import unpack_archive
from relight_protocol.errors import GeneratorFailed, InvalidRequest
from relight_protocol.lru import LRU

from ..core.camera import Camera
from ..core.envmap import Environment, default_environment
from ..core.input_image import InputImage
from ..export.bake import bake_glb
from ..export.filenames import safe_filename
from ..generate.geometry.command import GeneratorError
from ..generate.geometry.mesh_file import MeshFileError, read_mesh_bytes
from ..generate.pipeline import GenerateInputs, generate
from ..generate.segment import NoObjectError
from ..reconstruct.asset import asset_from_reconstruction, content_id
from ..reconstruct.files import glb_bytes
from ..reconstruct.inputs import ReconstructInputError, load_views
from ..reconstruct.pipeline import ReconstructSettings, reconstruct
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


def corner_normals_to_world(mesh: dict) -> np.ndarray | None:
    """The mesh's per-corner normals [F, 3, 3] object space -> world (by the inverse transpose of matrix_world),
    unit; None when the mesh came without them."""
    n = mesh.get("corner_normals")
    if n is None:
        return None
    n = n.astype(np.float64) @ np.linalg.inv(mesh["matrix_world"][:3, :3])
    return (n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def request_mesh(req: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """The request's mesh in world space, (vertices, faces, corner normals [F, 3, 3] or None): arrays with their
    matrix_world, or a mesh file read by the same reader as `relight generate --mesh` (an unusable file is an
    InvalidRequest naming it)."""
    if req.get("mesh_file") is not None:
        mf = req["mesh_file"]
        try:
            return read_mesh_bytes(mf["data"].tobytes(), mf["format"], f"the sent .{mf['format']} file", mf["up"],
                                   with_normals=True)
        except MeshFileError as e:
            raise InvalidRequest(str(e)) from None
    if req["mesh"] is None:
        return None
    return (*mesh_to_world(req["mesh"]), corner_normals_to_world(req["mesh"]))


def generate_inputs(req: dict, generators=None) -> GenerateInputs:
    """A validated generate request -> the pipeline's inputs (generators: the server's GeneratorSettings)."""
    mesh = request_mesh(req)
    return GenerateInputs(
        mesh=mesh[:2] if mesh is not None else None,
        mask=req.get("mask"),
        corner_normals=mesh[2] if mesh is not None else None,
        generators=generators,
        image=InputImage.from_pixels(req["image"], req["colorspace"]),
        name=req["name"],
        provider=req["provider"],
        light_hint=req["light_hint"],
        camera=camera(req["camera"]) if req["camera"] is not None else None,
        world=environment(req["world"]) if req["world"] is not None else None,
        n_gaussians=req["gaussians"],
    )


def run_generate(server, req: dict, progress) -> dict:
    t0 = time.perf_counter()
    inputs = generate_inputs(req, server.generators)
    content_id = inputs.content_id()
    reused = server.store.has(content_id)
    if reused:  # same inputs as a stored asset: geometry is never recomputed
        asset = server.asset(content_id)
        progress("done", 1.0, f"asset {content_id} was generated before; reusing it")
    else:
        try:
            asset = generate(inputs, progress)
        except GeneratorError as e:  # not installed, no weights, the program failed: said plainly, no traceback
            raise GeneratorFailed(str(e)) from None
        except NoObjectError as e:  # an image with no usable object in it: the request's fault, said as such
            raise InvalidRequest(str(e)) from None
        progress("store", 1.0, "writing the asset to the store")
        server.store.put(asset)
    progress("done", 1.0, "preparing the interactive preview")
    prepare_preview(server.asset(asset.asset_id))  # the instance later renders get from the store's cache
    stats = {"seconds": round(time.perf_counter() - t0, 3), "reused": reused,
             "vertices": int(len(asset.vertices)), "faces": int(len(asset.faces)),
             "voxels": int(len(asset.voxels)), "gaussians": int(len(asset.gaussians)),
             "timings": asset.meta.get("timings", {})}  # fmt: skip
    return {"asset_id": asset.asset_id, "name": asset.name, "stats": stats, "self_check": self_check(asset)}


def run_reconstruct(server, req: dict, progress) -> dict:
    """The G-buffer folder (a zip on the wire) -> the one loader the CLI uses -> reconstruct -> a stored asset that
    carries its own GLB. Bad views come back as InvalidRequest naming the view and the domain."""
    t0 = time.perf_counter()
    settings = ReconstructSettings(texture_size=req["texture_size"], optimise=req["optimise"])
    with tempfile.TemporaryDirectory(prefix="relight-views-") as folder:
        unpack_archive(req["archive"].tobytes(), folder)
        try:
            views = load_views(folder)
        except ReconstructInputError as e:
            raise InvalidRequest(str(e)) from None
        except (OSError, ValueError) as e:  # a file in the archive no reader decodes: named as the sender named it
            raise InvalidRequest(f"the archive's files cannot be read: {str(e).replace(folder + os.sep, '')}") from None
    asset_id = content_id(views, settings.key())
    reused = server.store.has(asset_id)
    if reused:
        asset = server.asset(asset_id)
        progress("done", 1.0, f"asset {asset_id} was reconstructed before; reusing it")
    else:
        try:
            mesh = reconstruct(views, progress, settings)
        except ReconstructInputError as e:
            raise InvalidRequest(str(e)) from None
        progress("done", 0.99, "surface Gaussians from the baked maps")
        asset = asset_from_reconstruction(mesh, views, asset_id, req["name"], baked_glb=glb_bytes(mesh, req["name"]))
        server.store.put(asset)
    prepare_preview(server.asset(asset.asset_id))
    stats = {"seconds": round(time.perf_counter() - t0, 3), "reused": reused, "views": views.n_views,
             "faces": int(len(asset.faces)), "gaussians": int(len(asset.gaussians)),
             "timings": asset.meta.get("timings", {})}  # fmt: skip
    return {"asset_id": asset.asset_id, "name": asset.name, "stats": stats, "self_check": self_check(asset),
            "data": np.frombuffer(asset.baked_glb, dtype=np.uint8), "filename": safe_filename(asset.name, ".glb")}


def run_match_photo(server, req: dict, progress) -> dict:
    """The photo's object mask and a mesh -> the camera that sees the mesh as the photo does (silhouette
    alignment), world space, with the IoU it reached and a warning when the outline does not match."""
    from ..generate.geometry.camera_fit import fit_camera
    from ..generate.segment import segment, user_mask

    image = InputImage.from_pixels(req["image"], req["colorspace"])
    progress("segment", 0.05, "finding the object in the photo")
    try:
        mask = user_mask(req["mask"], image.shape) if req.get("mask") is not None else segment(image.srgb)
    except NoObjectError as e:
        raise InvalidRequest(str(e)) from None
    vertices, faces, _ = request_mesh(req)
    fit = fit_camera(vertices, faces, mask, focal_px=req["focal_px"], progress=progress)
    return {"camera": fit.camera.to_dict(), "iou": float(fit.iou), "warning": fit.warning,
            "seconds": round(float(fit.seconds), 3)}


def self_check(asset) -> dict:
    """What the artist is shown of how sure the asset is: the reproduction figure (dB, None when not checked: no
    delighting, or an asset made before the check existed), the solved roughness and metallic, the readings of the
    material that were solved and checked (more than one when the first reproduced the photo poorly: each with its
    roughness, metallic, how it was reached, reproduction and whether it was chosen), warnings."""
    meta = asset.meta or {}
    return {"reproduction_psnr": meta.get("reproduction_psnr"), "roughness": meta.get("roughness"),
            "metallic": meta.get("metallic"), "readings": list(meta.get("material_readings", [])),
            "warnings": list(meta.get("warnings", []))}  # fmt: skip


def run_render(server, req: dict, progress) -> dict:
    """A frame of a stored asset: its world sent or named by world_id (service.worlds), the scene's lamps
    (render.lamps), the asset placed by asset_matrix (the placement object's matrix_world) when given."""
    from ..render.lamps import lamps_from_request
    from ..render.placement import placed
    from .worlds import world_environment

    t0 = time.perf_counter()
    asset = server.asset(req["asset_id"])
    world_id = None
    if req["world"] is None:
        env = environment(None)
    else:
        env, world_id = world_environment(req["world"])
    asset = placed(asset, req.get("asset_matrix"))
    result = render(asset, camera(req["camera"]), env, PRESETS[req["quality"]], background=req["background"],
                    progress=progress, lamps=lamps_from_request(req.get("lights")), passes=False)  # the image only
    timings = dict(result.timings)
    timings["server_total"] = round(time.perf_counter() - t0, 4)
    out = {"image": np.ascontiguousarray(result.rgba8, dtype=np.uint8), "timings": timings}
    if world_id is not None:
        out["world_id"] = world_id
    return out


def run_bake(server, req: dict, progress) -> dict:
    asset = server.asset(req["asset_id"])
    if req["format"] == "obj":  # OBJ + MTL + PNG maps, zipped (export.bake.bake_obj_archive)
        from ..export.bake import bake_obj_archive

        data = bake_obj_archive(asset, texture_size=req["texture_size"], progress=progress)
        return {"data": np.frombuffer(data, dtype=np.uint8), "filename": safe_filename(asset.name, ".zip"),
                "format": "obj", "provider": str((asset.meta or {}).get("provider", ""))}
    if asset.baked_glb is not None:  # a reconstruction: its own maps (normal map included), as baked
        progress("bake", 1.0, "the reconstruction's own baked GLB")
        data = asset.baked_glb
    else:
        data = bake_glb(asset, texture_size=req["texture_size"], progress=progress)
    return {"data": np.frombuffer(data, dtype=np.uint8), "filename": safe_filename(asset.name, ".glb"),
            "format": req["format"], "provider": str((asset.meta or {}).get("provider", ""))}


JOB_HANDLERS = {"generate": run_generate, "reconstruct": run_reconstruct, "match_photo": run_match_photo,
                "render": run_render, "bake": run_bake}  # action -> handler  # action -> handler


# ---------------------------------------------------------------------------------------------- issue 16: passes,
# splats and turntables

def run_passes(server, req: dict, progress) -> dict:
    """The render request's view -> the asset's decomposition there: {passes: {albedo [H, W, 3] linear, roughness
    [H, W, 1], metallic [H, W, 1], normal [H, W, 3] world space in [-1, 1], shadow [H, W, 3] visibility of the
    world's light (1 = unshadowed)} float32, alpha [H, W, 1] float32, image [H, W, 4] uint8 (the relit frame)}; the
    asset placed by asset_matrix when given."""
    from relight_protocol.vocabulary import PASS_NAMES

    from ..render.placement import placed

    asset = placed(server.asset(req["asset_id"]), req.get("asset_matrix"))
    result = render(asset, camera(req["camera"]), environment(req["world"]), PRESETS[req["quality"]],
                    background=False, progress=progress)  # fmt: skip
    passes = {k: np.ascontiguousarray(result.passes[k], dtype=np.float32) for k in PASS_NAMES if k in result.passes}
    if "shadow" in passes:  # a visibility: the preview's low-rank transfer (transfer.py) overshoots 1 by up to ~7 %
        np.clip(passes["shadow"], 0.0, 1.0, out=passes["shadow"])
    return {"passes": passes, "alpha": np.ascontiguousarray(result.alpha, dtype=np.float32),
            "image": np.ascontiguousarray(result.rgba8, dtype=np.uint8)}


def run_splats(server, req: dict, progress) -> dict:
    """The asset's Gaussians, world space, as the standard 3DGS PLY with PBR fields (export.ply): what `Import
    Splats` turns into a point object, the same bytes a `.ply` written by relight holds."""
    from ..export.ply import splats_ply

    asset = server.asset(req["asset_id"])
    progress("splats", 0.5, f"{len(asset.gaussians)} Gaussians")
    data = splats_ply(asset)
    return {"data": np.frombuffer(data, dtype=np.uint8), "filename": safe_filename(asset.name, ".ply"),
            "gaussians": int(len(asset.gaussians)), "provider": str((asset.meta or {}).get("provider", ""))}


def turntable_camera(asset, req_camera: dict | None, size: int = 512):
    """The request's camera, else the asset's input camera in world space at size² pixels."""
    from ..core.frames import camera_to_world

    if req_camera is not None:
        return camera(req_camera)
    return camera_to_world(asset.input_camera, asset.model_matrix).resized(size, size)


def run_turntable(server, req: dict, progress) -> dict:
    """{asset_id, camera, world, frames, mode, fps, quality, background, asset_matrix} -> {data: the mp4's bytes,
    filename, frames, width, height, fps}; progress per frame, cancellable between frames. The asset placed by
    asset_matrix, when given, is what the camera orbits (about its centre)."""
    from ..export.video import encode_mp4
    from ..render.placement import placed
    from ..render.turntable import turntable_frames

    t0 = time.perf_counter()
    asset = placed(server.asset(req["asset_id"]), req.get("asset_matrix"))
    cam = turntable_camera(asset, req["camera"])
    frames = turntable_frames(asset, cam, environment(req["world"]), req["frames"], req["mode"],
                              PRESETS[req["quality"]], req["background"], progress)  # fmt: skip
    data = encode_mp4(frames, req["fps"])
    progress("turntable", 1.0, f"{req['frames']} frames encoded")
    return {"data": np.frombuffer(data, dtype=np.uint8), "filename": safe_filename(f"{asset.name}_{req['mode']}", ".mp4"),
            "frames": req["frames"], "width": cam.width, "height": cam.height, "fps": req["fps"],
            "seconds": round(time.perf_counter() - t0, 3)}


JOB_HANDLERS.update({"passes": run_passes, "splats": run_splats, "turntable": run_turntable})
