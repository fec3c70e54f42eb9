"""The seen Gaussians' albedo fitted through the renderer (generate.delight.albedo_fit): on a plane printed with hard
stripes and dots, the albedo pass re-rendered from the input camera comes closer to the printed image than the
albedo read at the Gaussians' centres, the unseen Gaussians keep theirs, and the bounds hold."""

import numpy as np
from scipy.ndimage import binary_erosion

from relight.core.camera import Camera
from relight.core.metrics import psnr
from relight.core.surface import vertex_normals
from relight.evaluate.reference_assets import asset_from_mesh
from relight.generate.delight.albedo_fit import ALBEDO_PASS, _DARK, fit_seen_albedo
from relight.generate.delight.unseen import sample_image, visible_points
from relight.render.frame import render


def _print(H: int, W: int) -> np.ndarray:
    """[H, W, 3] a hard-edged print: light paper, dark dots (radius 4 px), red stripes 6 px wide."""
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    img = np.tile(np.array([0.85, 0.82, 0.78], np.float32), (H, W, 1))
    img[(xx // 6) % 4 == 0] = (0.7, 0.1, 0.08)
    dots = (np.hypot((xx % 24) - 12, (yy % 24) - 12) < 4)
    img[dots] = (0.03, 0.03, 0.04)
    return img


def test_the_fit_brings_back_the_prints_edges():
    v = np.array([(-1.0, -1.0, 0.0), (1.0, -1.0, 0.0), (1.0, 1.0, 0.0), (-1.0, 1.0, 0.0)], np.float32)
    f = np.array([(0, 1, 2), (0, 2, 3)], np.int64)
    cam = Camera.look_at((0.3, -1.6, 2.2), (0.0, 0.0, 0.0), 40.0, 128, 128)
    asset = asset_from_mesh(v, f, vertex_normals(v, f), (0.5, 0.5, 0.5), 0.5, 0.0, n_gaussians=20_000, camera=cam)
    g = asset.gaussians
    covered = render(asset, cam, _DARK, ALBEDO_PASS).alpha[..., 0] > 0.99
    valid = binary_erosion(covered, iterations=2)
    target = _print(128, 128)
    seen, xy = visible_points(asset.input_camera, asset.vertices, asset.faces, g.means, g.normals, covered)
    start = g.albedo.copy()
    start[seen] = sample_image(target, xy[seen])
    start[~seen] = 0.25  # marks the unseen: they must keep it
    fitted = fit_seen_albedo(asset, cam, target, valid, start, seen, xy, lo=0.02)

    def rendered(albedo):
        from dataclasses import replace

        a = replace(asset, gaussians=replace(g, albedo=albedo))
        return render(a, cam, _DARK, ALBEDO_PASS).passes["albedo"]

    before, after = psnr(rendered(start), target, valid), psnr(rendered(fitted), target, valid)
    # reading at the centres and splatting blurs every edge of the print; the fit's FIT_STEPS renders won 2.3 dB here
    # (19.5 -> 21.8; without the fit nothing changes): more than 1.5 dB is the fit working, not rounding
    print(f"albedo pass PSNR: read at the centres {before:.2f} dB, fitted {after:.2f} dB")
    assert after > before + 1.5, (before, after)
    assert np.array_equal(fitted[~seen], start[~seen])
    assert fitted.min() >= np.float32(0.02) and fitted.max() <= 1.0
    assert fit_seen_albedo(asset, cam, target, valid, start, seen, xy, steps=0) is not start
    np.testing.assert_array_equal(fit_seen_albedo(asset, cam, target, valid, start, seen, xy, steps=0), start)
