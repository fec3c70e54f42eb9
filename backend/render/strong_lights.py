"""Exact shadow rays towards an environment's strong lights (a sun, a studio panel's brightest cells).

The precomputed visibility has 256 fixed directions, each standing for a ~0.05 sr cell: a sun, 10^4 to 10^6 times
brighter than its sky and ~0.5 degrees wide, would be shadowed along its cell's centre, up to ~7 degrees off, and
its terminator and cast shadows come out in the direction set's facets. Here the few lights that hold a large
share of the environment's power are taken out of their cells and each gets its own ray per Gaussian, marched
through the asset's occupancy grid (the same march the stored visibility was made with), along its own
direction."""

import numpy as np

from ..core.asset import RelightableAsset
from ..core.colour import LUMINANCE
from ..core.envmap import Environment
from ..core.equirect import equirect_texel_solid_angles
from ..core.visibility_rays import sphere_directions, surface_occupancy, unpack_bits, visibility_bits
from relight_protocol.lru import LRU

MAX_STRONG_LIGHTS = 8  # at most this many lights get their own shadow ray
STRONG_SHARE = 0.03  # a light cell qualifies when it holds at least this share of the environment's power:
# the sun of the bpy sunrise HDRI holds 56 %, a Nishita sun most of its sky; the brightest cell of a broad
# light-fit lobe (sharpness 32, ~10 degrees) at most 1.8 %, and a bpy studio panel's 3.0 % (their cells'
# directions are already close enough)

_OCCUPANCY = LRU(4)  # per asset geometry: [VIS_GRID]^3 bool
_BITS = LRU(8)  # per (asset geometry, light directions): [N, ceil(K / 8)] uint8
_POWER = LRU(8)  # per environment identity: 4 pi x mean luminance radiance at strength 1


def strong_lights(env: Environment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The environment's lights (Environment.light_kernel_data: cells of texels above 8x the mean luminance) ->
    (directions [N, 3] unit world, flux [N, 3] radiance x sr at the environment's strength, strong [N] bool). A
    light is strong, and gets its own shadow ray, when it holds at least STRONG_SHARE of the power (4 pi x the mean
    radiance) and is among the MAX_STRONG_LIGHTS brightest; none is for a soft light."""
    split = env.light_kernel_data()
    flux = split.flux * float(env.strength)  # [N, 3]
    lum = flux @ LUMINANCE  # [N]
    keep = np.nonzero(lum >= STRONG_SHARE * _power(env))[0]
    keep = keep[np.argsort(-lum[keep])][:MAX_STRONG_LIGHTS]
    strong = np.zeros(len(lum), bool)
    strong[keep] = True
    return split.dirs.astype(np.float32), flux.astype(np.float32), strong


def _power(env: Environment) -> float:
    """4 pi x the mean radiance (luminance, solid-angle weighted) of the environment at its strength."""

    def total() -> float:
        eq = env.equirect
        dom = equirect_texel_solid_angles(*eq.shape[:2])  # [h] sr per texel
        return float(((eq @ LUMINANCE) * dom[:, None]).sum())

    return _POWER.get_or_make(env.identity, total) * float(env.strength)


def asset_occupancy(asset: RelightableAsset) -> np.ndarray:
    """[VIS_GRID]^3 bool occupancy of the asset's mesh (visibility_rays.surface_occupancy), the grid its rays are
    marched through, remembered per geometry (the ground's shadow grid marches through the same one)."""
    return _OCCUPANCY.get_or_make((asset.asset_id, id(asset.vertices), id(asset.faces)),
                                  lambda: surface_occupancy(asset.vertices, asset.faces, asset.vertex_normals),
                                  pin=(asset.vertices, asset.faces))  # fmt: skip


def light_bits(asset: RelightableAsset, dirs_world: np.ndarray, points: np.ndarray | None = None,
               normals: np.ndarray | None = None, key=(), offset_voxels: float = 2.0) -> np.ndarray:  # fmt: skip
    """[N, ceil(K / 8)] uint8 visibility bits towards each world direction of dirs_world [K, 3] (bit set: the ray
    escapes the object) of the asset's Gaussians, or of other asset-space points [N, 3] with normals [N, 3] named
    by `key`; marched through the asset's occupancy grid like the stored visibility, remembered per (geometry,
    points, directions)."""
    g = asset.gaussians
    geo = (asset.asset_id, id(asset.vertices), id(asset.faces))
    occ = asset_occupancy(asset)
    if points is None:
        points, normals, key = g.means, g.normals, (id(g.means), id(g.normals))
    dirs_asset = (np.asarray(dirs_world, np.float64) @ asset.rotation.astype(np.float64)).astype(np.float32)  # R^T d
    return _BITS.get_or_make((*geo, *key, dirs_asset.tobytes(), offset_voxels),
                             lambda: visibility_bits(occ, points, normals, dirs_asset, offset_voxels),
                             pin=(points, normals))  # fmt: skip


def with_strong_lights(env: Environment, bits: np.ndarray, dirs: np.ndarray, radiance: np.ndarray,
                       bits_towards) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The direction set of precomputed visibility extended by the environment's strong lights, each with its own
    exact shadow ray: bits [N, D/8] -> [N, (D + K)/8], dirs [D, 3] -> [D + K, 3] world, radiance [D, 3] (the
    environment's cell_radiance over dirs) -> [D + K, 3], with the strong lights taken out of the cells that held
    them and given their own directions, as radiance over one cell's solid angle (4 pi / D, the unit every
    direction shares in light_visibility). bits_towards(dirs [K, 3] world) -> [N, K/8] their visibility bits."""
    l_dirs, l_flux, strong = strong_lights(env)
    if not strong.any():
        return bits, dirs, radiance
    D = len(dirs)
    cell = 4.0 * np.pi / D  # sr
    residual = env.cell_radiance(dirs, without_lights=True).astype(np.float64)  # [D, 3] the map without its lights
    owner = np.argmax(l_dirs[~strong] @ dirs.T, axis=1)  # the weaker lights go back into the cells that hold them
    np.add.at(residual, owner, l_flux[~strong] / cell)
    l_dirs, l_flux = l_dirs[strong], l_flux[strong]
    all_bits = np.concatenate([unpack_bits(bits, D), unpack_bits(bits_towards(l_dirs), len(l_dirs))], 1)
    return (np.packbits(all_bits, axis=1, bitorder="little"), np.concatenate([dirs, l_dirs]).astype(np.float32),
            np.concatenate([residual, l_flux / cell]).astype(np.float32))  # fmt: skip


def asset_light_directions(asset: RelightableAsset, env: Environment,
                           exact_lights: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The directions the asset's Gaussians see `env` along, with their visibility: (bits [N, D'/8] uint8, dirs
    [D', 3] world, radiance [D', 3] per direction over one cell's solid angle, 4 pi / D): the stored visibility's
    sphere_directions, plus (exact_lights) the strong lights' own directions and shadow rays (with_strong_lights)."""
    g = asset.gaussians
    dirs = sphere_directions() @ asset.rotation.T.astype(np.float32)  # [D, 3] world
    radiance = env.cell_radiance(dirs)  # [D, 3]
    bits = g.vis_bits
    if exact_lights:
        bits, dirs, radiance = with_strong_lights(env, bits, dirs, radiance, lambda d: light_bits(asset, d))
    return bits, dirs, radiance
