"""Hunyuan3D-2's shape model (Tencent's hy3dgen 2.0.2, installed with the `hunyuan` extra) as a mesh generator: one
RGBA picture of the object in, its untextured mesh out; on the GPU (float16) when torch sees one, else on the CPU
(float32). hy3dgen is imported only when a mesh is asked for, and nothing is ever downloaded.

Weights. A models folder (the `model_path` argument, else $HY3DGEN_MODELS, else ~/.cache/hy3dgen, as hy3dgen itself
reads them) must hold the folder `hunyuan3d-dit-v2-0` of the Hugging Face repository tencent/Hunyuan3D-2:
    <models>/tencent/Hunyuan3D-2/hunyuan3d-dit-v2-0/config.yaml
    <models>/tencent/Hunyuan3D-2/hunyuan3d-dit-v2-0/model.fp16.safetensors   (keys model.*, vae.*, conditioner.*)
Fetch it once with
    hf download tencent/Hunyuan3D-2 --include "hunyuan3d-dit-v2-0/*" --local-dir <models>/tencent/Hunyuan3D-2
The folder is checked before hy3dgen runs (GeneratorError naming it and the files otherwise) and its absolute path is
given to hy3dgen, which then loads it as it is, with the Hugging Face libraries held offline.

Frame. hy3dgen's meshes are Y up with the picture seen from +Z, glTF's convention (its texture stage renders the front
view, azimuth 0, from +Z with +Y up on screen and +X to the right). They are turned to the backend's Z up through
core.axes, so the picture's camera sits on -Y looking along +Y, +X to its right. The object fills hy3dgen's box
[-1.01, 1.01]^3 as its image processor framed it (recentred, longest side 85% of the square picture).
"""

import os
import threading
import time
from pathlib import Path

import numpy as np

from ...core.axes import gltf_to_blender_points
from ...core.progress import no_progress
from .command import GeneratorError
from .mesh_file import clean_mesh

MODEL_NAME = "tencent/Hunyuan3D-2"  # the Hugging Face repository, and the path under the models folder
SUBFOLDER = "hunyuan3d-dit-v2-0"  # its image-to-shape model
VARIANT = "fp16"  # hy3dgen's file name: model.<variant>.safetensors
REQUIRED_FILES = ("config.yaml", f"model.{VARIANT}.safetensors")
DEFAULT_MODELS = "~/.cache/hy3dgen"  # hy3dgen's own default when $HY3DGEN_MODELS is unset
DEFAULT_STEPS = 30  # flow-matching steps (hy3dgen's gradio app default; its pipeline default is 50)
DEFAULT_OCTREE_RESOLUTION = 256  # marching-cubes grid cells per side (hy3dgen's default 384 takes far longer on CPU)
GUIDANCE_SCALE = 5.0  # classifier-free guidance, hy3dgen's default
NUM_CHUNKS = 8000  # query points per volume-decoding batch, hy3dgen's default
STAGE = "hunyuan3d"  # the progress stage; fractions cover this generator's own work, [0, 1]

_PIPELINES = {}  # (weights folder, device) -> loaded hy3dgen pipeline: loading takes minutes for the real model
_LOCK = threading.Lock()


def models_folder(model_path: str | os.PathLike | None = None) -> Path:
    """The models folder: model_path, else $HY3DGEN_MODELS, else ~/.cache/hy3dgen (user home expanded, absolute)."""
    chosen = model_path if model_path is not None else os.environ.get("HY3DGEN_MODELS") or DEFAULT_MODELS
    return Path(os.path.expanduser(os.fspath(chosen))).absolute()


def missing_weights_message(folder: Path, missing: list[str]) -> str:
    """The one message for absent weights: the folder expected, the files it must hold, how to get them."""
    root = folder.parent.parent.parent
    return (f"Hunyuan3D-2 weights not found: {folder} must hold {' and '.join(REQUIRED_FILES)} "
            f"(missing: {', '.join(missing)}). relight never downloads them; fetch them once with "
            f"`hf download {MODEL_NAME} --include \"{SUBFOLDER}/*\" --local-dir {root / MODEL_NAME}` "
            f"or point $HY3DGEN_MODELS at a folder holding {MODEL_NAME}/{SUBFOLDER}/")


def _hy3dgen_installed() -> str:
    """'' when hy3dgen and what its shape pipeline imports are installed, else the reason (cheap: no import)."""
    import importlib.util

    needed = {"hy3dgen": "hy3dgen", "diffusers": "diffusers", "transformers": "transformers", "einops": "einops",
              "safetensors": "safetensors", "yaml": "pyyaml", "skimage": "scikit-image", "PIL": "pillow"}
    absent = [pkg for mod, pkg in needed.items() if importlib.util.find_spec(mod) is None]
    if absent:
        return (f"Hunyuan3D-2 needs {', '.join(absent)}: pip install -e \".[hunyuan]\" && "
                "pip install --no-deps hy3dgen==2.0.2")
    return ""


class Hunyuan3DGenerator:
    """Hunyuan3D-2's shape model on one models folder; the loaded pipeline is shared by every generator on it."""

    def __init__(self, model_path: str | None = None):
        self.models = models_folder(model_path)
        self.folder = self.models / MODEL_NAME / SUBFOLDER  # config.yaml + model.fp16.safetensors
        self.last_timings = {}  # seconds of the last generate_mesh: load, sample, decode, total

    def missing_files(self) -> list[str]:
        return [name for name in REQUIRED_FILES if not (self.folder / name).is_file()]

    def available(self) -> tuple[bool, str]:
        """(True, '') when hy3dgen is installed and the weights folder holds its files; (False, why) otherwise."""
        reason = _hy3dgen_installed()
        if not reason and self.missing_files():
            reason = missing_weights_message(self.folder, self.missing_files())
        return not reason, reason

    def load(self):
        """hy3dgen's pipeline for this folder, loaded on first use and then shared (the server may call it ahead of the
        first request); GeneratorError when it cannot be loaded."""
        ok, reason = self.available()
        if not ok:
            raise GeneratorError(reason)
        import torch

        from .hunyuan_import import import_pipeline_class, offline

        device = "cuda" if torch.cuda.is_available() else "cpu"
        key = (str(self.folder), device)
        with _LOCK:
            if key not in _PIPELINES:
                try:
                    pipeline_class = import_pipeline_class()
                except Exception as e:  # a broken install raises ImportError, or RuntimeError from a native library
                    raise GeneratorError(f"Hunyuan3D-2's code (hy3dgen) could not be imported: {type(e).__name__}: "
                                         f"{e}; reinstall with pip install -e \".[hunyuan]\" && "
                                         "pip install --no-deps hy3dgen==2.0.2") from e
                try:
                    with offline():
                        _PIPELINES[key] = pipeline_class.from_pretrained(
                            str(self.folder.parent), device=device,
                            dtype=torch.float16 if device == "cuda" else torch.float32,
                            use_safetensors=True, variant=VARIANT, subfolder=SUBFOLDER)
                except Exception as e:  # yaml, safetensors, torch and transformers raise many kinds
                    raise GeneratorError(f"Hunyuan3D-2 could not load {self.folder}: {type(e).__name__}: {e}") from e
            return _PIPELINES[key]

    def generate_mesh(self, rgba: np.ndarray, steps: int = DEFAULT_STEPS,
                      octree_resolution: int = DEFAULT_OCTREE_RESOLUTION, seed: int = 0,
                      progress=no_progress) -> tuple[np.ndarray, np.ndarray]:
        """rgba [H, W, 4] uint8 (sRGB, alpha = the object's mask) -> (vertices [V, 3] float32 in the backend's world,
        Z up, inside [-1.01, 1.01]^3; faces [F, 3] int32), cleaned by clean_mesh. steps: flow-matching steps;
        octree_resolution: grid cells per side of the marching cubes; seed: the starting noise. progress(STAGE,
        fraction, message) after loading, each step and the decoding; raising from it cancels between steps.
        Raises GeneratorError for absent weights, an unusable picture or a volume with no surface."""
        rgba = _check_picture(rgba)
        steps, octree_resolution = _positive(steps, "steps", 1), _positive(octree_resolution, "octree_resolution", 8)
        t0 = time.perf_counter()
        progress(STAGE, 0.0, f"loading Hunyuan3D-2 from {self.folder}")
        pipeline = self.load()
        import torch
        from PIL import Image

        from .hunyuan_import import offline

        t_loaded = time.perf_counter()
        progress(STAGE, 0.05, f"sampling the shape: {steps} steps on {pipeline.device.type}")
        sampled = []

        def step_done(i, t, outputs):
            sampled.append(time.perf_counter())
            progress(STAGE, 0.05 + 0.75 * (i + 1) / steps, f"step {i + 1}/{steps}")
            if i + 1 == steps:
                progress(STAGE, 0.8, f"decoding the volume at {octree_resolution}^3 and extracting the surface")

        with offline():
            meshes = pipeline(image=Image.fromarray(rgba, "RGBA"), num_inference_steps=steps,
                              guidance_scale=GUIDANCE_SCALE, generator=torch.Generator("cpu").manual_seed(int(seed)),
                              octree_resolution=octree_resolution, num_chunks=NUM_CHUNKS, output_type="trimesh",
                              enable_pbar=False, callback=step_done, callback_steps=1)
        t_done = time.perf_counter()
        mesh = meshes[0] if meshes else None
        if mesh is None or len(mesh.faces) == 0:
            raise GeneratorError(f"Hunyuan3D-2 found no surface (its decoded volume never crosses level 0) for seed "
                                 f"{seed}; try another seed or a higher octree resolution")
        vertices, faces = clean_mesh(gltf_to_blender_points(np.asarray(mesh.vertices, np.float64)), mesh.faces)
        if len(faces) == 0:
            raise GeneratorError("Hunyuan3D-2's surface has only degenerate triangles; try another seed")
        t_sampled = sampled[-1] if sampled else t_loaded
        self.last_timings = {"load": t_loaded - t0, "sample": t_sampled - t_loaded, "decode": t_done - t_sampled,
                             "total": time.perf_counter() - t0}
        progress(STAGE, 1.0, f"{len(faces)} faces in {self.last_timings['total']:.1f} s")
        return vertices, faces


def _check_picture(rgba) -> np.ndarray:
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise GeneratorError(f"Hunyuan3D-2 needs an RGBA picture [H, W, 4] uint8, not {list(rgba.shape)} {rgba.dtype}")
    rows, cols = np.nonzero(rgba[..., 3])
    if rows.size == 0 or rows.max() == rows.min() or cols.max() == cols.min():
        raise GeneratorError("Hunyuan3D-2 needs the object's mask in the picture's alpha, and it is empty (or one "
                             "pixel thin): remove the background so that alpha covers the object")
    return np.ascontiguousarray(rgba)


def _positive(value, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise GeneratorError(f"{name} must be an integer >= {least}, not {value!r}")
    return int(value)
