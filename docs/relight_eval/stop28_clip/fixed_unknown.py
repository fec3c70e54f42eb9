"""relight eval relight's fixed cases, scene provider, light unknown, under two treatments of clipped pixels in
the albedo inverse: per channel with the lower bound (A), or the pixel left out whole (C, what landed for the light
unknown). (B, per channel without the bound, was a keyword of the probe's own and is gone with it; its figures are in
README.md.) python fixed_unknown.py main|held [case indices]"""
import sys
from relight.evaluate.relight import (RelightConfig, eval_cases, OBJECTS, view_camera, as_photo, render_textured,
                                      object_mesh, score_relit)
from relight.core.envmap import Environment, builtin_hdris
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
import relight.generate.delight.homogenize as H
from relight.generate.delight.materials import regularised_inverse
cfg = RelightConfig(held_out=sys.argv[1] == "held")
cases = eval_cases(cfg)
if len(sys.argv) > 2:
    cases = [cases[int(i)] for i in sys.argv[2].split(',')]
variants = {"A": True, "C": False}
hdris = builtin_hdris()
for obj, (la, lb) in cases:
    env_b = Environment.from_file(hdris[lb]); cam = view_camera(cfg.size, 0.0)
    inp = as_photo(render_textured(obj, la, cam, cfg.samples)); ref = render_textured(obj, lb, cam, cfg.samples)
    out = {}
    for k, forced in variants.items():
        H.regularised_inverse = lambda *a, per_channel=None, _f=forced, **kw: regularised_inverse(*a, per_channel=_f, **kw)
        a = generate(GenerateInputs(image=inp, name=obj, provider="scene", light_hint="unknown", n_gaussians=cfg.n_gaussians,
                                    mesh=object_mesh(OBJECTS[obj][0]), camera=cam))
        s, _, _ = score_relit(render(a, cam, env_b), ref, cam, env_b)
        out[k] = s["psnr"]
    print(f"{obj:10s} {la}->{lb}: " + "  ".join(f"{k} {v:.2f}" for k, v in out.items()), flush=True)
