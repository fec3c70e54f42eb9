"""Ground-truth scenes for the forward-rendering eval: exact meshes built with bpy, and Cycles renders of them
with Principled BSDF materials under a bpy HDRI (cached by scene parameters). The only module, with the eval,
that imports bpy, and only inside functions."""

import hashlib
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core import axes
from ..core.camera import Camera
from ..core.ground import GroundPlane

SHAPES = ("sphere", "suzanne", "torus", "bowl", "bevel_box", "sphere_on_ground", "text")
FLAT_SHAPES = ("text",)  # hard-surface: shaded flat in Blender, so every sharp edge shows (the mesh is split there)
MESH_VERSION = "m3"  # bump when a shape's construction changes


@dataclass(frozen=True)
class Material:
    """Principled BSDF parameters (specular 0.5 / IOR 1.5, everything else at its default)."""

    base_color: tuple  # linear Rec.709
    roughness: float
    metallic: float


def cache_dir() -> Path:
    """RELIGHT_CACHE_DIR when set, else <repo>/.cache in a source checkout, else ~/.cache/relight."""
    env = os.environ.get("RELIGHT_CACHE_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]  # backend/evaluate/ -> the checkout
    if (repo / "pyproject.toml").is_file() and os.access(repo, os.W_OK):
        return repo / ".cache"
    return Path.home() / ".cache" / "relight"


def cache_key(**params) -> str:
    return hashlib.sha1(repr(sorted(params.items())).encode()).hexdigest()[:16]


def import_bpy():
    """Import bpy with its user folders in a temp dir (so it never writes into the real home)."""
    home = Path(tempfile.gettempdir()) / "relight-bpy-home"
    for var, sub in (("BLENDER_USER_RESOURCES", "blender"), ("BLENDER_USER_SCRIPTS", "blender/scripts"),
                     ("BLENDER_USER_CONFIG", "blender/config"), ("XDG_CACHE_HOME", "cache")):  # fmt: skip
        if var not in os.environ:
            os.environ[var] = str(home / sub)
            (home / sub).mkdir(parents=True, exist_ok=True)
    import bpy

    return bpy


# ---------------------------------------------------------------------------------------------------- meshes


def lathe(profile: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed surface of revolution about Z. profile [M, 2] (r, z) with r = 0 at both ends (poles).
    -> (vertices [V, 3], triangles [F, 3]) wound counter-clockwise seen from the side the profile's left faces."""
    ring = profile[1:-1]
    phi = np.arange(segments) * 2 * np.pi / segments
    rings = np.stack([ring[:, 0:1] * np.cos(phi), ring[:, 0:1] * np.sin(phi), np.repeat(ring[:, 1:2], segments, 1)], -1)
    v = np.concatenate([[[0, 0, profile[0, 1]]], rings.reshape(-1, 3), [[0, 0, profile[-1, 1]]]])
    R = len(ring)
    idx = lambda r, s: 1 + r * segments + (s % segments)  # noqa: E731
    f = [(0, idx(0, s + 1), idx(0, s)) for s in range(segments)]
    for r in range(R - 1):
        for s in range(segments):
            a, b, c, d = idx(r, s), idx(r, s + 1), idx(r + 1, s + 1), idx(r + 1, s)
            f += [(a, b, c), (a, c, d)]
    last = len(v) - 1
    f += [(last, idx(R - 1, s), idx(R - 1, s + 1)) for s in range(segments)]
    return v.astype(np.float64), np.array(f, np.int64)


def _bowl() -> tuple[np.ndarray, np.ndarray]:
    """A hemispherical bowl (outer radius 1, wall 0.1) with a rounded rim, resting on z = 0 (before centring)."""
    top = math.radians(78)
    outer = [(math.sin(t), -math.cos(t)) for t in np.linspace(0, top, 28)]
    rim_c = np.array([0.95 * math.sin(top), -0.95 * math.cos(top)])
    rim = [tuple(rim_c + 0.05 * np.array([math.sin(top + a), -math.cos(top + a)])) for a in np.linspace(0, np.pi, 12)[1:-1]]
    inner = [(0.9 * math.sin(t), -0.9 * math.cos(t)) for t in np.linspace(top, 0, 26)]
    profile = np.array(outer + rim + inner)
    v, f = lathe(profile, 72)
    # orientation: the fan at the outer pole must face -z
    n0 = np.cross(v[f[0, 1]] - v[f[0, 0]], v[f[0, 2]] - v[f[0, 0]])
    if n0[2] > 0:
        f = f[:, ::-1]
    return v, f


def _mesh_from_bpy_object(bpy, obj) -> tuple[np.ndarray, np.ndarray]:
    """Evaluated (modifiers applied) object -> triangulated (vertices [V, 3] world, faces [F, 3])."""
    import bmesh

    dg = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(dg)
    me = ev.to_mesh()
    bm = bmesh.new()
    bm.from_mesh(me)
    bmesh.ops.triangulate(bm, faces=bm.faces[:])
    bm.verts.ensure_lookup_table()
    v = np.array([tuple(obj.matrix_world @ x.co) for x in bm.verts], np.float64)
    f = np.array([[x.index for x in face.verts] for face in bm.faces], np.int64)
    bm.free()
    ev.to_mesh_clear()
    return v, f


def evaluated_mesh(bpy, obj) -> tuple[np.ndarray, np.ndarray]:
    """Any object Blender can evaluate to a mesh (a mesh with modifiers, a text or curve object) -> triangulated
    (vertices [V, 3] float64 world, faces [F, 3] int64)."""
    return _mesh_from_bpy_object(bpy, obj)


def new_mesh_object(bpy, name: str, v: np.ndarray, f: np.ndarray):
    """Mesh object from arrays, smooth shaded (Blender's own vertex normals, no custom normals)."""
    me = bpy.data.meshes.new(name)
    me.from_pydata(v.tolist(), [], f.tolist())
    me.update()
    me.shade_smooth()
    obj = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _build_shape(bpy, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """World-space triangle mesh of a named shape (before the final smooth-normal pass)."""
    ops = bpy.ops.mesh
    if shape in ("sphere", "sphere_on_ground"):
        ops.primitive_uv_sphere_add(segments=96, ring_count=48, radius=1.0)
    elif shape == "suzanne":
        ops.primitive_monkey_add(size=2.0)
        obj = bpy.context.active_object
        mod = obj.modifiers.new("subsurf", "SUBSURF")
        mod.levels = 2
        obj.rotation_euler = (0.0, 0.0, math.radians(180 - 20))  # faces -Y (the camera), turned a little
    elif shape == "torus":
        ops.primitive_torus_add(major_radius=0.75, minor_radius=0.3, major_segments=96, minor_segments=48)
        bpy.context.active_object.rotation_euler = (math.radians(55), 0.0, math.radians(15))
    elif shape == "bowl":
        v, f = _bowl()
        new_mesh_object(bpy, "bowl_src", v, f)
        obj = bpy.context.scene.objects["bowl_src"]
        obj.rotation_euler = (math.radians(35), 0.0, 0.0)  # tip it towards the camera to show the inside
    elif shape == "bevel_box":
        ops.primitive_cube_add(size=1.6)
        obj = bpy.context.active_object
        bev = obj.modifiers.new("bevel", "BEVEL")
        bev.width = 0.15
        bev.segments = 5
        split = obj.modifiers.new("split", "EDGE_SPLIT")
        split.split_angle = math.radians(30)
        obj.rotation_euler = (0.0, 0.0, math.radians(30))
    elif shape == "text":  # extruded letters: flat faces, sharp edges, as Blender shades a text converted to a mesh
        bpy.ops.object.text_add()
        obj = bpy.context.active_object
        obj.data.body = "Rg"
        obj.data.extrude = 0.12
        obj.data.align_x, obj.data.align_y = "CENTER", "CENTER"
        obj.scale = (1.6, 1.6, 1.6)
        obj.rotation_euler = (math.radians(90), 0.0, math.radians(-25))  # standing, facing -Y, turned a little
        bpy.ops.object.convert(target="MESH")
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    obj = bpy.context.active_object if shape != "bowl" else bpy.context.scene.objects["bowl_src"]
    bpy.context.view_layer.update()
    v, f = _mesh_from_bpy_object(bpy, obj)
    if shape == "sphere_on_ground":
        v[:, 2] += 1.0  # rests on z = 0
    return v, f


def shape_mesh(shape: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices [V, 3] world, faces [F, 3] int32, Blender's smooth vertex normals [V, 3]) of a shape, cached.

    The normals are the ones Cycles shades with: read back from a mesh rebuilt from exactly these arrays."""
    bpy = import_bpy()
    path = cache_dir() / "forward_meshes" / f"{shape}_{cache_key(shape=shape, v=MESH_VERSION, bpy=bpy.app.version_string)}.npz"
    if path.is_file():
        with np.load(path) as z:
            return z["v"], z["f"], z["n"]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    v, f = _build_shape(bpy, shape)
    if shape in FLAT_SHAPES:  # split where the flat faces meet: smooth shading of the pieces is the flat shading
        from ..core.surface import split_by_normals

        fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-12)
        v, f, _ = split_by_normals(v, f, np.repeat(fn[:, None], 3, 1))
        v, f = v.astype(np.float64), f.astype(np.int64)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = new_mesh_object(bpy, "probe", v, f)
    n = np.array([tuple(x.vector) for x in obj.data.vertex_normals], np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, v=v.astype(np.float32), f=f.astype(np.int32), n=n.astype(np.float32))
    return v.astype(np.float32), f.astype(np.int32), n.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- Cycles


@dataclass(frozen=True)
class CyclesSettings:
    samples: int = 64
    denoise: bool = True
    seed: int = 0
    max_bounces: int = 12
    pixel_filter: str = "BLACKMAN_HARRIS"  # Cycles' film filter: "BLACKMAN_HARRIS" (Blender's default), "BOX", "GAUSSIAN"
    filter_width: float = 1.5  # px (Blender's default 1.5; "BOX" at 1.0 averages over exactly the pixel)

    def cache_params(self) -> dict:
        """The fields that name a cached render: the film filter only when it is not Blender's default, so renders
        cached before it was a setting stay valid."""
        d = asdict(self)
        if (self.pixel_filter, self.filter_width) == ("BLACKMAN_HARRIS", 1.5):
            del d["pixel_filter"], d["filter_width"]
        return d


def principled_material(bpy, name: str, m: Material):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*m.base_color, 1.0)
    bsdf.inputs["Roughness"].default_value = m.roughness
    bsdf.inputs["Metallic"].default_value = m.metallic
    bsdf.inputs["IOR"].default_value = 1.5
    return mat


def set_world_hdri(bpy, scene, hdri_path: Path, rotation: float, strength: float) -> None:
    world = bpy.data.worlds.new("world")
    scene.world = world
    world.use_nodes = True
    nt = world.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputWorld")
    bg = nt.nodes.new("ShaderNodeBackground")
    env = nt.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(hdri_path))
    env.interpolation = "Linear"
    tc = nt.nodes.new("ShaderNodeTexCoord")
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.vector_type = "POINT"
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, rotation)
    nt.links.new(tc.outputs["Generated"], mapping.inputs["Vector"])
    nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    nt.links.new(env.outputs["Color"], bg.inputs["Color"])
    nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
    bg.inputs["Strength"].default_value = strength


def set_camera(bpy, scene, camera: Camera) -> None:
    data = bpy.data.cameras.new("cam")
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = 36.0
    data.lens = float(camera.K[0, 0]) / camera.width * 36.0
    if abs(camera.K[0, 2] - camera.width / 2) > 1e-6 or abs(camera.K[1, 2] - camera.height / 2) > 1e-6:
        raise ValueError("only centred principal points are supported")
    data.clip_start, data.clip_end = 0.01, 1000.0
    obj = bpy.data.objects.new("cam", data)
    scene.collection.objects.link(obj)
    from mathutils import Matrix

    obj.matrix_world = Matrix(axes.viewmat_to_blender_camera(camera.viewmat).tolist())
    scene.camera = obj


def setup_cycles(scene, camera: Camera, settings: CyclesSettings) -> None:
    """Cycles on the CPU, film transparent, the camera's resolution, linear 32-bit EXR output, Standard view."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = settings.samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = settings.denoise
    scene.cycles.seed = settings.seed
    scene.cycles.max_bounces = settings.max_bounces
    scene.cycles.pixel_filter_type = settings.pixel_filter
    scene.cycles.filter_width = settings.filter_width
    scene.render.film_transparent = True
    scene.render.resolution_x, scene.render.resolution_y = camera.width, camera.height
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.color_mode = "RGBA"
    scene.view_settings.view_transform = "Standard"


def render_to_array(bpy, scene) -> np.ndarray:
    """Render the scene to a temporary EXR and read it back: [H, W, 4] linear premultiplied RGBA."""
    with tempfile.TemporaryDirectory() as tmp:
        scene.render.filepath = str(Path(tmp) / "r.exr")
        bpy.ops.render.render(write_still=True)
        return read_rgba_exr(Path(tmp) / "r.exr")


def render_cycles(shape: str, material: Material, hdri: str, rotation: float, camera: Camera,
                  ground: GroundPlane | None = None, strength: float = 1.0,
                  settings: CyclesSettings = CyclesSettings(), world=None) -> np.ndarray:  # fmt: skip
    """[H, W, 4] linear premultiplied RGBA Cycles render (film transparent) of `shape` with `material` under the
    bpy HDRI `hdri` (Mapping Z rotation in radians, Background strength), cached under cache_dir(). world: instead
    of an HDRI, (key str, set_world(bpy, scene)) that builds the world (a sky), `hdri` then only names it."""
    from ..core.envmap import builtin_hdris

    bpy = import_bpy()
    hdri_path = builtin_hdris()[hdri] if world is None else None
    source = hdri_path.stat().st_size if world is None else world[0]
    key = cache_key(shape=shape, mesh=MESH_VERSION, mat=asdict(material), hdri=hdri, hdri_size=source,
               rot=round(rotation, 6), strength=strength, cam=repr(camera.to_dict()),
               ground=None if ground is None else asdict(ground), cycles=settings.cache_params(), bpy=bpy.app.version_string)  # fmt: skip
    path = cache_dir() / "forward_cycles" / f"{shape}_{hdri}_{key}.npy"
    if path.is_file():
        return np.load(path)
    v, f, _ = shape_mesh(shape)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    setup_cycles(scene, camera, settings)
    obj = new_mesh_object(bpy, shape, v.astype(np.float64), f)
    obj.data.materials.append(principled_material(bpy, "mat", material))
    if ground is not None:
        h = ground.size / 2
        cx, cy = ground.center
        gv = np.array([[cx - h, cy - h, ground.z], [cx + h, cy - h, ground.z], [cx + h, cy + h, ground.z],
                       [cx - h, cy + h, ground.z]])  # fmt: skip
        g = new_mesh_object(bpy, "ground", gv, np.array([[0, 1, 2], [0, 2, 3]]))
        g.data.materials.append(principled_material(bpy, "ground", Material(tuple(ground.albedo), ground.roughness, 0.0)))
    if world is None:
        set_world_hdri(bpy, scene, hdri_path, rotation, strength)
    else:
        world[1](bpy, scene)
    set_camera(bpy, scene, camera)
    img = render_to_array(bpy, scene)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, img)
    return img


def read_rgba_exr(path: Path) -> np.ndarray:
    import OpenEXR

    with OpenEXR.File(str(path)) as f:
        ch = f.channels()
        if "RGBA" in ch:
            return np.ascontiguousarray(ch["RGBA"].pixels, np.float32)
        return np.stack([ch[c].pixels for c in "RGBA"], -1).astype(np.float32)
