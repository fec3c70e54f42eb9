"""The shading maths the numba kernels and their numpy reference share: Principled BSDF constants, specular
occlusion from AO, Cycles' multiple-scattering GGX energy scale, and what the per-pixel lobe sampling reads."""

from typing import NamedTuple

import numpy as np

from ..core.envmap import Environment, LightSplit
from ..core.jit import njit_cached
from ..core.prefilter import FINE_LIGHT_CELL_WIDTH, LIGHT_CELL_WIDTH
from ..core.sampling import hammersley

SHADOW_MAX = 64.0  # a shadow pass above 1 means more light than the open sky: a bright ground, or a concavity's own
# bounced light on a face turned from the sun (the forward evaluation's bowl under a sun at 65 degrees: up to ~11 on the
# faces in its rim's shadow; clamped at 4 they rendered at ~0.4 of Cycles, bowl/sky_high 25.5 dB against 29.4)
DIELECTRIC_F0 = 0.04  # ((1.5 - 1) / (1.5 + 1))^2: Principled BSDF at specular 0.5 (IOR 1.5)
# The lobe path sums extracted lights on a grid of cells of angular size d = 2 pi / cell grid width; a light is a
# point, seen through D. GGX D falls to half its peak at tan(theta_h) = 0.64 alpha, so its full width at half maximum
# spans the half-vector extent of a cell (d / 2) when alpha >= d / (4 x 0.64) = LOBE_CELL_FRACTION d: then the
# lights of a lamp blend into one highlight. Sharper lobes use the fine grid; below it, the split-sum mirror levels.
LOBE_CELL_FRACTION = 0.39
LOBE_LOD_BIAS = 0.0  # extra mip level per lobe sample (a positive bias blurs bright lights into the GGX tail)


def specular_occlusion(n_dot_v: np.ndarray, ao: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Specular occlusion from ambient occlusion (Lagarde & de Rousiers 2014, 'Moving Frostbite to PBR',
    section 4.10.2, eq. for computeSpecOcclusion): saturate((n.v + ao)^(2^(-16 alpha - 1)) - 1 + ao),
    alpha = GGX alpha (perceptual roughness squared)."""
    return np.clip((n_dot_v + ao) ** np.exp2(-16.0 * alpha - 1.0) - 1.0 + ao, 0.0, 1.0)


def multiscatter_scale(ess, e_avg, f0):
    """Energy compensation of single-scattering GGX as Blender's Cycles applies it to the Principled BSDF
    (microfacet_ggx_preserve_energy; Kulla & Conty 2017, 'Revisiting Physically Based Shading at Imageworks'):
    the lobe times 1 + F_ms (1 - E) / E, with F_ms = F_avg E_avg / (1 - F_avg (1 - E_avg)) and F_avg the
    hemispherical average of Schlick's Fresnel, F0 + (1 - F0) / 21. ess: E = A + B at (n.v, roughness), e_avg: its
    cosine-weighted average over n.v (brdf_lut.lookup_average), f0: Fresnel at normal incidence; broadcast.
    A white furnace (F0 = 1) then reflects exactly its environment."""
    f_avg = f0 + (1.0 - f0) / 21.0
    f_ms = f_avg * e_avg / (1.0 - f_avg * (1.0 - e_avg))
    return 1.0 + f_ms * (1.0 - ess) / ess


nb_multiscatter_scale = njit_cached()(multiscatter_scale)


class LobeSampling(NamedTuple):
    """What the per-pixel GGX lobe path reads (shade(..., specular_samples=K)): K Hammersley points and the
    environment split into residual + lights on a coarse and a fine light grid, each used from a GGX alpha on."""

    xi1: np.ndarray  # [K] float64 Hammersley points; K = 0: the lobe path is off and nothing below is read
    xi2: np.ndarray  # [K] float64
    coarse: LightSplit  # for alpha >= a_coarse
    fine: LightSplit  # for a_fine <= alpha < a_coarse; sharper lobes read the split-sum levels
    a_coarse: float
    a_fine: float


def lobe_sampling(env: Environment, samples: int) -> LobeSampling:
    """The lobe path's inputs for `samples` GGX samples per pixel (0: off)."""
    xi1, xi2 = hammersley(int(samples))
    if samples > 0:  # coarse and fine light grids, the GGX alpha each starts at
        coarse, fine = (env.light_kernel_data(w) for w in (LIGHT_CELL_WIDTH, FINE_LIGHT_CELL_WIDTH))
        a_coarse, a_fine = (LOBE_CELL_FRACTION * np.sqrt(g.cell_omega) for g in (coarse, fine))
    else:  # the lobe path is off: nothing of this is read
        coarse = fine = LightSplit(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.int64), 1.0, np.zeros((0, 3)),
                                   np.zeros((0, 3)), 1.0)  # fmt: skip
        a_coarse = a_fine = 2.0
    return LobeSampling(xi1, xi2, coarse, fine, float(a_coarse), float(a_fine))
