"""Hunyuan3D-2's shape model as a geometry provider, run for real on a tiny randomly initialised model written in
hy3dgen's own format (config.yaml + model.fp16.safetensors with keys model.*, vae.*, conditioner.*, built from
hy3dgen's own classes, the image encoder's config embedded so nothing is downloaded). The mesh is meaningless; the
plumbing is what is checked: folder layout, offline loading, CPU float32, progress, timings, the axis turn, errors."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("hy3dgen")

from relight.core.axes import gltf_to_blender_points
from relight.generate.geometry import hunyuan
from relight.generate.geometry.command import GeneratorError
from relight.generate.geometry.hunyuan import Hunyuan3DGenerator
from relight.generate.geometry.hunyuan_import import import_pipeline_class, offline
from relight.generate.geometry.mesh_file import clean_mesh

# A few thousand weights in the real model's shape: DiT 1 double + 1 single block of width 32, VAE with 16 latents of
# 8 channels, DINOv2 of one layer on 28^2 pictures (2x2 patches of 14 px + the class token) with the SwiGLU MLP of
# the real encoder (DINOv2 giant).
TINY_DINO = dict(model_type="dinov2", hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2,
                 patch_size=14, image_size=28, num_channels=3, layerscale_value=1.0, use_swiglu_ffn=True)
TINY_CONFIG = {
    "model": {"target": "hy3dgen.shapegen.models.Hunyuan3DDiT",
              "params": dict(in_channels=8, context_in_dim=32, hidden_size=32, mlp_ratio=2.0, num_heads=2, depth=1,
                             depth_single_blocks=1, axes_dim=[16], theta=10000, qkv_bias=True, guidance_embed=False)},
    "vae": {"target": "hy3dgen.shapegen.models.ShapeVAE",
            "params": dict(num_latents=16, embed_dim=8, width=32, heads=2, num_decoder_layers=1, num_freqs=4,
                           scale_factor=1.0)},
    "conditioner": {"target": "hy3dgen.shapegen.models.SingleImageEncoder",
                    "params": {"main_image_encoder": {"type": "DinoImageEncoder", "kwargs": {
                        "config": TINY_DINO, "image_size": 28, "use_cls_token": True}}}},
    "scheduler": {"target": "hy3dgen.shapegen.schedulers.FlowMatchEulerDiscreteScheduler",
                  "params": {"num_train_timesteps": 1000}},
    "image_processor": {"target": "hy3dgen.shapegen.preprocessors.ImageProcessorV2", "params": {"size": 32}},
}
STEPS, RESOLUTION = 2, 16


def write_tiny_model(models, seed: int = 0):
    """Write TINY_CONFIG's model, initialised from `seed`, where Hunyuan3DGenerator(models) looks for it. The geometry
    decoder's output bias is zeroed: its output is then a random linear form of a layer-normed feature, so the field
    takes both signs over the box and level 0 (hy3dgen's) cuts a surface."""
    import safetensors.torch
    import torch
    import yaml

    import_pipeline_class()  # hy3dgen imported as the provider imports it
    from hy3dgen.shapegen.pipelines import instantiate_from_config

    folder = models / hunyuan.MODEL_NAME / hunyuan.SUBFOLDER
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    torch.manual_seed(seed)
    state = {}
    for part in ("model", "vae", "conditioner"):
        module = instantiate_from_config(TINY_CONFIG[part])
        if part == "vae":
            torch.nn.init.zeros_(module.geo_decoder.output_proj.bias)
        state.update({f"{part}.{k}": v.contiguous() for k, v in module.state_dict().items()})
    safetensors.torch.save_file(state, str(folder / f"model.{hunyuan.VARIANT}.safetensors"))
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    models = tmp_path_factory.mktemp("hy3dgen-models")
    write_tiny_model(models)
    return models


def picture(h: int = 48, w: int = 40) -> np.ndarray:
    """[h, w, 4] uint8: an orange box on a transparent background."""
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[10:40, 8:30] = (220, 120, 40, 255)
    return rgba


def test_tiny_model_runs_end_to_end_on_the_cpu(tiny_models):
    calls = []
    gen = Hunyuan3DGenerator(str(tiny_models))
    assert gen.available() == (True, "")
    v, f = gen.generate_mesh(picture(), steps=STEPS, octree_resolution=RESOLUTION, seed=0,
                             progress=lambda stage, fraction, message="": calls.append((stage, fraction, message)))
    assert v.dtype == np.float32 and v.ndim == 2 and v.shape[1] == 3 and np.isfinite(v).all()
    assert f.dtype == np.int32 and f.ndim == 2 and f.shape[1] == 3 and len(f) >= 1
    assert f.min() >= 0 and f.max() < len(v) and len(np.unique(f)) == len(v)  # cleaned: every vertex used
    assert np.abs(v).max() <= 1.01 + 1e-5  # hy3dgen's box
    fractions = [c[1] for c in calls]
    assert {c[0] for c in calls} == {hunyuan.STAGE} and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert [m for _, _, m in calls if m.startswith("step ")] == [f"step {i}/{STEPS}" for i in range(1, STEPS + 1)]
    assert f"{len(f)} faces" in calls[-1][2]
    t = gen.last_timings
    assert set(t) == {"load", "sample", "decode", "total"} and min(t.values()) >= 0.0
    assert t["total"] >= t["load"] + t["sample"] + t["decode"] - 1e-6
    pipeline = gen.load()
    assert pipeline.device.type == "cpu" and pipeline.dtype.is_floating_point and str(pipeline.dtype) == "torch.float32"


def test_same_seed_same_mesh_and_the_pipeline_is_loaded_once(tiny_models):
    a = Hunyuan3DGenerator(str(tiny_models))
    b = Hunyuan3DGenerator(tiny_models)
    va, fa = a.generate_mesh(picture(), steps=STEPS, octree_resolution=RESOLUTION, seed=3)
    vb, fb = b.generate_mesh(picture(), steps=STEPS, octree_resolution=RESOLUTION, seed=3)
    assert a.load() is b.load()
    assert b.last_timings["load"] < 0.05  # cached, not read again
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(va, vb)


def test_the_mesh_is_hy3dgens_own_turned_from_y_up_to_z_up(tiny_models):
    import torch
    from PIL import Image

    gen = Hunyuan3DGenerator(tiny_models)
    v, f = gen.generate_mesh(picture(), steps=STEPS, octree_resolution=RESOLUTION, seed=1)
    with offline():
        raw = gen.load()(image=Image.fromarray(picture(), "RGBA"), num_inference_steps=STEPS,
                              guidance_scale=hunyuan.GUIDANCE_SCALE, generator=torch.Generator("cpu").manual_seed(1),
                              octree_resolution=RESOLUTION, num_chunks=hunyuan.NUM_CHUNKS, enable_pbar=False)[0]
    want_v, want_f = clean_mesh(gltf_to_blender_points(np.asarray(raw.vertices)), raw.faces)
    np.testing.assert_allclose(v, want_v, atol=1e-6)
    np.testing.assert_array_equal(f, want_f)
    # hy3dgen's +Y (up) is the backend's +Z, its +Z (towards the picture's camera) the backend's -Y
    np.testing.assert_allclose(v[:, 2], want_v[:, 2])
    np.testing.assert_allclose(gltf_to_blender_points(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])),
                               [[0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def test_the_checkpoint_keys_are_named_as_in_the_published_checkpoint(tiny_models):
    """hy3dgen loads the image encoder with a strict load_state_dict, so transformers must name DINOv2's weights as
    the published checkpoint does (transformers 5 renamed them to attention.q_proj, mlp.gate_proj...: keep it < 5)."""
    import safetensors

    path = tiny_models / hunyuan.MODEL_NAME / hunyuan.SUBFOLDER / f"model.{hunyuan.VARIANT}.safetensors"
    with safetensors.safe_open(str(path), "pt") as f:
        keys = set(f.keys())
    assert {k.split(".")[0] for k in keys} == {"model", "vae", "conditioner"}
    layer = "conditioner.main_image_encoder.model.encoder.layer.0."
    for name in ("attention.attention.query.weight", "attention.output.dense.weight", "mlp.weights_in.weight",
                 "mlp.weights_out.weight", "layer_scale1.lambda1"):
        assert layer + name in keys, name
    for name in ("model.latent_in.weight", "model.cond_in.weight", "model.final_layer.linear.weight",
                 "vae.post_kl.weight", "vae.geo_decoder.output_proj.weight"):
        assert name in keys, name


def test_missing_weights_name_the_folder_and_the_files(tmp_path):
    gen = Hunyuan3DGenerator(str(tmp_path))
    folder = tmp_path / "tencent" / "Hunyuan3D-2" / "hunyuan3d-dit-v2-0"
    ok, reason = gen.available()
    assert not ok
    for part in (str(folder), "config.yaml", "model.fp16.safetensors", "hf download tencent/Hunyuan3D-2",
                 "HY3DGEN_MODELS", "never downloads"):
        assert part in reason, part
    with pytest.raises(GeneratorError) as e:
        gen.generate_mesh(picture(), steps=1, octree_resolution=8)
    assert str(e.value) == reason
    assert not (tmp_path / "tencent").exists()  # nothing written, nothing fetched
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model: {}\n")
    ok, reason = gen.available()
    assert not ok and "(missing: model.fp16.safetensors)" in reason


def test_the_models_folder_comes_from_the_argument_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path / "env"))
    assert Hunyuan3DGenerator().folder == tmp_path / "env" / "tencent" / "Hunyuan3D-2" / "hunyuan3d-dit-v2-0"
    assert Hunyuan3DGenerator(str(tmp_path / "arg")).models == tmp_path / "arg"
    monkeypatch.delenv("HY3DGEN_MODELS")
    assert str(Hunyuan3DGenerator().models).endswith(".cache/hy3dgen")


def test_unusable_pictures_and_settings_are_named(tiny_models):
    gen = Hunyuan3DGenerator(tiny_models)
    with pytest.raises(GeneratorError, match=r"RGBA picture \[H, W, 4\] uint8, not \[8, 8, 3\]"):
        gen.generate_mesh(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(GeneratorError, match="alpha, and it is empty"):
        gen.generate_mesh(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(GeneratorError, match="steps must be an integer >= 1, not 0"):
        gen.generate_mesh(picture(), steps=0)
    with pytest.raises(GeneratorError, match="octree_resolution must be an integer >= 8"):
        gen.generate_mesh(picture(), octree_resolution=4.5)


def test_a_broken_checkpoint_is_a_generator_error(tmp_path):
    folder = tmp_path / "tencent" / "Hunyuan3D-2" / "hunyuan3d-dit-v2-0"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model: {target: hy3dgen.shapegen.models.Hunyuan3DDiT}\n")
    (folder / "model.fp16.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(GeneratorError, match=r"could not load .*hunyuan3d-dit-v2-0: "):
        Hunyuan3DGenerator(tmp_path).generate_mesh(picture(), steps=1, octree_resolution=8)


def test_no_stand_in_leaks_and_relight_does_not_import_hy3dgen():
    import_pipeline_class()
    for name in ("torchvision", "torchvision.transforms", "pymeshlab"):
        assert name not in sys.modules or getattr(sys.modules[name], "__file__", None), name
    code = ("import sys, relight.generate.geometry.hunyuan, relight.generate.pipeline; "
            "sys.exit('hy3dgen' in sys.modules or 'diffusers' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_torchvision_stand_in_resizes_crops_and_normalises_as_torchvision_does():
    """Shorter side to `size` (F.interpolate, align_corners=False, antialias), centre crop with rounded offsets,
    (x - mean) / std per channel; compared with torchvision itself where it imports."""
    import torch

    from relight.generate.geometry.hunyuan_import import torchvision_stand_in

    tr = torchvision_stand_in()["torchvision.transforms"]
    x = torch.rand(1, 3, 40, 61, generator=torch.Generator().manual_seed(0))
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    chain = tr.Compose([tr.Resize(28, tr.InterpolationMode.BILINEAR, antialias=True), tr.CenterCrop(28),
                        tr.Normalize(mean=mean, std=std)])
    resized = tr.Resize(28, tr.InterpolationMode.BILINEAR, antialias=True)(x)
    assert resized.shape == (1, 3, 28, 42)  # int(28 * 61 / 40)
    torch.testing.assert_close(resized, torch.nn.functional.interpolate(x, size=(28, 42), mode="bilinear",
                                                                        align_corners=False, antialias=True))
    out = chain(x)
    assert out.shape == (1, 3, 28, 28)
    want = (resized[..., :, 7:35] - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    torch.testing.assert_close(out, want)
    try:
        from torchvision import transforms as real
    except Exception:  # noqa: BLE001 - absent, or the CUDA-linked wheel beside CPU torch
        return
    ref = real.Compose([real.Resize(28, real.InterpolationMode.BILINEAR, antialias=True), real.CenterCrop(28),
                        real.Normalize(mean=mean, std=std)])
    torch.testing.assert_close(out, ref(x))


def test_image_to_stored_asset_through_a_real_server(tmp_path):
    """The tiny model as the `hunyuan3d` provider of a real `relight serve`: listed in its hello, and a photo becomes a
    stored asset through it (generator mesh -> camera fitted to the photo -> delighting -> store)."""
    from server_fixture import start_server
    from test_server import disc_image

    write_tiny_model(tmp_path / "models")
    server = start_server(tmp_path / "store", extra_args=("--model-path", str(tmp_path / "models"), "--hunyuan-steps",
                                                          str(STEPS), "--octree-resolution", str(RESOLUTION)))
    try:
        c = server.client()
        assert "hunyuan3d" in c.call("hello_request", timeout=60).content["providers"]
        stages = []
        reply = c.call("generate_request", {"image": disc_image(64), "name": "tiny", "provider": "hunyuan3d"},
                       timeout=600, on_progress=lambda m: stages.append(m.content["stage"]))
        assert reply.status == "ok", reply.content
        assert "hunyuan3d" in stages and "delight" in stages
        from relight.service.store import AssetStore

        asset = AssetStore(server.store_dir).get(reply.content["asset_id"])
        assert asset.meta["provider"] == "hunyuan3d" and asset.meta["camera_fit"]["done"]
        assert len(asset.gaussians) > 0 and len(asset.faces) > 0
    finally:
        server.stop()
