"""The random suite's cases (`relight eval relight --suite random`): seeded, plain dataclasses saying which object,
texture, material, input light, target light and input form each case has. No bpy here: suite_scenes builds them."""

import colorsys
import math
from dataclasses import dataclass

import numpy as np

SHAPE_KINDS = ("primitive", "lathe", "text", "blob")
PRIMITIVES = ("cube", "cylinder", "cone", "slab", "torus")  # slab: a thin bevelled plate; torus: a hole
LATHE_FORMS = ("vase", "cup", "goblet")  # cup: open with a thin wall (concave); goblet: a thin stem
TEXTS = ("Ag", "R&", "Ok", "Zw", "%4", "Hy", "B3", "Qe")  # glyphs with counters (holes) and thin strokes
TEXTURE_KINDS = ("noise", "stripes", "checks", "print", "uniform", "metal_paint")
MATERIAL_KINDS = ("dielectric", "metal", "mixed")
LIGHT_KINDS = ("hdri", "sky", "studio")
INPUT_FORMS = ("photo", "linear")
HDRIS = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")  # the bpy wheel's 8
SUITE_SIZE = 72  # every (texture kind, input light kind, input form) twice
METAL_TEXTURES = ("noise", "stripes", "checks", "uniform")  # a metal takes these; print is ink (paint) on paper
# linear F0 of real metals (silver, aluminium, gold, copper, iron, chromium, brass, titanium, nickel)
METALS = ((0.97, 0.96, 0.91), (0.91, 0.92, 0.92), (1.0, 0.77, 0.34), (0.95, 0.64, 0.54), (0.56, 0.57, 0.58),
          (0.55, 0.56, 0.55), (0.91, 0.78, 0.42), (0.54, 0.50, 0.45), (0.66, 0.61, 0.53))  # fmt: skip
# mean radiance over the sphere (solid-angle weighted, luminance) a light is scaled to before its random strength:
# the median of the 8 bpy HDRIs at strength 1 (measured: night 0.17, sunset 0.49, sunrise 0.65, courtyard 0.77,
# studio 0.77, forest 0.77, city 0.94, interior 0.97)
MEAN_RADIANCE = 0.77


@dataclass(frozen=True)
class Shape:
    kind: str  # SHAPE_KINDS
    form: str  # primitive: PRIMITIVES; lathe: LATHE_FORMS; text: the characters; blob: "blob"
    proportions: tuple  # (x, y, z) scale of a primitive before bevelling; text: z is the extrusion depth
    bevel: float  # bevel width as a fraction of the object's size (primitives and text), 0 for none
    turn: tuple  # Euler XYZ radians applied before the object is fitted into the view
    seed: int  # the details a builder draws: a lathe's profile, a blob's displacement


@dataclass(frozen=True)
class Texture:
    kind: str  # TEXTURE_KINDS
    colour_a: tuple  # linear Rec.709 albedo: the ground (paper for print, paint for metal_paint)
    colour_b: tuple  # linear Rec.709: the pattern (ink for print, the metal's F0 for metal_paint)
    scale: float  # pattern frequency in object space (the object spans about 2 units)
    axis: str  # stripes: the Wave texture's bands direction (X, Y, Z, DIAGONAL)


@dataclass(frozen=True)
class Surface:
    kind: str  # MATERIAL_KINDS; mixed: metallic = the texture's mask
    roughness: float  # 0.05 .. 1
    metallic: float  # 0 or 1; mixed: 1 where the mask is


@dataclass(frozen=True)
class Sky:
    elevation: float  # the sun above the horizon, radians (5 .. 70 degrees)
    azimuth: float  # ShaderNodeTexSky.sun_rotation, radians
    air: float  # air_density
    dust: float  # dust_density
    ozone: float  # ozone_density


@dataclass(frozen=True)
class Panel:
    """A rectangular emitter of a studio, facing the origin from far away."""

    azimuth: float  # radians from +X towards +Y, as the equirect's longitude
    elevation: float  # radians above the horizon
    distance: float  # from the origin (the object spans about 2 units)
    size: tuple  # (width, height)
    radiance: tuple  # linear RGB emitted (Emission strength x colour)


@dataclass(frozen=True)
class Light:
    kind: str  # LIGHT_KINDS
    strength: float  # hdri: Background strength; sky: relative to MEAN_RADIANCE; studio: already in the panels
    hdri: str = ""  # hdri: one of HDRIS
    rotation: float = 0.0  # hdri: Mapping Z rotation, radians
    sky: Sky | None = None
    panels: tuple = ()  # studio: Panel, ...
    ambient: tuple = (0.0, 0.0, 0.0)  # studio: the world's uniform background colour, linear

    def label(self) -> str:
        if self.kind == "hdri":
            return f"{self.hdri} r{math.degrees(self.rotation):.0f} x{self.strength:.2f}"
        if self.kind == "sky":
            return f"sky sun {math.degrees(self.sky.elevation):.0f}deg x{self.strength:.2f}"
        return f"studio {len(self.panels)} panels"


@dataclass(frozen=True)
class Case:
    index: int
    seed: int  # the suite's seed
    shape: Shape
    texture: Texture
    surface: Surface
    light_a: Light  # the input light
    light_b: Light  # the target light
    form: str  # INPUT_FORMS: an exposed 8-bit sRGB photo or the linear float render

    @property
    def name(self) -> str:
        form = self.shape.form if self.shape.kind != "text" else "text"
        return f"{self.index:02d}_{form}_{self.texture.kind}_{self.light_a.kind}_{self.form}"

    def categories(self) -> dict:
        """{breakdown: category} the report groups this case under (the light kind is the input light's)."""
        return {"texture": self.texture.kind, "material": self.surface.kind, "light": self.light_a.kind,
                "form": self.form}  # fmt: skip


def _colour(rng, value=(0.25, 0.9), sat=(0.15, 0.9)) -> tuple:
    """A random albedo: HSV drawn in sRGB (value, saturation ranges), returned linear."""
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*value))
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return tuple(round(float(np.clip(c, 0.01, 0.95)), 4) for c in lin)


def _metal(rng) -> tuple:
    f0 = np.array(METALS[rng.integers(len(METALS))]) * rng.uniform(0.9, 1.0)
    return tuple(round(float(c), 4) for c in np.clip(f0, 0.3, 0.97))


def _shape(rng, kind: str) -> Shape:
    seed = int(rng.integers(1 << 30))
    tilt = rng.uniform(-0.25, 0.25)
    spin = rng.uniform(-math.pi, math.pi)
    if kind == "primitive":
        form = PRIMITIVES[rng.integers(len(PRIMITIVES))]
        if form == "slab":  # a thin plate standing roughly towards the camera
            return Shape(kind, form, (rng.uniform(1.2, 1.6), rng.uniform(0.1, 0.2), rng.uniform(1.0, 1.5)),
                         rng.uniform(0.02, 0.05), (tilt, 0.0, rng.uniform(-0.7, 0.7)), seed)  # fmt: skip
        props = tuple(float(x) for x in rng.uniform(0.7, 1.3, 3))
        bevel = 0.0 if form == "torus" else rng.uniform(0.03, 0.15)
        return Shape(kind, form, props, bevel, (rng.uniform(-0.6, 0.6), tilt, spin), seed)
    if kind == "lathe":
        return Shape(kind, LATHE_FORMS[rng.integers(len(LATHE_FORMS))], (1.0, 1.0, 1.0), 0.0,
                     (rng.uniform(0.1, 0.45), 0.0, spin), seed)  # fmt: skip
    if kind == "text":  # standing up (X by 90 degrees) so it faces the camera, turned a little
        return Shape(kind, TEXTS[rng.integers(len(TEXTS))], (1.0, 1.0, rng.uniform(0.15, 0.4)),
                     rng.uniform(0.01, 0.03), (math.pi / 2 + tilt, 0.0, rng.uniform(-0.6, 0.6)), seed)  # fmt: skip
    return Shape(kind, "blob", (1.0, 1.0, 1.0), 0.0, (tilt, tilt, spin), seed)


def _texture(rng, kind: str, metal: bool) -> Texture:
    scale = float(rng.uniform(1.5, 4.0))
    axis = ("X", "Y", "Z", "DIAGONAL")[rng.integers(4)]
    if kind == "print":
        return Texture(kind, _colour(rng, (0.82, 0.95), (0.0, 0.15)), _colour(rng, (0.04, 0.2), (0.0, 0.6)),
                       float(rng.uniform(2.5, 5.0)), axis)  # fmt: skip
    if kind == "metal_paint":
        return Texture(kind, _colour(rng), _metal(rng), scale, axis)
    a = _metal(rng) if metal else _colour(rng)
    if kind == "uniform":  # a few per cent of variation
        b = tuple(round(float(np.clip(c * rng.uniform(0.94, 1.06), 0.01, 0.97)), 4) for c in a)
        return Texture(kind, a, b, scale, axis)
    b = _metal(rng) if metal else _colour(rng)
    return Texture(kind, a, b, scale, axis)


def _sky(rng) -> Sky:
    return Sky(float(np.radians(rng.uniform(5.0, 70.0))), float(rng.uniform(0, 2 * math.pi)),
               float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.0, 3.0)), float(rng.uniform(0.5, 3.0)))  # fmt: skip


def _studio(rng, strength: float) -> Light:
    """A key, a fill, a rim and sometimes a top light around a random azimuth, with a dim uniform background; the
    panels' radiance is set so the studio's mean radiance over the sphere is MEAN_RADIANCE x strength."""
    base = rng.uniform(0, 2 * math.pi)
    roles = [(0.0, (15, 60), 0.55), (rng.uniform(1.4, 2.2), (0, 30), 0.2), (math.pi + rng.uniform(-0.5, 0.5), (20, 50), 0.15)]
    if rng.random() < 0.5:
        roles.append((rng.uniform(-math.pi, math.pi), (70, 85), 0.15))
    ambient_share = rng.uniform(0.03, 0.12)
    weights = np.array([w * rng.uniform(0.6, 1.4) for _, _, w in roles])
    weights = weights / weights.sum() * (1 - ambient_share)
    total = 4 * math.pi * MEAN_RADIANCE * strength  # sum over the sphere of radiance x solid angle
    panels = []
    for (az, el, _), w in zip(roles, weights):
        d = float(rng.uniform(40.0, 60.0))  # far: the object (radius ~1.3) sees each panel from one direction
        size = (float(rng.uniform(0.15, 0.4) * d), float(rng.uniform(0.15, 0.4) * d))  # 9-23 degrees across
        omega = size[0] * size[1] / (d * d)  # small-panel solid angle
        tint = np.array(colorsys.hsv_to_rgb(rng.uniform(0.05, 0.6), rng.uniform(0.0, 0.25), 1.0))
        tint = tint / (tint @ np.array([0.2126, 0.7152, 0.0722]))
        panels.append(Panel(float((base + az) % (2 * math.pi)), float(np.radians(rng.uniform(*el))), d, size,
                            tuple(round(float(c), 4) for c in tint * w * total / omega)))  # fmt: skip
    ambient = (round(ambient_share * MEAN_RADIANCE * strength, 5),) * 3
    return Light("studio", strength, panels=tuple(panels), ambient=ambient)


def _light(rng, kind: str, avoid: Light | None = None) -> Light:
    strength = float(rng.uniform(0.6, 1.6))
    if kind == "hdri":
        names = [h for h in HDRIS if avoid is None or avoid.kind != "hdri" or h != avoid.hdri]
        return Light(kind, strength, hdri=names[rng.integers(len(names))], rotation=float(rng.uniform(0, 2 * math.pi)))
    if kind == "sky":
        return Light(kind, strength, sky=_sky(rng))
    return _studio(rng, strength)


def suite_cases(seed: int, n: int | None = None) -> list[Case]:
    """The first n (default all SUITE_SIZE) cases of the suite with this seed; the same seed gives the same cases.

    Case i takes texture kind j % 6 and input light kind (j % 3 + j // 6) % 3 of j = i % 18, so every block of 18
    holds each (texture, light) pair once and any prefix of 12 every texture twice and every light kind four times;
    the input form alternates so that the two blocks of each 36 give each pair both forms. Shape kinds are a
    seeded permutation (balanced over the suite), and so are the target lights' kinds; everything else is drawn per case."""
    n = SUITE_SIZE if n is None else min(n, SUITE_SIZE)
    shapes = np.random.default_rng([seed, 0]).permutation(np.resize(np.arange(len(SHAPE_KINDS)), SUITE_SIZE))
    targets = np.random.default_rng([seed, 2]).permutation(np.resize(np.arange(len(LIGHT_KINDS)), SUITE_SIZE))
    cases = []
    for i in range(n):
        rng = np.random.default_rng([seed, 1, i])
        j, block = i % 18, i // 18
        tex = TEXTURE_KINDS[j % 6]
        light_kind = LIGHT_KINDS[(j % 3 + j // 6) % 3]
        form = INPUT_FORMS[(j + j // 6 + block) % 2]
        if tex == "metal_paint":
            surface = Surface("mixed", 0.0, 1.0)
        elif tex in METAL_TEXTURES and rng.random() < 0.5:
            surface = Surface("metal", 0.0, 1.0)
        else:
            surface = Surface("dielectric", 0.0, 0.0)
        surface = Surface(surface.kind, round(float(rng.uniform(0.05, 1.0)), 3), surface.metallic)
        texture = _texture(rng, tex, surface.kind == "metal")
        shape = _shape(rng, SHAPE_KINDS[shapes[i]])
        light_a = _light(rng, light_kind)
        light_b = _light(rng, LIGHT_KINDS[targets[i]], avoid=light_a)
        cases.append(Case(i, seed, shape, texture, surface, light_a, light_b, form))
    return cases


def quick_cases() -> list[Case]:
    """Three fixed small cases for CI: an HDRI, a sky and a studio as the input light, both input forms."""
    rng = np.random.default_rng(7)
    sky = Light("sky", 1.0, sky=Sky(math.radians(35.0), 1.0, 1.0, 1.0, 1.0))
    return [
        Case(0, -1, Shape("primitive", "cube", (1.0, 1.0, 1.0), 0.1, (0.3, 0.1, 0.6), 1),
             Texture("checks", (0.6, 0.1, 0.05), (0.8, 0.75, 0.6), 2.5, "X"), Surface("dielectric", 0.4, 0.0),
             Light("hdri", 1.0, hdri="courtyard", rotation=1.0), sky, "photo"),
        Case(1, -1, Shape("lathe", "cup", (1.0, 1.0, 1.0), 0.0, (0.35, 0.0, 0.0), 2),
             Texture("metal_paint", (0.1, 0.3, 0.6), (0.95, 0.64, 0.54), 2.5, "X"), Surface("mixed", 0.3, 1.0),
             sky, Light("hdri", 1.2, hdri="forest", rotation=2.0), "linear"),
        Case(2, -1, Shape("blob", "blob", (1.0, 1.0, 1.0), 0.0, (0.1, 0.1, 0.5), 3),
             Texture("noise", (0.7, 0.5, 0.2), (0.3, 0.5, 0.2), 3.0, "X"), Surface("dielectric", 0.7, 0.0),
             _studio(rng, 1.0), Light("hdri", 1.0, hdri="sunset", rotation=0.5), "photo"),
    ]  # fmt: skip
