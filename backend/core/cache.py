"""Where derived data that is slow to make is kept between runs (the GGX table, an HDRI's prefiltered levels, the
bench's assets): $RELIGHT_CACHE_DIR, else the user's cache folder. Entries are named by what made them (versions,
sizes, content hashes), so a stale entry is never read; deleting the folder only costs the time to remake them."""

import os
from pathlib import Path


def cache_root() -> Path:
    """$RELIGHT_CACHE_DIR, else <$XDG_CACHE_HOME or ~/.cache>/relight."""
    if os.environ.get("RELIGHT_CACHE_DIR"):
        return Path(os.environ["RELIGHT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "relight"
