"""What this folder's forward probes share: one `relight eval forward` case named "object/world/rotation" (a bpy
HDRI at a rotation, or one of its Nishita skies) as the asset on its exact mesh with its true material, its camera,
its light, and Cycles' render of it (cached), and the score both are compared by. The probes import it from here."""
from relight.core.envmap import Environment, builtin_hdris
from relight.evaluate import forward as F
from relight.evaluate.cycles_scenes import CyclesSettings, Material, render_cycles, shape_mesh
from relight.evaluate.reference_assets import asset_from_mesh
from relight.evaluate.suite_cases import Light, Sky
from relight.evaluate.suite_scenes import light_environment, set_light, sky_scale

CFG = F.EvalConfig()


def forward_case(spec: str, cycles: CyclesSettings = CyclesSettings(samples=64)):
    """"text/sky_low/0" -> (asset, camera, env, ground, Cycles [H, W, 4] premultiplied linear)."""
    obj, hdri, rot = spec.split("/")
    rot = float(rot)
    colour, rough, metal, _, ground = F.OBJECTS[obj]
    cam = F.case_camera(obj, CFG.size)
    v, f, n = shape_mesh(obj)
    asset = asset_from_mesh(v, f, n, colour, rough, metal, CFG.n_gaussians, obj, cam)
    world = None
    if hdri in F.SKIES:
        light = Light("sky", 1.0, sky=Sky(*F.SKIES[hdri]))
        env = light_environment(light).prefilter()
        sky_scale(light.sky)
        world = (repr(light), lambda bpy, scene: set_light(bpy, scene, light))
    else:
        env = Environment.from_file(builtin_hdris()[hdri]).prefilter().with_transform(rot, 1.0)
    cyc = render_cycles(obj, Material(colour, rough, metal), hdri, rot, cam, ground, settings=cycles, world=world)
    return asset, cam, env, ground, cyc


def score(res, cyc, cam, env) -> dict:
    """The forward evaluation's scores (PSNR, interior, edge band ...) of a RenderResult against Cycles."""
    ref = F.display_over_env(cyc[..., :3], cyc[..., 3:], cam, env)
    ours = F.display_over_env(res.hdr, res.alpha, cam, env)
    mask = (cyc[..., 3] > F.ALPHA_MASK) | (res.alpha[..., 0] > F.ALPHA_MASK)
    return F._scores(ours, ref, mask)
