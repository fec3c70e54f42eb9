import sys, numpy as np, cv2
from relight.evaluate.suite import SuiteConfig, view_camera
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import render_object
seed, name, which = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cfg = SuiteConfig(); cam = view_camera(cfg.size)
c = next(c for c in suite_cases(seed) if c.name.startswith(name))
uni = (tuple(c.texture.colour_a), float(c.surface.roughness), float(c.surface.metallic if c.surface.kind != "mixed" else 0.0))
ref = render_object(c, c.light_a if which == "A" else c.light_b, cam, cfg.samples, uniform=uni)
ours = np.load(f"/work/probe/s25/fwd_{c.name}_{which}.npy")
def s(x):
    x = np.clip(x[..., :3], 0, None); x = x / (1 + x)  # reinhard
    return (np.clip(x, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
a = ref[..., :3]; b = ours[..., :3]
d = np.abs(a - b).mean(-1, keepdims=True).repeat(3, -1) * 4
img = np.concatenate([s(a), s(b), s(d)], 1)
cv2.imwrite(f"/work/probe/s25/cmp_{name}_{which}.png", cv2.resize(img[..., ::-1], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
print("ref mean", a.mean((0, 1)), "ours mean", b.mean((0, 1)))
