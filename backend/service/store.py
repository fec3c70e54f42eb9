"""Content-addressed asset store on disk, with an in-memory cache so relighting never reloads a hot asset."""

import os
import re
import shutil
from pathlib import Path

from relight_protocol.errors import UnknownAsset

from ..core.asset import RelightableAsset
from relight_protocol.lru import LRU

_ID = re.compile(r"^[0-9a-f]{8,64}$")


def default_store_dir() -> Path:
    """$RELIGHT_STORE_DIR, else <XDG cache or ~/.cache>/relight/assets."""
    if os.environ.get("RELIGHT_STORE_DIR"):
        return Path(os.environ["RELIGHT_STORE_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "relight" / "assets"


TEMP_FOLDER = re.compile(r"^\.[0-9a-f]{8,64}-")  # RelightableAsset.save's temp folders: .<id>-<random>


def clean_stale_writes(root: Path):
    """Remove the temp folders of asset writes a killed server left in `root`, when no other process uses the
    store (an exclusive flock on <root>/.lock, kept by the returned open file); None where flock is not offered
    or another server holds the store (its writes may be in progress: they are left alone, and never listed)."""
    try:
        import fcntl
    except ImportError:
        return None
    f = open(root / ".lock", "a")  # noqa: SIM115 - held for the store's life
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    for p in root.iterdir():
        if p.is_dir() and TEMP_FOLDER.match(p.name):
            shutil.rmtree(p, ignore_errors=True)
    return f


class AssetStore:
    def __init__(self, root: Path, cache_size: int = 4):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._hot = LRU(cache_size)  # asset id -> RelightableAsset
        self._lock_file = clean_stale_writes(self.root)  # held open: this process owns the store's temp folders

    def _unknown(self, asset_id) -> UnknownAsset:
        # the store's folder is the server's business: it is in the server's log, never in a reply
        return UnknownAsset(f"asset {str(asset_id)[:80]!r} is not in this server's store; generate it again, or start "
                            "`relight serve --store` on the folder that holds it")

    def path(self, asset_id: str) -> Path:
        if not isinstance(asset_id, str) or not _ID.match(asset_id):
            raise self._unknown(asset_id)
        return self.root / asset_id

    def put(self, asset: RelightableAsset) -> str:
        """Store `asset` atomically (RelightableAsset.save: a temp folder in the root, fsynced, renamed into place).
        An id already stored is kept as it is: the same id is the same content, and rewriting it would open a
        moment without it."""
        if not self.has(asset.asset_id):
            asset.save(self.path(asset.asset_id))
        self._hot.put(asset.asset_id, asset)
        return asset.asset_id

    def has(self, asset_id: str) -> bool:
        try:
            return (self.path(asset_id) / "asset.json").exists()
        except UnknownAsset:
            return False

    def get(self, asset_id: str) -> RelightableAsset:
        hot = self._hot.get(asset_id)
        if hot is not None:
            return hot
        if not self.has(asset_id):
            raise self._unknown(asset_id)
        asset = RelightableAsset.load(self.path(asset_id))
        self._hot.put(asset_id, asset)
        return asset

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if _ID.match(p.name) and (p / "asset.json").exists())

    # ------------------------------------------------------------------------------------------ the library

    def delete(self, asset_id: str) -> None:
        """Remove a stored asset: renamed out of the way first (atomic), then its files; UnknownAsset if absent."""
        import shutil
        import tempfile

        if not self.has(asset_id):
            raise self._unknown(asset_id)
        trash = Path(tempfile.mkdtemp(prefix=f".deleted-{asset_id}-", dir=self.root))
        os.replace(self.path(asset_id), trash / asset_id)
        self._hot.pop(asset_id)
        shutil.rmtree(trash, ignore_errors=True)
