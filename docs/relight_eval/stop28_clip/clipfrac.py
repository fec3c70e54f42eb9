"""How much of each photo case's object clips (any channel at the delighting's clipping level, materials.unsaturated), beside its figures in REPORT.
python clipfrac.py SEED REPORT"""
import sys, numpy as np, json
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stop27_scale"))  # suite_case.py
from suite_case import suite_case
from relight.evaluate.suite_cases import suite_cases
from relight.generate.delight.materials import unsaturated
seed=int(sys.argv[1])
r=json.load(open(sys.argv[2]))
rows={c['case']:c for c in r['cases']}
for case in suite_cases(seed):
    if case.form!='photo': continue
    sc=suite_case(case)
    lin=sc.inp.linear; a=lin[...,3]>0.99
    clip=~unsaturated(lin[...,:3], sc.inp.ceiling)&a
    row=rows[case.name]
    print(f"{case.name:40s} clipped {clip.sum()/a.sum():.3f} ceiling {sc.inp.ceiling:.2f} world {row['world_psnr']:.2f} repro {row['repro_psnr']:.2f} base {row['baseline_psnr']:.2f}", flush=True)
