"""Make the shipped multi-view sample: a textured mug (a handle: the thin part; its inside: the concavity) rendered by
Cycles at Zero123++ v1.2's six views, written in MAGE's tiled layout (one 3 x 2 sheet per domain: rgb, normal, depth,
albedo, roughness, metallic, mask). The passes come from the multi-view evaluation's ground truth
(relight.evaluate.multiview_scenes), so the sample is exactly what `relight eval multiview` measures.

Usage: python tools/make_multiview_sample.py [--out backend/data/multiview_sample] [--shape mug]
Then: relight reconstruct backend/data/multiview_sample --out out/mug.glb
"""

import argparse
import shutil
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "backend" / "data" / "multiview_sample"))
    ap.add_argument("--shape", default="mug")
    args = ap.parse_args(argv)

    from relight.evaluate.multiview_scenes import ground_truth
    from relight.reconstruct.inputs import write_views

    gt = ground_truth(args.shape)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    write_views(gt.inputs, out, form="zero123pp", normal_space="world", rgb_encoding="srgb")
    for p in sorted(out.iterdir()):
        print(f"{p}  {p.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
