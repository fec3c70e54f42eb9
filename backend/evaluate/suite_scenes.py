"""The random suite in Cycles: textured Principled materials, the three kinds of light (bpy HDRI, Nishita sky, a
studio of emissive panels), the object's renders and each light as an equirect Environment rendered from the origin
the way blender_addon/scene_io.bake_world does. Every render is cached under cycles_scenes.cache_dir()."""

import math
from dataclasses import asdict

import numpy as np

from ..core.camera import Camera
from . import cycles_scenes as cs
from .suite_cases import MEAN_RADIANCE, Case, Light, Sky, Surface, Texture
from .suite_shapes import suite_mesh
from relight_protocol.conventions import EQUIRECT_PANO_EULER

SCENES_VERSION = "w1"  # bump when a material, world or bake changes
ENV_SIZE = (256, 512)  # (h, w) of a sky's or a studio's equirect
ENV_SAMPLES = 32  # per texel, over a 1-texel box filter: small emitters keep their energy
SUN_VIEW = (math.radians(2.0), 48)  # the sun's close-up: field of view, pixels (the disc is 0.545 degrees wide)
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])


# ------------------------------------------------------------------------------------------- materials


def textured_material(bpy, tex: Texture, surface: Surface):
    """Principled BSDF with base colour mix(colour_a, colour_b, pattern) over object coordinates; metallic is the
    pattern's hard mask for a mixed material, else surface.metallic."""
    mat = bpy.data.materials.new("suite")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    co = nt.nodes.new("ShaderNodeTexCoord").outputs["Object"]
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    lo, hi = ramp.color_ramp.elements
    ramp.color_ramp.interpolation = "CONSTANT"
    lo.color, hi.color = (*tex.colour_a, 1.0), (*tex.colour_b, 1.0)
    lo.position, hi.position = 0.0, 0.5
    scale = tex.scale
    if tex.kind in ("noise", "uniform", "metal_paint"):
        node = nt.nodes.new("ShaderNodeTexNoise")
        fac = node.outputs["Fac"]
        if tex.kind != "metal_paint":  # smooth: a linear ramp over the middle of the noise's range
            ramp.color_ramp.interpolation = "LINEAR"
            lo.position, hi.position = (0.35, 0.65) if tex.kind == "noise" else (0.0, 1.0)
    elif tex.kind == "stripes":
        node = nt.nodes.new("ShaderNodeTexWave")
        node.wave_type, node.bands_direction, node.wave_profile = "BANDS", tex.axis, "SIN"
        node.inputs["Distortion"].default_value = 0.0
        node.inputs["Detail"].default_value = 0.0
        fac = node.outputs["Fac"]
        scale = tex.scale / 4.0  # Blender's bands are sin(20 x scale): a period of 1.26 / tex.scale units
    elif tex.kind == "checks":
        node = nt.nodes.new("ShaderNodeTexChecker")
        node.inputs["Color1"].default_value = (1.0, 1.0, 1.0, 1.0)
        node.inputs["Color2"].default_value = (0.0, 0.0, 0.0, 1.0)
        fac = node.outputs["Fac"]
    elif tex.kind == "print":  # ink dots (colour_b) where the Voronoi distance is small, paper (colour_a) elsewhere
        node = nt.nodes.new("ShaderNodeTexVoronoi")
        fac = node.outputs["Distance"]
        lo.color, hi.color = (*tex.colour_b, 1.0), (*tex.colour_a, 1.0)
        hi.position = 0.3
    else:
        raise ValueError(f"unknown texture kind {tex.kind!r}")
    node.inputs["Scale"].default_value = scale
    nt.links.new(co, node.inputs["Vector"])
    nt.links.new(fac, ramp.inputs["Fac"])
    nt.links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = surface.roughness
    bsdf.inputs["IOR"].default_value = 1.5
    if surface.kind == "mixed":
        mask = nt.nodes.new("ShaderNodeMath")
        mask.operation = "GREATER_THAN"
        mask.inputs[1].default_value = 0.5
        nt.links.new(fac, mask.inputs[0])
        nt.links.new(mask.outputs["Value"], bsdf.inputs["Metallic"])
    else:
        bsdf.inputs["Metallic"].default_value = surface.metallic
    return mat


# ------------------------------------------------------------------------------------------- worlds


def sun_direction(sky: Sky) -> np.ndarray:
    """[3] unit world direction towards the Nishita sun: elevation above the horizon, sun_rotation turning it
    from +Y towards +X (measured: the brightest texel of a pano render with the disc on, within 0.3 degrees for
    three elevations and rotations; tests/test_eval_suite.py keeps checking it)."""
    ce = math.cos(sky.elevation)
    return np.array([ce * math.sin(sky.azimuth), ce * math.cos(sky.azimuth), math.sin(sky.elevation)])


def _sky_world(bpy, scene, sky: Sky, strength: float, sun_disc: bool = True) -> None:
    world = bpy.data.worlds.new("sky")
    scene.world = world
    world.use_nodes = True
    nt = world.node_tree
    nt.nodes.clear()
    out, bg = nt.nodes.new("ShaderNodeOutputWorld"), nt.nodes.new("ShaderNodeBackground")
    node = nt.nodes.new("ShaderNodeTexSky")
    node.sky_type = "NISHITA"
    node.sun_disc = sun_disc
    node.sun_elevation, node.sun_rotation = sky.elevation, sky.azimuth
    node.air_density, node.dust_density, node.ozone_density = sky.air, sky.dust, sky.ozone
    nt.links.new(node.outputs["Color"], bg.inputs["Color"])
    nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
    bg.inputs["Strength"].default_value = strength


def _studio_world(bpy, scene, light: Light, visible: bool) -> None:
    """The studio's uniform background and its panels: emissive quads facing the origin, seen by camera rays only
    when `visible` (the equirect bake; the object's renders keep them out of the frame but in every other ray)."""
    world = bpy.data.worlds.new("studio")
    scene.world = world
    world.use_nodes = True
    bg = world.node_tree.nodes["Background"]
    bg.inputs["Color"].default_value = (*light.ambient, 1.0)
    bg.inputs["Strength"].default_value = 1.0
    for k, p in enumerate(light.panels):
        ca, sa, ce, se = math.cos(p.azimuth), math.sin(p.azimuth), math.cos(p.elevation), math.sin(p.elevation)
        d = np.array([ce * ca, ce * sa, se])  # towards the panel
        right = np.array([-sa, ca, 0.0])
        up = np.cross(d, right)  # right x up = -d: the quad's front faces the origin
        c = d * p.distance
        w, h = 0.5 * p.size[0], 0.5 * p.size[1]
        v = np.array([c - w * right - h * up, c + w * right - h * up, c + w * right + h * up, c - w * right + h * up])
        obj = cs.new_mesh_object(bpy, f"panel{k}", v, np.array([[0, 3, 2], [0, 2, 1]]))
        mat = bpy.data.materials.new(f"panel{k}")
        mat.use_nodes = True
        nt = mat.node_tree
        nt.nodes.clear()
        em, out = nt.nodes.new("ShaderNodeEmission"), nt.nodes.new("ShaderNodeOutputMaterial")
        peak = max(p.radiance)
        em.inputs["Color"].default_value = (*(np.array(p.radiance) / peak), 1.0)
        em.inputs["Strength"].default_value = peak
        nt.links.new(em.outputs["Emission"], out.inputs["Surface"])
        obj.data.materials.append(mat)
        obj.visible_camera = visible


def set_light(bpy, scene, light: Light, for_bake: bool = False) -> None:
    """The light as the scene's world (and, for a studio, its panel objects)."""
    if light.kind == "hdri":
        from ..core.envmap import builtin_hdris

        cs.set_world_hdri(bpy, scene, builtin_hdris()[light.hdri], light.rotation, light.strength)
    elif light.kind == "sky":
        _sky_world(bpy, scene, light.sky, light.strength * sky_scale(light.sky))
    else:
        _studio_world(bpy, scene, light, visible=for_bake)


# ------------------------------------------------------------------------------------------- equirects


def _pano_scene(bpy, size: tuple, samples: int):
    """A fresh scene with an equirectangular panoramic camera at the origin whose pixel grid is Blender's
    Environment Texture grid (scene_io.bake_world's set-up), film opaque, a 1-texel box filter."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.seed = 0
    scene.cycles.pixel_filter_type = "BOX"  # texel (j, i) = the mean over its own footprint, centred on direction
    scene.cycles.filter_width = 1.0  # (j, i): a small emitter keeps its energy (a point sample would hit or miss it)
    scene.render.film_transparent = False
    scene.render.resolution_x, scene.render.resolution_y = size[1], size[0]
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.color_mode = "RGBA"
    scene.view_settings.view_transform = "Standard"
    data = bpy.data.cameras.new("pano")
    data.type, data.panorama_type = "PANO", "EQUIRECTANGULAR"
    data.clip_start, data.clip_end = 0.01, 10_000.0
    cam = bpy.data.objects.new("pano", data)
    scene.collection.objects.link(cam)
    cam.rotation_euler = EQUIRECT_PANO_EULER  # image centre looks along +X, top row at +Z
    scene.camera = cam
    return scene


def _cached(kind: str, key: str, make) -> np.ndarray:
    path = cs.cache_dir() / "suite_cycles" / f"{kind}_{key}.npy"
    if path.is_file():
        return np.load(path)
    img = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, img)
    return img


def sky_equirect(sky: Sky, size: tuple = ENV_SIZE, samples: int = ENV_SAMPLES, with_sun: bool = True) -> np.ndarray:
    """[h, w, 3] linear equirect of a Nishita sky at Background strength 1: the sky rendered without its sun disc,
    plus the disc's energy (measured in a close-up render, disc on minus disc off) splatted bilinearly at the sun's
    direction, so the texels hold the sun's radiant energy that a point sample at their centres would miss (and
    that a 1-texel box filter would catch only with thousands of samples: the disc is a quarter of a texel)."""
    bpy = cs.import_bpy()
    key = cs.cache_key(sky=asdict(sky), size=tuple(size), samples=samples, v=SCENES_VERSION, bpy=bpy.app.version_string)

    def make():
        scene = _pano_scene(bpy, size, samples)
        _sky_world(bpy, scene, sky, 1.0, sun_disc=False)
        return cs.render_to_array(bpy, scene)[..., :3].astype(np.float32)

    eq = _cached("sky", key, make)
    if not with_sun:
        return eq
    return _splat(eq.astype(np.float64), sun_direction(sky), sun_energy(sky)).astype(np.float32)


def sun_energy(sky: Sky) -> np.ndarray:
    """[3] the sun disc's radiance integrated over its solid angle (irradiance at normal incidence, at Background
    strength 1), from two close-up renders along sun_direction (disc on, disc off), cached."""
    bpy = cs.import_bpy()
    key = cs.cache_key(sky=asdict(sky), view=SUN_VIEW, v=SCENES_VERSION, bpy=bpy.app.version_string)
    return _cached("sun", key, lambda: _sun_energy(bpy, sky))


def _sun_energy(bpy, sky: Sky) -> np.ndarray:
    fov, n = SUN_VIEW
    cam = Camera.look_at((0.0, 0.0, 0.0), sun_direction(sky), math.degrees(fov), n, n)
    imgs = []
    for disc in (True, False):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        cs.setup_cycles(scene, cam, cs.CyclesSettings(samples=16, denoise=False, pixel_filter="BOX", filter_width=1.0))
        scene.render.film_transparent = False
        _sky_world(bpy, scene, sky, 1.0, sun_disc=disc)
        cs.set_camera(bpy, scene, cam)
        imgs.append(cs.render_to_array(bpy, scene)[..., :3].astype(np.float64))
    x, y = np.meshgrid(np.arange(n) + 0.5 - n / 2, np.arange(n) + 0.5 - n / 2)
    f = cam.K[0, 0]
    omega = (1.0 / f**2) / (1.0 + (x * x + y * y) / f**2) ** 1.5  # pinhole pixel solid angle
    return ((imgs[0] - imgs[1]) * omega[..., None]).sum((0, 1))


def _splat(eq: np.ndarray, direction: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Add `energy` [3] (radiance x solid angle) to the equirect [h, w, 3] around `direction`, bilinearly."""
    from ..core.equirect import dir_to_equirect_uv, equirect_texel_solid_angles

    h, w = eq.shape[:2]
    u, v = dir_to_equirect_uv(direction)
    x, y = float(u) * w - 0.5, (1.0 - float(v)) * h - 0.5
    x0, y0 = math.floor(x), math.floor(y)
    omega = equirect_texel_solid_angles(h, w)
    out = eq.copy()
    for dy, wy in ((0, 1 - (y - y0)), (1, y - y0)):
        for dx, wx in ((0, 1 - (x - x0)), (1, x - x0)):
            j = min(max(y0 + dy, 0), h - 1)
            out[j, (x0 + dx) % w] += energy * (wx * wy) / omega[j]
    return out


def mean_radiance(eq: np.ndarray) -> float:
    """Luminance of an equirect [h, w, 3] averaged over the sphere (solid-angle weighted)."""
    from ..core.equirect import equirect_texel_solid_angles

    om = equirect_texel_solid_angles(*eq.shape[:2])
    return float(((eq @ LUMINANCE) * om[:, None]).sum() / (4 * math.pi))


def sky_scale(sky: Sky) -> float:
    """Background strength that puts the sky's mean radiance at MEAN_RADIANCE (a Nishita sky at strength 1 is tens
    of times brighter than the bpy HDRIs and its brightness swings with the sun's elevation)."""
    return MEAN_RADIANCE / max(mean_radiance(sky_equirect(sky)), 1e-9)


def studio_equirect(light: Light, size: tuple = ENV_SIZE, samples: int = ENV_SAMPLES) -> np.ndarray:
    """[h, w, 3] linear equirect of a studio: its background and its panels as the origin sees them."""
    bpy = cs.import_bpy()
    key = cs.cache_key(light=asdict(light), size=tuple(size), samples=samples, v=SCENES_VERSION,
                       bpy=bpy.app.version_string)  # fmt: skip

    def make():
        scene = _pano_scene(bpy, size, samples)
        _studio_world(bpy, scene, light, visible=True)
        return cs.render_to_array(bpy, scene)[..., :3].astype(np.float32)

    return _cached("studio", key, make)


def light_environment(light: Light):
    """The light as the renderer's Environment (what the add-on would send for this world)."""
    from ..core.envmap import Environment, builtin_hdris

    if light.kind == "hdri":
        return Environment.from_file(builtin_hdris()[light.hdri], light.rotation, light.strength)
    if light.kind == "sky":
        return Environment(sky_equirect(light.sky), 0.0, light.strength * sky_scale(light.sky))
    return Environment(studio_equirect(light))


# ------------------------------------------------------------------------------------------- the object


def render_object(case: Case, light: Light, camera: Camera, samples: int, uniform: tuple | None = None) -> np.ndarray:
    """[H, W, 4] linear premultiplied Cycles render (film transparent) of the case's textured object under `light`
    (`uniform`: (base colour, roughness, metallic) of one material instead of the case's, for checks)."""
    bpy = cs.import_bpy()
    key = cs.cache_key(shape=asdict(case.shape), tex=asdict(case.texture), surface=asdict(case.surface),
                       light=asdict(light), cam=repr(camera.to_dict()), samples=samples, uniform=uniform,
                       v=SCENES_VERSION, bpy=bpy.app.version_string)  # fmt: skip

    def make():
        v, f = suite_mesh(case.shape)
        if light.kind == "sky":
            sky_scale(light.sky)  # bakes (or loads) the sky first: it resets the scene
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        cs.setup_cycles(scene, camera, cs.CyclesSettings(samples=samples))
        obj = cs.new_mesh_object(bpy, "object", v.astype(np.float64), f)
        if uniform is None:
            obj.data.materials.append(textured_material(bpy, case.texture, case.surface))
        else:
            obj.data.materials.append(cs.principled_material(bpy, "uniform", cs.Material(*uniform)))
        set_light(bpy, scene, light)
        cs.set_camera(bpy, scene, camera)
        return cs.render_to_array(bpy, scene)

    return _cached(f"{case.shape.kind}_{light.kind}", key, make)
