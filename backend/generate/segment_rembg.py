"""rembg (U^2-Net) as the optional segmenter, behind the same interface as GrabCut: used when the `rembg` extra is
installed AND its model file is on this machine; never downloaded. The model is rembg's own u2net.onnx in rembg's
own folder ($U2NET_HOME, else $XDG_DATA_HOME/.u2net, else ~/.u2net), or the file $RELIGHT_REMBG_MODEL names;
it is loaded through rembg's `u2net_custom` session, which reads a local file and has no download path."""

import os
import threading
from pathlib import Path

import numpy as np

_SESSIONS = {}  # model path -> rembg session (loading takes a second or two)
_LOCK = threading.Lock()


def rembg_model_path() -> Path:
    """Where the U^2-Net model is looked for (see the module docstring)."""
    if os.environ.get("RELIGHT_REMBG_MODEL"):
        return Path(os.path.expanduser(os.environ["RELIGHT_REMBG_MODEL"]))
    home = os.environ.get("U2NET_HOME") or os.path.join(os.environ.get("XDG_DATA_HOME", "~"), ".u2net")
    return Path(os.path.expanduser(home)) / "u2net.onnx"


def rembg_available() -> tuple[bool, str]:
    """(usable, why not): rembg and onnxruntime importable and the model file present."""
    import importlib.util

    missing = [m for m in ("rembg", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"rembg needs {', '.join(missing)}: pip install -e \".[rembg]\""
    path = rembg_model_path()
    if not path.is_file():
        return False, (f"rembg's model is not at {path}; put u2net.onnx there (or set $RELIGHT_REMBG_MODEL): relight "
                       "never downloads it")
    return True, ""


def rembg_mask(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] sRGB-encoded in [0, 1] -> [H, W] bool: U^2-Net's foreground above half."""
    from PIL import Image
    from rembg import new_session, remove

    path = rembg_model_path()
    with _LOCK:
        if str(path) not in _SESSIONS:
            _SESSIONS[str(path)] = new_session("u2net_custom", model_path=str(path), providers=["CPUExecutionProvider"])
        session = _SESSIONS[str(path)]
    picture = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    mask = remove(picture, session=session, only_mask=True)
    return np.asarray(mask) > 127
