"""Generate time with the final renders' eight linked bounces against the one directional bounce of before, side by
side in one process: each case generated with the light unknown and given, the two settings alternating (the
order flipped every other case), best of `--repeat`. Usage: time_gen.py SEED N [REPEAT]. Prints per case and the
median ratio."""
import sys
import time
from dataclasses import replace

import numpy as np
from relight.evaluate.suite import SuiteConfig, suite_input, view_camera
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import light_environment, render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate import self_check
from relight.generate.delight import forward, materials, homogenize
from relight.generate.pipeline import GenerateInputs, generate
from relight.render import settings, shadows

seed, n = int(sys.argv[1]), int(sys.argv[2])
repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 1
cfg = SuiteConfig()
cam = view_camera(cfg.size)
NEW = {"FINAL": settings.FINAL, "SEARCH": forward.SEARCH_RENDER, "CHECK": self_check.CHECK_RENDER}
OLD = {k: replace(v, bounces=1, linked_bounces=False) for k, v in NEW.items()}


def use(cfgs):
    """Point the generate path's settings at cfgs (affine_response's default is bound at definition: rebind)."""
    forward.SEARCH_RENDER = materials.SEARCH_RENDER = cfgs["SEARCH"]
    self_check.CHECK_RENDER = cfgs["CHECK"]
    forward.affine_response.__defaults__ = (cfgs["FINAL"],)


ratios = []
for i, c in enumerate(suite_cases(seed)[:n]):
    raw = render_object(c, c.light_a, cam, cfg.samples)
    env_a = light_environment(c.light_a).prefilter()
    inp, exposure = suite_input(raw, c.form, cfg.photo_percentile, cfg.photo_level)
    given = env_a.with_transform(env_a.rotation_z, env_a.strength * exposure)
    best = {}
    order = [("old", OLD), ("new", NEW)] if i % 2 == 0 else [("new", NEW), ("old", OLD)]
    for _ in range(repeat):
        for name, cfgs in order:
            use(cfgs)
            for hint in ("unknown", "world"):
                shadows._SHADOWS.clear()
                t = time.perf_counter()
                generate(GenerateInputs(image=inp, name=c.name, provider="scene", light_hint=hint, delight=True,
                                        n_gaussians=cfg.n_gaussians, mesh=suite_mesh(c.shape), camera=cam,
                                        world=given if hint == "world" else None))  # fmt: skip
                dt = time.perf_counter() - t
                best[(name, hint)] = min(best.get((name, hint), np.inf), dt)
    r = [best[("new", h)] / best[("old", h)] for h in ("unknown", "world")]
    ratios += r
    print(f"{c.name:36s} old {best[('old', 'unknown')]:.1f} / {best[('old', 'world')]:.1f} s  new "
          f"{best[('new', 'unknown')]:.1f} / {best[('new', 'world')]:.1f} s  ratio {r[0]:.2f} / {r[1]:.2f}", flush=True)
print(f"median ratio new / old {np.median(ratios):.2f}, worst {max(ratios):.2f} over {len(ratios)} generates")
