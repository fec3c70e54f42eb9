"""Protocol version (independent of the package version) and the major-version compatibility check."""

from .errors import VersionMismatch

# "major.minor"; same major => compatible, unknown minor tolerated. 1.1 added reconstruct; 1.2 the hello's "curve"
# (the server takes CURVE-authenticated clients only), the limits MIN_IMAGE_SIDE and MIN_OBJECT_PIXELS, the asset
# library (list_assets, delete_asset), the passes, splats and turntable jobs, the bake format "obj", a render's world
# naming an equirect sent before (world.world_id, render_reply.world_id), lamps and the asset's placement.
PROTOCOL_VERSION = "1.2"


def parse_version(text: str) -> tuple[int, int]:
    """'1.2' -> (1, 2). Raises VersionMismatch for anything that is not 'int.int'."""
    if not isinstance(text, str):
        raise VersionMismatch(f"protocol_version must be a string like '{PROTOCOL_VERSION}', got {type(text).__name__}")
    parts = text.strip().split(".")
    try:
        if len(parts) != 2:
            raise ValueError
        major, minor = int(parts[0]), int(parts[1])
        if major < 0 or minor < 0:
            raise ValueError
    except ValueError:
        raise VersionMismatch(
            f"protocol version {text!r} is not of the form 'major.minor'; this side speaks {PROTOCOL_VERSION}"
        ) from None
    return major, minor


PROTOCOL_MAJOR, PROTOCOL_MINOR = parse_version(PROTOCOL_VERSION)


def check_compatible(text: str, peer: str = "server") -> None:
    """Raise VersionMismatch unless `text` has our major version (any minor is accepted)."""
    major, _ = parse_version(text)
    if major != PROTOCOL_MAJOR:
        raise VersionMismatch(
            f"protocol version {text} is not supported by this {peer} (speaks {PROTOCOL_MAJOR}.x); "
            "update the Relight add-on or backend so both match"
        )
