"""HDR file I/O, the prefiltered Environment (rotation, strength, specular levels, irradiance, SH9) and the
bright-light extraction for lobe sampling."""

import numpy as np
import pytest

from relight.core.envmap import Environment, builtin_hdris, lobe_environments
from relight.core.equirect import dir_to_equirect_uv, equirect_pixel_dirs, equirect_texel_solid_angles, sample_equirect
from relight.core.hdri_io import read_hdr_image, write_exr
from relight.core.prefilter import LUMINANCE, SH9_COSINE_LOBE, box_mips, extract_lights, sh9_basis

from lookup_tolerance import EPS32, assert_within, lookup_tolerance


def random_dirs(n: int, seed: int = 0) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


# ---- HDR files --------------------------------------------------------------------------------------------


def test_builtin_hdris_found_without_bpy():
    hdris = builtin_hdris()
    assert set(hdris) == {"city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset"}
    assert all(p.is_file() for p in hdris.values())
    img = read_hdr_image(hdris["sunset"])
    assert img.shape == (512, 1024, 3) and img.dtype == np.float32 and img.min() > -0.01 and img.max() > 100  # DWAB: tiny negatives


def test_exr_round_trip_rgb_rgba_and_separate_channels(tmp_path):
    import OpenEXR

    rgb = np.random.default_rng(0).random((6, 10, 3)).astype(np.float32) * 50
    write_exr(tmp_path / "a.exr", rgb)
    np.testing.assert_array_equal(read_hdr_image(tmp_path / "a.exr"), rgb)
    rgba = np.concatenate([rgb, np.ones((6, 10, 1), np.float32)], -1)
    write_exr(tmp_path / "b.exr", rgba)
    np.testing.assert_array_equal(read_hdr_image(tmp_path / "b.exr"), rgb)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    chans = {"R": rgb[..., 0].copy(), "G": rgb[..., 1].copy(), "B": rgb[..., 2].copy()}
    OpenEXR.File(header, chans).write(str(tmp_path / "c.exr"))
    with OpenEXR.File(str(tmp_path / "c.exr"), separate_channels=True) as f:
        assert set(f.channels()) == {"R", "G", "B"}
    np.testing.assert_array_equal(read_hdr_image(tmp_path / "c.exr"), rgb)


def test_radiance_hdr_is_read_as_float_rgb(tmp_path):
    import cv2

    rgb = np.zeros((4, 8, 3), np.float32)
    rgb[..., 0] = 10.0  # red, bright: must stay float and in RGB order
    rgb[..., 2] = 0.25
    assert cv2.imwrite(str(tmp_path / "a.hdr"), rgb[..., ::-1].copy())
    img = read_hdr_image(tmp_path / "a.hdr")
    assert img.dtype == np.float32
    np.testing.assert_allclose(img, rgb, rtol=0.02)


# ---- Environment ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sunset():
    return Environment(read_hdr_image(builtin_hdris()["sunset"])).prefilter()


def test_radiance_is_bilinear_lookup_with_rotation_and_strength(sunset):
    """radiance() looks up in float32 (its direction, rotation and uv); the references here take uv from float64.
    Near a texel boundary of the sun the two land on either side, so each sample's tolerance is the image's local
    texel-to-texel change times how far apart the two can land (lookup_tolerance), not a fixed relative one."""
    img = sunset.equirect
    d = random_dirs(2000)
    base = sunset.radiance(d)
    u, v = dir_to_equirect_uv(d)
    # the direction rounded to float32: <= EPS32 / 2 per component, < EPS32 in all
    assert_within(base, sample_equirect(img, u, v), lookup_tolerance(img, d, EPS32), "radiance")
    rot = sunset.with_transform(0.8, 2.5)
    c, s = np.cos(0.8), np.sin(0.8)
    d_img = d @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T  # lookup direction = Rz(rotation) d
    # rotated in float32: the direction (EPS32 / 2) and the matrix (EPS32 / 2 per entry) rounded, then a 2-term
    # dot product per component (2 roundings), against d_img rounded once: < 4 EPS32 apart. Strength: one rounding
    # of the product on each side.
    ref = 2.5 * sunset.radiance(d_img)
    tol = 2.5 * lookup_tolerance(img, d_img, 4 * EPS32) + 2 * EPS32 * np.abs(ref)
    assert_within(rot.radiance(d), ref, tol, "rotated radiance")
    # what the tolerance allows is far below what a wrong rotation sense would give
    assert np.abs(sunset.with_transform(-0.8, 2.5).radiance(d) - ref).mean() > 100 * tol.mean()


def test_with_transform_shares_prefiltered_data(sunset):
    other = sunset.with_transform(1.0, 3.0)
    assert other._data is sunset._data
    again = Environment(sunset.equirect.copy())  # same content -> same cache entry
    assert again._data is sunset._data


def test_specular_at_roughness_zero_equals_source(sunset):
    d = random_dirs(3000, seed=2)
    np.testing.assert_allclose(sunset.specular(d, 0.0), sunset.radiance(d), rtol=1e-6, atol=1e-6)
    env = sunset.with_transform(0.3, 1.7)
    np.testing.assert_allclose(env.specular(d, np.zeros(len(d))), env.radiance(d), rtol=1e-5, atol=1e-5)


def test_constant_environment_prefilters_to_itself():
    env = Environment.constant([0.5, 1.0, 2.0])
    d = random_dirs(1000, seed=3)
    r = np.random.default_rng(3).random(1000)
    # Specular: each level is a float64 weighted mean of equal texels, exact once rounded to float32; a float32
    # bilinear lookup (<= 4 EPS32) and the blend of two levels (<= 3 EPS32) remain.
    spec_rtol = 16 * EPS32
    # Irradiance: sum_j K_ij L / sum_j K_ij over the 16 x 32 source, the numerator a float32 matrix product that
    # BLAS may accumulate in any order (<= 512 EPS32 / 2 relative at worst), the denominator a pairwise float32 sum,
    # then a float32 bilinear lookup and the strength product (a few EPS32).
    irr_rtol = (16 * 32 / 2 + 8) * EPS32
    L = np.broadcast_to([0.5, 1.0, 2.0], (1000, 3))
    np.testing.assert_allclose(env.specular(d, r), L, rtol=spec_rtol, atol=0)
    np.testing.assert_allclose(env.irradiance(d), L, rtol=irr_rtol, atol=0)
    np.testing.assert_allclose(env.with_transform(0.4, 3.0).irradiance(d), 3 * L, rtol=irr_rtol, atol=0)
    sh = env.sh9
    assert sh[0] == pytest.approx(np.array([0.5, 1.0, 2.0]) * np.sqrt(4 * np.pi), rel=1e-4)
    assert np.abs(sh[1:]).max() < 5e-3 * sh[0].min()  # quadrature on a 16-row image


def test_irradiance_of_a_sky_gradient_matches_the_analytic_cosine_convolution():
    # L(d) = 1 + z: E(n)/pi = 1 + (2/3) n_z (the l=1 band scaled by A_1 / pi = 2/3)
    eq = (1.0 + equirect_pixel_dirs(128, 256)[..., 2:3] * np.ones(3)).astype(np.float32)
    env = Environment(eq)
    n = random_dirs(500, seed=4)
    np.testing.assert_allclose(env.irradiance(n)[:, 0], 1 + 2 / 3 * n[:, 2], atol=0.01)


def test_irradiance_map_agrees_with_sh9(sunset):
    """Two independent routes to E(n)/pi: the irradiance map and Ramamoorthi-Hanrahan SH9 (with its
    band-limiting error) must agree to within a few percent of the mean, also after a rotation."""
    n = random_dirs(400, seed=5)
    for env in (sunset, sunset.with_transform(1.1, 1.0)):
        sh = env.sh9  # [9, 3]
        e_sh = (sh9_basis(n) * SH9_COSINE_LOBE) @ sh / np.pi
        e_map = env.irradiance(n)
        assert np.abs(e_sh - e_map).mean() < 0.05 * e_map.mean()


def test_rotated_sh9_matches_projection_of_rotated_image(sunset):
    rot = sunset.with_transform(0.9, 1.0)
    h, w = 128, 256
    d = equirect_pixel_dirs(h, w)
    eq_world = rot.radiance(d)  # the world as the rotated environment shows it
    domega = np.repeat(equirect_texel_solid_angles(h, w), w).reshape(h, w)
    direct = np.einsum("hwk,hwc,hw->kc", sh9_basis(d), eq_world, domega)
    np.testing.assert_allclose(rot.sh9, direct, rtol=0.02, atol=0.02 * np.abs(direct).max())


def test_specular_is_smooth_and_energy_preserving(sunset):
    """Prefiltering neither gains nor loses energy: the solid-angle mean of each level matches the source."""
    levels = sunset._data.specular()

    def mean(img):  # solid-angle-weighted mean radiance [3]
        h, w = img.shape[:2]
        return (img * equirect_texel_solid_angles(h, w)[:, None, None]).sum((0, 1)) / (4 * np.pi)

    for lv in levels[1:]:
        np.testing.assert_allclose(mean(lv), mean(levels[0]), rtol=0.06)  # a small hot sun: sampling noise
    # blurrier with roughness: total variation shrinks level to level (resampled to a common grid)
    d = equirect_pixel_dirs(32, 64)
    tv = [np.abs(np.diff(sunset.specular(d, r), axis=1)).mean() for r in (0.25, 0.5, 0.75, 1.0)]
    assert all(a > b for a, b in zip(tv, tv[1:]))


def test_specular_matches_brute_force_ggx_convolution(sunset):
    """One mid-roughness level against a direct (non-sampled) quadrature of the same GGX lobe over a mip."""
    r = 0.5
    alpha2 = r**4
    mips = box_mips(sunset.equirect)
    src = next(m for m in mips if m.shape[1] == 256)
    h, w = src.shape[:2]
    L_dirs = equirect_pixel_dirs(h, w).reshape(-1, 3)
    domega = np.repeat(equirect_texel_solid_angles(h, w), w)
    R = random_dirs(64, seed=6)
    cos_rl = R @ L_dirs.T  # n = v = R
    n_dot_l = np.maximum(cos_rl, 0)
    n_dot_h2 = (1 + cos_rl) / 2  # h = normalize(R + l)
    D = alpha2 / (np.pi * (n_dot_h2 * (alpha2 - 1) + 1) ** 2)
    wgt = D * n_dot_l * domega
    ref = (wgt @ src.reshape(-1, 3)) / wgt.sum(1, keepdims=True)
    got = sunset.specular(R, r)
    rel = np.abs(got - ref).mean() / ref.mean()
    assert rel < 0.05, rel


@pytest.mark.parametrize("sharpness, h, w", [(32.0, 32, 64), (3.0, 16, 32)])
def test_lobe_environments_match_their_own_prefilter(sharpness, h, w):
    """Lobes built from one rotated prefilter profile: each level agrees with the generic prefilter of that lobe's
    own image (within 6 % of the level's peak: the two sample the lobe on different texel grids), the source is
    the spherical Gaussian itself, and rendering-facing lookups agree too."""
    centres = np.concatenate([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], random_dirs(2, seed=4)])
    lights = lobe_environments(centres, sharpness, h, w)
    d = equirect_pixel_dirs(h, w)
    for c, env in zip(centres, lights):
        np.testing.assert_allclose(env.equirect[..., 0], np.exp(sharpness * (d @ c - 1.0)), rtol=1e-5)
        direct = Environment(env.equirect.copy())
        assert direct._data is not env._data
        for k, (got, ref) in enumerate(zip(env._data.specular(), direct._data.specular())):
            assert got.shape == ref.shape, k
            assert np.abs(got - ref).max() <= 0.06 * ref.max(), (k, np.abs(got - ref).max() / ref.max())
        R = random_dirs(256, seed=5)
        for r in (0.1, 0.3, 0.7):
            np.testing.assert_allclose(env.specular(R, r), direct.specular(R, r), atol=0.06 * float(direct.specular(R, r).max()))


def test_extract_lights_keeps_the_energy_and_finds_a_small_bright_lamp():
    """A dim sky with one small lamp 3000x brighter: the lamp leaves the map as lights next to its direction,
    the residual is clamped at the threshold, and residual + lights hold exactly the image's energy per channel."""
    H, W = 128, 256
    dirs = equirect_pixel_dirs(H, W)
    img = np.empty((H, W, 3), np.float32)
    img[:] = np.array([0.2, 0.3, 0.5], np.float32) * (1.2 + dirs[..., 2:3])  # a sky gradient
    lamp = np.array([0.6, -0.5, 0.62]) / np.linalg.norm([0.6, -0.5, 0.62])
    img[dirs @ lamp > np.cos(np.radians(3.0))] = (900.0, 800.0, 700.0)
    residual, ldirs, flux = extract_lights(img, cell_width=128, max_lights=64, threshold=8.0)
    dom = equirect_texel_solid_angles(H, W)[:, None, None]
    total = (img * dom).sum(axis=(0, 1))
    np.testing.assert_allclose((residual * dom).sum(axis=(0, 1)) + flux.sum(0), total, rtol=1e-5)
    mean_lum = float(((img @ LUMINANCE)[..., None] * dom).sum() / (4 * np.pi))
    assert (residual @ LUMINANCE).max() <= 8.0 * mean_lum * (1 + 1e-5)
    assert 0 < len(ldirs) <= 64
    np.testing.assert_allclose(np.linalg.norm(ldirs, axis=1), 1.0, atol=1e-5)
    assert np.all(ldirs @ lamp > np.cos(np.radians(4.0)))  # every light sits on the lamp
    on = dirs @ lamp > np.cos(np.radians(3.0))
    lamp_energy = (img[..., 0] * dom[..., 0])[on].sum()
    assert 0.95 * lamp_energy < flux.sum(0)[0] <= lamp_energy  # nearly all of the lamp, nothing of the sky


def test_extract_lights_caps_the_count_and_rotates_with_the_environment():
    """Too many bright cells: the threshold rises to keep max_lights; Environment.light_kernel_data gives the
    lights in world directions (the image frame turned back by the Mapping rotation)."""
    rng = np.random.default_rng(3)
    img = rng.uniform(0.0, 1.0, (64, 128, 3)).astype(np.float32)
    img[rng.uniform(size=(64, 128)) < 0.05] *= 500.0
    _, ldirs, _ = extract_lights(img, cell_width=64, max_lights=20)
    assert len(ldirs) <= 20
    env = Environment(img)
    split0, split1 = env.light_kernel_data(), env.with_transform(0.7, 1.0).light_kernel_data()
    d0, f0, d1, f1 = split0.dirs, split0.flux, split1.dirs, split1.flux
    np.testing.assert_allclose(f0, f1)
    # a world direction d reads the image at R_z(0.7) d: world light = R_z(0.7)^T image light
    c, s = np.cos(0.7), np.sin(0.7)
    Rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(d1 @ Rz.T, d0, atol=1e-5)


def test_prefiltered_levels_are_kept_in_the_users_cache_when_no_cache_dir_is_set(tmp_path, monkeypatch):
    """With RELIGHT_CACHE_DIR unset (an artist's `relight serve`), an HDRI's specular levels still go to the user's
    cache folder (core.cache: $XDG_CACHE_HOME/relight), and a new object of the same content reads them back
    instead of prefiltering again: a restarted server warms up from disk."""
    from relight.core.envmap import _Prefiltered

    monkeypatch.delenv("RELIGHT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    img = (np.random.default_rng(5).random((16, 32, 3)) * 4).astype(np.float32)
    first = _Prefiltered(img).specular()
    files = list((tmp_path / "relight" / "envmap_prefiltered").glob("*.npz"))
    assert len(files) == 1, files
    loaded = _Prefiltered(img.copy())._load_specular()  # another HDRI object of the same content
    assert loaded is not None and len(loaded) == len(first) > 1
    for a, b in zip(first, loaded):
        np.testing.assert_array_equal(a, b)


def test_box_mips_are_solid_angle_means_of_their_footprints():
    """Each texel of each mip level is the solid-angle weighted mean radiance of the source texels it covers,
    whatever sits near a pole. A panel over the top rows (a studio's top light) is where a plain 2x2 mean fails: at
    a 4 x 8 level its top row came out twice as bright as its footprint (+113 % on average)."""
    h, w = 128, 256
    img = np.full((h, w, 3), 0.05, np.float32)
    img[2:10, 40:200] = (40.0, 30.0, 20.0)  # ~8 rows below the pole: a top panel, stretched across the width
    img[60:70, 100:110] = (5.0, 5.0, 5.0)  # and a lamp on the horizon
    dom = equirect_texel_solid_angles(h, w)[:, None, None]  # [h, 1, 1] sr
    mips = box_mips(img)
    assert mips[-1].shape[1] == 8 and len(mips) == 6
    for m in mips[1:]:
        f = h // m.shape[0]  # source texels per mip texel edge
        ref = ((img * dom).reshape(m.shape[0], f, m.shape[1], f, 3).sum((1, 3))
               / (f * dom[:, 0, 0].reshape(m.shape[0], f).sum(1))[:, None, None])  # fmt: skip
        # float32 arithmetic, a few rounding steps per level
        np.testing.assert_allclose(m, ref, rtol=1e-5)
