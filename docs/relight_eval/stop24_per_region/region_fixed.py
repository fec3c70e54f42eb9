"""Fixed objects, light given, scene provider: PER_REGION (now the default) -> PSNR at v under B and the readings.
python region_fixed.py OUT"""
import json, sys
from relight.core.envmap import Environment, builtin_hdris
from relight.evaluate.relight import (RelightConfig, OBJECTS, LIGHT_PAIRS, HELD_OUT_PAIRS, view_camera, as_photo,
                                      render_textured, object_mesh, score_relit)
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
import relight.generate.delight.homogenize as H
assert H.PER_REGION
cfg = RelightConfig(); hdris = builtin_hdris(); cam = view_camera(cfg.size, 0.0)
for which, pairs in (("main", LIGHT_PAIRS), ("held", HELD_OUT_PAIRS)):
    for obj in OBJECTS:
        for la, lb in pairs:
            env_a, env_b = Environment.from_file(hdris[la]), Environment.from_file(hdris[lb])
            inp = as_photo(render_textured(obj, la, cam, cfg.samples)); ref = render_textured(obj, lb, cam, cfg.samples)
            a = generate(GenerateInputs(image=inp, name=obj, provider="scene", light_hint="world", delight=True,
                                        n_gaussians=cfg.n_gaussians, mesh=object_mesh(OBJECTS[obj][0]), camera=cam, world=env_a))
            row = {"set": which, "case": f"{obj}_{la}_{lb}", "psnr": score_relit(render(a, cam, env_b), ref, cam, env_b)[0]["psnr"],
                   "readings": a.meta["material_readings"]}
            print(json.dumps(row), flush=True)
            with open(sys.argv[1], "a") as f: f.write(json.dumps(row) + "\n")
