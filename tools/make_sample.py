"""Render the demo's sample input: Suzanne with a textured Principled material, Cycles, under a bpy HDRI.

Usage: python tools/make_sample.py [--out backend/data] [--size 512] [--samples 64]
Writes sample.png (RGBA, sRGB 'Standard' view so the pixels are plain sRGB-encoded radiance) and sample.json
(the camera, HDRI and material, so evaluation can reuse the exact scene).
"""

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "backend" / "data"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--hdri", default="courtyard")
    args = ap.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="relight-sample-")
    for var in ("BLENDER_USER_RESOURCES", "BLENDER_USER_SCRIPTS", "XDG_CACHE_HOME"):
        os.environ.setdefault(var, tmp)
    import bpy  # noqa: E402  (after the environment is set)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene

    bpy.ops.mesh.primitive_monkey_add(size=2.0, location=(0, 0, 0))
    obj = bpy.context.active_object
    mod = obj.modifiers.new("subsurf", "SUBSURF")
    mod.levels = mod.render_levels = 2
    bpy.ops.object.shade_smooth()

    mat = bpy.data.materials.new("sample")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 3.0
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (0.65, 0.18, 0.08, 1.0)
    ramp.color_ramp.elements[1].color = (0.85, 0.62, 0.25, 1.0)
    nt.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    nt.links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.45
    bsdf.inputs["Metallic"].default_value = 0.0
    obj.data.materials.append(mat)

    hdri = Path(bpy.utils.system_resource("DATAFILES")) / "studiolights" / "world" / f"{args.hdri}.exr"
    world = bpy.data.worlds.new("sample")
    world.use_nodes = True
    env = world.node_tree.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(hdri))
    world.node_tree.links.new(env.outputs["Color"], world.node_tree.nodes["Background"].inputs["Color"])
    scene.world = world

    cam_data = bpy.data.cameras.new("cam")
    cam_data.lens = 50.0
    cam_data.sensor_width = 36.0
    cam = bpy.data.objects.new("cam", cam_data)
    scene.collection.objects.link(cam)
    cam.location = (0.0, -6.0, 0.4)
    cam.rotation_euler = (math.radians(86.0), 0.0, 0.0)
    scene.camera = cam

    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = args.samples
    scene.cycles.seed = 7
    scene.cycles.use_denoising = True
    scene.render.film_transparent = True
    scene.render.resolution_x = scene.render.resolution_y = args.size
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.image_settings.color_depth = "8"

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene.render.filepath = str(out / "sample.png")
    bpy.ops.render.render(write_still=True)

    bpy.context.view_layer.update()
    meta = {
        "object": "suzanne_subsurf2",
        "hdri": args.hdri,
        "camera_matrix_world": [list(r) for r in cam.matrix_world],
        "lens_mm": cam_data.lens,
        "sensor_width_mm": cam_data.sensor_width,
        "size": args.size,
        "material": {"base_color": "noise ramp (0.65,0.18,0.08)-(0.85,0.62,0.25)", "roughness": 0.45, "metallic": 0.0},
        "view_transform": "Standard",
    }
    (out / "sample.json").write_text(json.dumps(meta, indent=2))
    print(f"wrote {out / 'sample.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
