"""Blender's lamps (sun, point, spot, area) on top of the environment: direct light with GGX specular and a shadow
per lamp (a ray per Gaussian through the asset's occupancy grid, as the strong lights of strong_lights.py get).

Units are Blender's, as Cycles renders them (measured: a white diffuse plane facing each lamp): a sun of strength S
gives irradiance S W/m^2; a point or spot lamp of power P watts has intensity P / (4 pi) W/sr; an area lamp of power
P has intensity P cos(theta) / pi along its normal. Point, spot and area lamps are seen from the asset's centre
(one direction and distance for the whole asset: a preview's approximation, good while the lamp is a few asset
sizes away)."""

from dataclasses import dataclass

import numpy as np

from ..core.asset import RelightableAsset
from ..core.camera import Camera
from ..core.visibility_rays import sphere_directions, unpack_bits
from .strong_lights import light_bits

MIN_ROUGHNESS = 0.05  # a lamp is a point: a mirror-smooth lobe would show it as a single-pixel spark


@dataclass(frozen=True)
class Lamp:
    """One scene lamp in world space (relight_protocol.messages.validate_lamp)."""

    kind: str  # "sun" | "point" | "spot" | "area"
    color: tuple  # [3] linear Rec.709
    energy: float  # W (sun: W/m^2)
    position: tuple  # [3] world, m
    direction: tuple  # [3] unit world: where it shines
    spot_size: float = np.pi / 4  # rad, full cone angle
    spot_blend: float = 0.15
    shadows: bool = True


def lamps_from_request(lights: list[dict] | None) -> tuple[Lamp, ...]:
    """Validated request lamps -> Lamps."""
    return tuple(Lamp(d["type"], tuple(map(float, d["color"])), float(d["energy"]), tuple(map(float, d["position"])),
                      tuple(map(float, d["direction"])), float(d["spot_size"]), float(d["spot_blend"]),
                      bool(d["shadows"])) for d in lights or ())  # fmt: skip


def lamp_light(lamp: Lamp, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit direction towards the lamp [3], irradiance [3] W/m^2 on a surface facing it) at world `point` [3]."""
    colour = np.asarray(lamp.color, np.float64)
    shine = np.asarray(lamp.direction, np.float64)
    if lamp.kind == "sun":
        return -shine, colour * lamp.energy
    to_lamp = np.asarray(lamp.position, np.float64) - point
    d2 = max(float(to_lamp @ to_lamp), 1e-8)
    l = to_lamp / np.sqrt(d2)
    if lamp.kind == "area":  # a one-sided Lambertian emitter
        intensity = lamp.energy / np.pi * max(0.0, float(-l @ shine))
    else:
        intensity = lamp.energy / (4.0 * np.pi)
        if lamp.kind == "spot":  # Blender's cone: smoothstep over the blend band inside the cone's edge
            cos_edge = np.cos(lamp.spot_size / 2)
            t = float(-l @ shine)
            spread = max((1.0 - cos_edge) * lamp.spot_blend, 1e-6)
            x = np.clip((t - cos_edge) / spread, 0.0, 1.0)
            intensity *= x * x * (3 - 2 * x)
    return l, colour * intensity / d2


def lamp_visibility(asset: RelightableAsset, lamps: tuple[Lamp, ...], exact: bool = True) -> tuple[np.ndarray, list]:
    """([N, K] float32 visibility of each Gaussian towards each lamp (1: lit; lamps without shadows 1), [(direction
    [3], irradiance [3])] per lamp at the asset's centre). exact: a ray per Gaussian and lamp through the occupancy
    grid (~0.3 s of CPU per new lamp direction at 100k Gaussians, remembered per direction); else, when the asset
    has its precomputed visibility bits, interpolated from the stored directions nearest the lamp's (a soft shadow
    edge, ~1 ms: the interactive preview while a lamp is dragged)."""
    centre = asset.model_matrix[:3, 3]
    lights = [lamp_light(lamp, centre) for lamp in lamps]
    vis = np.ones((len(asset.gaussians), len(lamps)), np.float32)
    shadowed = [k for k, lamp in enumerate(lamps) if lamp.shadows and np.any(lights[k][1] > 0)]
    if shadowed:
        dirs = np.array([lights[k][0] for k in shadowed], np.float32)
        if not exact and asset.gaussians.vis_bits is not None:
            vis[:, shadowed] = stored_visibility(asset, dirs)
        else:
            bits = unpack_bits(light_bits(asset, dirs), len(shadowed))  # [N, K'] the ray escapes the object
            vis[:, shadowed] = bits.astype(np.float32)
    return vis, lights


STORED_NEIGHBOURS = 3  # stored directions blended per lamp
STORED_SHARPNESS = 40.0  # weight exp(sharpness (d . l - 1)) of a stored direction d for a lamp direction l


def stored_visibility(asset: RelightableAsset, dirs_world: np.ndarray) -> np.ndarray:
    """[N, K] float32 visibility of the Gaussians towards world directions dirs_world [K, 3] from the asset's stored
    visibility bits (VIS_DIRECTIONS directions): a blend of the STORED_NEIGHBOURS stored directions nearest each."""
    stored = sphere_directions()  # [D, 3] asset space
    bits = asset.gaussians.vis_bits  # [N, D / 8]
    local = np.asarray(dirs_world, np.float64) @ asset.rotation.astype(np.float64)  # [K, 3] R^T d
    out = np.zeros((bits.shape[0], len(local)), np.float32)
    for j, l in enumerate(local):
        cos = stored @ l.astype(np.float32)
        near = np.argsort(-cos)[:STORED_NEIGHBOURS]
        w = np.exp(STORED_SHARPNESS * (cos[near] - 1.0))
        w /= w.sum()
        for k, wk in zip(near, w):
            out[:, j] += np.float32(wk) * ((bits[:, k >> 3] >> (k & 7)) & 1)
    return out


def shade_lamps(passes: dict, alpha: np.ndarray, lamp_vis: np.ndarray, lights: list, camera: Camera) -> np.ndarray:
    """[H, W, 3] linear radiance the lamps add (premultiplied by alpha), from the shaded passes (albedo, roughness,
    metallic, normal world) and the per-pixel visibility towards each lamp lamp_vis [H, W, K]: Lambert diffuse
    (albedo (1 - metallic) / pi) plus GGX specular (Smith G, Schlick Fresnel, F0 = lerp(0.04, albedo, metallic))."""
    H, W = alpha.shape[:2]
    out = np.zeros((H * W, 3), np.float32)
    idx = np.flatnonzero(alpha.reshape(-1) > 0)
    if not lights or idx.size == 0:
        return out.reshape(H, W, 3)
    n = passes["normal"].reshape(-1, 3)[idx].astype(np.float32)
    albedo = passes["albedo"].reshape(-1, 3)[idx]
    metal = passes["metallic"].reshape(-1)[idx][:, None]
    rough = np.maximum(passes["roughness"].reshape(-1)[idx], MIN_ROUGHNESS)
    K = camera.K
    d = np.empty((idx.size, 3), np.float32)  # [P, 3] the pixels' rays, camera space (Camera.rays maths)
    d[:, 0] = (idx % W + 0.5 - K[0, 2]) / K[0, 0]
    d[:, 1] = (idx // W + 0.5 - K[1, 2]) / K[1, 1]
    d[:, 2] = 1.0
    v = -(d @ camera.viewmat[:3, :3].astype(np.float32))  # camera -> world: R^T d; towards the camera
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    nv = np.clip(np.einsum("ij,ij->i", n, v), 1e-4, 1.0)
    a2 = (rough * rough) ** 2
    k = rough * rough / 2  # Smith-Schlick with k = alpha / 2
    f0 = 0.04 * (1 - metal) + albedo * metal
    diffuse = albedo * (1 - metal) / np.pi
    vis = lamp_vis.reshape(H * W, -1)[idx]
    acc = np.zeros((idx.size, 3), np.float32)
    for j, (l, irradiance) in enumerate(lights):
        l = np.asarray(l, np.float32)
        nl = np.clip(n @ l, 0.0, 1.0)
        h = v + l
        h /= np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-8)
        nh = np.clip(np.einsum("ij,ij->i", n, h), 0.0, 1.0)
        vh = np.clip(np.einsum("ij,ij->i", v, h), 0.0, 1.0)
        D = a2 / (np.pi * (nh * nh * (a2 - 1) + 1) ** 2)
        G = nv / (nv * (1 - k) + k) * nl / (nl * (1 - k) + k)
        F = f0 + (1 - f0) * ((1 - vh) ** 5)[:, None]
        spec = F * (D * G / (4 * nv * np.maximum(nl, 1e-4)))[:, None]
        acc += (diffuse + spec) * (nl * vis[:, j])[:, None] * np.asarray(irradiance, np.float32)
    out[idx] = acc * alpha.reshape(-1)[idx][:, None]
    return out.reshape(H, W, 3)
