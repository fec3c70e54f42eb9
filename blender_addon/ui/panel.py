"""The "Relight" sidebar tab of the 3D viewport."""

import bpy


class RELIGHT_PT_main(bpy.types.Panel):
    bl_idname = "RELIGHT_PT_main"
    bl_label = "Relight"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Relight"

    @staticmethod
    def backend_down() -> bool:
        from .. import session

        return session.SESSION.state == "down"

    def draw(self, context):
        layout = self.layout
        status = context.window_manager.relight
        props = context.scene.relight

        box = layout.box()
        row = box.row()
        if status.connected:
            row.label(text=f"Backend {status.server_version} on {status.device}", icon="CHECKMARK")
        elif status.auth_failed:  # reachable, but it refused our keys: not the same fix as a backend that is down
            row.label(text="Backend: authentication failed", icon="LOCKED")
        elif self.backend_down():
            row.label(text="Backend lost: reconnecting...", icon="ERROR")
        else:
            row.label(text="Backend not connected", icon="UNLINKED")
        row.operator("relight.check_backend", text="", icon="FILE_REFRESH")
        if status.status_message:
            box.label(text=status.status_message)

        col = layout.column()
        row = col.row(align=True)
        row.prop(props, "image")
        row.operator("relight.open_image", text="", icon="FILEBROWSER")
        col.prop(props, "provider")
        row = col.row(align=True)
        row.prop(props, "mesh_object")
        row.operator("relight.match_photo", text="", icon="VIEW_CAMERA")
        col.prop(props, "light_hint")

        running = bool(status.job_action)
        if running:
            col = layout.column()
            col.progress(factor=status.fraction, type="BAR", text=f"{status.stage}: {status.message}"[:80])
            col.operator("relight.cancel", icon="CANCEL")
        col = layout.column()
        col.enabled = not running
        col.operator("relight.generate", icon="SHADING_RENDERED")
        if props.asset_id:
            col.label(text=f"Asset: {props.asset_name or props.asset_id}", icon="OUTLINER_OB_MESH")
        col.operator("relight.preview", icon="RENDER_STILL")
        row = col.row(align=True)
        row.prop(status, "live", toggle=True, icon="VIEW_CAMERA")
        row.operator("relight.add_placement", text="", icon="EMPTY_AXIS")
        if status.live and status.live_message:
            col.label(text=status.live_message[:80])
        col.prop(props, "preview_quality", text="")
        col.prop(props, "texture_size")
        col.operator("relight.import_mesh", icon="IMPORT")
        col.separator()
        col.operator("relight.reconstruct", icon="MESH_ICOSPHERE")

        if status.last_warning:
            layout.label(text=status.last_warning, icon="ERROR")
        if status.last_error:
            row = layout.row()
            row.alert = True
            row.label(text=status.last_error, icon="CANCEL")
        self.draw_retry(layout, status)

    @staticmethod
    def draw_retry(layout, status) -> None:
        """Retry, once a job failed (lost with the backend, say) and nothing runs."""
        from .. import session

        if session.SESSION.retry_job is not None and not status.job_action:
            layout.operator("relight.retry", icon="FILE_REFRESH", text=f"Retry {session.SESSION.retry_job.action}")


CLASSES = (RELIGHT_PT_main,)
