import json, sys, re, numpy as np
def load(path):
    return [json.loads(l) for l in open(path)]
def base_suite(report):
    r = json.load(open(report)); return {c["case"]: c["baseline_psnr"] for c in r["cases"]}
def at(row, f):
    g = np.log(row["grid"]); return float(np.interp(np.log(f), g, row["psnr"]))
def summarise(rows, base, rule, label):
    m, p = [], []
    for r in rows:
        f = rule(r); v = at(r, f); p.append(v); m.append(v - base[r["case"]])
    m, p = np.array(m), np.array(p)
    print(f"{label:28s} n={len(m)} psnr {p.mean():6.2f}  margin {m.mean():+5.2f} p10 {np.percentile(m,10):+5.2f} worst {m.min():+6.2f} below {np.mean(m<0)*100:3.0f}%")
    return m
