"""Add-on preferences: backend endpoint, CURVE keys of a remote backend, optional local backend process, timeouts."""

import bpy

from .. import session
from ..relight_protocol.vocabulary import DEFAULT_ENDPOINT


class RELIGHT_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__.rpartition(".")[0]  # the add-on's package (this module lives in its ui/ sub-package)

    endpoint: bpy.props.StringProperty(
        name="Backend Endpoint",
        default=DEFAULT_ENDPOINT,
        description="ZeroMQ address of the Relight backend (relight serve)",
    )
    start_local: bpy.props.BoolProperty(
        name="Start a local backend",
        default=False,
        description="Run `relight serve` on this machine from the Python below when the add-on needs a backend",
    )
    python_path: bpy.props.StringProperty(
        name="Backend Python",
        subtype="FILE_PATH",
        default="",
        description="Python executable of an environment with the relight backend installed",
    )
    store_dir: bpy.props.StringProperty(
        name="Asset Store",
        subtype="DIR_PATH",
        default="",
        description="Folder where the local backend keeps generated assets (empty: a folder in the temp directory)",
    )
    server_public_key: bpy.props.StringProperty(
        name="Server Public Key",
        subtype="FILE_PATH",
        default="",
        description="For a backend started with --keys: its server.key file (from `relight keys`), or the 40-character "
                    "public key pasted. Empty for a backend on this machine without keys",
    )
    client_key_pair: bpy.props.StringProperty(
        name="Client Key Pair",
        subtype="FILE_PATH",
        default="",
        description="This machine's <name>.key_secret file from `relight keys` (holds both keys), or its secret key "
                    "pasted (then also paste the public key below). Never share it",
    )
    client_public_key: bpy.props.StringProperty(
        name="Client Public Key",
        default="",
        description="Only when the secret key was pasted above: this machine's public key (<name>.key)",
    )
    request_timeout: bpy.props.FloatProperty(
        name="Request Timeout",
        default=5.0,
        min=0.2,
        max=600.0,
        unit="TIME_ABSOLUTE",
        description="Seconds to wait for the backend to answer a request (and for a local backend to start)",
    )
    job_timeout: bpy.props.FloatProperty(
        name="Job Silence Timeout",
        default=900.0,
        min=5.0,
        max=86400.0,
        unit="TIME_ABSOLUTE",
        description="Seconds a running job may go without any progress before it is given up",
    )

    live_max_side: bpy.props.IntProperty(
        name="Live Preview Size",
        default=512,
        min=64,
        max=2048,
        description="Longest side, in pixels, of the live viewport preview (it follows the viewport up to this)",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "endpoint")
        layout.prop(self, "live_max_side")
        box = layout.box()
        box.prop(self, "start_local")
        col = box.column()
        col.active = self.start_local
        col.prop(self, "python_path")
        col.prop(self, "store_dir")
        row = col.row()
        if session.LOCAL_BACKEND.running():
            row.operator("relight.stop_local_backend", icon="CANCEL")
        else:
            row.operator("relight.start_local_backend", icon="PLAY")
        keys = layout.box()
        keys.label(text="Remote backend keys (relight serve --keys)", icon="LOCKED")
        keys.prop(self, "server_public_key")
        keys.prop(self, "client_key_pair")
        keys.prop(self, "client_public_key")
        layout.prop(self, "request_timeout")
        layout.prop(self, "job_timeout")


CLASSES = (RELIGHT_AP_preferences,)
