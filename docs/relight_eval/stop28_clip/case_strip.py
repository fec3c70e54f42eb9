"""One suite case with the light given, as a strip: top, the input | our reproduction under the input light | 4x the
difference; bottom, Cycles under B | ours under B | 4x the difference. python case_strip.py SEED INDEX"""
import sys, numpy as np, cv2
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stop27_scale"))  # suite_case.py
from suite_case import suite_case, CAM, CFG
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite import reproduction, score
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate
from relight.render.frame import render
from relight.core.colour import agx
seed=int(sys.argv[1]); idx=int(sys.argv[2])
case=suite_cases(seed)[idx]; print(case.name, case.texture, case.surface, case.light_a.label(), case.light_b.label())
sc=suite_case(case)
def prog(stage, f, msg): print(f"  {stage} {f:.2f} {msg}", flush=True)
asset=generate(GenerateInputs(image=sc.inp, name=case.name, provider="scene", light_hint="world", n_gaussians=CFG.n_gaussians, mesh=suite_mesh(case.shape), camera=CAM, world=sc.given), progress=prog)
print(asset.meta.get("material_readings"), asset.meta.get("reproduction_psnr"))
s, ours, theirs = reproduction(asset, sc.inp, case.form, CAM, sc.given)
print("repro", s)
rb=render(asset, CAM, sc.env_b); s2, ob, tb = score(rb.hdr, rb.alpha, sc.ref_b, CAM, sc.env_b); print("relit B", s2)
d=np.abs(ours-theirs)*4
img=np.concatenate([np.concatenate([theirs, ours, d],1), np.concatenate([tb, ob, np.abs(ob-tb)*4],1)],0)
cv2.imwrite(f"case_{seed}_{idx}.png", (np.clip(img,0,1)*255).astype(np.uint8)[..., ::-1])
