"""Files the add-on writes (imported GLBs and splat PLYs, turntable videos), without bpy: a folder only this user can
write, and exclusive creation that never follows or replaces what is already there (a link planted in a shared temp
folder included)."""

from __future__ import annotations

import os
import stat
import tempfile

PRIVATE_DIR_PREFIX = "relight-"  # <temp>/relight-<user id>: the add-on's own folder when the .blend is not saved
MAX_NAME_TRIES = 1000  # name.ext, name_1.ext, ... name_999.ext


class UnsafeFolder(OSError):
    """The private folder exists but is not ours alone (a link, another owner, writable by others)."""


def _user_id() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else (os.environ.get("USERNAME") or "user")


def private_dir(base: str | None = None) -> str:
    """<base or the temp folder>/relight-<user id>, created with mode 0700; refused (UnsafeFolder) when it is a
    symlink, belongs to another user, or others may write into it."""
    path = os.path.join(base or tempfile.gettempdir(), PRIVATE_DIR_PREFIX + _user_id())
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeFolder(f"{path} is not a plain folder (a link?); remove it and try again")
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        raise UnsafeFolder(f"{path} belongs to another user or others can write into it; remove it and try again")
    return path


def write_new_file(folder: str, name: str, data) -> str:
    """Write `data` (bytes-like) to a NEW file in `folder` named `name`, or name_1, name_2, ... when taken; never
    follows a symlink nor replaces an existing file (O_CREAT | O_EXCL | O_NOFOLLOW). Returns the path."""
    stem, ext = os.path.splitext(os.path.basename(name) or "relight_file")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for k in range(MAX_NAME_TRIES):
        path = os.path.join(folder, f"{stem}{'' if k == 0 else f'_{k}'}{ext}")
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(memoryview(data).cast("B"))
        return path
    raise FileExistsError(f"{MAX_NAME_TRIES} files named {stem}*{ext} exist in {folder} already; clear it")
