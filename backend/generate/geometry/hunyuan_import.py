"""Importing hy3dgen 2.0.2's shape pipeline into relight's process, offline, without the two packages it imports but
the shape stage does not need (the `hunyuan` extra installs neither):

- torchvision: hy3dgen uses only `transforms.Compose/Resize/CenterCrop/Normalize` on float tensors. PyPI's Linux
  torchvision is linked against the CUDA build of torch and fails to import beside the CPU build ("operator
  torchvision::nms does not exist"), so when it cannot be imported a stand-in with the same maths is lent for the
  import (torchvision's tensor Resize is `F.interpolate(..., align_corners=False, antialias=True)` with the shorter
  side set to `size`; CenterCrop rounds its offsets the same way).
- pymeshlab: hy3dgen's package init imports its mesh post-processors, which import pymeshlab at load time. pymeshlab
  ships Qt5 and its own libembree4; once that is loaded, `import bpy` in the same process fails ("undefined symbol:
  rtcGetSceneTraversable"). The provider cleans meshes with mesh_file.clean_mesh instead, so a stand-in whose classes
  refuse to be built is lent for the import even when pymeshlab is installed.

The stand-ins live in sys.modules only while hy3dgen is imported; hy3dgen's modules keep their references to them.
"""

import contextlib
import importlib.machinery
import os
import sys
import types

import numpy as np

# huggingface_hub reads HF_HUB_OFFLINE once, at its import: the variable is set and its constant too
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")


@contextlib.contextmanager
def offline():
    """While inside: Hugging Face libraries may read local files only (any download attempt raises)."""
    saved = {k: os.environ.get(k) for k in _OFFLINE_VARS}
    os.environ.update({k: "1" for k in _OFFLINE_VARS})
    hub = sys.modules.get("huggingface_hub.constants")
    saved_const = getattr(hub, "HF_HUB_OFFLINE", None)
    if hub is not None:
        hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if hub is not None:
            hub.HF_HUB_OFFLINE = saved_const


def _module(name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)  # importlib.util.find_spec needs a spec on it
    return mod


class _Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class _Resize:
    """torchvision.transforms.Resize on tensors [..., C, H, W] float: an int size is the shorter side's."""

    def __init__(self, size, interpolation="bilinear", max_size=None, antialias=True):
        self.size, self.antialias = size, antialias
        self.mode = getattr(interpolation, "value", interpolation)

    def __call__(self, x):
        import torch.nn.functional as F

        h, w = x.shape[-2:]
        if isinstance(self.size, int):
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = self.size, int(self.size * long / short)
            size = (new_long, new_short) if w <= h else (new_short, new_long)
        else:
            size = tuple(self.size)
        if (h, w) == size:
            return x
        lead = x.shape[:-3]
        y = F.interpolate(x.reshape(-1, *x.shape[-3:]), size=size, mode=self.mode,
                          align_corners=False if self.mode in ("bilinear", "bicubic") else None,
                          antialias=self.antialias and self.mode in ("bilinear", "bicubic"))
        return y.reshape(*lead, *y.shape[-3:])


class _CenterCrop:
    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, x):
        (h, w), (ch, cw) = x.shape[-2:], self.size
        if ch > h or cw > w:
            raise ValueError(f"CenterCrop stand-in: {(h, w)} is smaller than the crop {self.size}")
        top, left = round((h - ch) / 2.0), round((w - cw) / 2.0)  # torchvision's rounding
        return x[..., top:top + ch, left:left + cw]


class _Normalize:
    def __init__(self, mean, std, inplace=False):
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)

    def __call__(self, x):
        import torch

        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)[:, None, None]
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device)[:, None, None]
        return (x - mean) / std


class _InterpolationMode:
    BILINEAR = types.SimpleNamespace(value="bilinear")
    BICUBIC = types.SimpleNamespace(value="bicubic")
    NEAREST = types.SimpleNamespace(value="nearest")


def torchvision_stand_in() -> dict[str, types.ModuleType]:
    """{'torchvision': ..., 'torchvision.transforms': ...}: the four transforms hy3dgen's image encoder uses."""
    tv, tr = _module("torchvision"), _module("torchvision.transforms")
    tr.Compose, tr.Resize, tr.CenterCrop, tr.Normalize = _Compose, _Resize, _CenterCrop, _Normalize
    tr.InterpolationMode = _InterpolationMode
    tv.transforms = tr
    return {"torchvision": tv, "torchvision.transforms": tr}


class _NoPymeshlab:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("pymeshlab is kept out of relight's process (its libembree4 breaks `import bpy`); "
                           "hy3dgen's mesh post-processors are not used, relight cleans meshes with clean_mesh")


def pymeshlab_stand_in() -> dict[str, types.ModuleType]:
    """{'pymeshlab': ...}: the names hy3dgen's post-processors touch at import (type hints), unusable."""
    mod = _module("pymeshlab")
    mod.MeshSet = mod.Mesh = _NoPymeshlab
    return {"pymeshlab": mod}


def _torchvision_imports() -> bool:
    try:
        import torchvision.transforms  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or the CUDA-linked wheel beside CPU torch (RuntimeError)
        return False
    return True


def import_pipeline_class():
    """hy3dgen.shapegen's Hunyuan3DDiTFlowMatchingPipeline, imported offline with the stand-ins above where needed.
    Raises ImportError (or what the import raised) when hy3dgen or one of its real dependencies is missing."""
    loaded = sys.modules.get("hy3dgen.shapegen.pipelines")
    if loaded is not None:
        return loaded.Hunyuan3DDiTFlowMatchingPipeline
    with offline():
        import diffusers  # noqa: F401 - their "is torchvision available" probes must see the real packages,
        import transformers  # noqa: F401 - so they are imported before any stand-in is lent

        lent = {}
        if "pymeshlab" not in sys.modules:
            lent.update(pymeshlab_stand_in())
        if not _torchvision_imports():
            lent.update(torchvision_stand_in())
        sys.modules.update(lent)
        try:
            from hy3dgen.shapegen.pipelines import Hunyuan3DDiTFlowMatchingPipeline
        finally:
            for name, mod in lent.items():
                if sys.modules.get(name) is mod:
                    del sys.modules[name]
    return Hunyuan3DDiTFlowMatchingPipeline
