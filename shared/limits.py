"""Every size the protocol accepts has a limit here; exceeding one gives an error naming it."""

from .errors import LimitExceeded

KiB = 1024
MiB = 1024 * KiB

MAX_HEADER_BYTES = 16 * KiB  # header JSON frame
MAX_CONTENT_BYTES = 1 * MiB  # content JSON frame
MAX_BUFFERS = 16  # buffer frames per message
MAX_ARRAY_BYTES = 512 * MiB  # one array's raw bytes
MAX_IMAGE_SIDE = 4096  # generate input image, pixels per side
MAX_ENV_SIDE = 8192  # equirect environment, pixels per side
MAX_VERTICES = 4_000_000
MAX_FACES = 8_000_000
MAX_TEXTURE_SIZE = 4096  # bake texture side, pixels
MAX_RENDER_SIDE = 4096  # render / camera width and height, pixels
MAX_NAME_CHARS = 256  # asset name, characters
MIN_IMAGE_SIDE = 8  # generate / match_photo input image, pixels per side: smaller holds no object worth a 64^3 grid
MIN_OBJECT_PIXELS = 16  # pixels the object covers in its mask: a 4x4 object builds an asset, a 2x2 one ends in NaNs
MAX_ARCHIVE_FILES = 512  # files in a reconstruct request's G-buffer archive
MAX_ARCHIVE_UNPACKED_BYTES = 1024 * MiB  # their total size once unpacked

MAX_LIGHTS = 64  # lamps in one render request
MIN_GAUSSIANS = 1_000  # a generate request's "gaussians": fewer leave holes at any useful size
MAX_GAUSSIANS = 2_000_000  # ... and its ceiling (an asset of 2M Gaussians is ~0.5 GB in memory)

MAX_NDIM = 8  # dimensions of one array
MAX_NESTING = 32  # JSON nesting depth of content
MAX_ID_CHARS = 128  # msg_id, asset_id, job_id
MAX_MSG_TYPE_CHARS = 64

# Hard per-frame cap for the ZeroMQ socket (zmq.MAXMSGSIZE): a frame above it disconnects the peer before
# Python sees it. Slightly above MAX_ARRAY_BYTES so an oversize array within the cap still gets an error reply.
ZMQ_MAX_FRAME_BYTES = MAX_ARRAY_BYTES + 1 * MiB

NAMES = (
    "MAX_HEADER_BYTES", "MAX_CONTENT_BYTES", "MAX_BUFFERS", "MAX_ARRAY_BYTES", "MAX_IMAGE_SIDE", "MAX_ENV_SIDE",
    "MAX_VERTICES", "MAX_FACES", "MAX_TEXTURE_SIZE", "MAX_RENDER_SIDE", "MAX_NAME_CHARS",
    "MAX_ARCHIVE_FILES", "MAX_ARCHIVE_UNPACKED_BYTES", "MIN_IMAGE_SIDE", "MIN_OBJECT_PIXELS", "MAX_LIGHTS",
    "MIN_GAUSSIANS", "MAX_GAUSSIANS",
    "MAX_NDIM", "MAX_NESTING", "MAX_ID_CHARS", "MAX_MSG_TYPE_CHARS",
)


def as_dict() -> dict[str, int]:
    """All limits by name, as sent in the hello reply."""
    return {name: globals()[name] for name in NAMES}


def over(name: str, what: str) -> LimitExceeded:
    """The LimitExceeded for `what` (e.g. 'image is 9000x9000 pixels') over limit `name`."""
    return LimitExceeded(f"{what}; the limit {name} is {globals()[name]}")

# The asset library, turntables (issue 16)
MAX_TURNTABLE_FRAMES = 1440  # frames of one turntable video (a minute at 24 fps)
MAX_TURNTABLE_FPS = 120  # frames per second of a turntable video
NAMES = NAMES + ("MAX_TURNTABLE_FRAMES", "MAX_TURNTABLE_FPS")
