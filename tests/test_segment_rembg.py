"""rembg as the optional segmenter, run for real on a tiny U^2-Net stand-in the test builds itself (an ONNX model with
u2net's input and output: a 1x1 convolution that answers to brightness). Picked only when installed with its model."""

import numpy as np
import pytest

pytest.importorskip("rembg")
onnx = pytest.importorskip("onnx")

from relight.generate import segment as seg  # noqa: E402
from relight.generate.segment_rembg import rembg_available, rembg_mask, rembg_model_path  # noqa: E402


def write_tiny_u2net(path):
    """[1, 3, 320, 320] -> [1, 1, 320, 320] = sigmoid(4 * sum of the normalised channels): bright pixels score high."""
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], [4.0, 4.0, 4.0])
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [0.0])
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input.1", "w", "b"], ["c"]), helper.make_node("Sigmoid", ["c"], ["out"])],
        "tiny_u2net",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 320, 320])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 320, 320])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def _photo():
    """Opaque [96, 128, 4]: a bright square on a dark, noisy background that touches the frame everywhere."""
    rng = np.random.default_rng(0)
    img = np.ones((96, 128, 4), np.float32)
    img[..., :3] = rng.uniform(0.0, 0.25, (96, 128, 3))
    img[30:70, 40:90, :3] = 0.95
    return img


def test_no_model_no_rembg(tmp_path, monkeypatch):
    monkeypatch.setenv("RELIGHT_REMBG_MODEL", str(tmp_path / "nowhere" / "u2net.onnx"))
    ok, why = rembg_available()
    assert not ok and "nowhere" in why and "never downloads" in why


def test_the_installed_model_segments_the_photo(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    monkeypatch.delenv("RELIGHT_REMBG_MODEL", raising=False)
    write_tiny_u2net(rembg_model_path())
    assert rembg_available() == (True, "")
    truth = np.zeros((96, 128), bool)
    truth[30:70, 40:90] = True
    m = rembg_mask(_photo()[..., :3])
    assert m.shape == truth.shape and (m & truth).sum() / (m | truth).sum() > 0.9
    monkeypatch.setattr(seg, "_grabcut", lambda rgb: pytest.fail("GrabCut ran although rembg is installed"))
    m2 = seg.segment(_photo())  # the pipeline's segmenter picks rembg when it is installed with its model
    assert (m2 & truth).sum() / (m2 | truth).sum() > 0.9
