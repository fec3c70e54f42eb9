import json, numpy as np, sys
exec(open("/work/probe/curve_an.py").read())
rows = load(sys.argv[1]); base = base_suite(sys.argv[2]); ph = {r["case"]: r for r in load(sys.argv[3])}
summarise(rows, base, lambda r: 1.0, "delivered")
summarise(rows, base, lambda r: r["grid"][int(np.argmax(r["psnr"]))], "oracle")
for forms in (("photo",), ("photo", "linear")):
  for k in (0.5, 0.7, 1.0, 1.4, 2.0):
    def rule(r):
        if r["est"][1] != 0 or r["form"] not in forms: return 1.0
        return k * ph[r["case"]]["mean"] / r["alb"]["mean"]
    summarise(rows, base, rule, f"{'+'.join(forms)} mean x{k}")
for k in (0.7, 1.0, 1.4):
    def rule(r):
        if r["est"][1] != 0 or r["form"] != "photo": return 1.0
        return k * ph[r["case"]]["p50"] / r["alb"]["p50"]
    summarise(rows, base, rule, f"photo median x{k}")
