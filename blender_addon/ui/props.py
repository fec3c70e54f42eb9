"""Properties the add-on stores: per-scene inputs and results (Scene.relight), live job state (WindowManager.relight)."""

import bpy

from ..relight_protocol.vocabulary import (DEFAULT_TEXTURE_SIZE, LIGHT_HINT_LABELS, LIGHT_HINTS, PROVIDER_LABELS,
                                           PROVIDERS, RENDER_QUALITIES, RENDER_QUALITY_LABELS, enum_items)

# the providers the connected backend offers (its hello); Blender needs the items list kept alive while shown
BACKEND_PROVIDERS = ["inflate", "scene"]
_PROVIDER_ITEMS = []


def provider_items(_self, _context):
    """"auto" plus what the backend said it has: a provider it lacks is never offered."""
    _PROVIDER_ITEMS[:] = enum_items(tuple(p for p in PROVIDERS if p == "auto" or p in BACKEND_PROVIDERS),
                                    PROVIDER_LABELS)
    return _PROVIDER_ITEMS


def _is_mesh(_self, obj) -> bool:
    return obj.type == "MESH"


class RELIGHT_PG_scene(bpy.types.PropertyGroup):
    """Inputs and results saved with the .blend."""

    image: bpy.props.PointerProperty(
        name="Image", type=bpy.types.Image, description="Photo or render of the object to turn into an asset"
    )
    mesh_object: bpy.props.PointerProperty(
        name="Mesh",
        type=bpy.types.Object,
        poll=_is_mesh,
        description="Optional mesh of the object; the image is then taken to be seen from the active camera",
    )
    provider: bpy.props.EnumProperty(
        name="Geometry",
        items=provider_items,
        description="Where the object's shape comes from (the backend lists what it can run)",
    )
    light_hint: bpy.props.EnumProperty(
        name="Input Lighting",
        items=enum_items(LIGHT_HINTS, LIGHT_HINT_LABELS),
        default="unknown",
    )
    preview_quality: bpy.props.EnumProperty(
        name="Preview Quality",
        items=enum_items(RENDER_QUALITIES, RENDER_QUALITY_LABELS),
        default="preview",
    )
    texture_size: bpy.props.IntProperty(
        name="Texture Size",
        default=DEFAULT_TEXTURE_SIZE,
        min=64,
        max=4096,
        description="Side of the baked PBR textures, in pixels",
    )
    asset_id: bpy.props.StringProperty(name="Asset", description="Id of the last generated asset on the backend")
    asset_name: bpy.props.StringProperty(name="Asset Name")


class RELIGHT_PG_status(bpy.types.PropertyGroup):
    """Backend status and the running job, updated by session.tick(); not worth saving."""

    connected: bpy.props.BoolProperty(name="Connected")
    server_version: bpy.props.StringProperty(name="Server Version")
    device: bpy.props.StringProperty(name="Device")
    status_message: bpy.props.StringProperty(name="Status")
    job_action: bpy.props.StringProperty(name="Job")  # "" when idle, else generate/render/bake
    stage: bpy.props.StringProperty(name="Stage")
    fraction: bpy.props.FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    message: bpy.props.StringProperty(name="Message")
    last_error: bpy.props.StringProperty(name="Last Error")
    last_warning: bpy.props.StringProperty(name="Last Warning")
    local_backend_running: bpy.props.BoolProperty(name="Local Backend Running")
    auth_failed: bpy.props.BoolProperty(name="Authentication Failed")  # the backend refused this machine's keys
    live: bpy.props.BoolProperty(
        name="Live",
        default=False,
        update=lambda self, context: _live_toggled(self, context),
        description="Draw the asset relit in the 3D viewport, following the view, the world, the lamps and the "
        "asset's placement object",
    )
    live_message: bpy.props.StringProperty(name="Live Status")


def _live_toggled(status, context) -> None:
    """Live on: start the live preview against the preferences' endpoint; off: remove every handler and timer."""
    from .. import live

    if not status.live:
        live.stop()
        return
    prefs = context.preferences.addons[__package__.rpartition(".")[0]].preferences
    live.start(prefs.endpoint)


CLASSES = (RELIGHT_PG_scene, RELIGHT_PG_status)


def register_properties() -> None:
    bpy.types.Scene.relight = bpy.props.PointerProperty(type=RELIGHT_PG_scene)
    bpy.types.WindowManager.relight = bpy.props.PointerProperty(type=RELIGHT_PG_status)


def unregister_properties() -> None:
    del bpy.types.WindowManager.relight
    del bpy.types.Scene.relight
