"""The suite's bars with the photo cases rerun (photo_suite.py's jsonl) and the float renders read from the full
report (this change leaves them bit for bit: a float render clips nowhere). python summarise.py REPORT JSONL
[UNKNOWN_JSONL: the light-unknown figures of a later rerun, METHODS=unknown, replacing JSONL's]"""
import json, sys
import numpy as np

report = {c['case']: c for c in json.load(open(sys.argv[1]))['cases']}
new = {r['case']: r for r in map(json.loads, open(sys.argv[2]))}
for r in map(json.loads, open(sys.argv[3])) if len(sys.argv) > 3 else ():  # a later light-unknown rerun
    new[r['case']].update({k: r[k] for k in ('unknown_psnr', 'unknown_est', 'unknown_seconds')})


def stats(rows, tag):
    u = np.array([r['unknown_psnr'] - r['baseline_psnr'] for r in rows])
    w = np.array([r['world_psnr'] for r in rows])
    rep = np.array([r['repro_psnr'] for r in rows])
    return (f"{tag:28s} n={len(rows):2d}  unknown margin {u.mean():+.2f}, below {np.mean(u < 0):.0%}, worst {u.min():+.2f}"
            f" | given {w.mean():.2f} / p10 {np.percentile(w, 10):.2f} / worst {w.min():.2f} | repro {rep.mean():.2f}")


def old(r):
    return {'unknown_psnr': r['old_unknown_psnr'], 'world_psnr': r['old_world_psnr'], 'repro_psnr': r['old_repro_psnr'],
            'baseline_psnr': r['baseline_psnr']}


photos = [c for c in report if c in new]
print(stats([old(new[c]) for c in photos], "photos, before"))
print(stats([new[c] for c in photos], "photos, after"))
allb = [report[c] for c in report]
alla = [new.get(c, report[c]) for c in report]
print(stats(allb, "all cases, before"))
print(stats(alla, "all cases, after"))
for kind in ("sky",):
    ks = [c for c in report if report[c]['light'] == kind]
    print(stats([report[c] for c in ks], f"{kind} inputs, before"))
    print(stats([new.get(c, report[c]) for c in ks], f"{kind} inputs, after"))
d = sorted(((new[c]['world_psnr'] - new[c]['old_world_psnr'], c) for c in photos))
print("given, largest changes:", ", ".join(f"{c} {x:+.2f}" for x, c in d[:3] + d[-5:]))
d = sorted(((new[c]['unknown_psnr'] - new[c]['old_unknown_psnr'], c) for c in photos))
print("unknown, largest changes:", ", ".join(f"{c} {x:+.2f}" for x, c in d[:3] + d[-5:]))
print("given, better / worse by > 0.1 dB:", sum(new[c]['world_psnr'] - new[c]['old_world_psnr'] > 0.1 for c in photos), "/",
      sum(new[c]['world_psnr'] - new[c]['old_world_psnr'] < -0.1 for c in photos))
print("unknown, better / worse by > 0.1 dB:", sum(new[c]['unknown_psnr'] - new[c]['old_unknown_psnr'] > 0.1 for c in photos), "/",
      sum(new[c]['unknown_psnr'] - new[c]['old_unknown_psnr'] < -0.1 for c in photos))
