import json, numpy as np, sys
exec(open("curve_an.py").read())
rows = load(sys.argv[1]); base = base_suite(sys.argv[2])
print(len(rows))
summarise(rows, base, lambda r: 1.0, "delivered")
summarise(rows, base, lambda r: r["grid"][int(np.argmax(r["psnr"]))], "oracle")
for X in (0.8, 0.6, 0.5, 0.4, 0.35, 0.3, 0.25):
    rule = lambda r: (X / 0.8) if (r["form"] == "photo" and r["est"][1] == 0) else 1.0
    summarise(rows, base, rule, f"photo diel p95={X}")
for X in (0.8, 0.6, 0.5, 0.4, 0.3):
  for w in (0.0, 0.5, 1.0):
    def rule(r):
        if r["est"][1] != 0: return 1.0
        if r["form"] == "photo": return 1.0
        fa = X / max(r["alb"]["p95"], 1e-3)
        return fa ** w
    summarise(rows, base, rule, f"linear diel p95={X} w={w}")
