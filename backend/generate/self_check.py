"""The asset's self-check: re-rendered from the input camera under the light its materials were solved under, how
closely does it reproduce the photo? PSNR on AgX sRGB over the object. A poor figure says the materials or the
light are wrong, and the artist is told so in plain words."""

import numpy as np

from ..core.camera import Camera
from ..core.colour import agx
from ..core.envmap import Environment
from ..core.metrics import psnr
from ..render.frame import render
from ..render.settings import RenderSettings
from .delight.homogenize import reduce_to_search_side

CHECK_RENDER = RenderSettings(supersample=1, specular_samples=32, mesh_coverage=False)  # as the search renders
# Below this the asset is flagged. On the random suite's first 12 cases (seed 0) the light-given reproduction was
# 29.4 dB on average with a 10th percentile of 25.1 dB, so this flags the worst tenth or so.
POOR_REPRODUCTION_DB = 25.0


def reproduction_psnr(asset, camera_world: Camera, light: Environment, image: np.ndarray, mask: np.ndarray,
                      ceiling: float = 1.0) -> float:  # fmt: skip
    """PSNR (dB) of the asset rendered from camera_world under `light` against image [H, W, 3] (linear, straight
    alpha) over mask [H, W] (the object), both AgX-encoded, at the material search's reduced resolution; the render
    clips at the photo's `ceiling` (InputImage.ceiling) as the photo did."""
    _, photo, inside = reduce_to_search_side(image, mask)  # [h, w, 3] box-averaged, [h, w] wholly on the object
    h, w = inside.shape
    r = render(asset, camera_world.resized(w, h), light, CHECK_RENDER)
    covered = inside & (r.alpha[..., 0] > 0.99)
    if covered.sum() < 16:
        return float("nan")
    ours = np.minimum(r.hdr / np.maximum(r.alpha, 1e-6), ceiling)
    return psnr(agx(ours), agx(photo.astype(np.float32)), covered)


def warnings_for(reproduction_db: float, light_hint: str) -> list[str]:
    """Plain-language warnings for the artist about a generated asset (empty when it looks sound)."""
    if not np.isfinite(reproduction_db):
        return ["The asset could not be checked against the photo: too little of the object is visible."]
    if reproduction_db < POOR_REPRODUCTION_DB:
        light = "the scene's world" if light_hint == "world" else "the light estimated from the photo"
        return [f"The asset reproduces the photo poorly ({reproduction_db:.1f} dB under {light}, below "
                f"{POOR_REPRODUCTION_DB:.0f}): its materials or that light are likely wrong, so relit results may "
                "look off. A photo with a plainer light, or the 'Scene World' light hint, may help."]
    return []
