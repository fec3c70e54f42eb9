import numpy as np
from relight.evaluate import forward as F
from relight.evaluate import cycles_scenes as cs
from relight.evaluate.suite_cases import Light, Sky
from relight.evaluate.suite_scenes import set_light, sky_scale
obj='text'; hdri='sky_low'
colour, rough, metal, _, ground = F.OBJECTS[obj]
cam = F.case_camera(obj, 256)
light = Light("sky", 1.0, sky=Sky(*F.SKIES[hdri])); sky_scale(light.sky)
bpy = cs.import_bpy()
v, f, _ = cs.shape_mesh(obj)
out = {}
for name, kw in [("diff0", dict(diffuse_bounces=0)), ("gloss0", dict(glossy_bounces=0)), ("b1", dict(max_bounces=1)), ("full", {}), ("direct", dict(max_bounces=0)), ("full_nodn", dict(_nodenoise=1))]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    cs.setup_cycles(scene, cam, cs.CyclesSettings(samples=64))
    for k, val in kw.items():
        if k == "_nodenoise": scene.cycles.use_denoising = False
        else: setattr(scene.cycles, k, val)
    o = cs.new_mesh_object(bpy, obj, v.astype(np.float64), f)
    o.data.materials.append(cs.principled_material(bpy, "mat", cs.Material(colour, rough, metal)))
    set_light(bpy, scene, light)
    cs.set_camera(bpy, scene, cam)
    out[name] = cs.render_to_array(bpy, scene)
np.savez("/tmp/cyc_var.npz", **out)
d = np.load('/tmp/text_sky_low.npz')
m = d['cyc'][...,3] > .99
for k, im in out.items():
    print(k, "mean rgb", im[...,:3][m].mean(0).round(4))
print("cached full", d['cyc'][...,:3][m].mean(0).round(4), "cached direct", d['cyc0'][...,:3][m].mean(0).round(4))
