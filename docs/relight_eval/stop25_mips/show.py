"""Cycles | ours | 4x their difference, for a render fwd_a.py saved. python show.py SEED NAME A|B"""
import sys
import cv2
import numpy as np
from true_material import cycles_uniform, display_8bit, named_cases

seed, name, which = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = named_cases(seed, [name])[0]
a = cycles_uniform(c, c.light_a if which == "A" else c.light_b)[..., :3]
b = np.load(f"/work/probe/s25/fwd_{c.name}_{which}.npy")[..., :3]
d = np.abs(a - b).mean(-1, keepdims=True).repeat(3, -1) * 4
img = np.concatenate([display_8bit(a), display_8bit(b), display_8bit(d)], 1)
cv2.imwrite(f"/work/probe/s25/cmp_{name}_{which}.png",
            cv2.resize(img[..., ::-1], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))  # fmt: skip
print("ref mean", a.mean((0, 1)), "ours mean", b.mean((0, 1)))
