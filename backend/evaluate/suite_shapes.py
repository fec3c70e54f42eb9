"""The random suite's objects as exact triangle meshes: bevelled primitives, lathed vessels with thin walls and stems,
extruded bevelled text and displaced blobs, built with bpy from a suite_cases.Shape, fitted into the view, cached."""

import math
from dataclasses import asdict

import numpy as np

from . import cycles_scenes as cs
from .suite_cases import Shape

FIT_RADIUS = 1.3  # every object is centred and scaled so its farthest vertex is this far from the origin
SPLIT_ANGLE = math.radians(30)  # edges sharper than this are split, so smooth shading keeps them crisp
SHAPES_VERSION = "s1"  # bump when a construction changes


def suite_mesh(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """(vertices [V, 3] float32 world, faces [F, 3] int32) of a suite object, cached under cycles_scenes.cache_dir().

    Vertices along edges sharper than SPLIT_ANGLE are split (blobs are smooth), so Blender's smooth shading of these
    arrays, which Cycles renders and the `scene` provider is given, keeps creases crisp."""
    bpy = cs.import_bpy()
    key = cs.cache_key(shape=asdict(shape), v=SHAPES_VERSION, bpy=bpy.app.version_string)
    path = cs.cache_dir() / "suite_meshes" / f"{shape.kind}_{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return z["v"], z["f"]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    rng = np.random.default_rng(shape.seed)
    obj = _build(bpy, shape, rng)
    obj.rotation_euler = shape.turn
    bpy.context.view_layer.update()
    v, f = cs.evaluated_mesh(bpy, obj)
    if shape.kind != "blob":
        split = cs.new_mesh_object(bpy, "split", v, f)
        mod = split.modifiers.new("split", "EDGE_SPLIT")
        mod.split_angle = SPLIT_ANGLE
        mod.use_edge_sharp = False
        bpy.context.view_layer.update()
        v, f = cs.evaluated_mesh(bpy, split)
    v, f = _clean(v, f)
    c = 0.5 * (v.min(0) + v.max(0))
    v = (v - c) * (FIT_RADIUS / np.linalg.norm(v - c, axis=1).max())
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, v=v.astype(np.float32), f=f.astype(np.int32))
    return v.astype(np.float32), f.astype(np.int32)


def _clean(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop zero-area triangles and unused vertices; orient the surface outwards (positive signed volume)."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    f = f[np.linalg.norm(cross, axis=1) > 1e-10]
    used, f = np.unique(f, return_inverse=True)
    v, f = v[used], f.reshape(-1, 3)
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    return v, (f if volume > 0 else f[:, ::-1].copy())


def _build(bpy, shape: Shape, rng):
    """The object in Blender before its turn: primitives and text with their bevels, lathes and blobs as meshes."""
    if shape.kind == "primitive":
        return _primitive(bpy, shape, rng)
    if shape.kind == "lathe":
        v, f = cs.lathe(_profile(shape.form, rng), 96)
        return cs.new_mesh_object(bpy, "lathe", v, f)
    if shape.kind == "text":
        curve = bpy.data.curves.new("text", "FONT")
        curve.body = shape.form
        curve.align_x, curve.align_y = "CENTER", "CENTER"
        curve.extrude = shape.proportions[2] / 2  # half the depth on each side of the glyphs' plane
        curve.bevel_depth = shape.bevel
        curve.bevel_resolution = 3
        curve.resolution_u = 8
        obj = bpy.data.objects.new("text", curve)
        bpy.context.scene.collection.objects.link(obj)
        return obj
    bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=6, radius=1.0)  # 10242 vertices
    obj = bpy.context.active_object
    v = np.zeros(len(obj.data.vertices) * 3)
    obj.data.vertices.foreach_get("co", v)
    d = v.reshape(-1, 3) / np.linalg.norm(v.reshape(-1, 3), axis=1, keepdims=True)
    k = 5
    w = rng.normal(size=(k, 3))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    freq, phase, amps = rng.uniform(1.5, 4.0, k), rng.uniform(0, 2 * np.pi, k), rng.uniform(0.5, 1.0, k)
    bumps = (amps * np.sin(d @ w.T * freq + phase)).sum(1) / amps.sum()  # in [-1, 1]
    r = 1.0 + rng.uniform(0.15, 0.35) * bumps  # deep dents and ridges, never through the centre
    obj.data.vertices.foreach_set("co", (d * r[:, None]).reshape(-1))
    obj.data.update()
    return obj


def _primitive(bpy, shape: Shape, rng):
    from mathutils import Matrix

    ops = bpy.ops.mesh
    if shape.form == "torus":
        ops.primitive_torus_add(major_radius=0.75, minor_radius=rng.uniform(0.18, 0.35), major_segments=96,
                                minor_segments=48)  # fmt: skip
    elif shape.form == "cylinder":
        ops.primitive_cylinder_add(vertices=64, radius=1.0, depth=2.0)
    elif shape.form == "cone":
        ops.primitive_cone_add(vertices=64, radius1=1.0, radius2=rng.uniform(0.0, 0.4), depth=2.0)
    else:  # cube, slab
        ops.primitive_cube_add(size=2.0)
    obj = bpy.context.active_object
    obj.data.transform(Matrix.Diagonal((*shape.proportions, 1.0)))
    if shape.bevel > 0:
        bev = obj.modifiers.new("bevel", "BEVEL")
        bev.width = shape.bevel * 2.0  # the object spans about 2 units
        bev.segments = 4
        bev.limit_method = "ANGLE"
        if shape.form == "slab":
            bev.width = min(bev.width, 0.45 * min(shape.proportions))
    return obj


def _profile(form: str, rng) -> np.ndarray:
    """[M, 2] (r, z) profile of a lathed vessel, r = 0 at both ends."""
    if form == "vase":
        t = np.linspace(0, 1, 48)
        r0, a, f, ph = rng.uniform(0.4, 0.6), rng.uniform(0.15, 0.35), rng.uniform(1.0, 2.2), rng.uniform(0, 1.5)
        r = r0 + a * np.sin(np.pi * t * f + ph) * (1 - 0.4 * t)
        return np.concatenate([[[0.0, -1.0]], np.stack([r, -1.0 + 2.0 * t], 1), [[0.0, 1.0]]])
    wall = rng.uniform(0.04, 0.08)
    rim_r = rng.uniform(0.6, 0.9)
    if form == "cup":  # flat bottom, flaring thin wall, rounded rim, open: the inside is a concavity
        h, base = rng.uniform(0.9, 1.4), rim_r * rng.uniform(0.5, 0.85)
        t = np.linspace(0, 1, 32)
        ro = base + (rim_r - base) * t ** rng.uniform(0.6, 1.6)
        z = -h / 2 + h * t
        bottom = [(base * s, -h / 2) for s in np.linspace(0.2, 0.9, 4)]
        outer = list(zip(ro, z))
        floor = -h / 2 + 1.5 * wall
        inner = [(ri, zi) for ri, zi in zip(ro[::-1] - wall, z[::-1]) if zi > floor + 0.02]
        inner_floor = [((base - wall) * s, floor) for s in np.linspace(0.9, 0.2, 4)]
        start, end = (0.0, -h / 2), (0.0, floor)
    else:  # goblet: a foot, a thin stem and an open bowl
        foot, stem = rng.uniform(0.45, 0.65), rng.uniform(0.04, 0.08)
        t = np.linspace(0, 1, 28)
        ro = stem + (rim_r - stem) * np.sin(0.5 * np.pi * t) ** rng.uniform(0.5, 1.0)
        z = -0.1 + 1.1 * t
        bottom = [(foot * s, -1.0) for s in np.linspace(0.2, 1.0, 5)] + [(foot, -0.95)]
        bottom += [(stem + (foot - stem) * s, -0.95 + 0.1 * (1 - s)) for s in np.linspace(0.7, 0.0, 4)[1:]]
        bottom += [(stem, zz) for zz in np.linspace(-0.8, -0.2, 4)]
        outer = list(zip(ro, z))
        inner = [(ri, zi) for ri, zi in zip(ro[::-1] - wall, z[::-1]) if ri > 0.05 and zi > 0.0]
        inner_floor = [(inner[-1][0] * s, inner[-1][1] - 0.02 * (1 - s)) for s in (0.6, 0.3)]
        start, end = (0.0, -1.0), (0.0, inner_floor[-1][1] - 0.01)
    cx = rim_r - wall / 2
    rim = [(cx + 0.5 * wall * math.cos(a), z[-1] + 0.5 * wall * math.sin(a)) for a in np.linspace(0, np.pi, 9)[1:-1]]
    return np.array([start, *bottom, *outer, *rim, *inner, *inner_floor, end], np.float64)
