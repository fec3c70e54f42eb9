"""Ground truth for `relight eval multiview`: known textured meshes in the unit cube, rendered by Cycles (bpy) at the
Zero123++ input views and at held-out views into MultiViewSets (mask, world normal, camera-space depth, albedo,
roughness, metallic from material AOVs, RGB under an HDRI), plus the held-out views under an HDRI the inputs never
saw. Cached as npz under cycles_scenes.cache_dir(). Imports core and evaluate.cycles_scenes, never render."""

import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core.camera import Camera
from ..core.frames import normalise
from ..reconstruct.views import MultiViewSet

SHAPES = ("sphere", "suzanne", "torus", "bowl", "bevel_box", "mug")  # "mug": a handle, the thin part
SCENE_VERSION = "mv1"  # bump when a mesh, texture or pass conversion changes
SIZE = 320  # px, every view square
INPUT_HDRI, RELIT_HDRI = "courtyard", "sunset"  # the inputs' light, and the held-out light the inputs never see
# (azimuth, elevation) in degrees on the rig's sphere: halfway between the inputs' azimuths, at elevations inside
# their -10..20 degree band, so a held-out view shows surface some input saw (a mug's inside, seen from 35 degrees
# up, was seen by none: true geometry baked from the inputs scored 22.6 dB albedo there) - novel views, not completion
HELD_OUT_VIEWS = ((0.0, 10.0), (120.0, 0.0), (240.0, 15.0), (300.0, -5.0))
BG_DEPTH = 1e9  # Cycles writes 1e10 into the Z pass where a ray misses


@dataclass(frozen=True)
class Texture:
    """A material as a function of the world position p (the object sits in the unit cube at the origin):
    albedo stripes (hard edges) across `stripe_axis` with period `stripe_period`, roughness ramping linearly from
    `rough_lo` at p[rough_axis] = -0.5 to `rough_hi` at +0.5, metallic 1 where p[metal_axis] > metal_above."""

    colour_a: tuple  # linear Rec.709
    colour_b: tuple
    stripe_axis: int
    stripe_period: float  # world units
    rough_lo: float
    rough_hi: float
    rough_axis: int
    metal_axis: int = 2
    metal_above: float | None = None  # None: no metal


TEXTURES = {
    "sphere": Texture((0.75, 0.12, 0.1), (0.9, 0.85, 0.7), 2, 0.25, 0.25, 0.7, 0),
    "suzanne": Texture((0.2, 0.45, 0.75), (0.85, 0.8, 0.3), 0, 0.2, 0.35, 0.8, 2),
    "torus": Texture((0.1, 0.5, 0.2), (0.8, 0.8, 0.75), 1, 0.18, 0.2, 0.6, 0),
    "bowl": Texture((0.8, 0.55, 0.3), (0.3, 0.3, 0.7), 2, 0.15, 0.3, 0.75, 1),
    "bevel_box": Texture((0.85, 0.3, 0.1), (0.15, 0.15, 0.15), 0, 0.3, 0.15, 0.55, 1, 2, 0.15),  # metal top
    "mug": Texture((0.9, 0.9, 0.85), (0.1, 0.3, 0.6), 2, 0.2, 0.3, 0.6, 0, 2, 0.3),  # metal rim band
}


def albedo_field(t: Texture):
    """world points [P, 3] -> [P, 3] linear albedo."""
    a, b = np.asarray(t.colour_a, np.float64), np.asarray(t.colour_b, np.float64)

    def f(p):
        s = (np.mod(p[:, t.stripe_axis] / t.stripe_period, 1.0) > 0.5)[:, None]
        return np.where(s, b, a)

    return f


def roughness_field(t: Texture):
    """world points [P, 3] -> [P] roughness."""
    return lambda p: t.rough_lo + (t.rough_hi - t.rough_lo) * np.clip(p[:, t.rough_axis] + 0.5, 0.0, 1.0)


def metallic_field(t: Texture):
    """world points [P, 3] -> [P] metallic in {0, 1}."""
    if t.metal_above is None:
        return lambda p: np.zeros(len(p))
    return lambda p: (p[:, t.metal_axis] > t.metal_above).astype(np.float64)


# ---------------------------------------------------------------------------------------------------- meshes


def _mug() -> tuple[np.ndarray, np.ndarray]:
    """A mug (wall 0.05, height 1, outer radius 0.5) with a handle: a 0.035-radius tube bent through 190 degrees,
    its ends buried in the wall. -> (vertices [V, 3], faces [F, 3]) before normalisation."""
    from .cycles_scenes import lathe

    prof = [(0.0, -0.5)] + [(0.47, -0.5)] + [(0.5, z) for z in np.linspace(-0.47, 0.48, 20)]
    rim = [(0.475 + 0.025 * math.cos(a), 0.48 + 0.025 * math.sin(a)) for a in np.linspace(0, np.pi, 7)[1:-1]]
    inner = [(0.45, z) for z in np.linspace(0.48, -0.42, 18)] + [(0.42, -0.45), (0.0, -0.45)]
    v, f = lathe(np.array(prof + rim + inner), 64)
    n0 = np.cross(v[f[0, 1]] - v[f[0, 0]], v[f[0, 2]] - v[f[0, 0]])
    if n0[2] > 0:  # the outer bottom's fan must face -z
        f = f[:, ::-1]
    # the handle: centre line c(theta) = (0.47 + 0.22 cos theta, 0, 0.22 sin theta), theta in [-95, 95] degrees
    R, r, nu, nv = 0.22, 0.035, 48, 16
    th = np.radians(np.linspace(-95.0, 95.0, nu))
    ph = np.arange(nv) * 2 * np.pi / nv
    T, P = np.meshgrid(th, ph, indexing="ij")
    rad = R + r * np.cos(P)
    hv = np.stack([0.47 + rad * np.cos(T), r * np.sin(P), rad * np.sin(T)], -1).reshape(-1, 3)
    idx = lambda i, j: i * nv + (j % nv)  # noqa: E731
    hf = [(idx(i, j), idx(i + 1, j), idx(i + 1, j + 1)) for i in range(nu - 1) for j in range(nv)]
    hf += [(idx(i, j), idx(i + 1, j + 1), idx(i, j + 1)) for i in range(nu - 1) for j in range(nv)]
    hf = np.array(hf, np.int64)
    # outward: the first face's normal points away from the centre line at theta[0]
    a, b, c = hv[hf[0]]
    centre = np.array([0.47 + R * np.cos(th[0]), 0.0, R * np.sin(th[0])])
    if np.cross(b - a, c - a) @ ((a + b + c) / 3 - centre) < 0:
        hf = hf[:, ::-1]
    return np.concatenate([v, hv]), np.concatenate([f, hf + len(v)])


def object_mesh(shape: str) -> tuple[np.ndarray, np.ndarray]:
    """(vertices [V, 3] float64 in the unit cube centred at the origin (longest side 1), faces [F, 3] int64) of an
    evaluation object: cycles_scenes' shapes (same construction and pose) or the mug, normalised."""
    if shape == "mug":
        v, f = _mug()
    else:
        from .cycles_scenes import shape_mesh

        v, f, _ = shape_mesh(shape)
    v_unit, _ = normalise(np.asarray(v, np.float64))
    return v_unit.astype(np.float64), np.asarray(f, np.int64)


# ---------------------------------------------------------------------------------------------------- cameras


def orbit_camera(azimuth_deg: float, elevation_deg: float, size: int = SIZE) -> Camera:
    """A camera of the Zero123++ rig's sphere (reconstruct/zero123.py: radius 4, azimuth 0 on +X, growing towards
    +Y, Z up) at any azimuth / elevation, looking at the origin with the rig's field of view."""
    from ..reconstruct.zero123 import FOV_DEG, camera_position

    return Camera.look_at(camera_position(azimuth_deg, elevation_deg), (0.0, 0.0, 0.0), FOV_DEG, size, size)


def input_cameras(size: int = SIZE) -> list[Camera]:
    """The six Zero123++ v1.2 views, as reconstruct/zero123.py pins them (the one place the rig is defined)."""
    from ..reconstruct.zero123 import zero123_cameras

    return zero123_cameras(size)


def held_out_cameras(size: int = SIZE) -> list[Camera]:
    """The four views the reconstruction never sees, on the rig's sphere."""
    return [orbit_camera(az, el, size) for az, el in HELD_OUT_VIEWS]


# ---------------------------------------------------------------------------------------------------- Cycles


@dataclass(frozen=True)
class GroundTruthSettings:
    rgb_samples: int = 8  # Cycles samples of the input light's images (OpenImageDenoise on)
    relit_samples: int = 16  # Cycles samples of the held-out light's images (8 spp + OIDN is 42.6 dB from 32 spp)
    pass_samples: int = 1  # samples of the G-buffer render; with the tiny filter every sample hits the pixel centre
    pass_filter_width: float = 0.01  # px: passes sampled at the pixel centre, as the project's rasterizer does
    seed: int = 0


def _math(nt, op: str, a, b=None):
    """A Math node `op` on inputs a, b (sockets or floats) -> its output socket."""
    n = nt.nodes.new("ShaderNodeMath")
    n.operation = op
    for i, x in enumerate((a, b)):
        if x is None:
            continue
        if isinstance(x, (int, float)):
            n.inputs[i].default_value = float(x)
        else:
            nt.links.new(x, n.inputs[i])
    return n.outputs[0]


def textured_material(bpy, name: str, t: Texture):
    """Principled BSDF driven by Texture's fields of the world position, each field also written to an AOV
    (albedo COLOR, roughness VALUE, metallic VALUE) so the G-buffer is exactly what the BSDF receives."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    bsdf.inputs["IOR"].default_value = 1.5
    pos = nt.nodes.new("ShaderNodeNewGeometry").outputs["Position"]
    sep = nt.nodes.new("ShaderNodeSeparateXYZ")
    nt.links.new(pos, sep.inputs[0])
    axis = lambda k: sep.outputs[k]  # noqa: E731
    phase = _math(nt, "FRACT", _math(nt, "DIVIDE", axis(t.stripe_axis), t.stripe_period))
    stripe = _math(nt, "GREATER_THAN", phase, 0.5)
    mix = nt.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    nt.links.new(stripe, mix.inputs["Factor"])
    mix.inputs["A"].default_value = (*t.colour_a, 1.0)
    mix.inputs["B"].default_value = (*t.colour_b, 1.0)
    colour = mix.outputs["Result"]
    ramp = _math(nt, "MINIMUM", _math(nt, "MAXIMUM", _math(nt, "ADD", axis(t.rough_axis), 0.5), 0.0), 1.0)
    rough = _math(nt, "ADD", _math(nt, "MULTIPLY", ramp, t.rough_hi - t.rough_lo), t.rough_lo)
    metal = _math(nt, "GREATER_THAN", axis(t.metal_axis), t.metal_above) if t.metal_above is not None else None
    nt.links.new(colour, bsdf.inputs["Base Color"])
    nt.links.new(rough, bsdf.inputs["Roughness"])
    if metal is not None:
        nt.links.new(metal, bsdf.inputs["Metallic"])
    else:
        bsdf.inputs["Metallic"].default_value = 0.0
    aovs = (("albedo", colour, "Color"), ("roughness", rough, "Value"), ("metallic", metal, "Value"))
    for aov_name, sock, kind in aovs:
        out = nt.nodes.new("ShaderNodeOutputAOV")
        out.aov_name = aov_name
        if sock is None:
            out.inputs[kind].default_value = 0.0
        else:
            nt.links.new(sock, out.inputs[kind])
    return mat


def _enable_passes(scene) -> None:
    vl = scene.view_layers[0]
    vl.use_pass_z = True
    vl.use_pass_normal = True
    for name, kind in (("albedo", "COLOR"), ("roughness", "VALUE"), ("metallic", "VALUE")):
        a = vl.aovs.add()
        a.name, a.type = name, kind


def _render_passes(bpy, scene, gt: GroundTruthSettings) -> dict:
    """One multilayer EXR of the G-buffer passes -> {mask [H, W] bool, normal [H, W, 3], depth [H, W], albedo
    [H, W, 3], roughness [H, W], metallic [H, W]} as views.py wants them (0 outside the mask)."""
    import OpenEXR

    c = scene.cycles
    c.samples, c.use_denoising, c.max_bounces = gt.pass_samples, False, 0
    c.pixel_filter_type, c.filter_width = "BOX", gt.pass_filter_width
    scene.render.image_settings.file_format = "OPEN_EXR_MULTILAYER"
    with tempfile.TemporaryDirectory() as tmp:
        scene.render.filepath = str(Path(tmp) / "p.exr")
        bpy.ops.render.render(write_still=True)
        with OpenEXR.File(str(Path(tmp) / "p.exr")) as f:
            ch = {k.split(".", 1)[1]: np.asarray(v.pixels, np.float32) for k, v in f.channels().items()}
    alpha = ch["Combined"][..., 3]  # [H, W] coverage, averaged over the samples
    mask = alpha > 0.5
    w = np.where(mask, 1.0 / np.maximum(alpha, 1e-6), 0.0)[..., None]  # un-premultiply the averaged passes
    normal = np.stack([ch[f"Normal.{k}"] for k in "XYZ"], -1) * w
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
    # Cycles' Z pass (perspective camera) is the camera-space z of the first sample's hit, not the ray length
    # (checked against an analytic sphere: tests/test_eval_multiview.py); 1e10 where that sample missed
    z = ch["Depth.Z"]
    depth = np.where(mask & (z < BG_DEPTH), z, 0.0)
    albedo = _colour_layer(ch, "albedo") * w
    return {"mask": mask, "normal": (normal * mask[..., None]).astype(np.float32), "depth": depth.astype(np.float32),
            "albedo": albedo.astype(np.float32), "roughness": (ch["roughness.X"] * w[..., 0]).astype(np.float32),
            "metallic": (ch["metallic.X"] * w[..., 0]).astype(np.float32)}  # fmt: skip


def _colour_layer(ch: dict, name: str) -> np.ndarray:
    """[H, W, 3] of a colour layer however the EXR groups it ("name" as RGBA / RGB, or name.R, name.G, name.B)."""
    if name in ch:
        return ch[name][..., :3]
    return np.stack([ch[f"{name}.{k}"] for k in "RGB"], -1)


def _render_rgb(bpy, scene, samples: int) -> np.ndarray:
    """[H, W, 4] linear premultiplied RGBA under the scene's world, Blender's default film filter, OIDN."""
    from .cycles_scenes import render_to_array

    c = scene.cycles
    c.samples, c.use_denoising, c.max_bounces = samples, True, 12
    c.pixel_filter_type, c.filter_width = "BLACKMAN_HARRIS", 1.5
    scene.render.image_settings.file_format = "OPEN_EXR"
    return render_to_array(bpy, scene)


def _stack(views: list[dict], cameras: list[Camera], rgb: list[np.ndarray], meta: dict) -> MultiViewSet:
    g = lambda k: np.stack([v[k] for v in views])  # noqa: E731
    return MultiViewSet(list(cameras), g("mask"), np.stack([r[..., :3] for r in rgb]).astype(np.float32), g("normal"),
                        g("depth"), g("albedo"), g("roughness"), g("metallic"), meta)  # fmt: skip


def _to_npz(path: Path, sets: dict[str, MultiViewSet], relit: np.ndarray, seconds: float) -> None:
    arrays = {"relit": relit, "seconds": np.float64(seconds)}
    for name, s in sets.items():
        arrays[f"{name}_cameras"] = np.array([repr(c.to_dict()) for c in s.cameras])
        for k in ("mask", "rgb", "normal", "depth", "albedo", "roughness", "metallic"):
            arrays[f"{name}_{k}"] = getattr(s, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def _from_npz(path: Path, name: str, meta: dict) -> MultiViewSet:
    import ast

    with np.load(path) as z:
        cams = [Camera.from_dict(ast.literal_eval(str(c))) for c in z[f"{name}_cameras"]]
        a = {k: z[f"{name}_{k}"] for k in ("mask", "rgb", "normal", "depth", "albedo", "roughness", "metallic")}
        meta = {**meta, "cycles_seconds": float(z["seconds"])}
    return MultiViewSet(cams, a["mask"], a["rgb"], a["normal"], a["depth"], a["albedo"], a["roughness"], a["metallic"],
                        meta)


@dataclass
class GroundTruth:
    """One object's ground truth."""

    shape: str
    vertices: np.ndarray  # [V, 3] float64 world (unit cube at the origin)
    faces: np.ndarray  # [F, 3] int64
    texture: Texture
    inputs: MultiViewSet  # the Zero123++ views: G-buffers and RGB under INPUT_HDRI
    held_out: MultiViewSet  # the held-out views: G-buffers and RGB under INPUT_HDRI
    relit: np.ndarray  # [H_views, H, W, 4] linear premultiplied RGBA of the held-out views under RELIT_HDRI
    cycles_seconds: float  # time the (uncached) Cycles build took
    cached: bool  # True when read from the cache


def ground_truth(shape: str, inputs: list[Camera] | None = None, held_out: list[Camera] | None = None,
                 gt: GroundTruthSettings = GroundTruthSettings()) -> GroundTruth:  # fmt: skip
    """Cycles ground truth of one object at the input and held-out cameras (default: input_cameras(),
    held_out_cameras()), cached by every parameter that changes a pixel."""
    import time

    from ..core.envmap import builtin_hdris
    from .cycles_scenes import (
        MESH_VERSION,
        cache_dir,
        cache_key,
        import_bpy,
        new_mesh_object,
        set_camera,
        set_world_hdri,
        setup_cycles,
    )

    inputs = input_cameras() if inputs is None else inputs
    held_out = held_out_cameras() if held_out is None else held_out
    tex = TEXTURES[shape]
    bpy = import_bpy()
    hdris = builtin_hdris()
    key = cache_key(shape=shape, v=SCENE_VERSION, mesh=MESH_VERSION, tex=asdict(tex), gt=asdict(gt),
                    inputs=[repr(c.to_dict()) for c in inputs], held=[repr(c.to_dict()) for c in held_out],
                    hdris=(INPUT_HDRI, hdris[INPUT_HDRI].stat().st_size, RELIT_HDRI, hdris[RELIT_HDRI].stat().st_size),
                    bpy=bpy.app.version_string)  # fmt: skip
    path = cache_dir() / "multiview_cycles" / f"{shape}_{key}.npz"
    v, f = object_mesh(shape)
    meta = {"source": "cycles", "shape": shape, "hdri": INPUT_HDRI}
    if path.is_file():
        ins, held = _from_npz(path, "inputs", meta), _from_npz(path, "held_out", meta)
        with np.load(path) as z:
            relit = z["relit"]
        return GroundTruth(shape, v, f, tex, ins, held, relit, ins.meta["cycles_seconds"], True)
    t0 = time.perf_counter()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    setup_cycles(scene, inputs[0], _cycles_settings(gt))
    scene.cycles.seed = gt.seed
    scene.render.use_persistent_data = True  # keep the BVH between the views' renders (2.2 s -> 0.3 s a pass)
    obj = new_mesh_object(bpy, shape, v, f)
    obj.data.materials.append(textured_material(bpy, "mat", tex))
    _enable_passes(scene)
    set_world_hdri(bpy, scene, hdris[INPUT_HDRI], 0.0, 1.0)
    views, rgbs = {"inputs": [], "held_out": []}, {"inputs": [], "held_out": []}
    for name, cams in (("inputs", inputs), ("held_out", held_out)):
        for cam in cams:
            _use_camera(bpy, scene, cam, set_camera)
            views[name].append(_render_passes(bpy, scene, gt))
            rgbs[name].append(_render_rgb(bpy, scene, gt.rgb_samples))
    set_world_hdri(bpy, scene, hdris[RELIT_HDRI], 0.0, 1.0)
    relit = []
    for cam in held_out:
        _use_camera(bpy, scene, cam, set_camera)
        relit.append(_render_rgb(bpy, scene, gt.relit_samples))
    relit = np.stack(relit).astype(np.float32)
    seconds = time.perf_counter() - t0
    sets = {n: _stack(views[n], c, rgbs[n], {**meta, "cycles_seconds": seconds})
            for n, c in (("inputs", inputs), ("held_out", held_out))}
    _to_npz(path, sets, relit, seconds)
    return GroundTruth(shape, v, f, tex, sets["inputs"], sets["held_out"], relit, seconds, False)


def _cycles_settings(gt: GroundTruthSettings):
    from .cycles_scenes import CyclesSettings

    return CyclesSettings(samples=gt.rgb_samples, seed=gt.seed)


def _use_camera(bpy, scene, cam: Camera, set_camera) -> None:
    """Replace the scene's camera (set_camera adds a new one; drop the old so the scene does not grow)."""
    old = scene.camera
    set_camera(bpy, scene, cam)
    if old is not None:
        bpy.data.objects.remove(old, do_unlink=True)
