"""Blender's lamps (sun, point, spot, area) on top of the environment: their units, and the direct light they add
to a frame, with GGX specular, per pixel (each pixel's own direction and distance to a point, spot or area lamp),
and a shadow per lamp and Gaussian (lamp_shadows).

Units are Blender's, as Cycles renders them (measured: a white diffuse plane facing each lamp): a sun of strength S
gives irradiance S W/m^2; a point or spot lamp of power P watts has intensity P / (4 pi) W/sr; an area lamp of power
P has intensity P cos(theta) / pi along its normal (a point-like Lambertian emitter: its size is not modelled)."""

from dataclasses import dataclass

import numpy as np

from ..core.camera import Camera

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
    l, e = lamp_light_at(lamp, np.asarray(point, np.float64)[None])
    return l[0], e[0]


def lamp_light_at(lamp: Lamp, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit directions towards the lamp [P, 3], irradiance [P, 3] W/m^2 on a surface facing it) at world points
    [P, 3] (float32 or float64; the result follows)."""
    points = np.asarray(points)
    dt = points.dtype.type if points.dtype in (np.float32, np.float64) else np.float64
    colour = np.asarray(lamp.color, dt)
    shine = np.asarray(lamp.direction, dt)
    if lamp.kind == "sun":
        return np.broadcast_to(-shine, points.shape).copy(), np.broadcast_to(colour * dt(lamp.energy), points.shape).copy()
    to_lamp = np.asarray(lamp.position, dt) - points  # [P, 3]
    d2 = np.maximum(np.einsum("ij,ij->i", to_lamp, to_lamp), dt(1e-8))  # [P] m^2
    l = to_lamp / np.sqrt(d2)[:, None]
    cos_out = -(l @ shine)  # [P] cos between the lamp's axis and the way to the point
    if lamp.kind == "area":  # a one-sided Lambertian emitter
        intensity = dt(lamp.energy / np.pi) * np.maximum(cos_out, 0)
    else:
        intensity = np.full(len(points), lamp.energy / (4.0 * np.pi), dt)
        if lamp.kind == "spot":  # Blender's cone: smoothstep over the blend band inside the cone's edge
            cos_edge = np.cos(lamp.spot_size / 2)
            spread = max((1.0 - cos_edge) * lamp.spot_blend, 1e-6)
            x = np.clip((cos_out - cos_edge) / spread, 0.0, 1.0)
            intensity = intensity * x * x * (3 - 2 * x)
    return l, (colour * (intensity / d2)[:, None]).astype(dt)


def needs_depth(lamps: tuple) -> bool:
    """True when a lamp is a point, spot or area lamp: the frame then rasterizes each pixel's depth for shade_lamps."""
    return any(lamp.kind != "sun" for lamp in lamps)


def shade_lamps(passes: dict, alpha: np.ndarray, lamp_vis: np.ndarray, lamps: tuple, camera: Camera,
                depth: np.ndarray | None = None, impl: str = "numba") -> np.ndarray:  # fmt: skip
    """[H, W, 3] linear radiance the lamps (Lamp) add (premultiplied by alpha), from the shaded passes (albedo,
    roughness, metallic, normal world), the per-pixel visibility towards each lamp lamp_vis [H, W, K] and, for point,
    spot and area lamps, each pixel's depth [H, W, 1] along the camera's axis (world units; the pixel's world point
    is where its ray reaches that depth): Lambert diffuse (albedo (1 - metallic) / pi) plus GGX specular (Smith G,
    Schlick Fresnel, F0 = lerp(0.04, albedo, metallic)), each lamp's direction and irradiance per pixel.
    impl: "numba" (lamp_kernels, one pass: the live preview's) or "numpy" (the vectorised reference)."""
    if impl not in ("numba", "numpy"):
        raise ValueError(f"impl must be 'numba' or 'numpy', got {impl!r}")
    if depth is None and needs_depth(lamps):
        raise ValueError("a point, spot or area lamp needs each pixel's depth")
    H, W = alpha.shape[:2]
    out = np.zeros((H * W, 3), np.float32)
    idx = np.flatnonzero(alpha.reshape(-1) > 0)
    if not lamps or idx.size == 0:
        return out.reshape(H, W, 3)
    if impl == "numba":
        from .lamp_kernels import lamp_table, shade_lamps_kernel

        K = camera.K
        flat = lambda x, c: np.ascontiguousarray(x, np.float32).reshape(H * W, c)  # noqa: E731
        shade_lamps_kernel(idx, W, flat(passes["normal"], 3), flat(passes["albedo"], 3), flat(passes["roughness"], 1)[:, 0],
                           flat(passes["metallic"], 1)[:, 0], flat(lamp_vis, len(lamps)),
                           np.zeros(H * W, np.float32) if depth is None else flat(depth, 1)[:, 0],
                           flat(alpha, 1)[:, 0], float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]),
                           np.ascontiguousarray(camera.viewmat[:3, :3], np.float64), camera.position.astype(np.float64),
                           *lamp_table(lamps), MIN_ROUGHNESS, out)  # fmt: skip
        return out.reshape(H, W, 3)
    n = passes["normal"].reshape(-1, 3)[idx].astype(np.float32)
    albedo = passes["albedo"].reshape(-1, 3)[idx]
    metal = passes["metallic"].reshape(-1)[idx][:, None]
    rough = np.maximum(passes["roughness"].reshape(-1)[idx], MIN_ROUGHNESS)
    K = camera.K
    d = np.empty((idx.size, 3), np.float32)  # [P, 3] the pixels' rays, camera space (Camera.rays maths), z = 1
    d[:, 0] = (idx % W + 0.5 - K[0, 2]) / K[0, 0]
    d[:, 1] = (idx // W + 0.5 - K[1, 2]) / K[1, 1]
    d[:, 2] = 1.0
    ray = d @ camera.viewmat[:3, :3].astype(np.float32)  # [P, 3] camera -> world: R^T d
    points = None
    if depth is not None:  # [P, 3] world: the camera's centre plus the ray to the pixel's depth
        points = camera.position.astype(np.float32) + ray * depth.reshape(-1)[idx][:, None]
    v = -ray / np.linalg.norm(ray, axis=1, keepdims=True)  # towards the camera
    nv = np.clip(np.einsum("ij,ij->i", n, v), 1e-4, 1.0)
    a2 = (rough * rough) ** 2
    k = rough * rough / 2  # Smith-Schlick with k = alpha / 2
    f0 = 0.04 * (1 - metal) + albedo * metal
    diffuse = albedo * (1 - metal) / np.pi
    vis = lamp_vis.reshape(H * W, -1)[idx]
    acc = np.zeros((idx.size, 3), np.float32)
    for j, lamp in enumerate(lamps):
        l, irradiance = lamp_light_at(lamp, points if points is not None else np.zeros((1, 3), np.float32))
        nl = np.clip(np.sum(n * l, 1), 0.0, 1.0)  # l: [P, 3], or [1, 3] for a sun
        h = v + l
        h /= np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-8)
        nh = np.clip(np.einsum("ij,ij->i", n, h), 0.0, 1.0)
        vh = np.clip(np.einsum("ij,ij->i", v, h), 0.0, 1.0)
        D = a2 / (np.pi * (nh * nh * (a2 - 1) + 1) ** 2)
        G = nv / (nv * (1 - k) + k) * nl / (nl * (1 - k) + k)
        F = f0 + (1 - f0) * ((1 - vh) ** 5)[:, None]
        spec = F * (D * G / (4 * nv * np.maximum(nl, 1e-4)))[:, None]
        acc += (diffuse + spec) * (nl * vis[:, j])[:, None] * irradiance
    out[idx] = acc * alpha.reshape(-1)[idx][:, None]
    return out.reshape(H, W, 3)
