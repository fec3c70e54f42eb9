"""Probe: the G-buffer's normals from the mesh (interpolated vertex normals at each pixel) instead of the splats',
in the forward evaluation's cases. Prints PSNR against Cycles both ways."""
import sys, numpy as np, torch
from relight.evaluate import forward as F
from relight.evaluate.cycles_scenes import CyclesSettings, Material, render_cycles, shape_mesh
from relight.evaluate.reference_assets import asset_from_mesh
from relight.render import frame
from relight.render.frame import render
from relight.render.mesh_raster import clip_from_camera, rasterize, interpolate
from relight.core.gaussians import GBUFFER_LAYOUT
from relight.core.envmap import Environment, builtin_hdris
from relight.evaluate.suite_cases import Light, Sky
from relight.evaluate.suite_scenes import light_environment, set_light, sky_scale
STATE = {"on": False}
orig_cov = frame._mesh_coverage
orig_fill = frame.fill_coverage
def cov(asset, view):
    STATE["view"], STATE["asset"] = view, asset
    return orig_cov(asset, view)
def fill(colors, alphas, covered, out=None):
    c, a = orig_fill(colors, alphas, covered, out=out)
    if STATE["on"]:
        view, asset = STATE["view"], STATE["asset"]
        pos = torch.as_tensor(np.c_[asset.vertices, np.ones(len(asset.vertices))] @ clip_from_camera(view).T, dtype=torch.float32)[None]
        rast, _ = rasterize(pos, asset.faces, (view.height, view.width), grad_db=False)
        nw = asset.vertex_normals @ asset.rotation.T
        n, _ = interpolate(torch.as_tensor(nw, dtype=torch.float32), rast, asset.faces)
        n = n[0].numpy(); hit = rast[0, ..., 3].numpy() > 0
        n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-8)
        sl = GBUFFER_LAYOUT["normal"]
        c[..., sl] = np.where(hit[..., None], n * a, c[..., sl])
    return c, a
frame._mesh_coverage = cov; frame.fill_coverage = fill
cfg = F.EvalConfig()
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
    for on in (False, True):
        STATE["on"] = on
        frame._FEATURES.clear() if hasattr(frame, "_FEATURES") else None
        res = render(asset, cam, env, background=False, ground=ground)
        ours = F.display_over_env(res.hdr, res.alpha, cam, env)
        mask = (cyc[..., 3] > .01) | (res.alpha[..., 0] > .01)
        sc = F._scores(ours, ref, mask); out.append((sc["psnr"], sc["psnr_interior"], sc["psnr_edge"]))
    print(f"{spec:24s} splat normals {out[0][0]:.2f} (int {out[0][1]:.2f} edge {out[0][2]:.2f})  mesh normals {out[1][0]:.2f} (int {out[1][1]:.2f} edge {out[1][2]:.2f})", flush=True)
