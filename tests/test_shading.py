"""Deferred split-sum shading: furnace energy, premultiplied alpha, mirror and AO limits, and the numba kernels
against their numpy reference (the whole shader, the lobe-sampled specular, the lights' specular)."""

import numpy as np
import pytest

from relight.core.camera import Camera
from relight.core.envmap import Environment, builtin_hdris
from relight.core.gaussians import GBUFFER_CHANNELS, GBUFFER_LAYOUT as LAYOUT
from relight.core.hdri_io import read_hdr_image
from relight.core.prefilter import FINE_LIGHT_CELL_WIDTH, LIGHT_CELL_WIDTH, level_blend
from relight.core.sampling import hammersley
from relight.render import brdf_lut
from relight.render import shading_kernels as kernels
from relight.render import shading_reference as reference
from relight.render.shading import composite, environment_background, shade
from relight.render.shading_model import DIELECTRIC_F0, multiscatter_scale

from lookup_tolerance import EPS32, assert_within, lookup_tolerance

EPS64 = float(np.finfo(np.float64).eps)

H, W = 48, 64


@pytest.fixture(scope="module")
def camera() -> Camera:
    return Camera.look_at((3.0, -2.0, 1.5), (0.0, 0.0, 0.0), 45.0, W, H)


@pytest.fixture(scope="module")
def sunset() -> Environment:
    return Environment(read_hdr_image(builtin_hdris()["sunset"]), rotation_z=0.6, strength=0.8).prefilter()


def sphere_gbuffer(camera: Camera, albedo, roughness, metallic, visibility=1.0, alpha=1.0):
    """Unit sphere at the origin: premultiplied [H, W, GBUFFER_CHANNELS] features and [H, W, 1] alpha (alpha where hit)."""
    o, d = camera.rays()
    b = d @ o
    disc = b * b - (o @ o - 1.0)
    hit = disc > 0
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    p = o + t[..., None] * d
    f = np.zeros((H, W, GBUFFER_CHANNELS), np.float32)
    f[..., LAYOUT["albedo"]] = albedo
    f[..., LAYOUT["roughness"]] = np.asarray(roughness, np.float32)[..., None] if np.ndim(roughness) else roughness
    f[..., LAYOUT["metallic"]] = metallic
    f[..., LAYOUT["normal"]] = p
    f[..., LAYOUT["visibility"]] = visibility
    f[..., LAYOUT["shadow"]] = visibility
    a = (hit * alpha)[..., None].astype(np.float32)
    return f * a, a


def facing_gbuffer(camera: Camera, albedo, roughness, metallic, visibility=1.0):
    """Every pixel covered, normal = towards the camera (n.v = 1)."""
    _, d = camera.rays()
    f = np.zeros((H, W, GBUFFER_CHANNELS), np.float32)
    f[..., LAYOUT["albedo"]] = albedo
    f[..., LAYOUT["roughness"]] = roughness
    f[..., LAYOUT["metallic"]] = metallic
    f[..., LAYOUT["normal"]] = -d
    f[..., LAYOUT["visibility"]] = visibility
    f[..., LAYOUT["shadow"]] = visibility
    return f, np.ones((H, W, 1), np.float32)


@pytest.mark.parametrize("impl", ["numba", "numpy"])
@pytest.mark.parametrize("metallic", [0.0, 1.0])
@pytest.mark.parametrize("roughness", [0.05, 0.4, 0.8, 1.0])
def test_white_furnace_is_energy_conserving(camera, metallic, roughness, impl):
    """A white surface in a uniform environment L reflects exactly L (Blender's multiscatter GGX and its
    energy-conserving dielectric layering behave so)."""
    L = np.array([0.7, 1.0, 1.6], np.float32)
    env = Environment.constant(L)
    f, a = sphere_gbuffer(camera, 1.0, roughness, metallic)
    out = shade(f, a, camera, env, impl=impl)
    hit = a[..., 0] > 0
    assert hit.mean() > 0.2
    np.testing.assert_allclose(out["hdr"][hit], np.broadcast_to(L, (hit.sum(), 3)), rtol=1e-3)
    assert np.all(out["hdr"][~hit] == 0)


@pytest.mark.parametrize("roughness", [0.3, 0.7, 1.0])
def test_single_scattering_furnace_matches_directional_albedo(camera, roughness):
    """multiscatter=False: a white metal at n.v = 1 reflects L (A + B), the single-scattering GGX albedo,
    which loses energy with roughness; a white dielectric reflects L (1 + 0.04 A + B)."""
    L = 2.0
    env = Environment.constant([L, L, L])
    f, a = facing_gbuffer(camera, 1.0, roughness, 1.0)
    metal = shade(f, a, camera, env, multiscatter=False)["hdr"]
    A, B = brdf_lut.lookup(1.0, roughness)
    np.testing.assert_allclose(metal, L * (A + B), rtol=1e-3)
    if roughness >= 0.7:
        assert A + B < 0.9  # single scattering visibly loses energy
    f, a = facing_gbuffer(camera, 1.0, roughness, 0.0)
    diel = shade(f, a, camera, env, multiscatter=False)["hdr"]
    np.testing.assert_allclose(diel, L * (1 + 0.04 * A + B), rtol=1e-3)


def test_premultiplied_alpha_and_passes(camera, sunset):
    f1, a1 = sphere_gbuffer(camera, [0.8, 0.3, 0.1], 0.45, 0.25, visibility=0.9, alpha=1.0)
    fh, ah = sphere_gbuffer(camera, [0.8, 0.3, 0.1], 0.45, 0.25, visibility=0.9, alpha=0.5)
    full = shade(f1, a1, camera, sunset)
    half = shade(fh, ah, camera, sunset)
    hit = a1[..., 0] > 0
    np.testing.assert_allclose(half["hdr"], 0.5 * full["hdr"], rtol=1e-5, atol=1e-7)
    for key in ("albedo", "roughness", "metallic", "normal", "visibility", "shadow"):
        np.testing.assert_allclose(half[key], full[key], atol=1e-6)
        assert np.all(half[key][~hit] == 0)
    np.testing.assert_allclose(half["albedo"][hit], np.broadcast_to([0.8, 0.3, 0.1], (hit.sum(), 3)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(full["normal"][hit], axis=-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(half["alpha"], ah)
    assert full["hdr"].dtype == np.float32 and full["hdr"].shape == (H, W, 3)


def test_mirror_reflects_the_environment(camera, sunset):
    """A white chrome sphere (roughness 0) shows env.radiance(reflect(-v, n)) times the near-mirror albedo."""
    f, a = sphere_gbuffer(camera, 1.0, 0.0, 1.0)
    out = shade(f, a, camera, sunset, multiscatter=False)
    o, d = camera.rays()
    hit = a[..., 0] > 0
    n = out["normal"][hit]
    v = -d[hit]
    r = 2 * np.sum(n * v, -1, keepdims=True) * n - v
    expected = sunset.radiance(r)
    A, B = brdf_lut.lookup(np.sum(n * v, -1), 0.0)
    assert np.all(A + B > 0.97)
    got = out["hdr"][hit]
    assert np.abs(got - expected * (A + B)[:, None]).mean() < 1e-3 * expected.mean()


def test_ambient_occlusion_darkens_and_zero_visibility_is_black(camera, sunset):
    lit = shade(*sphere_gbuffer(camera, 0.6, 0.6, 0.0, visibility=1.0), camera, sunset)["hdr"]
    half = shade(*sphere_gbuffer(camera, 0.6, 0.6, 0.0, visibility=0.5), camera, sunset)["hdr"]
    dark = shade(*sphere_gbuffer(camera, 0.6, 0.6, 0.0, visibility=0.0), camera, sunset)["hdr"]
    assert np.all(dark == 0)
    assert 0.3 * lit.sum() < half.sum() < 0.6 * lit.sum()


def random_gbuffer(seed: int, roughness=None, metallic=None) -> tuple[np.ndarray, np.ndarray]:
    """Random premultiplied features [H, W, GBUFFER_CHANNELS] and alpha [H, W, 1]: some pixels uncovered, normals
    in every direction (back-facing ones get bent to grazing); roughness: about this value (x U(0.9, 1.1)) instead
    of U(0, 1), metallic: this value instead of U(0, 1)."""
    rng = np.random.default_rng(seed)
    f = rng.random((H, W, GBUFFER_CHANNELS)).astype(np.float32)
    f[..., LAYOUT["normal"]] = rng.normal(size=(H, W, 3))
    if roughness is not None:
        f[..., LAYOUT["roughness"]] = roughness * rng.uniform(0.9, 1.1, (H, W, 1))
    if metallic is not None:
        f[..., LAYOUT["metallic"]] = metallic
    a = rng.random((H, W, 1)).astype(np.float32)
    a[a < 0.2] = 0
    return f * a, a


def assert_kernel_matches_reference(fast: dict, ref: dict, env: Environment) -> None:
    """shade(impl="numba") against shade(impl="numpy") within what the two can differ by.

    What is compared: the kernel does its arithmetic in float64 (numba promotes every float32 read: G-buffer,
    texels, BRDF table) at the same texel positions as the float64 reference, but stores albedo and shadow in its
    float32 passes and reads them back; both hdr outputs are rounded to float32. Per term of the hdr sum (all >= 0):
    albedo (in F0 and the base) and shadow re-read from float32, <= 3 x EPS32 / 2; the two roundings of the result,
    EPS32 / 2 each; the float64 sums (<= 128 lobe samples, <= 256 lights, 4-tap bilinear) and the float64 rounding
    of both (<= ~1e-10 relative even where GGX D cancels at small alpha) are far below one float32 ulp. So
    RTOL = 8 EPS32 (twice that sum). One absolute term: the dielectric layer's 1 - F_ss E_ss ms, whose error from
    the rounded albedo in F0 is absolute, <= EPS32 ms x (albedo (1 - metallic) irradiance shadow strength alpha):
    the floor is 2 EPS32 MS_MAX irradiance strength alpha shadow per pixel (MS_MAX: the multiscatter scale's
    largest value over the BRDF table, at F0 = 1; irradiance read at the pixel's normal). The un-premultiplied
    passes are the float32 roundings of float64 values one float64 ulp apart: <= 1 float32 ulp (EPS32 relative).
    Thresholds (the lobe path's alpha, a mip blend switched on at 1e-3) can see the two differ only within
    ~1e-15 of them: never on random inputs."""
    assert ref.keys() == fast.keys()
    rot, strength, _, _, irr_flat, irr_h, irr_w = env.kernel_data()
    lut = brdf_lut.brdf_lut().astype(np.float64)
    ms_max = float(multiscatter_scale(lut.sum(-1), brdf_lut.average_albedo().astype(np.float64)[:, None], 1.0).max())
    normal = ref["normal"].reshape(-1, 3).astype(np.float64)
    irradiance = reference.sample_level(irr_flat.reshape(irr_h, irr_w, 3), normal @ np.asarray(rot, np.float64).T)
    floor = 2 * EPS32 * ms_max * float(strength) * irradiance.reshape(ref["hdr"].shape) * ref["alpha"] * ref["shadow"]
    assert_within(fast["hdr"], ref["hdr"], 8 * EPS32 * np.abs(ref["hdr"]) + floor, "hdr")
    for k in ref.keys() - {"hdr"}:
        assert_within(fast[k], ref[k], EPS32 * np.abs(ref[k]), k)


def test_numba_kernel_matches_numpy_reference(camera, sunset):
    f, a = random_gbuffer(0)
    for ms in (True, False):
        ref = shade(f, a, camera, sunset, multiscatter=ms, impl="numpy")
        fast = shade(f, a, camera, sunset, multiscatter=ms, impl="numba")
        assert_kernel_matches_reference(fast, ref, sunset)


@pytest.mark.parametrize("impl", ["numba", "numpy"])
def test_shading_without_passes_is_the_same_frame(camera, sunset, impl):
    """passes=False (the live preview's frames) gives the HDR and alpha only, bit for bit those of a full shade."""
    f, a = random_gbuffer(1)
    full = shade(f, a, camera, sunset, impl=impl)
    lean = shade(f, a, camera, sunset, impl=impl, passes=False)
    assert set(lean) == {"hdr", "alpha"} and len(full) > 2
    np.testing.assert_array_equal(lean["hdr"], full["hdr"])
    np.testing.assert_array_equal(lean["alpha"], full["alpha"])


@pytest.mark.parametrize("samples", [1, 16, 64])
@pytest.mark.parametrize("metallic", [0.0, 1.0])
@pytest.mark.parametrize("roughness", [0.03, 0.085, 0.3, 0.9])  # split sum only, fine light grid, coarse grid
def test_lobe_sampled_kernel_matches_numpy_reference(camera, sunset, roughness, metallic, samples):
    """The whole shader with specular_samples > 0: the lobe-sampled specular and the lights' specular replace the
    split sum from the fine grid's alpha on; the numpy reference does the same in float64."""
    f, a = random_gbuffer(1, roughness, metallic)
    ref = shade(f, a, camera, sunset, impl="numpy", specular_samples=samples)
    fast = shade(f, a, camera, sunset, impl="numba", specular_samples=samples)
    assert_kernel_matches_reference(fast, ref, sunset)
    split_sum = shade(f, a, camera, sunset, impl="numpy")["hdr"]
    assert np.array_equal(ref["hdr"], split_sum) == (roughness < 0.05)  # the lobe path ran where it should


def random_frames(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n random shading frames: unit normals n [n, 3], unit views v [n, 3] in n's hemisphere, n.v [n] clamped as
    the shader clamps it."""
    rng = np.random.default_rng(seed)
    nrm, view = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in rng.normal(size=(2, n, 3)))
    view *= np.sign(np.sum(nrm * view, axis=1))[:, None]
    return nrm, view, np.clip(np.sum(nrm * view, axis=1), 1e-4, 1.0)


@pytest.mark.parametrize("samples", [1, 16, 128])
@pytest.mark.parametrize("roughness", [0.1, 0.4, 0.9])
def test_lobe_radiance_kernel_matches_reference(sunset, roughness, samples):
    """kernels.lobe_radiance pixel by pixel against reference.lobe_radiance, the same float64 inputs.

    Both are float64 arithmetic on the same float32 texels, so they differ by float64 rounding only: the weighted
    sum of K samples, <= (K + 64) EPS64 relative (64: the ~30 operations and a few-ulp sin / cos / log2 / arctan2
    of one sample); where a sample's texel position moves, by its float64 error, <= 64 EPS64 rad x (W / 2 pi) / cos(
    elevation) < 1e-9 texels (but within 1e-3 of a pole: ~1e-6 of the samples) times a texel-to-texel change
    <= the brightest texel: atol = 1e-8 x the brightest texel; and the GGX D of a sample's mip level, which cancels
    to relative 16 EPS64 / alpha^2 and moves the level blend by that: 2 x 16 EPS64 / alpha^2 x the brightest texel."""
    n, v, ndv = random_frames(300, seed=7)
    rough = roughness * np.random.default_rng(8).uniform(0.9, 1.1, len(n))
    grid = sunset.light_kernel_data(LIGHT_CELL_WIDTH)
    rot = np.asarray(sunset.kernel_data().rot, np.float64)
    xi1, xi2 = hammersley(samples)
    want = reference.lobe_radiance(n, v, ndv, rough, rot, grid.mip_flat, grid.mip_table, grid.texel0, xi1, xi2)
    got = np.array([kernels.lobe_radiance(*n[i], *v[i], ndv[i], rough[i], rot, grid.mip_flat, grid.mip_table,
                                          grid.texel0, xi1, xi2) for i in range(len(n))])  # fmt: skip
    brightest = grid.mip_flat.max(axis=0).astype(np.float64)  # [3] box mips never exceed level 0
    atol = (1e-8 + 32 * EPS64 / rough.min() ** 4) * brightest
    assert np.count_nonzero(want.sum(1) > 0) > 0.5 * len(n)  # not trivially 0 (1 sample may miss a pixel)
    assert_within(got, want, (samples + 64) * EPS64 * np.abs(want) + atol, "lobe radiance")


@pytest.mark.parametrize("metallic", [0.0, 1.0])
@pytest.mark.parametrize("roughness", [0.08, 0.3, 0.9])
def test_lights_specular_kernel_matches_reference(sunset, roughness, metallic):
    """kernels.lights_specular pixel by pixel against reference.lights_specular, the same float64 inputs, on the
    grid the shader would pick for that roughness.

    Float64 rounding only: J terms >= 0 summed, <= (J + 64) EPS64 relative; and GGX D, whose denominator
    (alpha'^2 - 1) (n.h)^2 + 1 >= alpha'^2 cancels to relative 16 EPS64 / alpha'^2 (alpha'^2 >= alpha^2 +
    cell_omega / 4 pi), squared: 32 EPS64 / alpha'^2."""
    grid = sunset.light_kernel_data(FINE_LIGHT_CELL_WIDTH if roughness < 0.09 else LIGHT_CELL_WIDTH)
    n, v, ndv = random_frames(300, seed=9)
    rng = np.random.default_rng(10)
    # half the pixels near a highlight: the normal near the half vector of a light and the view
    light = grid.dirs[rng.integers(len(grid.dirs), size=150)]
    h = light + v[:150] + rng.normal(scale=0.5 * roughness**2, size=(150, 3))
    n[:150] = h / np.linalg.norm(h, axis=1, keepdims=True)
    ndv[:150] = np.clip(np.sum(n[:150] * v[:150], axis=1), 1e-4, 1.0)
    rough = roughness * rng.uniform(0.9, 1.1, len(n))
    f0 = DIELECTRIC_F0 + (rng.random((len(n), 3)) - DIELECTRIC_F0) * metallic
    want = reference.lights_specular(n, v, ndv, rough, f0, grid.dirs, grid.flux, grid.cell_omega)
    got = np.array([kernels.lights_specular(*n[i], *v[i], ndv[i], rough[i], *f0[i], grid.dirs, grid.flux,
                                            grid.cell_omega) for i in range(len(n))])  # fmt: skip
    aw2_min = rough.min() ** 4 + grid.cell_omega / (4 * np.pi)
    assert len(grid.dirs) > 0 and np.count_nonzero(want.sum(1) > 0) > 0.5 * len(n)
    rtol = (len(grid.dirs) + 64) * EPS64 + 32 * EPS64 / aw2_min
    assert_within(got, want, rtol * np.abs(want), "lights specular")


def test_kernel_lookups_match_the_environment_lookups(sunset):
    """The kernels (and the reference) read env.kernel_data() at float64 positions; Environment.specular and
    .irradiance read the same data at float32 positions. They agree within lookup_tolerance: the direction rounded
    to float32 and turned by the float32 matrix (< 4 EPS32 rad); for the specular, the two levels around the
    roughness each bounded so, plus the blend weight, which Environment.specular computes from r^2 in float32
    (<= 8 EPS32 of the two levels' difference)."""
    d, _, _ = random_frames(2000, seed=11)
    rough = np.random.default_rng(12).random(len(d)).astype(np.float32)
    rot, strength, spec_flat, spec_table, irr_flat, irr_h, irr_w = sunset.kernel_data()
    rot = np.asarray(rot, np.float64)
    d_img = d @ rot.T
    levels = reference.unpack_levels(spec_flat, spec_table)
    want = reference.split_sum_radiance(levels, d_img, rough.astype(np.float64)) * strength
    k0 = np.minimum(np.floor(rough * (len(levels) - 1)).astype(np.int64), len(levels) - 2)
    t = np.clip(level_blend(rough.astype(np.float64), k0, len(levels)), 0.0, 1.0)[:, None]
    tol = np.zeros_like(want)
    for k in range(len(levels) - 1):
        m = k0 == k
        lo, hi = (reference.sample_level(levels[j], d_img[m]) for j in (k, k + 1))
        tol[m] = ((1 - t[m]) * lookup_tolerance(levels[k], d_img[m], 4 * EPS32)
                  + t[m] * lookup_tolerance(levels[k + 1], d_img[m], 4 * EPS32)
                  + 8 * EPS32 * np.abs(hi - lo))  # fmt: skip
    tol = tol * strength + 4 * EPS32 * np.abs(want)  # the strength products and the blend's float32 sums
    assert_within(sunset.specular(d, rough), want, tol, "specular")
    irr = irr_flat.reshape(irr_h, irr_w, 3)
    want = reference.sample_level(irr, d_img) * strength
    tol = lookup_tolerance(irr, d_img, 4 * EPS32) * strength + 2 * EPS32 * np.abs(want)
    assert_within(sunset.irradiance(d), want, tol, "irradiance")


def test_environment_background_and_composite(camera, sunset):
    bg = environment_background(camera, sunset)
    _, d = camera.rays()
    np.testing.assert_allclose(bg, sunset.radiance(d), rtol=1e-5)
    f, a = sphere_gbuffer(camera, 0.5, 0.5, 0.0, alpha=0.75)
    out = shade(f, a, camera, sunset)
    comp = composite(out["hdr"], out["alpha"], bg)
    hit = a[..., 0] > 0
    np.testing.assert_allclose(comp[~hit], bg[~hit], rtol=1e-6)
    np.testing.assert_allclose(comp[hit], out["hdr"][hit] + 0.25 * bg[hit], rtol=1e-5)
    np.testing.assert_array_equal(composite(out["hdr"], out["alpha"], None), out["hdr"])


def test_rotation_and_strength_reach_the_shading(camera, sunset):
    f, a = sphere_gbuffer(camera, 0.7, 0.3, 0.5)
    base = shade(f, a, camera, sunset)["hdr"]
    np.testing.assert_allclose(shade(f, a, camera, sunset.with_transform(0.6, 1.6))["hdr"], 2 * base, rtol=1e-5, atol=1e-7)
    turned = shade(f, a, camera, sunset.with_transform(2.0, 0.8))["hdr"]
    assert np.abs(turned - base).mean() > 0.05 * base.mean()


def test_shadow_scales_only_the_diffuse_and_visibility_only_the_specular(camera, sunset):
    """The shadow channel (light-dependent, RGB) multiplies the diffuse term; AO (visibility) only occludes the
    specular. A metal ignores the shadow channel; a rough dielectric follows it channel by channel."""
    f, a = sphere_gbuffer(camera, 0.6, 0.8, 0.0)
    lit = shade(f, a, camera, sunset)["hdr"]
    f2 = f.copy()
    f2[..., LAYOUT["shadow"]] *= np.array([1.0, 0.5, 0.0], np.float32)
    out = shade(f2, a, camera, sunset)
    hit = a[..., 0] > 0
    assert np.all(out["hdr"][hit, 0] == lit[hit, 0])
    assert np.all(out["hdr"][hit, 1] < lit[hit, 1]) and np.all(out["hdr"][hit, 2] < 0.2 * lit[hit, 2])
    np.testing.assert_allclose(out["shadow"][hit], np.broadcast_to([1.0, 0.5, 0.0], (hit.sum(), 3)), atol=1e-6)
    fm, am = sphere_gbuffer(camera, 0.9, 0.3, 1.0)
    fm2 = fm.copy()
    fm2[..., LAYOUT["shadow"]] = 0.0
    np.testing.assert_array_equal(shade(fm2, am, camera, sunset)["hdr"], shade(fm, am, camera, sunset)["hdr"])


@pytest.mark.parametrize("roughness", [0.3, 0.7])
def test_sampled_specular_lobe_keeps_the_furnace_and_agrees_with_split_sum_head_on(camera, sunset, roughness):
    """specular_samples > 0 averages the environment over each pixel's own GGX lobe: in a uniform environment
    that is the environment itself (energy unchanged); seen head-on (n = v, the split-sum assumption) it agrees
    with the prefiltered lookup."""
    L = np.array([0.7, 1.0, 1.6], np.float32)
    f, a = sphere_gbuffer(camera, 1.0, roughness, 1.0)
    out = shade(f, a, camera, Environment.constant(L), specular_samples=64)
    hit = a[..., 0] > 0
    np.testing.assert_allclose(out["hdr"][hit], np.broadcast_to(L, (hit.sum(), 3)), rtol=1e-3)
    fh, ah = facing_gbuffer(camera, 0.9, roughness, 1.0)
    split = shade(fh, ah, camera, sunset)["hdr"]
    sampled = shade(fh, ah, camera, sunset, specular_samples=128)["hdr"]
    assert np.abs(sampled - split).mean() < 0.1 * split.mean()


def ggx_quadrature(n, v, f0, roughness, env_img, rot=np.eye(3)):
    """Single-scattering GGX (height-correlated Smith, Schlick F) reflected radiance by quadrature over every texel
    of an equirect env_img [h, w, 3]: n, v [N, 3] unit, f0 [3] -> [N, 3]. Independent of the shading kernels."""
    from relight.core.equirect import equirect_pixel_dirs, equirect_texel_solid_angles

    h, w = env_img.shape[:2]
    L = env_img.reshape(-1, 3).astype(np.float64)
    dirs = equirect_pixel_dirs(h, w).reshape(-1, 3) @ rot  # image -> world
    dom = np.repeat(equirect_texel_solid_angles(h, w), w)
    a2 = roughness**4
    out = np.zeros((len(n), 3))
    for i in range(0, len(n), 64):
        nn, vv = n[i : i + 64], v[i : i + 64]
        ndl = nn @ dirs.T  # [B, T]
        ndv = np.maximum(np.sum(nn * vv, 1, keepdims=True), 1e-4)
        hv = dirs[None] + vv[:, None]
        hv /= np.linalg.norm(hv, axis=-1, keepdims=True)
        ndh = np.einsum("btc,bc->bt", hv, nn)
        vdh = np.clip(np.einsum("btc,bc->bt", hv, vv), 0, 1)
        D = a2 / (np.pi * ((a2 - 1) * ndh**2 + 1) ** 2)
        ndl_c = np.maximum(ndl, 1e-9)
        G2 = 2 * ndl_c * ndv / (ndl_c * np.sqrt(ndv**2 * (1 - a2) + a2) + ndv * np.sqrt(ndl_c**2 * (1 - a2) + a2))
        wgt = np.where(ndl > 0, D * G2 / (4 * ndv) * dom, 0.0)
        fc = (1 - vdh) ** 5
        for c in range(3):
            out[i : i + 64, c] = (wgt * (f0[c] + (1 - f0[c]) * fc)) @ L[:, c]
    return out


@pytest.mark.parametrize("roughness", [0.3, 0.5])  # lobes wide enough for a texel-by-texel quadrature
def test_sampled_lobe_sees_small_bright_lamps_in_its_tail(camera, roughness):
    """A dark room with one small lamp ~10^5 times brighter (a studio): on a metal sphere most pixels get their
    light from the lamp through the GGX tail. Final quality (lobe samples + the lamp taken out as lights) matches
    a texel-by-texel quadrature of the single-scattering GGX times Cycles' multiscatter scale (measured: 0.1-0.3 %
    mean error per pixel); filtered importance sampling alone was 14-25 % off per pixel here."""
    from relight.render.shading_model import multiscatter_scale

    from relight.core.equirect import equirect_pixel_dirs

    h, w = 128, 256
    dirs = equirect_pixel_dirs(h, w)
    img = np.full((h, w, 3), 0.004, np.float32)
    lamp = np.array([0.2, -0.6, 0.75]) / np.linalg.norm([0.2, -0.6, 0.75])
    img[dirs @ lamp > np.cos(np.radians(2.5))] = (400.0, 380.0, 350.0)
    env = Environment(img, rotation_z=0.4)
    albedo = np.array([0.95, 0.8, 0.4])
    f, a = sphere_gbuffer(camera, albedo, roughness, 1.0)
    out = shade(f, a, camera, env, specular_samples=128)["hdr"]
    hit = a[..., 0] > 0
    _, d = camera.rays()
    n = f[..., LAYOUT["normal"]][hit].astype(np.float64)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    v = -d[hit].astype(np.float64)
    ndv = np.sum(n * v, 1)
    keep = ndv > 0.2  # away from the rim, where blended normals are bent
    c, s = np.cos(0.4), np.sin(0.4)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # world -> image
    ref = ggx_quadrature(n[keep], v[keep], albedo, roughness, img, rot)
    A, B = brdf_lut.lookup(ndv[keep], roughness)
    ref *= multiscatter_scale((A + B)[:, None], brdf_lut.lookup_average(roughness), albedo[None])
    ours = out[hit][keep]
    assert abs(ours.sum() / ref.sum() - 1) < 0.01  # energy
    assert np.abs(ours - ref).mean() < 0.03 * ref.mean()  # per pixel


@pytest.mark.parametrize("impl", ["numba", "numpy"])
@pytest.mark.parametrize("visibility", [0.0, 0.4, 1.0])
def test_occluded_lobe_sees_surfaces_like_itself_so_a_white_enclosure_stays_a_furnace(camera, impl, visibility):
    """Specular interreflection: the occluded part of the lobe sees the asset's own surfaces, lit like this pixel
    and sending out what it does: a dielectric its diffuse, a metal its specular reflection. A white surface whose
    occluders are white and as lit as the open sky (shadow 1) is a closed furnace: it returns the environment's
    radiance whatever its ambient occlusion, dielectric or metal. A coloured metal fully occluded (AO 0) reflects
    its own reflection: its colour twice, not black (the inside of extruded metal text mirrors its other side)."""
    L = np.array([0.5, 0.8, 1.1], np.float32)
    env = Environment.constant(L)

    def shaded(albedo, metallic, ao):  # [P, 3] over the sphere's pixels, its occluders as lit as the open sky
        f, a = sphere_gbuffer(camera, albedo, 0.4, metallic, visibility=ao)
        f[..., LAYOUT["shadow"]] = a  # premultiplied shadow 1
        return shade(f, a, camera, env, impl=impl)["hdr"][a[..., 0] > 0]

    for metallic in (0.0, 1.0):
        out = shaded(1.0, metallic, visibility)
        np.testing.assert_allclose(out, np.broadcast_to(L, out.shape), rtol=2e-3)
    copper = np.array([0.9, 0.6, 0.35], np.float32)
    one_bounce, two_bounces = shaded(copper, 1.0, 1.0), shaded(copper, 1.0, 0.0)
    # AO 1: the lobe sees only the world, L times the metal's directional albedo R; AO 0: only the metal, R R L
    assert np.all(two_bounces > 0)
    np.testing.assert_allclose(two_bounces, one_bounce * one_bounce / L, rtol=2e-3)
