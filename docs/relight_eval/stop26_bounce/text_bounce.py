import sys, numpy as np, time
from relight.evaluate import forward as F
from relight.evaluate.cycles_scenes import CyclesSettings, Material, render_cycles, shape_mesh
from relight.evaluate.reference_assets import asset_from_mesh
from relight.render.frame import render
from relight.render import shadows
from relight.core.envmap import Environment, builtin_hdris
from relight.evaluate.suite_cases import Light, Sky
from relight.evaluate.suite_scenes import light_environment, set_light, sky_scale
cfg = F.EvalConfig()
import os
CONFIGS = [(c[0] == 'L', int(c[1:])) for c in os.environ.get('CONFIGS', 'D1,L8').split(',')]
for spec in sys.argv[1:]:
    obj, hdri, rot = spec.split("/"); rot = float(rot)
    colour, rough, metal, _, ground = F.OBJECTS[obj]
    cam = F.case_camera(obj, cfg.size)
    v, f, n = shape_mesh(obj)
    asset = asset_from_mesh(v, f, n, colour, rough, metal, cfg.n_gaussians, obj, cam)
    world = None
    if hdri in F.SKIES:
        light = Light("sky", 1.0, sky=Sky(*F.SKIES[hdri]))
        env = light_environment(light).prefilter(); sky_scale(light.sky)
        world = (repr(light), lambda bpy, scene: set_light(bpy, scene, light))
    else:
        env = Environment.from_file(builtin_hdris()[hdri]).prefilter().with_transform(rot, 1.0)
    cyc = render_cycles(obj, Material(colour, rough, metal), hdri, rot, cam, ground, settings=CyclesSettings(samples=64), world=world)
    ref = F.display_over_env(cyc[..., :3], cyc[..., 3:], cam, env)
    out = []
    from dataclasses import replace
    from relight.render.settings import FINAL
    for on, b in CONFIGS:
        st = replace(FINAL, bounces=b, linked_bounces=on)
        shadows._SHADOWS.clear() if hasattr(shadows._SHADOWS, "clear") else None
        t = time.perf_counter()
        res = render(asset, cam, env, st, background=False, ground=ground)
        dt = time.perf_counter() - t
        ours = F.display_over_env(res.hdr, res.alpha, cam, env)
        mask = (cyc[..., 3] > .01) | (res.alpha[..., 0] > .01)
        out.append(F._scores(ours, ref, mask)["psnr"]); out.append(dt)
    print(f"{spec:24s} " + "  ".join(f"{p:.2f} ({t:.1f}s)" for p, t in zip(out[::2], out[1::2])), flush=True)
