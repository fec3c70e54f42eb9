"""Message types, constructors for requests/replies/progress, and validation of request content."""

import math
import re

import numpy as np

from . import limits
from .envelope import Message
from .errors import InvalidRequest, ProtocolError, UnknownMessageType
from .fields import (_bad, as_array, as_bool, as_choice, as_float, as_id, as_int, as_matrix, as_name,  # noqa: F401
                     as_str, require)
from .vocabulary_lights import LAMP_TYPES
from .vocabulary import (BAKE_FORMATS, COLORSPACES, DEFAULT_GAUSSIANS, DEFAULT_TEXTURE_SIZE, LIGHT_HINTS,  # noqa: F401
                         MESH_FORMATS, MESH_UP, PROVIDERS, RENDER_QUALITIES)  # (the protocol's words)

LIBRARY_ACTIONS = ("list_assets", "delete_asset")  # answered at once by the server, like hello, ping and cancel
JOB_ACTIONS = ("generate", "reconstruct", "match_photo", "render", "bake",  # run as cancellable jobs with progress
               "passes", "splats", "turntable")
ACTIONS = ("hello", "ping", "cancel", *LIBRARY_ACTIONS, *JOB_ACTIONS)
PROGRESS = "progress"
ERROR_REPLY = "error_reply"  # reply to frames so broken that no request type is known



def request_type(action: str) -> str:
    return f"{action}_request"


def action_of(msg_type: str) -> str | None:
    """'render_request' -> 'render'; None for anything that is not a request type."""
    return msg_type[: -len("_request")] if msg_type.endswith("_request") and len(msg_type) > 8 else None


def reply_type(msg_type: str | None) -> str:
    """The reply type answering a request type ('x_request' -> 'x_reply'), else 'error_reply'."""
    action = action_of(msg_type) if isinstance(msg_type, str) else None
    return f"{action}_reply" if action else ERROR_REPLY


def check_known(msg_type: str) -> str:
    """The action of a request type this protocol defines; raises UnknownMessageType otherwise."""
    action = action_of(msg_type)
    if action not in ACTIONS:
        known = ", ".join(request_type(a) for a in ACTIONS)
        raise UnknownMessageType(f"unknown message type {msg_type!r}; this server understands {known}")
    return action


# ---------------------------------------------------------------------------------------------- constructors

def make_request(msg_type: str, content: dict | None = None) -> Message:
    return Message(msg_type, dict(content or {}))


def make_reply(parent: Message, content: dict | None = None) -> Message:
    """An ok reply to `parent` (status defaults to "ok")."""
    body = {"status": "ok"}
    body.update(content or {})
    return Message(reply_type(parent.msg_type), body, parent_id=parent.msg_id)


def make_error_reply(parent_header: dict | Message | None, ename: str, evalue: str) -> Message:
    """An error reply; parent_header is the request's header (or Message), or None when it could not be parsed.
    It never carries a traceback, and absolute paths in `evalue` are redacted (redact_paths)."""
    if isinstance(parent_header, Message):
        parent_header = parent_header.header
    msg_type = parent_header.get("msg_type") if parent_header else None
    parent_id = parent_header.get("msg_id") if parent_header else None
    content = {"status": "error", "ename": ename, "evalue": redact_paths(str(evalue))}
    return Message(reply_type(msg_type), content, parent_id=parent_id)


# An absolute path of two or more parts (POSIX, ~/..., or a Windows drive): what a server must not show its peers.
_PATH_RE = re.compile(r"""(?<![\w.~/\\-])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\'"(),;:]+[/\\])+[^\s/\\'"(),;:]*""")


def redact_paths(text: str) -> str:
    """`text` with every absolute path replaced by '<path>/<its last part>', so an error can still name the file
    without showing where the server keeps it."""
    def short(m: re.Match) -> str:
        last = re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1]
        return f"<path>/{last}" if last else "<path>"

    return _PATH_RE.sub(short, text)


def error_reply_for(exc: BaseException, parent_header: dict | Message | None = None,
                    with_traceback: bool = False) -> Message:
    """Error reply for an exception: ProtocolErrors use their ename and message; anything else is an internal
    error, named by its class. No reply carries a traceback or a server path (make_error_reply redacts paths);
    the server logs the traceback itself. `with_traceback` is accepted for older callers and ignored."""
    if isinstance(exc, ProtocolError):
        return make_error_reply(parent_header, exc.ename, str(exc) or exc.ename)
    ename = type(exc).__name__
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ename
    return make_error_reply(parent_header, ename, f"the server failed on this request ({ename}: {detail}); "
                                                  "its log has the details")


def make_progress(parent_id: str, stage: str, fraction: float, message: str = "") -> Message:
    fraction = min(1.0, max(0.0, float(fraction))) if math.isfinite(fraction) else 0.0
    return Message(PROGRESS, {"stage": str(stage), "fraction": fraction, "message": str(message)}, parent_id=parent_id)


# ---------------------------------------------------------------------------------------------- composites

def validate_camera(value, where: str = "camera") -> dict:
    """{viewmat [4,4] world-to-camera OpenCV, K [3,3] pixels, width, height} with sane values."""
    viewmat = as_matrix(require(value, "viewmat", where), f"{where}.viewmat", 4, 4)
    K = as_matrix(require(value, "K", where), f"{where}.K", 3, 3)
    width = as_int(require(value, "width", where), f"{where}.width", 1, limits.MAX_RENDER_SIDE, "MAX_RENDER_SIDE")
    height = as_int(require(value, "height", where), f"{where}.height", 1, limits.MAX_RENDER_SIDE, "MAX_RENDER_SIDE")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InvalidRequest(f"{where}.K must have positive focal lengths K[0][0] and K[1][1]")
    if abs(np.linalg.det(viewmat[:3, :3])) < 1e-9:
        raise InvalidRequest(f"{where}.viewmat has a singular rotation part")
    return {"viewmat": viewmat, "K": K, "width": width, "height": height}


def validate_world(value, where: str = "world") -> dict:
    """{equirect [h,w,3] float32 linear, rotation_z radians, strength}."""
    eq = as_array(require(value, "equirect", where), f"{where}.equirect", ("float32", "float16"), 3, (3, 4))
    h, w = eq.shape[:2]
    if max(h, w) > limits.MAX_ENV_SIDE:
        raise limits.over("MAX_ENV_SIDE", f"{where}.equirect is {w}x{h} pixels")
    if h < 1 or w < 2:
        raise InvalidRequest(f"{where}.equirect is empty ({w}x{h} pixels)")
    eq = eq[..., :3].astype(np.float32, copy=False)
    if not np.all(np.isfinite(eq)):
        raise InvalidRequest(f"{where}.equirect contains NaN or infinite pixels")
    rotation = as_float(value.get("rotation_z", 0.0), f"{where}.rotation_z")
    strength = as_float(value.get("strength", 1.0), f"{where}.strength")
    if strength < 0:
        raise InvalidRequest(f"{where}.strength must be >= 0, got {strength}")
    return {"equirect": eq, "rotation_z": rotation, "strength": strength}


def validate_world_ref(value, where: str = "world") -> dict:
    """A render's world: the equirect itself (validate_world), optionally named by world_id so later frames can send
    only {world_id, rotation_z, strength} (protocol 1.2: the server keeps recent worlds with their prefiltered data)
    -> {equirect or None, world_id or None, rotation_z, strength}."""
    world_id = value.get("world_id") if isinstance(value, dict) else None
    world_id = as_id(world_id, f"{where}.world_id") if world_id is not None else None
    if isinstance(value, dict) and value.get("equirect") is None and world_id is not None:
        rotation = as_float(value.get("rotation_z", 0.0), f"{where}.rotation_z")
        strength = as_float(value.get("strength", 1.0), f"{where}.strength")
        if strength < 0:
            raise InvalidRequest(f"{where}.strength must be >= 0, got {strength}")
        return {"equirect": None, "world_id": world_id, "rotation_z": rotation, "strength": strength}
    return {**validate_world(value, where), "world_id": world_id}


def validate_lamp(value, where: str) -> dict:
    """One scene lamp in world space (Blender's units): {type: sun|point|spot|area, color [3] linear, energy (W, or
    W/m^2 for a sun), position [3], direction [3] (where it shines), size (m: radius, or the area's edge),
    spot_size (rad, full cone angle), spot_blend [0, 1], shadows bool}."""
    kind = as_choice(require(value, "type", where), f"{where}.type", LAMP_TYPES)
    color = as_matrix([value.get("color", [1.0, 1.0, 1.0])], f"{where}.color", 1, 3)[0]
    energy = as_float(require(value, "energy", where), f"{where}.energy")
    position = as_matrix([value.get("position", [0.0, 0.0, 0.0])], f"{where}.position", 1, 3)[0]
    direction = as_matrix([value.get("direction", [0.0, 0.0, -1.0])], f"{where}.direction", 1, 3)[0]
    if energy < 0 or np.any(color < 0):
        raise InvalidRequest(f"{where}.energy and {where}.color must be >= 0")
    if np.linalg.norm(direction) < 1e-9:
        raise InvalidRequest(f"{where}.direction must not be the zero vector")
    size = as_float(value.get("size", 0.0), f"{where}.size")
    spot_size = as_float(value.get("spot_size", math.pi / 4), f"{where}.spot_size")
    spot_blend = as_float(value.get("spot_blend", 0.15), f"{where}.spot_blend")
    if size < 0 or not 0 < spot_size <= math.pi or not 0 <= spot_blend <= 1:
        raise InvalidRequest(f"{where}: size must be >= 0, spot_size in (0, pi] radians and spot_blend in [0, 1]")
    return {"type": kind, "color": color, "energy": energy, "position": position,
            "direction": direction / np.linalg.norm(direction), "size": size, "spot_size": spot_size,
            "spot_blend": spot_blend, "shadows": as_bool(value.get("shadows", True), f"{where}.shadows")}


def validate_lamps(value, where: str = "lights") -> list[dict]:
    """The render's scene lamps: a list of validate_lamp objects, at most limits.MAX_LIGHTS."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(where, "a list of lamps", value)
    if len(value) > limits.MAX_LIGHTS:
        raise limits.over("MAX_LIGHTS", f"{where} has {len(value)} lamps")
    return [validate_lamp(v, f"{where}[{i}]") for i, v in enumerate(value)]


def validate_matrix_world(value, where: str = "asset_matrix") -> np.ndarray | None:
    """The asset's placement in the scene: the [4, 4] affine matrix_world of its placement object (an empty or the
    imported mesh), applied after the asset's own placement (None or the identity: where it was made)."""
    if value is None:
        return None
    m = as_matrix(value, where, 4, 4)
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0]) or abs(np.linalg.det(m[:3, :3])) < 1e-12:
        raise InvalidRequest(f"{where} must be an invertible affine 4x4 matrix (last row 0 0 0 1)")
    return m


def validate_mesh(value, where: str = "mesh") -> dict:
    """{vertices [V,3] float32 object space, faces [F,3] int32, matrix_world [4,4], corner_normals [F,3,3] float32
    object space or absent (smooth)} with faces in range."""
    v = as_array(require(value, "vertices", where), f"{where}.vertices", ("float32", "float64"), 2, (3,))
    f = as_array(require(value, "faces", where), f"{where}.faces", ("int32", "uint32", "int64"), 2, (3,))
    if len(v) > limits.MAX_VERTICES:
        raise limits.over("MAX_VERTICES", f"{where} has {len(v)} vertices")
    if len(f) > limits.MAX_FACES:
        raise limits.over("MAX_FACES", f"{where} has {len(f)} faces")
    if len(v) < 3 or len(f) < 1:
        raise InvalidRequest(f"{where} needs at least 3 vertices and 1 face, got {len(v)} and {len(f)}")
    if not np.all(np.isfinite(v)):
        raise InvalidRequest(f"{where}.vertices contains NaN or infinite values")
    if f.min() < 0 or f.max() >= len(v):
        raise InvalidRequest(f"{where}.faces index vertices outside 0..{len(v) - 1} "
                             f"(min {int(f.min())}, max {int(f.max())})")
    matrix = as_matrix(require(value, "matrix_world", where), f"{where}.matrix_world", 4, 4)
    corner = None
    if value.get("corner_normals") is not None:  # the artist's shading: flat faces, sharp edges, custom normals
        corner = as_array(value["corner_normals"], f"{where}.corner_normals", ("float32", "float16"), 3, (3,))
        if corner.shape != (len(f), 3, 3):
            raise InvalidRequest(f"{where}.corner_normals must be [faces, 3, 3] = [{len(f)}, 3, 3], got "
                                 f"{list(corner.shape)}")
        if not np.all(np.isfinite(corner)):
            raise InvalidRequest(f"{where}.corner_normals contains NaN or infinite values")
        corner = corner.astype(np.float32, copy=False)
    return {"vertices": v.astype(np.float32, copy=False), "faces": f.astype(np.int32, copy=False),
            "matrix_world": matrix, "corner_normals": corner}


def validate_mesh_file(value, where: str = "mesh_file") -> dict:
    """{data: the file's bytes as a uint8 array, format: one of MESH_FORMATS, up: one of MESH_UP}; the backend's
    one mesh-file reader checks the content."""
    data = as_array(require(value, "data", where), f"{where}.data", ("uint8",), 1)
    if data.size == 0:
        raise InvalidRequest(f"{where}.data is empty")
    return {"data": data, "format": as_choice(require(value, "format", where), f"{where}.format", MESH_FORMATS),
            "up": as_choice(value.get("up", "auto"), f"{where}.up", MESH_UP)}


def validate_image(content: dict) -> tuple[np.ndarray, str]:
    """The request's photo [H, W, 3|4] uint8 or float32 (finite) and how it is encoded (colorspace)."""
    image = as_array(require(content, "image"), "image", ("uint8", "float32"), 3, (3, 4))
    h, w = image.shape[:2]
    if max(h, w) > limits.MAX_IMAGE_SIDE:
        raise limits.over("MAX_IMAGE_SIDE", f"image is {w}x{h} pixels")
    if h < 1 or w < 1:
        raise InvalidRequest(f"image is empty ({w}x{h} pixels)")
    if min(h, w) < limits.MIN_IMAGE_SIDE:
        raise InvalidRequest(f"image is {w}x{h} pixels, too small to find an object in; the limit MIN_IMAGE_SIDE is "
                             f"{limits.MIN_IMAGE_SIDE} pixels per side")
    if image.dtype == np.float32 and not np.all(np.isfinite(image)):
        raise InvalidRequest("image contains NaN or infinite pixels")
    default_cs = "srgb" if image.dtype == np.uint8 else "linear"
    return image, as_choice(content.get("colorspace", default_cs), "colorspace", COLORSPACES)


def validate_mask(value, shape: tuple, where: str = "mask") -> np.ndarray:
    """The object's mask as the user gave it: [H, W] uint8 (object > 127) or bool, of the image's (H, W)."""
    m = as_array(value, where, ("uint8", "bool"), 2)
    if m.shape != tuple(shape):
        raise InvalidRequest(f"{where} is {m.shape[1]}x{m.shape[0]} pixels but the image is {shape[1]}x{shape[0]}")
    return m


def validate_match_photo(content: dict) -> dict:
    """{image, colorspace, mesh (arrays) or mesh_file, focal_px (optional, pixels: fixed when given)}."""
    image, colorspace = validate_image(content)
    out = {"image": image, "colorspace": colorspace,
           "mesh": validate_mesh(content["mesh"]) if content.get("mesh") is not None else None,
           "mesh_file": validate_mesh_file(content["mesh_file"]) if content.get("mesh_file") is not None else None,
           "focal_px": None,
           "mask": validate_mask(content["mask"], image.shape[:2]) if content.get("mask") is not None else None}
    if (out["mesh"] is None) == (out["mesh_file"] is None):
        raise InvalidRequest("match_photo needs the mesh to fit: send mesh (arrays) or mesh_file, exactly one")
    if content.get("focal_px") is not None:
        out["focal_px"] = as_float(content["focal_px"], "focal_px")
        if out["focal_px"] <= 0:
            raise InvalidRequest(f"focal_px must be > 0 pixels, got {out['focal_px']}")
    return out


def validate_generate(content: dict) -> dict:
    image, colorspace = validate_image(content)
    out = {
        "image": image,
        "colorspace": colorspace,
        "name": as_name(content.get("name", "asset"), "name"),
        "provider": as_choice(content.get("provider", "auto"), "provider", PROVIDERS),
        "light_hint": as_choice(content.get("light_hint", "unknown"), "light_hint", LIGHT_HINTS),
        "mesh": validate_mesh(content["mesh"]) if content.get("mesh") is not None else None,
        "mesh_file": validate_mesh_file(content["mesh_file"]) if content.get("mesh_file") is not None else None,
        "camera": validate_camera(content["camera"]) if content.get("camera") is not None else None,
        "world": validate_world(content["world"]) if content.get("world") is not None else None,
        "mask": validate_mask(content["mask"], image.shape[:2]) if content.get("mask") is not None else None,
        "gaussians": as_int(content.get("gaussians", DEFAULT_GAUSSIANS), "gaussians", limits.MIN_GAUSSIANS,
                            limits.MAX_GAUSSIANS, "MAX_GAUSSIANS"),
    }
    if out["mesh"] is not None and out["mesh_file"] is not None:
        raise InvalidRequest("send either mesh (arrays) or mesh_file (a file's bytes), not both")
    if out["provider"] == "scene" and out["mesh"] is None and out["mesh_file"] is None:
        raise InvalidRequest("provider 'scene' needs a mesh; select a mesh object or use provider 'inflate'")
    if out["light_hint"] == "world" and out["world"] is None:
        raise InvalidRequest("light_hint 'world' needs the world environment in the 'world' field")
    return out


def validate_reconstruct(content: dict) -> dict:
    """{archive: the G-buffer folder as zip bytes (relight_protocol.archive.pack_folder), name, texture_size,
    optimise}. The folder's content is checked by the backend's loader, which names the view and the domain."""
    archive = as_array(require(content, "archive"), "archive", ("uint8",), 1)
    if archive.size == 0:
        raise InvalidRequest("archive is empty")
    return {
        "archive": archive,
        "name": as_name(content.get("name", "reconstruction"), "name"),
        "texture_size": as_int(content.get("texture_size", DEFAULT_TEXTURE_SIZE), "texture_size", 16,
                               limits.MAX_TEXTURE_SIZE, "MAX_TEXTURE_SIZE"),
        "optimise": as_bool(content.get("optimise", True), "optimise"),
    }


def validate_render(content: dict) -> dict:
    world = content.get("world")
    return {
        "asset_id": as_id(require(content, "asset_id"), "asset_id"),
        "camera": validate_camera(require(content, "camera")),
        "world": validate_world_ref(world) if world is not None else None,
        "lights": validate_lamps(content.get("lights")),
        "asset_matrix": validate_matrix_world(content.get("asset_matrix")),
        "background": as_bool(content.get("background", False), "background"),
        "quality": as_choice(content.get("quality", "preview"), "quality", RENDER_QUALITIES),
    }


def validate_bake(content: dict) -> dict:
    return {
        "asset_id": as_id(require(content, "asset_id"), "asset_id"),
        "texture_size": as_int(content.get("texture_size", DEFAULT_TEXTURE_SIZE), "texture_size", 16,
                               limits.MAX_TEXTURE_SIZE, "MAX_TEXTURE_SIZE"),
        "format": as_choice(content.get("format", "glb"), "format", BAKE_FORMATS),
    }


def validate_cancel(content: dict) -> dict:
    return {"job_id": as_str(require(content, "job_id"), "job_id", limits.MAX_ID_CHARS, "MAX_ID_CHARS")}


def validate_list_assets(content: dict) -> dict:
    """{} -> every asset of the store (newest first) with a LIBRARY_THUMB_SIDE² thumbnail each."""
    return {}


def validate_delete_asset(content: dict) -> dict:
    return {"asset_id": as_id(require(content, "asset_id"), "asset_id")}


def validate_splats(content: dict) -> dict:
    """{asset_id} -> the asset's Gaussians as a standard 3DGS PLY with PBR fields (world space)."""
    return {"asset_id": as_id(require(content, "asset_id"), "asset_id")}


def validate_turntable(content: dict) -> dict:
    """{asset_id, camera (the first frame's; default the asset's input camera at 512²), world, frames, mode
    (orbit|spin_world), fps, quality, asset_matrix (the placement, as a render's)} -> an H.264 mp4 of `frames`
    frames turning once."""
    from .vocabulary import TURNTABLE_MODES

    world, cam = content.get("world"), content.get("camera")
    out = {
        "asset_id": as_id(require(content, "asset_id"), "asset_id"),
        "camera": validate_camera(cam) if cam is not None else None,
        "world": validate_world(world) if world is not None else None,
        "frames": as_int(require(content, "frames"), "frames", 2, limits.MAX_TURNTABLE_FRAMES, "MAX_TURNTABLE_FRAMES"),
        "mode": as_choice(content.get("mode", "orbit"), "mode", TURNTABLE_MODES),
        "fps": as_int(content.get("fps", 24), "fps", 1, limits.MAX_TURNTABLE_FPS, "MAX_TURNTABLE_FPS"),
        "quality": as_choice(content.get("quality", "preview"), "quality", RENDER_QUALITIES),
        "background": as_bool(content.get("background", True), "background"),
        "asset_matrix": validate_matrix_world(content.get("asset_matrix")),
    }
    if out["camera"] is not None and (out["camera"]["width"] % 2 or out["camera"]["height"] % 2):
        raise InvalidRequest(f"turntable camera size must be even for H.264, got "
                             f"{out['camera']['width']}x{out['camera']['height']}")
    return out


VALIDATORS = {
    "hello": lambda content: {},
    "ping": lambda content: {},
    "generate": validate_generate,
    "reconstruct": validate_reconstruct,
    "match_photo": validate_match_photo,
    "render": validate_render,
    "bake": validate_bake,
    "cancel": validate_cancel,
    "list_assets": validate_list_assets,
    "delete_asset": validate_delete_asset,
    "passes": validate_render,  # a render's fields; the reply carries the passes
    "splats": validate_splats,
    "turntable": validate_turntable,
}


def validate_request(msg: Message) -> tuple[str, dict]:
    """(action, cleaned content with defaults) for a request; raises a ProtocolError naming the problem."""
    action = check_known(msg.msg_type)
    return action, VALIDATORS[action](msg.content)
