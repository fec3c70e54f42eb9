"""What this folder's forward probes share: a random-suite case's shape, exact mesh and camera as a product asset
carrying the case's true uniform material (no delighting), and Cycles' render of that material under a light
(cached). The probes import it from their own folder."""
import numpy as np
from relight.core.input_image import InputImage
from relight.evaluate.suite import SuiteConfig, view_camera
from relight.evaluate.suite_cases import suite_cases
from relight.evaluate.suite_scenes import render_object
from relight.evaluate.suite_shapes import suite_mesh
from relight.generate.pipeline import GenerateInputs, generate

CFG = SuiteConfig()
CAM = view_camera(CFG.size)


def named_cases(seed: int, names: list[str]):
    """The cases of `seed` whose names start with one of `names` (['all']: every case)."""
    return [c for c in suite_cases(seed) if names == ["all"] or any(c.name.startswith(n) for n in names)]


def probe_cases(argv: list[str]):
    """The cases a probe's command line names (SEED NAME[,NAME] [A|B]), each as (case, Cycles' render [H, W, 4] under
    light A or B, the case's asset with its true material, that light prefiltered)."""
    from relight.evaluate.suite_scenes import light_environment

    seed, names = int(argv[0]), argv[1].split(",")
    which = argv[2] if len(argv) > 2 else "A"
    for c in named_cases(seed, names):
        light = c.light_a if which == "A" else c.light_b
        ref = cycles_uniform(c, light)
        yield c, ref, true_material_asset(c, ref), light_environment(light).prefilter()


def uniform_material(c) -> tuple:
    """(colour A, roughness, metallic): a painted metal's paint reading."""
    return (tuple(c.texture.colour_a), float(c.surface.roughness),
            float(c.surface.metallic if c.surface.kind != "mixed" else 0.0))  # fmt: skip


def cycles_uniform(c, light) -> np.ndarray:
    """[H, W, 4] Cycles' render of the case with its uniform material under `light` (premultiplied RGBA)."""
    return render_object(c, light, CAM, CFG.samples, uniform=uniform_material(c))


def true_material_asset(c, ref: np.ndarray):
    """The case's asset from the scene provider (exact mesh and camera; `ref` [H, W, 4] as its linear input), its
    Gaussians given the case's uniform material."""
    a = ref[..., 3:4]
    rgb = np.where(a > 1e-4, ref[..., :3] / np.maximum(a, 1e-4), 0)
    inp = InputImage.from_pixels(np.concatenate([rgb, a], -1).astype(np.float32), "linear")
    asset = generate(GenerateInputs(image=inp, name=c.name, provider="scene", light_hint="unknown", delight=False,
                                    n_gaussians=CFG.n_gaussians, mesh=suite_mesh(c.shape), camera=CAM))  # fmt: skip
    colour, rough, metal = uniform_material(c)
    g = asset.gaussians
    g.albedo[:] = np.asarray(colour, np.float32)
    g.roughness[:] = rough
    g.metallic[:] = metal
    return asset


def inside_ratio(hdr: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """[3] mean radiance ours / Cycles over the pixels Cycles covers (alpha > 0.5)."""
    m = ref[..., 3] > 0.5
    return hdr[..., :3][m].mean(0) / ref[..., :3][m].mean(0)


def display_8bit(x: np.ndarray) -> np.ndarray:
    """[H, W, >=3] linear radiance -> [H, W, 3] uint8 for looking at (Reinhard, gamma 2.2; not the suite's AgX)."""
    x = np.clip(x[..., :3], 0, None)
    return (np.clip(x / (1 + x), 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
