"""White furnace: a shape from the forward evaluation (text, bowl, suzanne), rough white (albedo 0.8), in a uniform
world of radiance 1; Cycles (128 samples, cached in /tmp) against our final render at several bounce settings, over
the pixels Cycles shows below 0.78 (the occluded ones). Usage: furnace.py SHAPE."""
import sys, numpy as np, time
from relight.evaluate import forward as F
from relight.evaluate import cycles_scenes as cs
from relight.evaluate.reference_assets import asset_from_mesh
from relight.core.envmap import Environment
from relight.render import shadows
from relight.render.frame import render
from relight.render.settings import FINAL
from dataclasses import replace
obj = sys.argv[1] if len(sys.argv) > 1 else 'text'
alb = (0.8, 0.8, 0.8)
cam = F.case_camera(obj, 256)
bpy = cs.import_bpy()
v, f, nn = cs.shape_mesh(obj)
path = f"/tmp/furnace_{obj}.npy"
import os
if not os.path.exists(path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    cs.setup_cycles(scene, cam, cs.CyclesSettings(samples=128))
    o = cs.new_mesh_object(bpy, obj, v.astype(np.float64), f)
    o.data.materials.append(cs.principled_material(bpy, "mat", cs.Material(alb, 1.0, 0.0)))
    world = bpy.data.worlds.new("w"); scene.world = world; world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (1,1,1,1)
    cs.set_camera(bpy, scene, cam)
    np.save(path, cs.render_to_array(bpy, scene))
cyc = np.load(path)
asset = asset_from_mesh(v, f, nn, alb, 1.0, 0.0, 200000, obj, cam)
env = Environment.constant((1.0, 1.0, 1.0)).prefilter()
m = (cyc[..., 3] > .99)
occl = m & (cyc[..., 0] < 0.78)
print("cycles mean", cyc[...,0][m].mean().round(4), "occluded px", occl.sum(), "cycles there", cyc[...,0][occl].mean().round(4))
for linked, b in [(False, 1), (False, 5), (True, 1), (True, 5), (True, 8)]:
    st = replace(FINAL, bounces=b, linked_bounces=linked)
    t = time.perf_counter(); res = render(asset, cam, env, st, background=False); dt = time.perf_counter() - t
    o = res.hdr[..., 0]
    mm = m & (res.alpha[..., 0] > .99)
    oc = occl & (res.alpha[..., 0] > .99)
    err = np.abs(o - cyc[..., 0])[mm]
    print(f"linked {linked} bounces {b}: mean {o[mm].mean():.4f} occluded px {o[oc].mean():.4f} (cyc {cyc[...,0][oc].mean():.4f}) mean abs err {err.mean():.4f} occl abs err {np.abs(o-cyc[...,0])[oc].mean():.4f}  {dt:.1f}s")
