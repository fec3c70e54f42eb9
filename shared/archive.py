"""A folder of files as one zip buffer: how a multi-view G-buffer set crosses the wire (reconstruct_request), so the
server reads it with the same loader the CLI uses on the folder itself. Stdlib only; unpacking is bounded (entry
count, total size, names that stay inside the destination), so a hostile archive gets a clear error, not a full
disk."""

import io
import zipfile
from pathlib import Path, PurePosixPath

from . import limits
from .errors import InvalidRequest


def pack_folder(folder) -> bytes:
    """Every regular file directly inside `folder` (the G-buffer sets are flat) -> zip bytes (stored, not
    compressed: PNG and EXR are compressed already). Raises InvalidRequest when there is nothing to send."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []
    if not files:
        raise InvalidRequest(f"{folder} is not a folder of G-buffer images (no files in it)")
    if len(files) > limits.MAX_ARCHIVE_FILES:
        raise limits.over("MAX_ARCHIVE_FILES", f"{folder} holds {len(files)} files")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for p in files:
            z.write(p, p.name)
    return buf.getvalue()


def unpack_archive(data: bytes, dest) -> list[str]:
    """Zip bytes -> files written flat into the existing folder `dest`; returns their names. Raises InvalidRequest
    for a buffer that is not a zip, or an entry in a sub-folder / with an unsafe name, and LimitExceeded over
    MAX_ARCHIVE_FILES entries or MAX_ARCHIVE_UNPACKED_BYTES in total (checked against what is actually read, not
    only the sizes the archive declares)."""
    dest = Path(dest)
    try:
        z = zipfile.ZipFile(io.BytesIO(bytes(data)))
    except zipfile.BadZipFile:
        raise InvalidRequest("archive is not a zip file (send the G-buffer folder packed by relight_protocol.archive)") from None
    with z:
        entries = [i for i in z.infolist() if not i.is_dir()]
        if not entries:
            raise InvalidRequest("archive holds no files")
        if len(entries) > limits.MAX_ARCHIVE_FILES:
            raise limits.over("MAX_ARCHIVE_FILES", f"archive holds {len(entries)} files")
        total, names = 0, []
        for info in entries:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if len(name.parts) != 1 or name.name in ("", ".", "..") or name.name.startswith("."):
                raise InvalidRequest(f"archive entry {info.filename!r} is not a plain file name (the G-buffer "
                                     "folder is flat)")
            total += info.file_size
            if total > limits.MAX_ARCHIVE_UNPACKED_BYTES:
                raise limits.over("MAX_ARCHIVE_UNPACKED_BYTES", "archive unpacks to more than that")
            with z.open(info) as src, open(dest / name.name, "wb") as out:
                written = 0
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size or total - info.file_size + written > limits.MAX_ARCHIVE_UNPACKED_BYTES:
                        raise limits.over("MAX_ARCHIVE_UNPACKED_BYTES", f"archive entry {name.name!r} unpacks past its declared size")
                    out.write(chunk)
            names.append(name.name)
        return names
