"""Seed S's photo cases (or those listed), light unknown and light given, as the suite's run_case scores them
(relit under B against Cycles; the light-given asset re-rendered under A against the input), without the baseline
(the change leaves it alone: read from REPORT). python photo_suite.py SEED REPORT OUT.jsonl [CASES]
CASES: comma-separated indices, run whatever their form (a float render, to check it is left as it was).
METHODS=unknown in the environment runs the light-unknown generate alone."""
import os, sys, json, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stop27_scale"))  # suite_case.py
from suite_case import suite_case, CAM, CFG
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite import reproduction, score
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
seed = int(sys.argv[1]); rows = {c['case']: c for c in json.load(open(sys.argv[2]))['cases']}
out = open(sys.argv[3], 'a')
only = set(int(x) for x in sys.argv[4].split(',')) if len(sys.argv) > 4 else None
for i, case in enumerate(suite_cases(seed)):
    if (i not in only) if only else case.form != 'photo':  # listed cases run whatever their form
        continue
    sc = suite_case(case); old = rows[case.name]; rec = {'case': case.name, 'baseline_psnr': old['baseline_psnr']}
    for method in os.environ.get('METHODS', 'unknown,world').split(','):
        t = time.perf_counter()
        asset = generate(GenerateInputs(image=sc.inp, name=case.name, provider='scene', light_hint=method,
                                        n_gaussians=CFG.n_gaussians, mesh=suite_mesh(case.shape), camera=CAM,
                                        world=sc.given if method == 'world' else None))
        rec[f'{method}_seconds'] = time.perf_counter() - t
        r = render(asset, CAM, sc.env_b)
        s, _, _ = score(r.hdr, r.alpha, sc.ref_b, CAM, sc.env_b)
        rec[f'{method}_psnr'] = s['psnr']; rec[f'old_{method}_psnr'] = old[f'{method}_psnr']
        rec[f'{method}_est'] = (round(asset.meta['roughness'], 2), round(asset.meta['metallic'], 2))
        if method == 'world':
            s, _, _ = reproduction(asset, sc.inp, case.form, CAM, sc.given)
            rec['repro_psnr'] = s['psnr']; rec['old_repro_psnr'] = old['repro_psnr']
    print(case.name, "  ".join(f"{k} {rec['old_' + k]:.2f} -> {rec[k]:.2f}" for k in ('unknown_psnr', 'world_psnr', 'repro_psnr')
                               if k in rec), flush=True)
    out.write(json.dumps(rec) + '\n'); out.flush()
