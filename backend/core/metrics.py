"""Image fidelity metrics over a pixel mask: PSNR and SSIM (Wang et al. 2004, Gaussian window) on [0, 1] images."""

import numpy as np
from scipy.ndimage import binary_dilation, binary_erosion, gaussian_filter

SSIM_SIGMA = 1.5  # Gaussian window of Wang et al. 2004
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, peak: float = 1.0) -> float:
    """PSNR in dB of images [H, W, C] in [0, peak] over mask [H, W] (all pixels when None). inf if equal."""
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    d = d.mean(-1) if d.ndim == 3 else d
    if mask is not None:
        m = np.asarray(mask, bool)
        if not m.any():
            return float("nan")
        d = d[m]
    mse = float(d.mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def ssim_map(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """[H, W] SSIM map of [H, W, C] (or [H, W]) images, averaged over channels; Gaussian sigma 1.5 window."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (SSIM_K1 * peak) ** 2, (SSIM_K2 * peak) ** 2
    out = np.zeros(a.shape[:2])
    f = lambda x: gaussian_filter(x, SSIM_SIGMA, mode="reflect", truncate=3.5)  # noqa: E731
    for c in range(a.shape[2]):
        x, y = a[..., c], b[..., c]
        mx, my = f(x), f(y)
        sxx = f(x * x) - mx * mx
        syy = f(y * y) - my * my
        sxy = f(x * y) - mx * my
        out += ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return out / a.shape[2]


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, peak: float = 1.0) -> float:
    """Mean SSIM over mask [H, W] (windows still see the pixels around the mask)."""
    m = ssim_map(a, b, peak)
    if mask is None:
        return float(m.mean())
    mask = np.asarray(mask, bool)
    return float(m[mask].mean()) if mask.any() else float("nan")


def edge_band(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """[H, W] bool pixels within `width` pixels of the mask's boundary (inside or outside)."""
    m = np.asarray(mask, bool)
    return binary_dilation(m, iterations=width) & ~binary_erosion(m, iterations=width, border_value=1)
