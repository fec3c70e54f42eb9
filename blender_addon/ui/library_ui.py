"""The asset library (a UIList of the backend's stored assets with thumbnails), Import Splats, Show Passes and Render
Turntable: properties, operators and the panels under the Relight tab. Replies are applied by library.py."""

import time

import bpy

from .. import library, session
from ..relight_protocol.vocabulary import TURNTABLE_MODE_LABELS, TURNTABLE_MODES, enum_items
from .ops import _JobOperator, _fail, _job_idle_poll, placement_fields


# ------------------------------------------------------------------------------------ properties

class RELIGHT_PG_library_item(bpy.types.PropertyGroup):
    """One stored asset as list_assets_reply described it (name is the PropertyGroup's own)."""

    asset_id: bpy.props.StringProperty(name="Asset Id")
    provider: bpy.props.StringProperty(name="Provider")
    created: bpy.props.FloatProperty(name="Created", description="Seconds since the epoch")
    size_bytes: bpy.props.IntProperty(name="Size")


class RELIGHT_PG_library(bpy.types.PropertyGroup):
    """The backend's library as last listed (WindowManager.relight_library; not saved)."""

    items: bpy.props.CollectionProperty(type=RELIGHT_PG_library_item)
    index: bpy.props.IntProperty(name="Selected Asset", default=-1)
    last_video: bpy.props.StringProperty(name="Last Turntable", subtype="FILE_PATH")


class RELIGHT_PG_turntable(bpy.types.PropertyGroup):
    """Turntable settings saved with the scene (Scene.relight_turntable)."""

    frames: bpy.props.IntProperty(name="Frames", default=48, min=2, max=1440,
                                  description="Frames of one full turn")
    fps: bpy.props.IntProperty(name="FPS", default=24, min=1, max=120, description="Frames per second of the video")
    mode: bpy.props.EnumProperty(name="Turn", items=enum_items(TURNTABLE_MODES, TURNTABLE_MODE_LABELS),
                                 default="orbit")


def register_properties() -> None:
    bpy.types.WindowManager.relight_library = bpy.props.PointerProperty(type=RELIGHT_PG_library)
    bpy.types.Scene.relight_turntable = bpy.props.PointerProperty(type=RELIGHT_PG_turntable)


def unregister_properties() -> None:
    del bpy.types.Scene.relight_turntable
    del bpy.types.WindowManager.relight_library
    library.unregister()


def selected_item(context):
    lib = context.window_manager.relight_library
    return lib.items[lib.index] if 0 <= lib.index < len(lib.items) else None


# ------------------------------------------------------------------------------------ the list

class RELIGHT_UL_assets(bpy.types.UIList):
    """The stored assets, newest first, with their thumbnails."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(item.created)) if item.created else ""
        row = layout.row(align=True)
        preview = library.previews().get(item.asset_id)  # its icon id (made on first use by a UI Blender)
        row.label(text=item.name, icon_value=preview.icon_id if preview is not None else 0)
        sub = row.row()
        sub.alignment = "RIGHT"
        sub.label(text=f"{item.provider}  {when}  {library.human_size(item.size_bytes)}")


# ------------------------------------------------------------------------------------ operators

class RELIGHT_OT_library_refresh(_JobOperator, bpy.types.Operator):
    """List every asset in the backend's store, newest first, with thumbnails"""

    bl_idname = "relight.library_refresh"
    bl_label = "Refresh Library"

    def gather(self, context):
        return "list_assets", {}


class RELIGHT_OT_library_delete(_JobOperator, bpy.types.Operator):
    """Delete the selected asset from the backend's store (this cannot be undone)"""

    bl_idname = "relight.library_delete"
    bl_label = "Delete Asset"

    def invoke(self, context, event):
        item = selected_item(context)
        if item is None:
            return _fail(self, context, "No asset selected in the library")
        return context.window_manager.invoke_confirm(self, event, title="Delete Asset",
                                                     message=f"Delete '{item.name}' from the backend's store?",
                                                     confirm_text="Delete", icon="WARNING")  # fmt: skip

    def gather(self, context):
        from .. import scene_io

        item = selected_item(context)
        if item is None:
            raise scene_io.SceneIOError("No asset selected in the library")
        return "delete_asset", {"asset_id": item.asset_id}


LIBRARY_ACTIONS = [("preview", "Preview", "Preview the asset relit, from the active camera", "RENDER_STILL", 0),
                   ("import_mesh", "Import Mesh", "Bake and import the asset as a PBR mesh (GLB)", "IMPORT", 1),
                   ("import_obj", "OBJ", "Bake and import the asset as OBJ + MTL with its PNG maps", "IMPORT", 3),
                   ("import_splats", "Import Splats", "Import the asset's Gaussians as splats", "POINTCLOUD_DATA", 2)]


class RELIGHT_OT_library_use(bpy.types.Operator):
    """Make the selected library asset the current one, then preview or import it"""

    bl_idname = "relight.library_use"
    bl_label = "Use Library Asset"

    action: bpy.props.EnumProperty(items=LIBRARY_ACTIONS, default="preview")

    @classmethod
    def poll(cls, context):
        return _job_idle_poll(cls, context)

    def execute(self, context):
        item = selected_item(context)
        if item is None:
            return _fail(self, context, "No asset selected in the library: Refresh it and pick one")
        context.scene.relight.asset_id, context.scene.relight.asset_name = item.asset_id, item.name
        run = {"preview": lambda: bpy.ops.relight.preview(),
               "import_mesh": lambda: bpy.ops.relight.import_mesh(format="glb"),
               "import_obj": lambda: bpy.ops.relight.import_mesh(format="obj"),
               "import_splats": lambda: bpy.ops.relight.import_splats(filepath="")}[self.action]
        try:
            return run()
        except RuntimeError as e:  # the inner operator reported already; keep its message in the panel
            return _fail(self, context, str(e).replace("Error: ", "").strip())


class RELIGHT_OT_import_splats(_JobOperator, bpy.types.Operator):
    """Import Gaussian splats as points with PBR attributes drawn as oriented discs by Geometry Nodes: the current
    asset's (from the backend) or a 3DGS .ply file's (no backend)"""

    bl_idname = "relight.import_splats"
    bl_label = "Import Splats"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"},
                                       description="A 3D Gaussian splat .ply (empty: the current asset)")
    filter_glob: bpy.props.StringProperty(default="*.ply", options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context):
        if not self.filepath:
            if not context.scene.relight.asset_id:
                from .ops import NO_ASSET

                return _fail(self, context, NO_ASSET)
            return super().execute(context)
        import os

        from ..splat_ply import SplatFileError

        path = bpy.path.abspath(self.filepath)
        try:
            with open(path, "rb") as f:
                data = f.read()
            obj = library.import_splat_bytes(data, os.path.splitext(os.path.basename(path))[0], context.scene)
        except (OSError, SplatFileError) as e:
            return _fail(self, context, f"Could not import splats from {path}: {e}")
        self.report({"INFO"}, f"Imported {len(obj.data.vertices)} Gaussians as '{obj.name}'")
        return {"FINISHED"}

    def gather(self, context):
        return "splats", {"asset_id": context.scene.relight.asset_id}


class RELIGHT_OT_import_splats_file(bpy.types.Operator):
    """Pick a 3D Gaussian splat .ply and import it as Relight points"""

    bl_idname = "relight.import_splats_file"
    bl_label = "Import Gaussian Splats (.ply)"

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.ply", options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        return bpy.ops.relight.import_splats(filepath=self.filepath)


def _view(context) -> tuple[dict, str]:
    """(the wire camera, views.VIEWPORT or views.CAMERA) of Show Passes and Render Turntable: the 3D viewport's own
    view at its size capped by the Live Preview Size preference, in camera view or without a viewport the active
    camera at the render size (views.request_camera). Raises scene_io.SceneIOError (views.NoView: neither)."""
    from .. import views

    return views.request_camera(context.scene, views.viewport_of(context), views.max_side_preference(),
                                cap_camera=False)  # fmt: skip


def _view_note(what: str, camera: dict, source: str) -> str:
    from .. import views

    return f"{what} from {views.SOURCE_LABELS[source]} ({camera['width']}x{camera['height']})"


class RELIGHT_OT_show_passes(_JobOperator, bpy.types.Operator):
    """Render the asset's decomposition from the 3D viewport's view (the active camera in camera view or without a
    viewport) into the images Relight Albedo, Roughness, Metallic, Normal and Shadow"""

    bl_idname = "relight.show_passes"
    bl_label = "Show Passes"
    needs_asset = True

    def gather(self, context):
        camera, source = _view(context)
        return "passes", {"asset_id": context.scene.relight.asset_id, "camera": camera, "world": self.world(context),
                          "quality": "final", **placement_fields(context)}, _view_note("Show Passes", camera, source)


class RELIGHT_OT_render_turntable(_JobOperator, bpy.types.Operator):
    """Render a turntable video of the asset (the camera orbits it, or the world turns), starting from the 3D
    viewport's view (the active camera in camera view or without a viewport); shows its progress and can be
    cancelled"""

    bl_idname = "relight.render_turntable"
    bl_label = "Render Turntable"
    needs_asset = True

    def gather(self, context):
        from .. import scene_io

        settings = context.scene.relight_turntable
        camera, source = _view(context)
        camera["width"] -= camera["width"] % 2  # H.264 needs even sides (half a pixel of difference at most)
        camera["height"] -= camera["height"] % 2
        if min(camera["width"], camera["height"]) < 2:
            raise scene_io.SceneIOError("The view is too small for a video: enlarge it or raise the render resolution")
        return "turntable", {"asset_id": context.scene.relight.asset_id, "camera": camera,
                             "world": self.world(context), "frames": int(settings.frames), "fps": int(settings.fps),
                             "mode": settings.mode, "quality": context.scene.relight.preview_quality,
                             **placement_fields(context)}, _view_note("Render Turntable", camera, source)  # fmt: skip


# ------------------------------------------------------------------------------------ panels

class RELIGHT_PT_library(bpy.types.Panel):
    bl_idname = "RELIGHT_PT_library"
    bl_label = "Asset Library"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Relight"
    bl_parent_id = "RELIGHT_PT_main"

    def draw(self, context):
        layout = self.layout
        lib = context.window_manager.relight_library
        row = layout.row()
        row.template_list("RELIGHT_UL_assets", "", lib, "items", lib, "index", rows=4)
        col = row.column(align=True)
        col.operator("relight.library_refresh", text="", icon="FILE_REFRESH")
        col.operator("relight.library_delete", text="", icon="TRASH")
        row = layout.row(align=True)
        row.enabled = selected_item(context) is not None
        for action, label, _desc, icon, _n in LIBRARY_ACTIONS:
            row.operator("relight.library_use", text=label, icon=icon).action = action


class RELIGHT_PT_outputs(bpy.types.Panel):
    bl_idname = "RELIGHT_PT_outputs"
    bl_label = "Splats, Passes and Turntables"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Relight"
    bl_parent_id = "RELIGHT_PT_main"

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.enabled = not context.window_manager.relight.job_action
        col.operator("relight.import_splats", icon="POINTCLOUD_DATA").filepath = ""
        col.operator("relight.show_passes", icon="NODE_COMPOSITING")
        settings = context.scene.relight_turntable
        box = col.box()
        box.prop(settings, "mode", expand=True)
        row = box.row(align=True)
        row.prop(settings, "frames")
        row.prop(settings, "fps")
        box.operator("relight.render_turntable", icon="RENDER_ANIMATION")
        video = context.window_manager.relight_library.last_video
        if video:
            box.label(text=video, icon="FILE_MOVIE")


CLASSES = (RELIGHT_PG_library_item, RELIGHT_PG_library, RELIGHT_PG_turntable, RELIGHT_UL_assets,
           RELIGHT_OT_library_refresh, RELIGHT_OT_library_delete, RELIGHT_OT_library_use, RELIGHT_OT_import_splats,
           RELIGHT_OT_import_splats_file, RELIGHT_OT_show_passes, RELIGHT_OT_render_turntable, RELIGHT_PT_library,
           RELIGHT_PT_outputs)


def register_menus() -> None:
    bpy.types.TOPBAR_MT_file_import.append(_menu_import_file)


def unregister_menus() -> None:
    bpy.types.TOPBAR_MT_file_import.remove(_menu_import_file)


def _menu_import_file(self, context):
    self.layout.operator(RELIGHT_OT_import_splats_file.bl_idname, text="Gaussian Splats as Relight Points (.ply)")
