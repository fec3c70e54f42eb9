"""The reconstruction's input files, read into a validated MultiViewSet and written back out. Two forms:

- "zero123pp": MAGE's tiled layout. A folder with one 3 x 2 sheet per domain (zero123.py gives the cameras):
  rgb.png, normal.png, albedo.png, roughness.png, metallic.png, optional depth.exr (or depth.npy, [960, 640]),
  optional mask.png (else rgb.png's alpha), optional layout.json, e.g.
  {"layout": "zero123pp", "normal_space": "world" | "view", "rgb": "srgb" | "linear"} (defaults: world, srgb).
- "folder": per-view images plus cameras.json: {"normal_space": ..., "rgb": ..., "views": [{**Camera.to_dict(),
  "files": {domain: file name}}]}, cameras world-to-camera OpenCV as core.camera.Camera.

Required domains: mask (mask.png; else the rgb image's alpha if it has one; else where the normal image is not the
zero vector, as Zero123++'s own matting does) and albedo. Optional: rgb, normal, depth, roughness,
metallic. PNGs decode as: rgb (when "srgb") and albedo sRGB -> linear through relight_protocol's one curve; normals
from [0, 1] to [-1, 1] and renormalised; roughness, metallic and mask linear grey (mask: > 0.5).

View-space normals ("normal_space": "view") are taken in OpenGL camera axes, the usual normal-map convention and the
one Zero123++'s normal ControlNet images look to follow (x right, y up, z towards the viewer: a surface facing the
camera is (0, 0, 1), light blue); its code does not state the axes, so this is our documented choice. They are
rotated to world on load (through GL_TO_CV and the view's camera).

Every error is a ViewInputError (a ValueError) naming the view and the domain; write_views validates everything
before it writes anything.
"""

import json
from pathlib import Path

import numpy as np

from ..core.axes import GL_TO_CV
from ..core.camera import Camera
from ..core.colour import linear_to_srgb, srgb_to_linear
from ..core.hdri_io import read_hdr_image, write_exr
from ..core.imageio import read_rgba, write_rgba
from . import zero123
from .hull import carve, initial_bounds, project
from .views import MultiViewSet

REQUIRED = ("mask", "albedo")
OPTIONAL = ("rgb", "normal", "depth", "roughness", "metallic")
SHEET_FILES = {"rgb": "rgb.png", "normal": "normal.png", "albedo": "albedo.png", "roughness": "roughness.png",
               "metallic": "metallic.png", "mask": "mask.png", "depth": "depth.exr"}


class ViewInputError(ValueError):
    """Bad reconstruction input; `view` (index, or None for every view) and `domain` say where."""

    def __init__(self, message: str, view: int | None = None, domain: str | None = None):
        """The message is prefixed with "view V, domain: " for whichever of the two is known."""
        where = ", ".join(x for x in (f"view {view}" if view is not None else "", domain or "") if x)
        super().__init__(f"{where}: {message}" if where else message)
        self.view, self.domain = view, domain


ReconstructInputError = ViewInputError  # the name the reconstruction pipeline documents


# ----------------------------------------------------------------------------------------------------------- checks


def validate_views(views: MultiViewSet, hull_resolution: int = 32) -> None:
    """Raise ViewInputError unless every domain is present where required, the sizes agree, values are finite,
    every mask is non-empty, values are finite inside the masks (outside them they are not used) and every camera sees the hull the other views carve."""
    V = views.n_views
    if V == 0:
        raise ViewInputError("no views")
    if views.mask is None:
        raise ViewInputError("missing (required: mask and albedo)", domain="mask")
    if views.albedo is None:
        raise ViewInputError("missing (required: mask and albedo)", domain="albedo")
    H, W = views.mask.shape[1:3] if views.mask.ndim == 3 else (None, None)
    for d in ("mask",) + OPTIONAL[:2] + ("albedo",) + OPTIONAL[2:]:
        a = getattr(views, d)
        if a is None:
            continue
        if len(a) != V:
            raise ViewInputError(f"{len(a)} images for {V} cameras", domain=d)
        for v in range(V):
            if a[v].shape[:2] != (H, W):
                raise ViewInputError(f"size {a[v].shape[:2]} differs from the mask's {(H, W)}", v, d)
            if d != "mask" and not np.all(np.isfinite(a[v][views.mask[v]])):
                raise ViewInputError("holds NaN or infinite values inside the mask", v, d)
    for v, cam in enumerate(views.cameras):
        if (cam.height, cam.width) != (H, W):
            raise ViewInputError(f"camera is {cam.width} x {cam.height} but the images are {W} x {H}", v, "camera")
        if not (np.all(np.isfinite(cam.viewmat)) and np.all(np.isfinite(cam.K))):
            raise ViewInputError("camera holds NaN or infinite values", v, "camera")
        if not views.mask[v].any():
            raise ViewInputError("the mask is empty", v, "mask")
    if V > 1:
        _check_cameras_see_hull(views, hull_resolution)


def _check_cameras_see_hull(views: MultiViewSet, R: int) -> None:
    """Each view's mask must overlap the projection of the hull the other views carve. A wrong camera empties the
    hull of every group it is in, so the view to blame is the one whose others' hull is non-empty yet unseen."""
    lo, hi = initial_bounds(views.cameras)
    axes = [lo[i] + (np.arange(R) + 0.5) * (hi[i] - lo[i]) / R for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    H, W = views.size
    empty = []
    for v, cam in enumerate(views.cameras):
        occ = carve(views, lo, hi, R, dilate_px=2, use_depth=False, exclude=v).reshape(-1)
        if not occ.any():
            empty.append(v)
            continue
        c, r, z = project(cam, pts[occ])
        ci, ri = np.floor(c).astype(int), np.floor(r).astype(int)
        ok = (z > 0) & (ci >= 0) & (ci < W) & (ri >= 0) & (ri < H)
        if not views.mask[v][ri[ok], ci[ok]].any():
            raise ViewInputError("the camera sees none of the hull the other views carve (wrong pose?)", v, "camera")
    if empty:
        raise ViewInputError("the other views' masks and cameras carve an empty hull (two or more views disagree)",
                             empty[0], "camera")


# ----------------------------------------------------------------------------------------------------------- decode


def _normals_to_world(n: np.ndarray, cam: Camera) -> np.ndarray:
    """[H, W, 3] view-space (OpenGL camera axes) -> world unit normals."""
    rot = cam.viewmat[:3, :3].T @ GL_TO_CV[:3, :3]  # GL camera -> CV camera -> world
    return n @ rot.T


def _normals_to_view(n: np.ndarray, cam: Camera) -> np.ndarray:
    """[H, W, 3] world -> view-space (OpenGL camera axes) unit normals."""
    rot = cam.viewmat[:3, :3].T @ GL_TO_CV[:3, :3]
    return n @ rot


def _decode(domain: str, rgba: np.ndarray, rgb_encoding: str) -> np.ndarray:
    """[H, W, 4] file values in [0, 1] -> the domain's MultiViewSet values (view-space normals not yet rotated)."""
    if domain == "albedo" or (domain == "rgb" and rgb_encoding == "srgb"):
        return srgb_to_linear(rgba[..., :3])
    if domain == "rgb":
        return rgba[..., :3].astype(np.float32)
    if domain == "normal":
        n = rgba[..., :3] * 2 - 1
        return (n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-8)).astype(np.float32)
    if domain == "mask":
        return rgba[..., 0] > 0.5
    return rgba[..., 0].astype(np.float32)  # roughness, metallic: linear grey


def _read_depth(path: Path) -> np.ndarray:
    """depth.exr (first channel) or depth.npy -> [H, W] float32."""
    if path.suffix == ".npy":
        return np.asarray(np.load(path), np.float32)
    return read_hdr_image(path)[..., 0]


def _implied_mask(images: dict, rgb: list | None, normal: list | None) -> None:
    """No mask file: the rgb images' alpha if they have one (some alpha below 1/2), else the normal images' length
    (Zero123++'s normal sheets are grey (0.5: the zero vector) off the object; its matting_postprocess takes length
    > 0.6 as object and < 0.2 as background; the midpoint 0.4 splits them). Sets images["mask"] when it can."""
    if rgb is not None and any((x[..., 3] < 0.5).any() for x in rgb):
        images["mask"] = [x[..., 3] > 0.5 for x in rgb]
    elif normal is not None:
        images["mask"] = [np.linalg.norm(x[..., :3] * 2 - 1, axis=-1) > 0.4 for x in normal]


def _assemble(cameras: list[Camera], images: dict, normal_space: str, meta: dict) -> MultiViewSet:
    """Per-domain lists of decoded views -> a validated MultiViewSet (view-space normals rotated to world)."""
    if normal_space not in ("world", "view"):
        raise ViewInputError(f"normal_space must be 'world' or 'view', got {normal_space!r}", domain="normal")
    for d in REQUIRED:
        if d not in images:
            raise ViewInputError("missing (required: mask, or rgb with alpha, or normal, and albedo; optional: "
                                 + ", ".join(OPTIONAL) + ")", domain=d)
    ref = images["mask"][0].shape[:2]
    for d, imgs in images.items():  # sizes first, so the error names the view and domain rather than np.stack
        for v, i in enumerate(imgs):
            if i.shape[:2] != ref:
                raise ViewInputError(f"size {i.shape[:2]} differs from view 0's mask {ref}", v, d)
    if "normal" in images and normal_space == "view":
        images["normal"] = [_normals_to_world(n, c).astype(np.float32) for n, c in zip(images["normal"], cameras)]
    mask = np.stack(images.pop("mask"))
    arrays = {d: np.stack(imgs) for d, imgs in images.items()}
    views = MultiViewSet(cameras, mask, meta=meta, **arrays)
    validate_views(views)  # finite inside the mask; outside it (a renderer's infinite background depth) is ignored
    if views.depth is not None:
        views.depth = np.where(mask, np.nan_to_num(views.depth, posinf=0, neginf=0), 0.0).astype(np.float32)
    return views


def _load_sheets(folder: Path) -> MultiViewSet:
    """MAGE's tiled layout (see the module docstring)."""
    spec = json.loads((folder / "layout.json").read_text()) if (folder / "layout.json").exists() else {}
    if spec.get("layout", "zero123pp") != "zero123pp":
        raise ViewInputError(f"layout.json: unknown layout {spec.get('layout')!r} (expected 'zero123pp')")
    rgb_enc = spec.get("rgb", "srgb")
    images, files, raw = {}, {}, {}
    for d, name in SHEET_FILES.items():
        path = folder / name
        if d == "depth" and not path.exists():
            path = folder / "depth.npy"
        if not path.exists():
            continue
        sheet = _read_depth(path) if d == "depth" else read_rgba(path)
        try:
            tiles = zero123.split_tiles(sheet)
        except zero123.TileLayoutError as e:
            raise ViewInputError(str(e), domain=d) from None
        files[d] = name
        if d == "depth":
            images[d] = list(tiles)
            continue
        images[d] = [_decode(d, t, rgb_enc) for t in tiles]
        raw[d] = tiles
    if "mask" not in images:
        _implied_mask(images, raw.get("rgb"), raw.get("normal"))
    size = (images.get("mask") or images.get("albedo") or [np.zeros((zero123.VIEW_SIZE,) * 2)])[0].shape[0]
    meta = {"source": "zero123pp", "normal_space": spec.get("normal_space", "world"), "files": files,
            "path": str(folder)}
    return _assemble(zero123.zero123_cameras(size), images, meta["normal_space"], meta)


def _load_folder(folder: Path) -> MultiViewSet:
    """Per-view images plus cameras.json (see the module docstring)."""
    spec = json.loads((folder / "cameras.json").read_text())
    entries = spec.get("views")
    if not entries:
        raise ViewInputError("cameras.json lists no views")
    cameras, images, files, raw = [], {}, [], {}
    for v, e in enumerate(entries):
        try:
            cameras.append(Camera.from_dict(e))
        except (KeyError, ValueError, TypeError) as err:
            raise ViewInputError(f"cameras.json entry is not a camera ({err})", v, "camera") from None
        files.append(dict(e.get("files", {})))
    for d in ("mask", "rgb", "normal", "albedo", "roughness", "metallic", "depth"):
        named = [f.get(d) for f in files]
        if not any(named):
            continue
        out = []
        for v, name in enumerate(named):
            if not name or not (folder / name).exists():
                raise ViewInputError(f"file {name!r} not found (other views have this domain)", v, d)
            out.append(_read_depth(folder / name) if d == "depth" else read_rgba(folder / name))
        raw[d] = out
        images[d] = out if d == "depth" else [_decode(d, x, spec.get("rgb", "srgb")) for x in out]
    if "mask" not in images:
        _implied_mask(images, raw.get("rgb"), raw.get("normal"))
    meta = {"source": "folder", "normal_space": spec.get("normal_space", "world"), "files": files,
            "path": str(folder)}
    return _assemble(cameras, images, meta["normal_space"], meta)


def load_views(path) -> MultiViewSet:
    """A folder of either form (cameras.json present: "folder"; else "zero123pp") -> validated MultiViewSet."""
    folder = Path(path)
    if not folder.is_dir():
        raise ViewInputError(f"{folder} is not a folder of views")
    return _load_folder(folder) if (folder / "cameras.json").exists() else _load_sheets(folder)


# ------------------------------------------------------------------------------------------------------------ write


def _encode(domain: str, views: MultiViewSet, v: int, normal_space: str, rgb_encoding: str) -> np.ndarray:
    """One view's domain -> [H, W, 1|3|4] file values in [0, 1] (rgb carries the mask as alpha)."""
    a = getattr(views, domain)[v]
    m = views.mask[v]
    if domain == "rgb":
        c = linear_to_srgb(np.clip(a, 0, 1)) if rgb_encoding == "srgb" else np.clip(a, 0, 1)
        return np.concatenate([c, m[..., None].astype(np.float32)], -1)
    if domain == "albedo":
        return linear_to_srgb(np.clip(a, 0, 1))
    if domain == "normal":
        n = _normals_to_view(a, views.cameras[v]) if normal_space == "view" else a
        return np.where(m[..., None], n * 0.5 + 0.5, 0.5)
    if domain == "mask":
        return m[..., None].astype(np.float32)
    return np.clip(a, 0, 1)[..., None]


def write_views(views: MultiViewSet, folder, form: str = "folder", normal_space: str = "world",
                rgb_encoding: str = "srgb") -> Path:
    """Write `views` in either form (8-bit PNGs, depth as EXR) after validating it; nothing is written on error.
    "zero123pp" needs six square views on zero123.py's rig (its cameras are not stored)."""
    if form not in ("folder", "zero123pp"):
        raise ViewInputError(f"form must be 'folder' or 'zero123pp', got {form!r}")
    if normal_space not in ("world", "view") or rgb_encoding not in ("srgb", "linear"):
        raise ViewInputError(f"normal_space {normal_space!r} / rgb {rgb_encoding!r} not understood")
    validate_views(views)
    H, W = views.size
    if form == "zero123pp":
        rig = zero123.zero123_cameras(W)
        if views.n_views != 6 or H != W:
            raise ViewInputError(f"the zero123pp form holds 6 square views, got {views.n_views} of {W} x {H}")
        for v, (a, b) in enumerate(zip(views.cameras, rig)):
            if not (np.allclose(a.viewmat, b.viewmat, atol=1e-6) and np.allclose(a.K, b.K, atol=1e-6)):
                raise ViewInputError("camera is not the Zero123++ rig's (use form='folder')", v, "camera")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    domains = ["mask"] + [d for d in OPTIONAL + ("albedo",) if getattr(views, d) is not None]
    if form == "zero123pp":
        for d in domains:
            if d == "depth":
                write_exr(folder / "depth.exr", np.repeat(zero123.tile_views(views.depth)[..., None], 3, -1))
                continue
            tiles = np.stack([_encode(d, views, v, normal_space, rgb_encoding) for v in range(6)])
            write_rgba(folder / SHEET_FILES[d], zero123.tile_views(tiles))
        spec = {"layout": "zero123pp", "normal_space": normal_space, "rgb": rgb_encoding}
        (folder / "layout.json").write_text(json.dumps(spec, indent=1))
        return folder
    entries = []
    for v, cam in enumerate(views.cameras):
        files = {}
        for d in domains:
            files[d] = f"view{v:02d}_{d}.{'exr' if d == 'depth' else 'png'}"
            if d == "depth":
                write_exr(folder / files[d], np.repeat(views.depth[v][..., None], 3, -1))
            else:
                write_rgba(folder / files[d], _encode(d, views, v, normal_space, rgb_encoding))
        entries.append({**cam.to_dict(), "files": files})
    spec = {"normal_space": normal_space, "rgb": rgb_encoding, "views": entries}
    (folder / "cameras.json").write_text(json.dumps(spec, indent=1))
    return folder
