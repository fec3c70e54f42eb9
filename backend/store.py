"""Content-addressed asset store on disk, with an in-memory cache so relighting never reloads a hot asset."""

import re
import threading
from collections import OrderedDict
from pathlib import Path

from .asset import RelightableAsset

_ID = re.compile(r"^[0-9a-f]{8,64}$")


class UnknownAsset(KeyError):
    def __str__(self) -> str:
        return f"no asset with id {self.args[0]!r} in this backend's store; generate it again"


class AssetStore:
    def __init__(self, root: Path, cache_size: int = 4):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[str, RelightableAsset] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def path(self, asset_id: str) -> Path:
        if not isinstance(asset_id, str) or not _ID.match(asset_id):
            raise UnknownAsset(asset_id)
        return self.root / asset_id

    def put(self, asset: RelightableAsset) -> str:
        asset.save(self.path(asset.asset_id))
        self._remember(asset)
        return asset.asset_id

    def has(self, asset_id: str) -> bool:
        try:
            return (self.path(asset_id) / "asset.json").exists()
        except UnknownAsset:
            return False

    def get(self, asset_id: str) -> RelightableAsset:
        with self._lock:
            if asset_id in self._cache:
                self._cache.move_to_end(asset_id)
                return self._cache[asset_id]
        if not self.has(asset_id):
            raise UnknownAsset(asset_id)
        asset = RelightableAsset.load(self.path(asset_id))
        self._remember(asset)
        return asset

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if _ID.match(p.name) and (p / "asset.json").exists())

    def _remember(self, asset: RelightableAsset) -> None:
        with self._lock:
            self._cache[asset.asset_id] = asset
            self._cache.move_to_end(asset.asset_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
