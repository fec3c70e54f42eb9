"""`relight demo`: the whole pipeline in-process on the shipped sample image, relit under the 8 bpy HDRIs."""

import time
from pathlib import Path

import cv2
import numpy as np

from .core.colour import linear_to_srgb
from .core.envmap import Environment, builtin_hdris
from .core.frames import camera_to_world
from .core.imageio import write_rgba
from .core.input_image import InputImage
from .export.bake import bake_glb
from .export.ply import splats_ply
from .generate.pipeline import GenerateInputs, generate
from .render.frame import render

SAMPLE = Path(__file__).resolve().parent / "data" / "sample.png"


def print_progress(stage: str, fraction: float, message: str = "") -> None:
    print(f"[{100 * fraction:5.1f}%] {stage:<10} {message}", flush=True)


def contact_sheet(tiles: list[tuple[str, np.ndarray]], tile: int = 256, cols: int = 3) -> np.ndarray:
    """[(label, [H, W, 4] uint8)] -> [rows*tile, cols*tile, 3] uint8 over a mid-grey backdrop, labelled."""
    rows = (len(tiles) + cols - 1) // cols
    sheet = np.full((rows * tile, cols * tile, 3), 90, np.uint8)
    for k, (label, img) in enumerate(tiles):
        im = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        rgb = im[..., :3] * im[..., 3:] + (90 / 255) * (1 - im[..., 3:])
        r, c = divmod(k, cols)
        block = np.ascontiguousarray((rgb * 255).astype(np.uint8))
        cv2.putText(block, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        sheet[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = block
    return sheet


def run_demo(out: Path, image: Path = SAMPLE, size: int = 512, texture_size: int = 1024) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    asset = generate(GenerateInputs(image=InputImage.from_file(image), name=image.stem), print_progress)
    t_gen = time.perf_counter() - t0

    cam = camera_to_world(asset.input_camera, asset.model_matrix).resized(size, size)
    hdris = builtin_hdris()
    if len(hdris) != 8:
        raise RuntimeError(f"expected the 8 HDRIs of the bpy wheel, found {sorted(hdris)}; install with .[dev]")
    tiles = [("input", asset.thumbnail)]
    t_render = []
    for k, (name, path) in enumerate(sorted(hdris.items())):
        print_progress("relight", k / len(hdris), f"under {name}")
        env = Environment.from_file(path)
        t = time.perf_counter()
        res = render(asset, cam, env)
        t_render.append(time.perf_counter() - t)
        write_rgba(out / f"relit_{name}.png", res.rgba8)
        tiles.append((name, res.rgba8))
        if name == "studio":
            passes = res.passes
    (out / "passes").mkdir(exist_ok=True)
    a = res.alpha
    write_rgba(out / "passes" / "albedo.png", np.concatenate([linear_to_srgb(passes["albedo"]), a], -1))
    for k in ("roughness", "metallic", "visibility"):
        write_rgba(out / "passes" / f"{k}.png", np.concatenate([np.repeat(passes[k], 3, -1), a], -1))
    write_rgba(out / "passes" / "normal.png", np.concatenate([passes["normal"] * 0.5 + 0.5, a], -1))
    write_rgba(out / "contact_sheet.png", contact_sheet(tiles))

    print_progress("bake", 0.0, f"baking {texture_size}^2 PBR textures")
    t = time.perf_counter()
    (out / "asset.glb").write_bytes(bake_glb(asset, texture_size, print_progress))
    t_bake = time.perf_counter() - t
    (out / "splats.ply").write_bytes(splats_ply(asset))
    total = time.perf_counter() - t0
    summary = {
        "asset_id": asset.asset_id, "generate_s": t_gen, "render_s_mean": float(np.mean(t_render)),
        "bake_s": t_bake, "total_s": total, "gaussians": len(asset.gaussians),
    }
    print(f"demo done in {total:.1f} s: generate {t_gen:.1f} s, {np.mean(t_render) * 1000:.0f} ms per relit "
          f"{size}x{size} frame, bake {t_bake:.1f} s -> {out}", flush=True)
    return summary
