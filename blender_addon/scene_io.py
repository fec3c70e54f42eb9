"""All of the add-on's scene I/O: Blender datablocks to and from the numpy arrays and dicts of the wire protocol.

The only module of the add-on that reads or writes scene data. Arrays are row 0 = top (Blender stores row 0 = bottom).
"""

from __future__ import annotations

import math

import bpy
import numpy as np

from .relight_protocol.conventions import (EQUIRECT_PANO_EULER, blender_camera_to_viewmat, srgb_to_linear,
                                          viewmat_to_blender_camera)
from .relight_protocol.lru import LRU

PREVIEW_IMAGE_NAME = "Relight Preview"
MAX_ENV_WIDTH = 2048  # equirects sent to the backend are box-downsampled to at most this many columns
FALLBACK_ENV_SIZE = (16, 32)  # [h, w] of the constant equirect of a plain-colour world
BAKED_ENV_SIZE = (128, 256)  # [h, w] of the equirect Cycles renders for any other world shader
BAKE_SAMPLES = 16  # Cycles samples per pixel of that render
NO_HDRI_WARNING = "The scene has no usable world (none, or its shader could not be rendered); previewing under black"

# Colour spaces whose stored values are already linear (the rest of the byte images are treated as sRGB).
_LINEAR_COLORSPACES = {"Linear", "Linear Rec.709", "Linear CIE-XYZ E", "Non-Color", "Raw", "scene_linear"}


class SceneIOError(Exception):
    """A scene setup the add-on cannot turn into a request; the message is shown to the artist."""

    level = "ERROR"  # how an operator reports it ({'ERROR'} or {'WARNING'})


def _pixels(image: bpy.types.Image) -> np.ndarray:
    """[H, W, 4] float32 pixels of `image`, row 0 = top, alpha 1 where the image has none."""
    w, h = image.size
    if w == 0 or h == 0:
        raise SceneIOError(f"Image '{image.name}' has no pixel data (is its file missing?)")
    ch = image.channels
    buf = np.empty(w * h * ch, dtype=np.float32)
    image.pixels.foreach_get(buf)
    px = buf.reshape(h, w, ch)
    if ch == 4:
        rgba = px
    else:
        rgba = np.ones((h, w, 4), dtype=np.float32)
        rgba[..., :3] = px[..., :3] if ch >= 3 else px[..., :1]
    return np.ascontiguousarray(rgba[::-1])


def image_colorspace(image: bpy.types.Image) -> str:
    """"linear" for float images and byte images tagged with a linear colour space, else "srgb"."""
    if image.is_float or image.colorspace_settings.name in _LINEAR_COLORSPACES:
        return "linear"
    return "srgb"


def image_to_array(image: bpy.types.Image) -> tuple[np.ndarray, str]:
    """Image datablock -> (RGBA [H, W, 4] row 0 = top, colorspace "srgb"|"linear").

    sRGB byte images come back as uint8 (their exact stored values); everything else as float32.
    """
    rgba = _pixels(image)
    space = image_colorspace(image)
    if space == "srgb":
        return np.clip(np.rint(rgba * 255.0), 0, 255).astype(np.uint8), space
    return rgba.astype(np.float32, copy=False), space


def box_downsample(img: np.ndarray, max_width: int) -> np.ndarray:
    """[H, W, C] -> area-averaged by the smallest integer factor that makes W <= max_width."""
    h, w = img.shape[:2]
    f = math.ceil(w / max_width)
    if f <= 1:
        return img
    h2, w2 = h // f, w // f
    trimmed = img[: h2 * f, : w2 * f]
    return trimmed.reshape(h2, f, w2, f, -1).mean(axis=(1, 3), dtype=np.float64).astype(img.dtype)


def _linked_node(socket):
    """The node feeding `socket`, or None."""
    if socket is None or not socket.is_linked:
        return None
    return socket.links[0].from_node


def _node_tree(world):
    """The node tree `world` renders with, or None. Blender 5.0 always renders with nodes and deprecates `use_nodes`
    (removal in 6.0), so it is read only before 5.0."""
    if world is None or (bpy.app.version < (5, 0, 0) and not world.use_nodes):
        return None
    return world.node_tree


def _world_background(world):
    """The Background node feeding the active World Output, or None."""
    if _node_tree(world) is None:
        return None
    nodes = world.node_tree.nodes
    outputs = [n for n in nodes if n.type == "OUTPUT_WORLD"]
    out = next((n for n in outputs if n.is_active_output), outputs[0] if outputs else None)
    if out is None:
        return None
    node = _linked_node(out.inputs.get("Surface"))
    return node if node is not None and node.type == "BACKGROUND" else None


def environment_texture(bg):
    """(image, Mapping Z rotation in radians) of the Environment Texture feeding Background node `bg` (None: no
    Background, or its colour is not an image texture): what world_to_env sends and world_reference names."""
    env_node = _linked_node(bg.inputs.get("Color")) if bg is not None else None
    if env_node is None or env_node.type != "TEX_ENVIRONMENT" or env_node.image is None:
        return None
    rotation_z = 0.0
    mapping = _linked_node(env_node.inputs.get("Vector"))
    if mapping is not None and mapping.type == "MAPPING":
        rot = mapping.inputs.get("Rotation")
        if rot is not None and not rot.is_linked:
            rotation_z = float(rot.default_value[2])
    return env_node.image, rotation_z


def _world_signature(world) -> str:
    """A digest of everything in a world's node tree that can change what it renders (node settings, input values,
    links, images), so a world is rendered to an equirect once per change."""
    import hashlib

    h = hashlib.sha1(repr(tuple(world.color)).encode())
    if _node_tree(world) is not None:
        for node in sorted(world.node_tree.nodes, key=lambda n: n.name):
            h.update(f"{node.bl_idname}|{node.name}|".encode())
            for prop in node.bl_rna.properties:
                if prop.identifier in _NODE_BASE_PROPS or prop.type in {"POINTER", "COLLECTION"}:
                    continue
                value = getattr(node, prop.identifier, None)
                h.update(f"{prop.identifier}={value if isinstance(value, (str, int, float, bool)) else tuple(value)!r};".encode())
            image = getattr(node, "image", None)
            if image is not None:
                h.update(f"image={image.name}:{image.filepath}:{tuple(image.size)};".encode())
            for sock in node.inputs:
                value = getattr(sock, "default_value", None)
                if value is not None and not isinstance(value, (str, int, float, bool)):
                    value = tuple(value)
                h.update(f"{sock.identifier}:{sock.is_linked}:{value!r};".encode())
        for link in world.node_tree.links:
            h.update(f"{link.from_node.name}.{link.from_socket.identifier}>{link.to_node.name}."
                     f"{link.to_socket.identifier};".encode())  # fmt: skip
    return h.hexdigest()


_NODE_BASE_PROPS = {p.identifier for p in bpy.types.ShaderNode.bl_rna.properties}
_BAKED = LRU(4)  # (world signature, size, samples) -> baked equirect [h, w, 3]


def bake_world(world, size: tuple = BAKED_ENV_SIZE, samples: int = BAKE_SAMPLES) -> np.ndarray:
    """Render any world shader to a [h, w, 3] float32 linear equirect (row 0 = top) with Cycles: an
    equirectangular panoramic camera at the origin of a temporary scene, turned so its pixel grid is the backend's
    equirect grid (tests/test_envmap_cycles.py proves that set-up ray by ray). The artist's scene is untouched."""
    import os
    import tempfile

    key = (_world_signature(world), tuple(size), int(samples))
    hit = _BAKED.get(key)
    if hit is not None:
        return hit
    scene = bpy.data.scenes.new("Relight World Bake")
    cam_data = bpy.data.cameras.new("Relight World Bake")
    cam = bpy.data.objects.new("Relight World Bake", cam_data)
    image = None
    try:
        with tempfile.TemporaryDirectory(prefix="relight_world_") as tmp:
            scene.render.engine = "CYCLES"
            scene.cycles.device = "CPU"
            scene.cycles.samples = int(samples)
            scene.cycles.use_adaptive_sampling = False
            scene.cycles.use_denoising = False
            scene.cycles.filter_width = 0.01  # rays through pixel centres: texel (j, i) = direction (j, i)
            scene.render.film_transparent = False
            scene.render.resolution_x, scene.render.resolution_y = int(size[1]), int(size[0])
            scene.render.resolution_percentage = 100
            scene.render.image_settings.file_format = "OPEN_EXR"  # linear, scene-referred: no view transform
            scene.render.image_settings.color_depth = "32"
            scene.render.image_settings.color_mode = "RGB"
            cam_data.type = "PANO"
            cam_data.panorama_type = "EQUIRECTANGULAR"
            scene.collection.objects.link(cam)
            cam.location = (0.0, 0.0, 0.0)
            cam.rotation_euler = EQUIRECT_PANO_EULER  # image centre looks along +X, top row at +Z
            scene.camera = cam
            scene.world = world
            scene.render.filepath = os.path.join(tmp, "world.exr")
            bpy.ops.render.render(write_still=True, scene=scene.name)
            image = bpy.data.images.load(scene.render.filepath)
            rgb = np.ascontiguousarray(_pixels(image)[..., :3], dtype=np.float32)
    finally:
        if image is not None:
            bpy.data.images.remove(image)
        bpy.data.objects.remove(cam)
        bpy.data.cameras.remove(cam_data)
        bpy.data.scenes.remove(scene)
    _BAKED.put(key, rgb)
    return rgb


def world_to_env(world, max_width: int = MAX_ENV_WIDTH) -> dict:
    """World -> {equirect [h, w, 3] float32 linear row 0 = top, rotation_z radians, strength, fallback bool}.

    An Environment Texture image feeding the Background colour is sent as it is, with the Z rotation of a Mapping
    node feeding it and the Background strength. A plain Background colour is a constant equirect. Any other world
    shader (sky texture, gradients, mixes) is rendered to an equirect with Cycles (bake_world). No world, or one
    that cannot be rendered, gives black with fallback=True.
    """
    bg = _world_background(world)
    hdri = environment_texture(bg)
    if hdri is not None:
        image, rotation_z = hdri
        rgb = _pixels(image)[..., :3]
        if not image.is_float and image_colorspace(image) == "srgb":
            rgb = srgb_to_linear(rgb)
        rgb = np.ascontiguousarray(box_downsample(rgb, max_width), dtype=np.float32)
        strength = float(bg.inputs["Strength"].default_value)
        return {"equirect": rgb, "rotation_z": rotation_z, "strength": strength, "fallback": False}

    def constant(colour, fallback: bool) -> dict:
        equirect = np.empty((*FALLBACK_ENV_SIZE, 3), dtype=np.float32)
        equirect[...] = np.asarray(colour, dtype=np.float32)[:3]
        return {"equirect": equirect, "rotation_z": 0.0, "strength": 1.0, "fallback": fallback}

    if world is None:
        return constant((0.0, 0.0, 0.0), True)
    if _node_tree(world) is None:
        return constant(world.color, False)
    if bg is not None and not bg.inputs["Color"].is_linked and not bg.inputs["Strength"].is_linked:
        return constant(np.array(bg.inputs["Color"].default_value[:3]) * float(bg.inputs["Strength"].default_value),
                        False)  # fmt: skip
    if world_problem(world) is not None:  # lights nothing (no output, or nothing linked): no render to find that out
        return constant((0.0, 0.0, 0.0), True)
    try:
        return {"equirect": bake_world(world), "rotation_z": 0.0, "strength": 1.0, "fallback": False}
    except (RuntimeError, ReferenceError, OSError) as e:
        print(f"Relight: rendering the world '{world.name}' to an environment failed: {e}")
        return constant((0.0, 0.0, 0.0), True)


def render_size(scene) -> tuple[int, int]:
    """(width, height) in pixels of the scene's render output (resolution x percentage)."""
    r = scene.render
    pct = r.resolution_percentage / 100.0
    return max(1, round(r.resolution_x * pct)), max(1, round(r.resolution_y * pct))


def camera_intrinsics(cam_data, scene, width: int, height: int) -> np.ndarray:
    """[3, 3] pinhole K in pixels for a Blender perspective camera, following its sensor fit and lens shift."""
    r = scene.render
    aspx, aspy = r.pixel_aspect_x, r.pixel_aspect_y
    fit = cam_data.sensor_fit
    if fit == "AUTO":
        sensor = cam_data.sensor_width
        fit = "HORIZONTAL" if width * aspx >= height * aspy else "VERTICAL"
    elif fit == "HORIZONTAL":
        sensor = cam_data.sensor_width
    else:
        sensor = cam_data.sensor_height
    # Size in pixels of the fitted side of the view plane; lens shift is a fraction of it.
    span = width if fit == "HORIZONTAL" else height
    fx = fy = cam_data.lens / sensor * span
    # Non-square pixels stretch the other axis.
    if fit == "HORIZONTAL":
        fy = fx * aspx / aspy
    else:
        fx = fy * aspy / aspx
    cx = width / 2.0 - cam_data.shift_x * span
    cy = height / 2.0 + cam_data.shift_y * span
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def camera_to_dict(cam_obj, scene) -> dict:
    """Camera object -> {viewmat [4, 4] world-to-camera (OpenCV), K [3, 3], width, height} as plain lists."""
    if cam_obj is None or cam_obj.type != "CAMERA":
        raise SceneIOError("The scene has no active camera: add one and make it active (Ctrl+Numpad 0)")
    if cam_obj.data.type != "PERSP":
        raise SceneIOError(f"Camera '{cam_obj.name}' is {cam_obj.data.type.lower()}; Relight needs a perspective camera")
    width, height = render_size(scene)
    loc, rot, _scale = cam_obj.matrix_world.decompose()  # camera scale does not change the image
    m = np.array(rot.to_matrix().to_4x4(), dtype=np.float64)
    m[:3, 3] = loc
    viewmat = blender_camera_to_viewmat(m)  # [4, 4] world -> camera, x right, y down, looks down +Z
    K = camera_intrinsics(cam_obj.data, scene, width, height)
    return {"viewmat": viewmat.tolist(), "K": K.tolist(), "width": int(width), "height": int(height)}


MATCH_CAMERA_NAME = "Relight Match Camera"


def camera_from_dict(cam: dict, scene, image=None, name: str = MATCH_CAMERA_NAME):
    """The inverse of camera_to_dict: a camera {viewmat, K, width, height} -> the Blender camera object `name`
    (created, or updated when it exists), made the scene's active camera, with the render size set to the camera's
    (the photo's) so its frame is the photo's, and `image` as its background picture. Returns the object."""
    import mathutils

    width, height = int(cam["width"]), int(cam["height"])
    K = np.asarray(cam["K"], dtype=np.float64)
    obj = bpy.data.objects.get(name)
    if obj is None or obj.type != "CAMERA":
        obj = bpy.data.objects.new(name, bpy.data.cameras.new(name))
    if obj.name not in scene.collection.all_objects:
        scene.collection.objects.link(obj)
    data = obj.data
    data.type = "PERSP"
    horizontal = width >= height
    data.sensor_fit = "HORIZONTAL" if horizontal else "VERTICAL"
    span = width if horizontal else height
    sensor = data.sensor_width if horizontal else data.sensor_height
    data.lens = float(K[0, 0] if horizontal else K[1, 1]) / span * sensor
    data.shift_x = float(width / 2.0 - K[0, 2]) / span
    data.shift_y = float(K[1, 2] - height / 2.0) / span
    obj.matrix_world = mathutils.Matrix(viewmat_to_blender_camera(cam["viewmat"]).tolist())
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
    r.pixel_aspect_x = r.pixel_aspect_y = 1.0
    if image is not None:
        data.show_background_images = True
        bg = data.background_images[0] if len(data.background_images) else data.background_images.new()
        bg.image, bg.alpha, bg.display_depth = image, 0.6, "FRONT"
    scene.camera = obj
    return obj


def mesh_to_arrays(obj, depsgraph=None) -> dict:
    """Mesh object -> {vertices [V, 3] float32 object space, faces [F, 3] int32, matrix_world [[4x4]],
    corner_normals [F, 3, 3] float32 object space (Blender's split normals)}.

    The evaluated mesh (modifiers applied), triangulated.
    """
    if obj is None or obj.type != "MESH":
        raise SceneIOError("Pick a mesh object (or clear the mesh field to let the backend build one)")
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    obj_eval = obj.evaluated_get(depsgraph)
    mesh = obj_eval.to_mesh()
    try:
        mesh.calc_loop_triangles()
        verts = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", verts)
        faces = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
        mesh.loop_triangles.foreach_get("vertices", faces)
        # the shading as the artist set it (flat faces, sharp edges, custom split normals), per triangle corner
        corner = np.empty(len(mesh.loop_triangles) * 9, dtype=np.float32)
        mesh.loop_triangles.foreach_get("split_normals", corner)
    finally:
        obj_eval.to_mesh_clear()
    if faces.size == 0:
        raise SceneIOError(f"Mesh '{obj.name}' has no faces")
    matrix_world = [list(row) for row in obj.matrix_world]
    return {"vertices": verts.reshape(-1, 3), "faces": faces.reshape(-1, 3), "matrix_world": matrix_world,
            "corner_normals": corner.reshape(-1, 3, 3)}


def _import_with(importer, what: str, path: str) -> list:
    """Run one of Blender's import operators on path; returns the objects it created."""
    before = set(bpy.data.objects)
    result = importer(filepath=str(path))
    if "FINISHED" not in result:
        raise SceneIOError(f"Blender's {what} importer could not read {path}")
    return [o for o in bpy.data.objects if o not in before]


def import_glb(path: str) -> list:
    """Import a .glb with Blender's glTF importer; returns the objects it created."""
    return _import_with(bpy.ops.import_scene.gltf, "glTF", path)


def _set_byte_image(rgba8: np.ndarray, name: str):
    """[H, W, 4] uint8 sRGB + alpha, row 0 = top -> the byte image datablock `name` (made anew when its size or
    kind differs) holding those pixels."""
    rgba8 = np.asarray(rgba8)
    if rgba8.ndim != 3 or rgba8.shape[2] != 4:
        raise SceneIOError(f"Preview image has shape {rgba8.shape}; expected [H, W, 4]")
    h, w = rgba8.shape[:2]
    image = bpy.data.images.get(name)
    if image is not None and (tuple(image.size) != (w, h) or image.is_float):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(name, width=w, height=h, alpha=True, float_buffer=False)
    if image.colorspace_settings.name != "sRGB":  # set only when it differs: setting it frees the image's buffers
        image.colorspace_settings.name = "sRGB"
    if image.alpha_mode != "STRAIGHT":
        image.alpha_mode = "STRAIGHT"
    px = np.multiply(rgba8[::-1], np.float32(1.0 / 255.0), dtype=np.float32)  # Blender rows start at the bottom
    image.pixels.foreach_set(px.ravel())
    image.update()
    return image


def write_preview(rgba8: np.ndarray, name: str = PREVIEW_IMAGE_NAME):
    """[H, W, 4] uint8 display-referred sRGB + alpha, row 0 = top -> image datablock `name` of that size.

    A byte sRGB image: the Image Editor shows it as sent (it applies the view transform only with View as Render).
    Packed into the .blend and given a fake user, so saving the file keeps it.
    """
    image = _set_byte_image(rgba8, name)
    image.pack()  # as PNG inside the .blend: a generated image's pixels are otherwise lost on save
    image.use_fake_user = True  # kept on save even when no editor shows it
    return image


# ------------------------------------------------------------------------------------ issue 16: placement, passes,
# empty worlds

EMPTY_WORLD_WARNING = ("The world '{name}' has no World Output with a shader linked (its node tree is empty or "
                       "unconnected), so it lights nothing: previewing under black. Add a Background or an "
                       "Environment Texture, or turn off 'Use Nodes'")


def world_problem(world) -> str | None:
    """Why `world` lights nothing at all, for the artist; None when it may light the asset. A node world without an
    active World Output fed by a shader is black in Cycles too: it is not rendered to find that out."""
    tree = _node_tree(world)
    if tree is None:
        return None
    outputs = [n for n in tree.nodes if n.type == "OUTPUT_WORLD"]
    out = next((n for n in outputs if n.is_active_output), outputs[0] if outputs else None)
    surface = out.inputs.get("Surface") if out is not None else None
    if surface is None or not surface.is_linked:
        return EMPTY_WORLD_WARNING.format(name=world.name)
    return None


def world_to_env_checked(world, max_width: int = MAX_ENV_WIDTH) -> tuple[dict, str | None]:
    """(world_to_env, why the world lights nothing or None): a world that lights nothing (world_problem) is black at
    once, with the reason for the artist, rather than rendered by Cycles to come out black."""
    return world_to_env(world, max_width), world_problem(world)


def import_obj(path: str) -> list:
    """Import an .obj (with its .mtl and maps beside it) with Blender's OBJ importer; returns the objects it made."""
    return _import_with(bpy.ops.wm.obj_import, "OBJ", path)
