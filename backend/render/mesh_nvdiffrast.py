"""The optional CUDA path of the mesh rasterizer (mesh_raster, mesh_texture, mesh_antialias): nvdiffrast.torch for
CUDA tensors, imported lazily and only when it imports; never required."""

import torch
from torch import Tensor

_NVDR = {}


def nvdiffrast_or_none(t: Tensor):
    """nvdiffrast.torch for CUDA tensors when it imports, else None (never required, imported lazily)."""
    if not (isinstance(t, Tensor) and t.is_cuda and torch.cuda.is_available()):
        return None
    if "dr" not in _NVDR:
        try:
            import nvdiffrast.torch as dr  # optional, CUDA only

            _NVDR["dr"] = dr
        except ImportError:
            _NVDR["dr"] = None
    return _NVDR["dr"]


def nvdiffrast_context(dr, device):
    key = ("ctx", str(device))
    if key not in _NVDR:
        _NVDR[key] = dr.RasterizeCudaContext(device=device)
    return _NVDR[key]
