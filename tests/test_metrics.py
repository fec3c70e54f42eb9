"""PSNR and SSIM on [0, 1] images over a mask, against closed forms."""

import numpy as np
import pytest

from relight.core.metrics import edge_band, psnr, ssim, ssim_map


def test_psnr_closed_form_and_mask():
    a = np.zeros((8, 8, 3))
    b = np.full((8, 8, 3), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)
    b[:4] = 0.0
    m = np.zeros((8, 8), bool)
    m[:4] = True
    assert psnr(a, b, m) == float("inf")
    m[4:6] = True
    assert psnr(a, b, m) == pytest.approx(10 * np.log10(1 / (0.01 / 3)))


def test_ssim_of_constant_images_is_the_luminance_term():
    c1, c2 = 0.3, 0.5
    a, b = np.full((16, 16, 3), c1), np.full((16, 16, 3), c2)
    C1 = 0.01**2
    assert ssim(a, b) == pytest.approx((2 * c1 * c2 + C1) / (c1 * c1 + c2 * c2 + C1), rel=1e-9)
    rng = np.random.default_rng(0)
    x = rng.random((32, 32, 3))
    assert ssim(x, x) == pytest.approx(1.0)
    noisy = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    noisier = np.clip(x + rng.normal(0, 0.3, x.shape), 0, 1)
    assert 0.0 < ssim(x, noisier) < ssim(x, noisy) < 0.99
    assert ssim_map(x, noisy).shape == (32, 32)


def test_edge_band_hugs_the_boundary():
    m = np.zeros((20, 20), bool)
    m[5:15, 5:15] = True
    band = edge_band(m, 2)
    assert band[5, 10] and band[3, 10] and band[6, 10] and not band[10, 10] and not band[0, 10]
