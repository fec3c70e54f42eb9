"""Relight: turn one image of an object into a relightable 3D asset, computed by the Relight backend."""

from . import library, session  # noqa: F401  (library registers its replies with session)
from .ui import library_ui, ops, panel, prefs, props

CLASSES = props.CLASSES + prefs.CLASSES + ops.CLASSES + panel.CLASSES
CLASSES += library_ui.CLASSES  # after panel: its panels are children of the main one


def register() -> None:
    import bpy

    for cls in CLASSES:
        bpy.utils.register_class(cls)
    props.register_properties()
    library_ui.register_properties()
    library_ui.register_menus()


def unregister() -> None:
    import bpy

    session.shutdown()
    if bpy.app.timers.is_registered(library.refresh_when_idle):
        bpy.app.timers.unregister(library.refresh_when_idle)
    library_ui.unregister_menus()
    library_ui.unregister_properties()
    props.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
