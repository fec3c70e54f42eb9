"""Per-Gaussian shadows under one environment, from the asset's precomputed visibility: every direction summed
(light_visibility) or through the asset's radiance transfer (transfer.py), remembered while the light is unchanged."""

import numpy as np

from ..core.asset import RelightableAsset
from ..core.envmap import Environment
from ..core.ground import GroundPlane
from relight_protocol.lru import LRU
from ..core.visibility_rays import sphere_directions
from .bounce_links import bounce_links
from .light_visibility import directional_bounce, light_visibility
from .settings import FINAL, PREVIEW
from .strong_lights import asset_light_directions
from .transfer import build_transfer, transfer_shadows

_TRANSFERS = LRU(4)  # per (asset arrays, rank): transfer.Transfer
_SHADOWS = LRU(8)  # per (asset arrays, environment, ground, rank): [N, 3] shadows


def gaussian_shadows(asset: RelightableAsset, env: Environment, ground: GroundPlane | None = None,
                     interreflection: bool = True, rank: int = 0, exact_lights: bool = True,
                     bounces: int = FINAL.bounces,
                     linked: bool = FINAL.linked_bounces) -> np.ndarray | None:  # fmt: skip
    """[N, 3] light-dependent diffuse visibility of each Gaussian under `env` (None when the asset has no
    precomputed visibility bits). Directions the object blocks see its own light when interreflection is on;
    below a ground plane they see the lit ground.
    rank 0 sums every visibility direction, and the object's own light is `bounces` bounces of diffuse
    interreflection, each ray landing on the Gaussian bounce_links found for it (linked; else the mean of the
    occluded surfaces facing back along it, directional_bounce). rank > 0 uses the asset's precomputed transfer
    with this many basis directions (transfer.py: a few matrix products per light), whose interreflection is one
    bounce of that mean."""
    g = asset.gaussians
    if g.vis_bits is None:
        return None
    R = asset.rotation
    up = gr = None
    if ground is not None:
        up = np.array([0.0, 0.0, 1.0], np.float32)
        gr = np.asarray(ground.albedo, np.float32) * env.irradiance(up[None])[0]
    if rank > 0:
        dirs = sphere_directions() @ R.T.astype(np.float32)  # [D, 3] world
        below = None if up is None else dirs @ up < 0.0
        return transfer_shadows(_transfer_for(asset, rank), env.cell_radiance(dirs),
                                g.albedo * (1.0 - g.metallic[:, None]), below, gr, interreflection)  # fmt: skip
    n_world = (g.normals @ R.T).astype(np.float32)
    # strong lights get their own shadow rays (strong_lights.py; not yet on the transfer's path above)
    bits, dirs, radiance = asset_light_directions(asset, env, exact_lights)
    shadow = light_visibility(bits, n_world, dirs, radiance, up, gr)  # direct light only
    if not interreflection:
        return shadow
    # each bounce: an occluded ray meets the asset's own surface facing back along it, which reflects the diffuse
    # light the previous pass gave it
    reflect = g.albedo * (1.0 - g.metallic[:, None]) * env.irradiance(n_world)  # [N, 3] diffuse radiance, unshadowed
    links = bounce_links(asset) if linked and bounces > 0 else None
    for _ in range(bounces):
        diffuse = reflect * shadow  # [N, 3]
        bounce_dir = directional_bounce(n_world, diffuse, g.visibility, dirs)
        shadow = light_visibility(bits, n_world, dirs, radiance, up, gr, bounce_dir=bounce_dir,
                                  links=None if links is None else (links[0], links[1], diffuse))  # fmt: skip
    return shadow


def _transfer_for(asset: RelightableAsset, rank: int):
    """The asset's transfer.Transfer (built on first use, ~1 s per 100k Gaussians; kept for the last few assets,
    keyed on the arrays it is built from, which the entry pins so their ids stay unique)."""
    g = asset.gaussians
    key = (asset.asset_id, id(g.vis_bits), id(g.normals), id(g.visibility), int(rank))
    return _TRANSFERS.get_or_make(key, lambda: build_transfer(g.vis_bits, g.normals, g.visibility, rank),
                                  pin=(g.vis_bits, g.normals, g.visibility))


def prepare_preview(asset: RelightableAsset) -> None:
    """Build what the "preview" settings need per asset (the shadow transfer) now, e.g. right after generation,
    so the artist's first preview does not wait for it."""
    if PREVIEW.shadow_rank > 0 and asset.gaussians.vis_bits is not None:
        _transfer_for(asset, PREVIEW.shadow_rank)


def cached_shadows(asset: RelightableAsset, env: Environment, ground: GroundPlane | None, rank: int,
                   exact_lights: bool = True, bounces: int = FINAL.bounces,
                   linked: bool = FINAL.linked_bounces):  # fmt: skip
    """gaussian_shadows, remembered per (asset geometry and materials, environment, rotation, strength, ground):
    delighting's trial renders of one material share them, and orbiting the camera re-renders under the same light
    without recomputing the per-Gaussian shadowing. Entries pin the arrays and prefiltered data they are keyed on,
    so an id in a key is never reused while cached."""
    g = asset.gaussians
    arrays = (g.means, g.normals, g.visibility, g.albedo, g.metallic, g.vis_bits)  # what the shadows depend on
    key = (asset.asset_id, *map(id, arrays), asset.rotation.tobytes(), env.identity, env.rotation_z, env.strength,
           None if ground is None else repr(ground), int(rank), bool(exact_lights), int(bounces),
           bool(linked))  # fmt: skip

    def make():
        return gaussian_shadows(asset, env, ground, rank=rank, exact_lights=exact_lights, bounces=bounces, linked=linked)

    return _SHADOWS.get_or_make(key, make, pin=(*arrays, env))
