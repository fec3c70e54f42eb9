"""Low-discrepancy sample points: the Hammersley set that GGX prefiltering, the BRDF table and the shading kernel's
lobe samples all draw from."""

import numpy as np


def hammersley(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points of the Hammersley set in [0, 1)^2 as two float64 arrays [n]: ((i + 0.5) / n, the base-2 radical
    inverse of i over 32 bits). Empty for n <= 0."""
    if n <= 0:
        return np.zeros(0), np.zeros(0)
    i = np.arange(n, dtype=np.uint64)
    bits = i.copy()
    rev = np.zeros(n, dtype=np.float64)
    scale = 0.5
    for _ in range(32):  # exact in float64: 32 bits fit the 53-bit mantissa
        rev += (bits & np.uint64(1)).astype(np.float64) * scale
        bits >>= np.uint64(1)
        scale *= 0.5
    return (i.astype(np.float64) + 0.5) / n, rev
