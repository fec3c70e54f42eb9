import json, numpy as np
exec(open("/work/probe/curve_an.py").read())
curves = {r["case"]: r for r in load("/work/probe/curve_s0.jsonl")}
base = base_suite("/work/probe/suite0_sv2/report.json")
ev = load("/work/probe/evidence_s0.jsonl")
print(len(ev))
def rule_from(sel):
    def f(r):
        e = evd.get(r["case"])
        if e is None: return 1.0
        s = sel(e)
        return 1.0 / (s * e["P"])
    return f
evd = {e["case"]: e for e in ev}
rows = [curves[c] for c in evd]
def argmin_s(e, key=None, tol=0.0):
    v = np.array(e["res"][key or str(e["rough"])]); m = np.array(e["mults"])
    if tol:  # the smallest multiplier within tol of the minimum
        k = int(np.argmax(v <= v.min() * (1 + tol))); return m[k]
    return m[int(np.argmin(v))]
summarise(rows, base, lambda r: 1.0, "delivered (prior)")
summarise(rows, base, lambda r: r["grid"][int(np.argmax(r["psnr"]))], "oracle")
summarise(rows, base, rule_from(lambda e: argmin_s(e)), "argmin residual")
for t in (0.02, 0.05, 0.1, 0.2):
    summarise(rows, base, rule_from(lambda e: argmin_s(e, tol=t)), f"argmin tol {t}")
summarise(rows, base, rule_from(lambda e: np.sqrt(argmin_s(e) / e["P"])), "geo mean prior/argmin")
for e in ev:
    print(f'{e["case"][:30]:30s} log2 err prior {np.log2(1/e["P"]/e["oracle_light"]):+5.2f} argmin {np.log2(argmin_s(e)/e["oracle_light"]):+5.2f} tol.05 {np.log2(argmin_s(e,tol=0.05)/e["oracle_light"]):+5.2f}')
