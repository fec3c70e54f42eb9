"""Video files: frames -> an H.264 mp4 in memory, with PyAV (FFmpeg's libraries, shipped in its wheel)."""

import io
from collections.abc import Iterable

import numpy as np

VIDEO_CRF = 18  # H.264 constant rate factor: visually lossless for renders (lower = larger, better)


class VideoError(ValueError):
    """Frames that cannot become a video (odd size, mismatched sizes, none at all)."""


def encode_mp4(frames: Iterable[np.ndarray], fps: int = 24, crf: int = VIDEO_CRF) -> bytes:
    """[H, W, 3|4] uint8 sRGB frames (alpha dropped; H and W even, as yuv420p needs) -> the bytes of an mp4
    (H.264, yuv420p, `fps` frames per second)."""
    import av  # noqa: PLC0415 (a few MB of FFmpeg: loaded when a video is made)

    buf = io.BytesIO()
    stream = None
    count = 0
    with av.open(buf, mode="w", format="mp4") as container:
        for frame in frames:
            frame = np.asarray(frame)
            if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
                raise VideoError(f"a video frame must be [H, W, 3|4] uint8, got {frame.dtype}{list(frame.shape)}")
            h, w = frame.shape[:2]
            if stream is None:
                if h % 2 or w % 2:
                    raise VideoError(f"an H.264 video needs an even width and height, got {w}x{h}")
                stream = container.add_stream("libx264", rate=int(fps))
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                stream.options = {"crf": str(int(crf))}
            elif (h, w) != (stream.height, stream.width):
                raise VideoError(f"frame {count} is {w}x{h}, the video is {stream.width}x{stream.height}")
            rgb = np.ascontiguousarray(frame[..., :3])
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
            count += 1
        if stream is None:
            raise VideoError("no frames to encode")
        for packet in stream.encode():  # flush the encoder
            container.mux(packet)
    return buf.getvalue()


def decode_video(data: bytes) -> np.ndarray:
    """The frames of a video file's bytes -> [T, H, W, 3] uint8 RGB (for checks and tests)."""
    import av  # noqa: PLC0415

    with av.open(io.BytesIO(data), mode="r") as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
