"""Relight: turn one image of an object into a relightable 3D asset, computed by the Relight backend."""

from . import session
from .ui import ops, panel, prefs, props

CLASSES = props.CLASSES + prefs.CLASSES + ops.CLASSES + panel.CLASSES


def register() -> None:
    import bpy

    for cls in CLASSES:
        bpy.utils.register_class(cls)
    props.register_properties()


def unregister() -> None:
    import bpy

    session.shutdown()
    props.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
