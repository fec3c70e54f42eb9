"""A safe file name from an asset's name: the one place that decides which characters survive."""

MAX_STEM = 100  # characters kept of the name


def safe_filename(name: str, suffix: str = "") -> str:
    """Letters, digits, '-', '_' and inner '.' kept, anything else '_'; never empty ("asset"); + suffix."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)).strip("._") or "asset"
    return stem[:MAX_STEM] + suffix
