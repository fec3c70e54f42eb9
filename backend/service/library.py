"""The asset library the add-on lists: every stored asset's id, name, provider, creation time, size and a small
thumbnail, newest first (list_assets_request), and deleting one (delete_asset_request). Reads only asset.json and
the thumbnail, never the Gaussians, so listing stays cheap enough for the socket thread."""

import json
from pathlib import Path

import numpy as np
from relight_protocol.lru import LRU
from relight_protocol.vocabulary import LIBRARY_THUMB_SIDE

_ENTRIES = LRU(4096)  # (asset folder, asset.json mtime_ns) -> (entry dict, [s, s, 4] uint8 thumbnail)


def thumbnail(rgba: np.ndarray, side: int = LIBRARY_THUMB_SIDE) -> np.ndarray:
    """[h, w, 4] uint8 -> [side, side, 4] uint8: the picture fitted into the square (box average over the source
    pixels of each target pixel, aspect kept), centred on transparent black."""
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] not in (3, 4) or min(rgba.shape[:2]) < 1:
        return np.zeros((side, side, 4), np.uint8)
    if rgba.shape[2] == 3:
        rgba = np.concatenate([rgba, np.full(rgba.shape[:2] + (1,), 255, rgba.dtype)], -1)
    h, w = rgba.shape[:2]
    k = side / max(h, w)
    th, tw = max(1, round(h * k)), max(1, round(w * k))
    rows = np.minimum((np.arange(th + 1) * h / th).astype(int), h)  # source row edges of each target row
    cols = np.minimum((np.arange(tw + 1) * w / tw).astype(int), w)
    c = np.cumsum(np.cumsum(np.pad(rgba.astype(np.float64), ((1, 0), (1, 0), (0, 0))), 0), 1)  # summed-area table
    r0, r1 = rows[:-1, None], np.maximum(rows[1:], rows[:-1] + 1)[:, None]
    c0, c1 = cols[None, :-1], np.maximum(cols[1:], cols[:-1] + 1)[None, :]
    area = ((r1 - r0) * (c1 - c0))[..., None]
    small = (c[r1, c1] - c[r0, c1] - c[r1, c0] + c[r0, c0]) / area
    out = np.zeros((side, side, 4), np.uint8)
    y, x = (side - th) // 2, (side - tw) // 2
    out[y:y + th, x:x + tw] = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return out


def _entry(folder: Path) -> tuple[dict, np.ndarray]:
    """(the asset's entry, its thumbnail) from its folder, cached by asset.json's modification time."""
    stat = (folder / "asset.json").stat()
    key = (str(folder), stat.st_mtime_ns)

    def make():
        meta = json.loads((folder / "asset.json").read_text())
        with np.load(folder / "asset.npz") as z:  # an npz loads member by member: only the thumbnail is read
            thumb = thumbnail(z["thumbnail"]) if "thumbnail" in z.files else thumbnail(np.zeros((1, 1, 4), np.uint8))
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        inner = meta.get("meta") or {}
        entry = {"asset_id": str(meta.get("asset_id", folder.name)), "name": str(meta.get("name", folder.name)),
                 "provider": str(inner.get("provider") or ("reconstruct" if (folder / "baked.glb").exists() else "")),
                 "created": float(stat.st_mtime), "size_bytes": int(size),
                 "gaussians": int(inner.get("gaussians") or 0), "has_glb": (folder / "baked.glb").exists()}
        return entry, thumb

    return _ENTRIES.get_or_make(key, make)


def list_assets(store) -> dict:
    """Reply content: {assets: [{asset_id, name, provider, created (seconds since the epoch), size_bytes, gaussians,
    has_glb}] newest first, thumbnails [N, LIBRARY_THUMB_SIDE, LIBRARY_THUMB_SIDE, 4] uint8 sRGB row 0 = top, in the
    same order}. An unreadable folder is skipped and counted in `skipped`."""
    entries, skipped = [], 0
    for asset_id in store.ids():
        try:
            entries.append(_entry(store.path(asset_id)))
        except (OSError, ValueError, KeyError) as e:  # a half-deleted or foreign folder must not break the list
            skipped += 1
            print(f"relight serve: skipped asset folder {asset_id} in the library ({type(e).__name__}: {e})")
    entries.sort(key=lambda e: (-e[0]["created"], e[0]["asset_id"]))
    side = LIBRARY_THUMB_SIDE
    thumbs = np.stack([t for _, t in entries]) if entries else np.zeros((0, side, side, 4), np.uint8)
    return {"assets": [e for e, _ in entries], "thumbnails": thumbs, "skipped": skipped}


def delete_asset(store, asset_id: str) -> dict:
    """Reply content {asset_id, deleted: True}; UnknownAsset (naming the store) when there is no such asset."""
    store.delete(asset_id)
    return {"asset_id": asset_id, "deleted": True}
