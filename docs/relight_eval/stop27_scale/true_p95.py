"""The colours the random suite's generator draws, no rendering: python true_p95.py FIRST_SEED END_SEED prints, by
input form and material, the geometric mean, median, p10 and p90 of each case's brightest texture colour (luminance),
and by texture kind for dielectrics (README section 3)."""
import sys, numpy as np
from relight.evaluate.suite_cases import suite_cases
L = np.array([0.2126, 0.7152, 0.0722])
out = {}
for seed in range(int(sys.argv[1]), int(sys.argv[2])):
    for c in suite_cases(seed):
        t = c.texture
        la, lb = float(np.dot(t.colour_a, L)), float(np.dot(t.colour_b, L))
        out[(seed, c.name)] = (c.texture.kind, c.surface.kind, c.form, la, lb)
if __name__ == "__main__":
    rows = list(out.values())
    for form in ("photo", "linear"):
        for kinds in (("dielectric",), ("metal", "mixed")):
            v = np.array([max(r[3], r[4]) for r in rows if r[2] == form and r[1] in kinds])
            print(form, kinds, len(v), "geo-mean max lum %.3f median %.3f p10 %.3f p90 %.3f" % (np.exp(np.log(v).mean()), np.median(v), *np.percentile(v, [10, 90])))
    for k in ("noise","stripes","checks","print","uniform","metal_paint"):
        v = np.array([max(r[3], r[4]) for r in rows if r[0]==k and r[1]=="dielectric"])
        if len(v): print(k, len(v), "%.3f" % np.exp(np.log(v).mean()))
