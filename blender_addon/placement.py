"""Where imported objects go: beside the selected object, or at the 3D cursor, never hidden inside what is there."""

import bpy
import numpy as np


def selection_anchor(scene):
    """The object a new import goes beside: the active object when selected, else the first selected one, else None
    (then the 3D cursor). Read before importing: importers select what they create."""
    selected = [o for o in scene.objects if o.select_get()]
    active = bpy.context.view_layer.objects.active if bpy.context.view_layer is not None else None
    if active is not None and active in selected:
        return active
    return selected[0] if selected else None


def world_bounds(objects) -> tuple[np.ndarray, np.ndarray] | None:
    """(min [3], max [3]) world-space corners of the objects' bounding boxes; None when they have none."""
    corners = [np.array(o.matrix_world, dtype=np.float64) @ np.append(np.array(c), 1.0)
               for o in objects if o.type in {"MESH", "CURVE", "SURFACE", "META", "FONT"} for c in o.bound_box]
    if not corners:
        return None
    pts = np.array(corners)[:, :3]
    return pts.min(0), pts.max(0)


def place_where_seen(objects, anchor, cursor) -> np.ndarray:
    """Move newly imported `objects` (their top-level ones) where the artist sees them: beside `anchor` (to its +X
    side with a gap of a quarter of the larger width, same centre Y, same floor Z), else centred on the 3D cursor.
    Returns the offset [3] they were moved by (zero when they have no bounds)."""
    bpy.context.view_layer.update()
    new = world_bounds(objects)
    if new is None:
        return np.zeros(3)
    lo, hi = new
    centre = (lo + hi) / 2
    near = world_bounds([anchor]) if anchor is not None else None
    if near is not None:
        alo, ahi = near
        gap = 0.25 * max(ahi[0] - alo[0], hi[0] - lo[0], 1e-3)
        target = np.array([ahi[0] + gap + (hi[0] - lo[0]) / 2, (alo[1] + ahi[1]) / 2, alo[2] + (hi[2] - lo[2]) / 2])
    else:
        target = np.array(cursor, dtype=np.float64)
    offset = target - centre
    import mathutils

    ids = {o.name for o in objects}
    for obj in objects:
        if obj.parent is None or obj.parent.name not in ids:
            m = obj.matrix_world.copy()
            m.translation = m.translation + mathutils.Vector(offset.tolist())
            obj.matrix_world = m
    bpy.context.view_layer.update()
    return offset
