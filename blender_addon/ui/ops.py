"""Operators: check the backend, open an image, Generate / Preview / Import, Import from Multi-View G-Buffers,
Cancel, start and stop a local backend.

Each operator only gathers inputs (through scene_io) and starts a job; session.tick() applies the results.
"""

import bpy

from .. import session


def _prefs(context):
    return context.preferences.addons[session.ADDON_PACKAGE].preferences


def _fail(op, context, message: str, level: str = "ERROR"):
    """Report `message` on the operator and keep it in the panel (a WARNING as the last warning); returns the
    operator's CANCELLED result."""
    status = context.window_manager.relight
    if level == "WARNING":
        status.last_warning = message
    else:
        status.last_error = message
    op.report({level}, message)
    return {"CANCELLED"}


def _backend(op, context):
    """hello the backend (starting a local one if the preferences ask for it); False after reporting why not."""
    try:
        session.ensure_backend(_prefs(context))
    except session.BackendUnavailable as e:
        _fail(op, context, str(e))
        return False
    return True


def _job_idle_poll(cls, context) -> bool:
    if session.SESSION.running_job() is not None:
        cls.poll_message_set("A Relight job is running; wait for it or cancel it")
        return False
    return True


class RELIGHT_OT_check_backend(bpy.types.Operator):
    """Connect to the Relight backend and show its version and device"""

    bl_idname = "relight.check_backend"
    bl_label = "Connect / Check Backend"

    def execute(self, context):
        if not _backend(self, context):
            return {"CANCELLED"}
        status = context.window_manager.relight
        self.report({"INFO"}, f"Relight backend {status.server_version} on {status.device}")
        return {"FINISHED"}


class RELIGHT_OT_open_image(bpy.types.Operator):
    """Load an image file and use it as the Relight input"""

    bl_idname = "relight.open_image"
    bl_label = "Open Image"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_image: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            image = bpy.data.images.load(self.filepath, check_existing=True)
        except RuntimeError as e:
            return _fail(self, context, f"Could not open image {self.filepath}: {e}")
        context.scene.relight.image = image
        return {"FINISHED"}


NO_ASSET = "No asset generated yet: click Generate Relightable Asset first"


def image_side_limit() -> int:
    """MAX_IMAGE_SIDE as the connected backend announced it in its hello, else this add-on's protocol default."""
    from ..relight_protocol import limits

    announced = ((session.SESSION.hello or {}).get("limits") or {}).get("MAX_IMAGE_SIDE")
    return int(announced) if isinstance(announced, int) and announced > 0 else limits.MAX_IMAGE_SIDE


def image_side_message(name: str, width: int, height: int) -> str | None:
    """Why an image of width x height is too large for the backend, or None."""
    limit = image_side_limit()
    if max(width, height) <= limit:
        return None
    return (f"Image '{name}' is {width}x{height} pixels; the backend accepts at most {limit} pixels per side "
            f"(MAX_IMAGE_SIDE). Scale it down (Image > Resize) and try again")


def _over_image_limit(content: dict) -> str | None:
    """A request's image against the limit of the backend just greeted (a first hello may announce a lower one)."""
    image = content.get("image")
    if image is None or getattr(image, "ndim", 0) != 3:
        return None
    h, w = image.shape[:2]
    return image_side_message(str(content.get("name", "image")), w, h)


def placement_fields(context) -> dict:
    """{asset_matrix: the placement object's matrix_world relative to where it was made} when the scene has one
    (what the live preview shows), else {}."""
    from .. import live_scene

    scene = context.scene
    active = context.view_layer.objects.active if context.view_layer else None
    matrix = live_scene.asset_placement(scene, scene.relight.asset_id, active)
    return {} if matrix is None else {"asset_matrix": matrix}


class _JobOperator:
    """Mixin of the operators that start a backend job: idle poll, status reset, inputs gathered by `gather()`
    (-> (action, content) or (action, content, note); raises scene_io.SceneIOError with a message for the artist),
    backend check, job start. A note (what the request was made from) is reported and shown until the job ends."""

    needs_asset = False

    @classmethod
    def poll(cls, context):
        return _job_idle_poll(cls, context)

    def execute(self, context):
        from .. import scene_io

        status = context.window_manager.relight
        status.last_error = status.last_warning = ""
        if self.needs_asset and not context.scene.relight.asset_id:
            return _fail(self, context, NO_ASSET)
        try:
            action, content, *note = self.gather(context)
        except scene_io.SceneIOError as e:
            return _fail(self, context, str(e), e.level)
        if not _backend(self, context):
            return {"CANCELLED"}
        over = _over_image_limit(content)  # the limits this backend announced in its hello, before sending
        if over:
            return _fail(self, context, over)
        session.start_job(action, content, context.scene)
        if note:
            status.status_message = note[0]
            self.report({"INFO"}, note[0])
        return {"FINISHED"}

    def warn(self, context, message: str) -> None:
        context.window_manager.relight.last_warning = message
        self.report({"WARNING"}, message)

    def world(self, context) -> dict:
        """The scene world as an environment for the backend (HDRI as is, other world shaders rendered by Cycles),
        warning when there is no usable world."""
        from .. import scene_io

        env, problem = scene_io.world_to_env_checked(context.scene.world)
        if env.pop("fallback"):
            self.warn(context, problem or scene_io.NO_HDRI_WARNING)
        return env


class RELIGHT_OT_generate(_JobOperator, bpy.types.Operator):
    """Send the image (and the optional mesh) to the backend to build a relightable asset"""

    bl_idname = "relight.generate"
    bl_label = "Generate Relightable Asset"

    def gather(self, context):
        from .. import scene_io

        props = context.scene.relight
        if props.image is None:
            raise scene_io.SceneIOError("No image selected: pick one in the Relight panel (or Open one) first")
        message = image_side_message(props.image.name, *props.image.size)  # before its pixels are read
        if message:
            raise scene_io.SceneIOError(message)
        provider = props.provider or "auto"
        content = {"name": props.image.name, "light_hint": props.light_hint, "provider": provider}
        content["image"], content["colorspace"] = scene_io.image_to_array(props.image)
        if props.mesh_object is not None and provider in ("auto", "scene"):
            content["provider"] = "scene"
            content["mesh"] = scene_io.mesh_to_arrays(props.mesh_object, context.evaluated_depsgraph_get())
            content["camera"] = scene_io.camera_to_dict(context.scene.camera, context.scene)
        if props.light_hint == "world":
            content["world"] = self.world(context)
        return "generate", content


class RELIGHT_OT_preview(_JobOperator, bpy.types.Operator):
    """Render the asset relit by the scene world and lamps, seen from the active camera, into the image "Relight
    Preview"; the asset where its placement object puts it, as the live preview shows it"""

    bl_idname = "relight.preview"
    bl_label = "Preview Relit"
    needs_asset = True

    def gather(self, context):
        from .. import live_scene, scene_io

        props = context.scene.relight
        camera = scene_io.camera_to_dict(context.scene.camera, context.scene)
        return "render", {"asset_id": props.asset_id, "camera": camera, "world": self.world(context),
                          "background": False, "quality": props.preview_quality,
                          "lights": live_scene.lamps_to_list(context.scene), **placement_fields(context)}


class RELIGHT_OT_import_mesh(_JobOperator, bpy.types.Operator):
    """Bake the asset to a PBR mesh (.glb) and import it into the scene"""

    bl_idname = "relight.import_mesh"
    bl_label = "Import PBR Mesh"
    needs_asset = True

    format: bpy.props.EnumProperty(name="Format", default="glb", options={"SKIP_SAVE"}, items=[
        ("glb", "GLB", "glTF binary with baseColor and metallic-roughness textures"),
        ("obj", "OBJ", "OBJ + MTL with albedo, roughness and metallic PNG maps")])

    def gather(self, context):
        props = context.scene.relight
        return "bake", {"asset_id": props.asset_id, "texture_size": int(props.texture_size), "format": self.format}


class RELIGHT_OT_match_photo(_JobOperator, bpy.types.Operator):
    """Find the camera that sees the selected mesh as the image shows it (silhouette alignment) and make it the
    active camera "Relight Match Camera", with the image as its background"""

    bl_idname = "relight.match_photo"
    bl_label = "Match Photo"

    keep_focal: bpy.props.BoolProperty(name="Keep Focal Length", default=False,
                                       description="Keep the active camera's focal length (known from the photo's "
                                       "EXIF or the lens) instead of fitting it")

    def gather(self, context):
        from .. import scene_io

        props = context.scene.relight
        if props.image is None:
            raise scene_io.SceneIOError("No image selected: pick the photo in the Relight panel first")
        if props.mesh_object is None:
            raise scene_io.SceneIOError("No mesh selected: Match Photo fits a camera to the mesh in the Mesh field")
        content = {"mesh": scene_io.mesh_to_arrays(props.mesh_object, context.evaluated_depsgraph_get())}
        content["image"], content["colorspace"] = scene_io.image_to_array(props.image)
        if self.keep_focal:
            h, w = content["image"].shape[:2]
            cam = scene_io.camera_to_dict(context.scene.camera, context.scene)
            content["focal_px"] = float(cam["K"][0][0]) * w / float(cam["width"])  # at the photo's width
        return "match_photo", content


class RELIGHT_OT_reconstruct(_JobOperator, bpy.types.Operator):
    """Reconstruct a baked PBR mesh from a folder of multi-view G-buffers (MAGE's tiled layout, or per-view images
    with cameras.json) and import it"""

    bl_idname = "relight.reconstruct"
    bl_label = "Import from Multi-View G-Buffers"

    directory: bpy.props.StringProperty(subtype="DIR_PATH")
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    optimise: bpy.props.BoolProperty(name="Optimise Mesh", default=True,
                                     description="Fit the mesh to the views' masks, normals and depth (off: bake onto "
                                     "the visual hull, faster, no concavities)")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def gather(self, context):
        import os

        import numpy as np

        from .. import scene_io
        from ..relight_protocol.archive import pack_folder
        from ..relight_protocol.errors import ProtocolError

        folder = bpy.path.abspath(self.directory).rstrip("/\\")
        if not folder or not os.path.isdir(folder):
            raise scene_io.SceneIOError(f"Not a folder: {self.directory!r}; pick the folder that holds the G-buffer images")
        try:
            archive = pack_folder(folder)
        except (ProtocolError, OSError) as e:
            raise scene_io.SceneIOError(f"Could not read the G-buffer folder: {e}") from None
        name = os.path.basename(folder) or "reconstruction"
        return "reconstruct", {"archive": np.frombuffer(archive, np.uint8), "name": name,
                               "texture_size": int(context.scene.relight.texture_size), "optimise": bool(self.optimise)}


class RELIGHT_OT_cancel(bpy.types.Operator):
    """Ask the backend to stop the running job"""

    bl_idname = "relight.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return session.SESSION.running_job() is not None

    def execute(self, context):
        session.SESSION.cancel_running()
        self.report({"INFO"}, "Cancelling the Relight job")
        return {"FINISHED"}


class RELIGHT_OT_retry(bpy.types.Operator):
    """Send the last job that failed (e.g. lost when the backend stopped) to the backend again"""

    bl_idname = "relight.retry"
    bl_label = "Retry"

    @classmethod
    def poll(cls, context):
        if session.SESSION.retry_job is None:
            cls.poll_message_set("No failed Relight job to retry")
            return False
        return _job_idle_poll(cls, context)

    def execute(self, context):
        status = context.window_manager.relight
        status.last_error = status.last_warning = ""
        if not _backend(self, context):  # never blocks while the heartbeat knows the backend is down
            return {"CANCELLED"}
        try:
            job = session.retry_job()
        except session.BackendUnavailable as e:
            return _fail(self, context, str(e))
        self.report({"INFO"}, f"Retrying the Relight {job.action} job")
        return {"FINISHED"}


class RELIGHT_OT_start_local_backend(bpy.types.Operator):
    """Start `relight serve` on this machine with the Python set in the preferences"""

    bl_idname = "relight.start_local_backend"
    bl_label = "Start Local Backend"

    def execute(self, context):
        try:
            session.start_local_backend(_prefs(context))
        except session.BackendUnavailable as e:
            return _fail(self, context, str(e))
        self.report({"INFO"}, "Relight backend started")
        return {"FINISHED"}


class RELIGHT_OT_stop_local_backend(bpy.types.Operator):
    """Stop the backend this add-on started"""

    bl_idname = "relight.stop_local_backend"
    bl_label = "Stop Local Backend"

    @classmethod
    def poll(cls, context):
        return session.LOCAL_BACKEND.running()

    def execute(self, context):
        session.stop_local_backend()
        return {"FINISHED"}


class RELIGHT_OT_add_placement(bpy.types.Operator):
    """Add an empty at the 3D cursor that places the asset: move, turn or scale it to move the live preview's asset"""

    bl_idname = "relight.add_placement"
    bl_label = "Add Asset Placement"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from .. import live_scene

        props = context.scene.relight
        if not props.asset_id:
            return _fail(self, context, NO_ASSET)
        empty = bpy.data.objects.new(f"Relight {props.asset_name or props.asset_id}", None)
        empty.empty_display_type = "ARROWS"
        context.scene.collection.objects.link(empty)
        live_scene.tag_placement(empty, props.asset_id)  # its pose now is the asset's pose as made
        empty.location = context.scene.cursor.location
        return {"FINISHED"}


CLASSES = (
    RELIGHT_OT_check_backend,
    RELIGHT_OT_open_image,
    RELIGHT_OT_generate,
    RELIGHT_OT_preview,
    RELIGHT_OT_import_mesh,
    RELIGHT_OT_reconstruct,
    RELIGHT_OT_match_photo,
    RELIGHT_OT_cancel,
    RELIGHT_OT_retry,
    RELIGHT_OT_start_local_backend,
    RELIGHT_OT_stop_local_backend,
    RELIGHT_OT_add_placement,
)
