"""The split-sum BRDF table against brute-force hemisphere quadrature (no importance sampling)."""

import numpy as np
import pytest

from relight.render import brdf_lut as bl


def quadrature_ab(n_dot_v: float, roughness: float, n_theta: int = 3000, n_phi: int = 1500) -> tuple[float, float]:
    """(A, B) by midpoint-rule quadrature over the light hemisphere in (theta_l, phi_l): independent of the
    table's GGX sampler. A = int D V (1 - Fc) n.l dw, B = int D V Fc n.l dw."""
    alpha = roughness**2
    theta = (np.arange(n_theta) + 0.5) * (np.pi / 2 / n_theta)
    phi = (np.arange(n_phi) + 0.5) * (np.pi / n_phi)  # symmetric about the plane of v: integrate half, double
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    l = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1)
    v = np.array([np.sqrt(1 - n_dot_v**2), 0.0, n_dot_v])
    h = l + v
    h /= np.linalg.norm(h, axis=-1, keepdims=True)
    n_dot_l = l[..., 2]
    v_dot_h = h @ v
    a2 = alpha**2
    D = a2 / (np.pi * (h[..., 2] ** 2 * (a2 - 1) + 1) ** 2)
    V = 0.5 / (n_dot_l * np.sqrt(n_dot_v**2 * (1 - a2) + a2) + n_dot_v * np.sqrt(n_dot_l**2 * (1 - a2) + a2))
    fc = (1 - v_dot_h) ** 5
    dw = np.sin(th) * (np.pi / 2 / n_theta) * (np.pi / n_phi) * 2
    f = D * V * n_dot_l * dw
    return float(((1 - fc) * f).sum()), float((fc * f).sum())


SIZE = 64


@pytest.mark.parametrize("row, col", [(8, 8), (16, 50), (24, 32), (32, 5), (40, 60), (52, 20), (63, 63)])
def test_table_entries_match_quadrature(row, col):
    table = bl.brdf_lut(SIZE)
    r, nv = (row + 0.5) / SIZE, (col + 0.5) / SIZE
    a, b = quadrature_ab(nv, r)
    assert abs(table[row, col, 0] - a) < 0.01, (r, nv, table[row, col], (a, b))
    assert abs(table[row, col, 1] - b) < 0.01, (r, nv, table[row, col], (a, b))


@pytest.mark.parametrize("n_dot_v, roughness", [(0.3, 0.35), (0.77, 0.6), (0.95, 0.9), (0.5, 0.2)])
def test_lookup_between_samples_matches_quadrature(n_dot_v, roughness):
    a, b = bl.lookup(n_dot_v, roughness)
    qa, qb = quadrature_ab(n_dot_v, roughness)
    assert abs(float(a) - qa) < 0.01 and abs(float(b) - qb) < 0.01, ((a, b), (qa, qb))


def test_table_shape_and_known_limits():
    table = bl.brdf_lut(SIZE)
    assert table.shape == (SIZE, SIZE, 2) and table.dtype == np.float32
    # a near-mirror at normal incidence reflects everything with F = F0: A -> 1, B -> 0
    assert table[0, -1, 0] == pytest.approx(1.0, abs=0.01) and table[0, -1, 1] < 0.01
    # single-scattering GGX loses energy as roughness grows: A + B decreases down the rows at n.v ~ 1
    albedo = table[:, -1].sum(-1)
    assert np.all(np.diff(albedo) <= 1e-4) and albedo[-1] < 0.8
    assert np.all(table >= 0) and np.all(table.sum(-1) <= 1.0 + 1e-3)


def test_lookup_broadcasts_and_hits_sample_centres():
    table = bl.brdf_lut(SIZE)
    nv = (np.array([3, 40]) + 0.5) / SIZE
    r = (np.array([[10], [33]]) + 0.5) / SIZE
    a, b = bl.lookup(nv, r)
    assert a.shape == (2, 2) and b.shape == (2, 2)
    np.testing.assert_allclose(a, table[[10, 33]][:, [3, 40], 0], atol=1e-6)
    np.testing.assert_allclose(b, table[[10, 33]][:, [3, 40], 1], atol=1e-6)


def test_table_is_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("RELIGHT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(bl, "_TABLES", {})
    t1 = bl.brdf_lut(16)
    files = list(tmp_path.glob("brdf_lut_*16*.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(np.load(files[0]), t1)
    monkeypatch.setattr(bl, "_TABLES", {})
    np.testing.assert_array_equal(bl.brdf_lut(16), t1)  # loaded back from disk


def test_average_albedo_matches_quadrature_and_falls_with_roughness():
    """E_avg = 2 int E(mu) mu dmu per roughness row (Kulla & Conty's average albedo, which Cycles' multiscatter
    GGX uses): ~1 for a near-mirror, falling as roughness grows, and equal to the quadrature of the table's own
    E = A + B along n.v."""
    e_avg = bl.average_albedo(SIZE)
    assert e_avg.shape == (SIZE,)
    assert abs(e_avg[0] - 1.0) < 0.01
    assert np.all(np.diff(e_avg) < 1e-3) and e_avg[-1] < 0.8
    r = (20 + 0.5) / SIZE
    mu = (np.arange(256) + 0.5) / 256
    A, B = bl.lookup(mu, np.full_like(mu, r))
    np.testing.assert_allclose(e_avg[20], 2 * np.mean((A + B) * mu), rtol=0.01)
    np.testing.assert_allclose(bl.lookup_average(r), e_avg[20], rtol=1e-5)
