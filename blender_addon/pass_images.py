"""The asset's material and shadow passes (Show Passes) as Blender images: one float image per pass, viewable as sent."""

import bpy
import numpy as np

PASS_IMAGE_NAMES = {"albedo": "Relight Albedo", "roughness": "Relight Roughness", "metallic": "Relight Metallic",
                    "normal": "Relight Normal", "shadow": "Relight Shadow"}


def pass_to_rgba(name: str, values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """One pass [H, W, C] float32 (+ alpha [H, W, 1]) -> [H, W, 4] float32 for a float image: albedo linear as is;
    roughness, metallic and shadow as grey (shadow: the mean of its RGB visibility); the world normal packed as
    n * 0.5 + 0.5 (the usual normal-pass look)."""
    values = np.asarray(values, np.float32)
    if name == "normal":
        rgb = values * 0.5 + 0.5
    elif values.shape[-1] == 1:
        rgb = np.repeat(values, 3, -1)
    else:
        rgb = values[..., :3] if name != "shadow" else np.repeat(values.mean(-1, keepdims=True), 3, -1)
    return np.concatenate([rgb, np.asarray(alpha, np.float32).reshape(*rgb.shape[:2], 1)], -1)


def write_float_image(name: str, rgba: np.ndarray, colorspace: str = "Non-Color"):
    """[H, W, 4] float32, row 0 = top -> float image datablock `name` (replaced when its size differs), packed and
    kept on save."""
    h, w = rgba.shape[:2]
    image = bpy.data.images.get(name)
    if image is not None and (tuple(image.size) != (w, h) or not image.is_float):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(name, width=w, height=h, alpha=True, float_buffer=True)
    image.colorspace_settings.name = colorspace
    image.alpha_mode = "STRAIGHT"
    image.pixels.foreach_set(np.ascontiguousarray(rgba[::-1], dtype=np.float32).ravel())
    image.update()
    image.pack()
    image.use_fake_user = True
    return image
