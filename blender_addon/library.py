"""The Blender side of the asset library, Import Splats, Show Passes and Render Turntable: what their replies put into
Blender (the library list and its thumbnails, the splat object, the pass images, the mp4 file). Registered into
session's reply table, so session.tick() applies them like the other jobs."""

from __future__ import annotations

import os

import bpy
import numpy as np

from . import session

_PREVIEWS = {"collection": None}  # the bpy.utils.previews collection of the library thumbnails


def previews():
    """The thumbnails' previews collection (made on first use, removed by unregister())."""
    if _PREVIEWS["collection"] is None:
        import bpy.utils.previews

        _PREVIEWS["collection"] = bpy.utils.previews.new()
    return _PREVIEWS["collection"]


def unregister() -> None:
    if _PREVIEWS["collection"] is not None:
        import bpy.utils.previews

        bpy.utils.previews.remove(_PREVIEWS["collection"])
        _PREVIEWS["collection"] = None


def _library():
    return bpy.context.window_manager.relight_library


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n} B"


def _thumbnail_icon(asset_id: str, rgba8: np.ndarray) -> None:
    """A [s, s, 4] uint8 sRGB thumbnail (row 0 = top) as the preview `asset_id` of the previews collection."""
    pcoll = previews()
    preview = pcoll.get(asset_id) or pcoll.new(asset_id)
    h, w = rgba8.shape[:2]
    preview.image_size = (w, h)
    px = (rgba8[::-1].astype(np.float32) / 255.0).ravel()  # previews store rows bottom up, like images
    preview.image_pixels_float.foreach_set(px)


def _apply_list_assets(scene, content: dict) -> str:
    lib = _library()
    selected = lib.items[lib.index].asset_id if 0 <= lib.index < len(lib.items) else ""
    lib.items.clear()
    thumbs = content.get("thumbnails")
    for k, entry in enumerate(content.get("assets") or []):
        item = lib.items.add()
        item.asset_id = str(entry.get("asset_id", ""))
        item.name = str(entry.get("name", item.asset_id))
        item.provider = str(entry.get("provider", ""))
        item.created = float(entry.get("created", 0.0))
        item.size_bytes = int(entry.get("size_bytes", 0))
        if thumbs is not None and k < len(thumbs):
            _thumbnail_icon(item.asset_id, np.asarray(thumbs[k]))
    ids = [i.asset_id for i in lib.items]
    lib.index = ids.index(selected) if selected in ids else (0 if ids else -1)
    return f"The backend's library holds {len(ids)} asset(s)"


def _apply_delete_asset(scene, content: dict) -> str:
    asset_id = str(content.get("asset_id", ""))
    lib = _library()
    for k, item in enumerate(lib.items):
        if item.asset_id == asset_id:
            lib.items.remove(k)
            lib.index = min(lib.index, len(lib.items) - 1)
            break
    if scene.relight.asset_id == asset_id:
        scene.relight.asset_id = scene.relight.asset_name = ""
    return f"Asset {asset_id} deleted from the backend's store"


def import_splat_bytes(data, name: str, scene, place: bool = False):
    """A splat PLY's bytes -> the point object with its disc modifier (splat_object), linked into `scene`;
    place=True moves it beside the selection or to the 3D cursor (placement.place_where_seen)."""
    from . import placement, splat_object
    from .splat_ply import read_splat_ply

    splats = read_splat_ply(memoryview(data).cast("B").tobytes())
    anchor = placement.selection_anchor(scene) if place else None
    obj = splat_object.splats_to_object(name, splats, scene.collection)
    if place:
        placement.place_where_seen([obj], anchor, scene.cursor.location)
    return obj


def _apply_splats(scene, content: dict) -> str:
    name = os.path.splitext(os.path.basename(str(content.get("filename") or "relight_splats.ply")))[0] or "splats"
    with session._context_for(scene):
        obj = import_splat_bytes(content["data"], name, scene, place=content.get("provider") != "scene")
    return f"Imported {len(obj.data.vertices)} Gaussians as '{obj.name}'"


def _apply_passes(scene, content: dict) -> str:
    from . import pass_images, scene_io

    alpha = np.asarray(content["alpha"], np.float32)
    made = []
    for name, values in (content.get("passes") or {}).items():
        if name not in pass_images.PASS_IMAGE_NAMES:
            continue  # a pass a newer backend sends that this add-on does not know
        space = "Linear Rec.709" if name == "albedo" else "Non-Color"
        image = pass_images.write_float_image(pass_images.PASS_IMAGE_NAMES[name],
                                           pass_images.pass_to_rgba(name, values, alpha), space)  # fmt: skip
        made.append(image.name)
    if "image" in content:
        scene_io.write_preview(content["image"])
    return f"Passes written to images {', '.join(made)}"


def _apply_turntable(scene, content: dict) -> str:
    from .private_files import write_new_file

    path = write_new_file(session.glb_output_dir(), str(content.get("filename") or "turntable.mp4"), content["data"])
    _library().last_video = path
    return f"Turntable of {content.get('frames', '?')} frames written to {path}"


def _apply_obj(scene, content: dict) -> str:
    """A bake reply in format "obj" (a zip of name.obj, name.mtl and PNG maps) -> unpacked into a new private folder
    (mkdtemp: created exclusively, mode 0700) and imported, placed like a GLB."""
    import tempfile

    from . import placement, scene_io
    from .relight_protocol.archive import unpack_archive

    stem = os.path.splitext(os.path.basename(str(content.get("filename") or "relight_asset.zip")))[0] or "asset"
    folder = tempfile.mkdtemp(prefix=f"{stem}-", dir=session.glb_output_dir())
    names = unpack_archive(memoryview(content["data"]).cast("B").tobytes(), folder)
    objs = [n for n in names if n.lower().endswith(".obj")]
    if len(objs) != 1:
        raise scene_io.SceneIOError(f"The backend's OBJ archive holds {len(objs)} .obj files; expected one")
    path = os.path.join(folder, objs[0])
    with session._context_for(scene):
        anchor = placement.selection_anchor(scene)
        objects = scene_io.import_obj(path)
        if content.get("provider") != "scene":
            placement.place_where_seen(objects, anchor, scene.cursor.location)
    return f"Imported {len(objects)} object(s) from {path}"


def refresh_when_idle() -> None:
    """Ask the backend for the library again, once no job runs (a one-shot bpy.app.timers callback registered when
    a job added an asset: the list shows it without a click). Nothing happens without a connection."""
    if session.SESSION.running_job() is not None or session.SESSION.client is None:
        return None
    scene = bpy.context.scene
    if scene is not None:
        session.start_job("list_assets", {}, scene)
    return None


def _then_refresh(apply):
    """`apply`, then refresh_when_idle once the job that made an asset is finished."""

    def wrapped(scene, content: dict) -> str:
        outcome = apply(scene, content)
        if not bpy.app.timers.is_registered(refresh_when_idle):
            bpy.app.timers.register(refresh_when_idle, first_interval=0.2)
        return outcome

    return wrapped


_apply_glb = session._APPLY["bake"]


def _apply_bake(scene, content: dict) -> str:
    return _apply_obj(scene, content) if content.get("format") == "obj" else _apply_glb(scene, content)


session._APPLY.update({"generate": _then_refresh(session._APPLY["generate"]),
                       "reconstruct": _then_refresh(session._APPLY["reconstruct"]),"list_assets": _apply_list_assets, "delete_asset": _apply_delete_asset,
                       "splats": _apply_splats, "bake": _apply_bake, "passes": _apply_passes, "turntable": _apply_turntable})
