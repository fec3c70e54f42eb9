"""The live preview's scene state: what the next frame depends on, read from the scene without reading a pixel (the
world's reference, the lamps, the asset's placement; the view is views.py's), and the frame written back."""

import numpy as np

from .scene_io import (MAX_ENV_WIDTH, PREVIEW_IMAGE_NAME, _set_byte_image, _world_background, _world_signature,
                       environment_texture)

LIVE_ASSET_PROP = "relight_asset_id"  # custom property naming the asset an object places (an empty or the import)
LIVE_REST_PROP = "relight_rest_matrix"  # its matrix_world (16 floats, row-major) when it was made: the asset's pose


def world_reference(world, max_width: int = MAX_ENV_WIDTH) -> tuple[str, float, float]:
    """(key, rotation_z, strength) of a world: the key names its light without the Mapping Z rotation and the
    Background strength (an Environment Texture image by name, file, size and colour space; any other world by its
    whole node tree), so turning the world or changing its strength never sends the equirect again. Cheap: no pixel
    is read. world_to_env gives the equirect itself."""
    import hashlib

    if world is None:
        return "", 0.0, 1.0
    bg = _world_background(world)
    hdri = environment_texture(bg)
    if hdri is not None:
        image, rotation_z = hdri
        key = (f"image|{image.name}|{image.filepath}|{tuple(image.size)}|{image.colorspace_settings.name}|"
               f"{image.is_float}|{image.is_dirty}|{max_width}")  # fmt: skip
        return hashlib.sha1(key.encode()).hexdigest(), rotation_z, float(bg.inputs["Strength"].default_value)
    return "nodes|" + _world_signature(world), 0.0, 1.0


def lamps_to_list(scene) -> list[dict]:
    """The scene's visible lamps -> [{type, color, energy, position, direction, size, spot_size, spot_blend,
    shadows}] in world space, Blender's units (relight_protocol.messages.validate_lamp)."""
    out = []
    for obj in scene.objects:
        if obj.type != "LIGHT" or not obj.visible_get():
            continue
        light = obj.data
        if light.type not in ("SUN", "POINT", "SPOT", "AREA"):
            continue
        m = obj.matrix_world
        direction = -np.array(m.to_3x3().col[2], dtype=np.float64)  # a lamp shines down its local -Z
        norm = float(np.linalg.norm(direction))
        if norm < 1e-12:
            continue
        lamp = {"type": light.type.lower(), "color": [float(c) for c in light.color], "energy": float(light.energy),
                "position": [float(c) for c in m.translation], "direction": (direction / norm).tolist(),
                "shadows": bool(light.use_shadow)}  # fmt: skip
        if light.type == "AREA":
            lamp["size"] = float(light.size)
        elif light.type != "SUN":
            lamp["size"] = float(light.shadow_soft_size)
        if light.type == "SPOT":
            lamp["spot_size"], lamp["spot_blend"] = float(light.spot_size), float(light.spot_blend)
        out.append(lamp)
    return out


def tag_placement(obj, asset_id: str) -> None:
    """Make `obj` the asset's placement: moving, turning or scaling it moves the live preview's asset."""
    obj[LIVE_ASSET_PROP] = str(asset_id)
    obj[LIVE_REST_PROP] = [float(x) for row in obj.matrix_world for x in row]


def asset_placement(scene, asset_id: str, active=None) -> list | None:
    """[4][4] the placement object's matrix_world relative to where it was made (matrix_world @ rest^-1), for the
    object in the scene tagged with asset_id (the active one if it is tagged, else the first); None without one."""
    tagged = [o for o in scene.objects if o.get(LIVE_ASSET_PROP) == asset_id]
    if not tagged:
        return None
    obj = active if active is not None and active in tagged else tagged[0]
    m = np.array(obj.matrix_world, dtype=np.float64)
    rest = obj.get(LIVE_REST_PROP)
    if rest is not None and len(rest) == 16:
        r = np.array(list(rest), dtype=np.float64).reshape(4, 4)
        if abs(np.linalg.det(r[:3, :3])) > 1e-12:
            m = m @ np.linalg.inv(r)
    return m.tolist()


def write_live_image(rgba8: np.ndarray, name: str = PREVIEW_IMAGE_NAME):
    """write_preview for the live preview's frames: the same image, but not packed (packing encodes a PNG per frame,
    ~10x the rest); saving the .blend packs it then (the live module does so when Live is turned off)."""
    image = _set_byte_image(rgba8, name)
    image.use_fake_user = True
    return image
