"""The `Environment` (an HDRI as Blender's world sees it: Environment Texture, Mapping Z rotation, Background
strength) with its lazily prefiltered data, shared per image content through one cache; and the HDRIs at hand."""

import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .cache import cache_root
from .equirect import dir_to_equirect_uv, equirect_pixel_dirs, equirect_texel_solid_angles, sample_equirect
from .nearest_direction import nearest_direction
from relight_protocol.lru import LRU
from .prefilter import (IRRADIANCE_SIZE, LIGHT_CELL_WIDTH, MAX_LEVEL_WIDTH, PREFILTER_SAMPLES, PREFILTER_VERSION,
                        SPECULAR_LEVELS, box_mips, cell_factor, extract_lights, irradiance_map, level_blend,
                        level_width, lobe_levels, pack_levels, prefilter_ggx, project_sh9, sh9_basis)  # fmt: skip


RESIDUAL_KEPT_WIDTH = 512  # the light-free map is kept only this coarse (cell_radiance reads a ~128-wide level)


class _Prefiltered:
    """Rotation- and strength-independent data derived from one HDRI, computed lazily once."""

    def __init__(self, equirect: np.ndarray, key: str = "", specular: list[np.ndarray] | None = None):
        self.source = equirect  # [H, W, 3] float32
        self.key = key or environment_identity(equirect)  # the identity: content hash of the source (and the name
        # of the on-disk cache of its specular levels); never empty, as caches of derived data are keyed on it
        self._lock = threading.Lock()
        self._specular = specular  # the prefiltered levels, source first, when the caller already has them
        self._irradiance: np.ndarray | None = None
        self._sh9: np.ndarray | None = None
        self._mips: list[np.ndarray] | None = None
        self._packed: tuple[np.ndarray, np.ndarray] | None = None
        self._lights: dict | None = None  # cell width -> lights()

    def mips(self) -> list[np.ndarray]:
        if self._mips is None:
            self._mips = box_mips(self.source)
        return self._mips

    def specular(self) -> list[np.ndarray]:
        with self._lock:
            if self._specular is None:
                self._specular = self._load_specular()
            if self._specular is None:
                mips = self.mips()
                packed = pack_levels(mips)
                W0 = self.source.shape[1]
                levels = [self.source]
                for k in range(1, SPECULAR_LEVELS):
                    w = level_width(k, W0)
                    levels.append(prefilter_ggx(mips, k / (SPECULAR_LEVELS - 1), w // 2, w, PREFILTER_SAMPLES, packed))
                self._specular = levels
                self._save_specular(levels)
            return self._specular

    def _cache_file(self) -> Path:
        """Where this HDRI's specular levels are kept (core.cache): by content hash and prefilter version. Also when
        RELIGHT_CACHE_DIR is unset, so that a restarted `relight serve` warms up from disk (13.5 s of both cores
        for the default HDRI otherwise, at every start)."""
        tag = f"{self.key}_{SPECULAR_LEVELS}_{PREFILTER_SAMPLES}_{MAX_LEVEL_WIDTH}_{PREFILTER_VERSION}"
        return cache_root() / "envmap_prefiltered" / f"{tag}.npz"

    def _load_specular(self) -> list[np.ndarray] | None:
        """Prefiltered levels from the cache, else None."""
        path = self._cache_file()
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                levels = [self.source] + [z[f"l{k}"] for k in range(1, SPECULAR_LEVELS)]
        except (OSError, KeyError, ValueError):
            return None
        return levels

    def _save_specular(self, levels: list[np.ndarray]) -> None:
        path = self._cache_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **{f"l{k}": lv for k, lv in enumerate(levels) if k > 0})
            os.replace(tmp, path)
        except OSError:
            pass

    def packed_specular(self) -> tuple[np.ndarray, np.ndarray]:
        """All specular levels in one [M, 3] array and an int64 [L, 3] table of (offset, h, w) per level."""
        levels = self.specular()
        with self._lock:
            if self._packed is None:
                self._packed = pack_levels(levels)
            return self._packed

    def lights(self, cell_width: int) -> tuple:
        """(residual box mips packed as (flat [M, 3], table [L, 3]), light dirs [N, 3] image frame, flux [N, 3])
        for a light cell grid cell_width wide."""
        with self._lock:
            if self._lights is None:
                self._lights = {}
            if cell_width not in self._lights:
                residual, dirs, flux = extract_lights(self.source, cell_width)
                mips = box_mips(residual)
                small = [m for m in mips if m.shape[1] <= RESIDUAL_KEPT_WIDTH]
                self._lights[cell_width] = (pack_levels(mips), dirs, flux, small)
            return self._lights[cell_width][:3]

    def residual_mips(self, cell_width: int) -> list[np.ndarray]:
        """The box mips (at most RESIDUAL_KEPT_WIDTH wide) of the map with its lights taken out (lights())."""
        self.lights(cell_width)
        return self._lights[cell_width][3]

    def irradiance(self) -> np.ndarray:
        with self._lock:
            if self._irradiance is None:
                self._irradiance = irradiance_map(self.mips(), *IRRADIANCE_SIZE)
            return self._irradiance

    def sh9(self) -> np.ndarray:
        with self._lock:
            if self._sh9 is None:
                self._sh9 = project_sh9(self.mips())
            return self._sh9



_PREFILTERED = LRU(16)  # environment identity (and the identity of the image as given) -> _Prefiltered


def environment_identity(equirect: np.ndarray) -> str:
    """The content id of an equirect as given (shape, dtype and pixels; SHA-1, ~13 ms for 2048 x 1024 RGB float32):
    the one identity of an environment, computed before any conversion so a repeated image costs only this."""
    a = np.ascontiguousarray(equirect)
    h = hashlib.sha1(f"{a.shape}|{a.dtype.str}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _prefiltered_for(equirect: np.ndarray) -> _Prefiltered:
    """The prefiltered data of an equirect [H, W, 3+] (any float dtype; NaN and negative radiance become 0), shared
    by every Environment of the same image."""
    raw_key = environment_identity(equirect)
    hit = _PREFILTERED.get(raw_key)
    if hit is not None:
        return hit
    eq = np.asarray(equirect)[..., :3].astype(np.float32)
    eq = np.ascontiguousarray(np.maximum(np.nan_to_num(eq, nan=0.0, posinf=0.0), 0.0))
    key = environment_identity(eq)  # the identity of the light itself: the image as the renderer sees it
    data = _PREFILTERED.get(key) if key != raw_key else None
    if data is None:
        data = _Prefiltered(eq, key)
        _PREFILTERED.put(key, data)
    _PREFILTERED.put(raw_key, data)  # the image as given is an alias: a repeated request costs one hash
    return data


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])



class LightSplit(NamedTuple):
    """An environment split into a clamped residual and directional lights (Environment.light_kernel_data)."""

    mip_flat: np.ndarray  # [M, 3] float32 box mips of the residual, packed level after level
    mip_table: np.ndarray  # [L, 3] int64 (offset, h, w) of each level in mip_flat
    texel0: float  # sr, a level-0 texel's solid angle at the equator
    dirs: np.ndarray  # [N, 3] float64 unit world directions of the lights
    flux: np.ndarray  # [N, 3] float64 radiance x solid angle of each light, at strength 1
    cell_omega: float  # sr, a light cell's solid angle at the equator


class EnvLookup(NamedTuple):
    """What a numba kernel needs for specular and irradiance lookups (Environment.kernel_data); a kernel's lookups
    must equal Environment.specular() / .irradiance()."""

    rot: np.ndarray  # [3, 3] float32 world -> image frame (the Mapping rotation)
    strength: float  # Background strength
    spec_flat: np.ndarray  # [M, 3] float32 GGX-prefiltered levels, packed level after level
    spec_table: np.ndarray  # [L, 3] int64 (offset, h, w) of each level in spec_flat
    irr_flat: np.ndarray  # [h * w, 3] float32 irradiance map
    irr_h: int
    irr_w: int


_TEXELS = LRU(4)  # per (h, w): equirect texel directions and solid angles


def _texel_dirs_and_solid_angles(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """([h*w, 3] float32 unit directions of an h x w equirect's texel centres, image frame; [h*w] float64 their
    solid angles, sr), remembered."""
    return _TEXELS.get_or_make((h, w), lambda: (equirect_pixel_dirs(h, w).reshape(-1, 3).astype(np.float32),
                                                np.repeat(equirect_texel_solid_angles(h, w), w).astype(np.float64)))


class Environment:
    """An HDR environment (equirect, linear Rec.709) as Blender's world sees it through
    Environment Texture <- Mapping (Z rotation) and Background (strength).

    Rotation is applied to lookup directions: a world direction d reads the image at
    R_z(rotation_z) d, as a Mapping node of type Point with Z rotation does. Strength multiplies."""

    def __init__(self, equirect: np.ndarray, rotation_z: float = 0.0, strength: float = 1.0, _data=None):
        if _data is None:
            eq = np.asarray(equirect)
            if eq.ndim != 3 or eq.shape[-1] < 3 or min(eq.shape[:2]) < 2:
                raise ValueError(f"an environment's equirect must be [h, w, 3] with h, w >= 2, got shape {eq.shape}")
            _data = _prefiltered_for(eq)
        self._data = _data
        self.rotation_z = float(rotation_z)
        self.strength = float(strength)
        self._rot = _rot_z(self.rotation_z).astype(np.float32)  # [3, 3] world -> image frame

    @property
    def identity(self) -> str:
        """The content id of the source image (environment_identity); rotation and strength are not part of it."""
        return self._data.key

    @property
    def equirect(self) -> np.ndarray:
        """[H, W, 3] the source image (unrotated, strength 1)."""
        return self._data.source

    def with_transform(self, rotation_z: float, strength: float) -> "Environment":
        """Same HDRI, another rotation and strength; shares all prefiltered data."""
        return Environment(None, rotation_z, strength, _data=self._data)

    def prefilter(self) -> "Environment":
        """Compute (or fetch from the cache) all prefiltered data now. Returns self."""
        self._data.specular()
        self._data.irradiance()
        self._data.sh9()
        return self

    def _uv(self, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(dirs, dtype=np.float32)
        if d.shape[-1] != 3:
            raise ValueError(f"directions must be [..., 3], got shape {d.shape}")
        if self.rotation_z != 0.0:
            d = d @ self._rot.T
        return dir_to_equirect_uv(d)

    def radiance(self, dirs: np.ndarray) -> np.ndarray:
        """[..., 3] world directions -> [..., 3] linear radiance (bilinear, wraps in u)."""
        u, v = self._uv(dirs)
        return sample_equirect(self._data.source, u, v) * np.float32(self.strength)

    def specular(self, dirs: np.ndarray, roughness) -> np.ndarray:
        """[..., 3] reflection directions, [...] perceptual roughness in [0, 1] -> [..., 3] GGX-prefiltered
        radiance (bilinear within a level; between the two nearest roughness levels r0 < r <= r1, linear in
        GGX alpha = r^2, which keeps near-mirror lobes sharp)."""
        levels = self._data.specular()
        u, v = self._uv(dirs)
        shape = u.shape
        u = u.reshape(-1)
        v = v.reshape(-1)
        r = np.broadcast_to(np.asarray(roughness, dtype=np.float32), shape).reshape(-1)
        f = np.clip(r, 0.0, 1.0) * (len(levels) - 1)
        k0 = np.minimum(np.floor(f).astype(np.int64), len(levels) - 2)
        t = np.clip(level_blend(r, k0, len(levels)), 0.0, 1.0).astype(np.float32)
        out = np.zeros((u.shape[0], 3), dtype=np.float32)
        for k, level in enumerate(levels):
            for idx, w in ((np.nonzero(k0 == k)[0], None), (np.nonzero(k0 + 1 == k)[0], 1)):
                if idx.size == 0:
                    continue
                wt = t[idx] if w else 1 - t[idx]
                keep = wt > 0
                if not keep.all():
                    idx, wt = idx[keep], wt[keep]
                if idx.size:
                    out[idx] += sample_equirect(level, u[idx], v[idx]) * wt[:, None]
        return out.reshape(*shape, 3) * np.float32(self.strength)

    def irradiance(self, normals: np.ndarray) -> np.ndarray:
        """[..., 3] world normals -> [..., 3] E(n) / pi, the outgoing radiance of a white Lambertian surface."""
        u, v = self._uv(normals)
        return sample_equirect(self._data.irradiance(), u, v) * np.float32(self.strength)

    def cell_radiance(self, dirs: np.ndarray, src_width: int = 128, without_lights: bool = False) -> np.ndarray:
        """[D, 3] world directions -> [D, 3] mean radiance over each direction's Voronoi cell on the sphere
        (solid-angle weighted, so a small bright sun keeps its energy in the cell that holds it). Cells with no
        texel fall back to the bilinear radiance along the direction. without_lights: of the map with its lights
        (light_kernel_data) taken out."""
        d = np.asarray(dirs, dtype=np.float32)
        mips = self._data.residual_mips(LIGHT_CELL_WIDTH) if without_lights else self._data.mips()
        src = min(mips, key=lambda m: abs(m.shape[1] - src_width))
        h, w = src.shape[:2]
        tex_dirs, wgt = _texel_dirs_and_solid_angles(h, w)  # [h*w, 3] image frame, [h*w] sr
        owner = nearest_direction(tex_dirs @ self._rot, d)  # [h*w] nearest direction (image -> world: R^T t)
        texels = src.reshape(-1, 3) * wgt[:, None]
        rad = np.stack([np.bincount(owner, texels[:, c], minlength=len(d)) for c in range(3)], 1)
        area = np.bincount(owner, wgt, minlength=len(d))
        out = np.where(area[:, None] > 0, rad / np.maximum(area, 1e-30)[:, None], 0.0).astype(np.float32)
        empty = area <= 0
        if np.any(empty):
            out[empty] = self.radiance(d[empty]) / np.float32(self.strength)
        return out * np.float32(self.strength)

    def light_kernel_data(self, cell_width: int = LIGHT_CELL_WIDTH) -> LightSplit:
        """The environment split for per-pixel lobe sampling (see extract_lights) on a light cell grid cell_width
        wide, in plain arrays (LightSplit); residual + lights = the environment."""
        (flat, table), dirs, flux = self._data.lights(cell_width)
        H0, W0 = self._data.source.shape[:2]
        wc = W0 // cell_factor(H0, W0, cell_width)
        world = dirs.astype(np.float64) @ self._rot.astype(np.float64)  # image -> world: R^T d (row vectors)
        return LightSplit(flat, table, 2 * np.pi * np.pi / (W0 * H0), np.ascontiguousarray(world),
                          flux.astype(np.float64), 4 * np.pi * np.pi / (wc * wc))  # fmt: skip

    def kernel_data(self) -> EnvLookup:
        """Everything a numba shading kernel needs for specular/irradiance lookups, in plain arrays (EnvLookup)."""
        spec_flat, spec_table = self._data.packed_specular()
        irr = self._data.irradiance()
        return EnvLookup(self._rot, np.float32(self.strength), spec_flat, spec_table, irr.reshape(-1, 3), irr.shape[0],
                         irr.shape[1])  # fmt: skip

    @property
    def sh9(self) -> np.ndarray:
        """[9, 3] SH radiance coefficients in the world frame (rotation and strength applied);
        order as sh9_basis. Irradiance from them: E(n) = sum_i SH9_COSINE_LOBE[i] sh9[i] Y_i(n)."""
        c = self._data.sh9()
        if self.rotation_z != 0.0:
            # Y(R d) = M Y(d) band by band; fit M on a spread of directions, then c_world = M^T c_src.
            d = equirect_pixel_dirs(8, 16).reshape(-1, 3)
            M_T, *_ = np.linalg.lstsq(sh9_basis(d), sh9_basis(d @ self._rot.T.astype(np.float64)), rcond=None)
            c = M_T @ c
        return (c * self.strength).astype(np.float32)

    @staticmethod
    def from_file(path, rotation_z: float = 0.0, strength: float = 1.0) -> "Environment":
        """Environment from an .exr or .hdr file."""
        from .hdri_io import read_hdr_image

        return Environment(read_hdr_image(path), rotation_z, strength)

    @staticmethod
    def constant(radiance, h: int = 16, w: int = 32) -> "Environment":
        """A uniform environment of the given RGB (or grey) radiance."""
        eq = np.empty((h, w, 3), dtype=np.float32)
        eq[:] = np.asarray(radiance, dtype=np.float32)
        return Environment(eq)


def lobe_environments(centres: np.ndarray, sharpness: float, h: int, w: int) -> list[Environment]:
    """Neutral spherical-Gaussian lights exp(sharpness (d . c - 1)), one per unit centre c of centres [n, 3], as
    [h, w] equirect Environments with their specular levels already prefiltered (prefilter.lobe_levels: one
    rotated prefilter profile for the whole set)."""
    return [Environment(None, _data=_Prefiltered(levels[0], specular=levels))
            for levels in lobe_levels(centres, sharpness, h, w)]  # fmt: skip


def default_environment() -> Environment:
    """The light when a request names none: the studio HDRI shipped inside the bpy wheel, else a soft grey sky."""
    hdris = builtin_hdris()
    if "studio" in hdris:
        return Environment.from_file(hdris["studio"])
    return Environment.constant([0.8, 0.8, 0.8])


# ----------------------------------------------------------------------------------------------------------
# The HDRIs shipped inside the bpy wheel (Poly Haven, CC0), found without importing bpy.
# ----------------------------------------------------------------------------------------------------------


def builtin_hdris() -> dict[str, Path]:
    """{name: path} of the 8 CC0 studio-light HDRIs in the installed bpy wheel ({} if bpy is not installed)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None:
        return {}
    roots = list(spec.submodule_search_locations or [])
    if spec.origin:
        roots.append(str(Path(spec.origin).parent))
    for root in roots:
        found = sorted(Path(root).glob("*/datafiles/studiolights/world/*.exr"))
        if found:
            return {p.stem: p for p in found}
    return {}

