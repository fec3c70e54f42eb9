"""Field checks for request content: each returns the value the caller needs, converted once, or raises one exact
InvalidRequest (or LimitExceeded) that names the field and the limit."""

import math
import re

import numpy as np

from . import limits
from .errors import InvalidRequest

_ID_RE = re.compile(r"^[0-9A-Za-z_.\-]+$")


def _bad(where: str, expected: str, value) -> InvalidRequest:
    shown = f"array {value.dtype}{list(value.shape)}" if isinstance(value, np.ndarray) else f"{value!r:.60}"
    return InvalidRequest(f"{where} must be {expected}, got {shown}")


def require(content: dict, key: str, where: str = "content"):
    if not isinstance(content, dict):
        raise _bad(where, "an object", content)
    if key not in content or content[key] is None:
        raise InvalidRequest(f"{where} is missing the required field {key!r}")
    return content[key]


def as_str(value, where: str, max_chars: int, limit_name: str) -> str:
    if not isinstance(value, str):
        raise _bad(where, "a string", value)
    if len(value) > max_chars:
        raise limits.over(limit_name, f"{where} is {len(value)} characters")
    return value


def as_id(value, where: str) -> str:
    value = as_str(value, where, limits.MAX_ID_CHARS, "MAX_ID_CHARS")
    if not _ID_RE.match(value):
        raise InvalidRequest(f"{where} {value!r} is not an id (letters, digits, '_', '-', '.')")
    return value


def as_name(value, where: str) -> str:
    """An asset name as the artist may see it and the backend may file it: a string of at most MAX_NAME_CHARS whose
    path parts ('/', '\\', '.', '..') and control characters are dropped: '../../tmp/x/../y' -> 'tmp_x_y'."""
    value = as_str(value, where, limits.MAX_NAME_CHARS, "MAX_NAME_CHARS")
    value = "".join(c if c.isprintable() else " " for c in value)
    parts = [p.strip(" .") for p in re.split(r"[/\\:]+", value)]
    name = "_".join(p for p in parts if p)
    return name or "asset"


def as_choice(value, where: str, choices: tuple) -> str:
    if not isinstance(value, str) or value not in choices:  # (an array's `in` would be ambiguous, not False)
        raise InvalidRequest(f"{where} must be one of {', '.join(map(repr, choices))}, got {value!r:.60}")
    return value


def as_bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(where, "true or false", value)
    return value


def as_int(value, where: str, lo: int, hi: int, limit_name: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _bad(where, "an integer", value)
    value = int(value)
    if value > hi and limit_name:
        raise limits.over(limit_name, f"{where} is {value}")
    if not lo <= value <= hi:
        raise InvalidRequest(f"{where} must be between {lo} and {hi}, got {value}")
    return value


def as_float(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _bad(where, "a number", value)
    value = float(value)
    if not math.isfinite(value):
        raise InvalidRequest(f"{where} must be finite, got {value}")
    return value


def as_matrix(value, where: str, rows: int, cols: int) -> np.ndarray:
    """[rows, cols] float64 from nested lists or an array; finite."""
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _bad(where, f"a {rows}x{cols} matrix of numbers", value) from None
    if m.shape != (rows, cols):
        raise InvalidRequest(f"{where} must be a {rows}x{cols} matrix, got shape {list(m.shape)}")
    if not np.all(np.isfinite(m)):
        raise InvalidRequest(f"{where} contains NaN or infinite values")
    return m


def as_array(value, where: str, dtypes: tuple, ndim: int, last: tuple | None = None) -> np.ndarray:
    """A decoded array of one of `dtypes`, `ndim` dimensions, last dimension in `last` (if given)."""
    if not isinstance(value, np.ndarray):
        raise _bad(where, f"an array ({'/'.join(dtypes)}, {ndim}-D) sent as a buffer descriptor", value)
    if value.dtype.name not in dtypes:
        raise InvalidRequest(f"{where} must have dtype {' or '.join(dtypes)}, got {value.dtype.name}")
    if value.ndim != ndim or (last is not None and value.shape[-1] not in last):
        tail = f" with last dimension {' or '.join(map(str, last))}" if last else ""
        raise InvalidRequest(f"{where} must be {ndim}-D{tail}, got shape {list(value.shape)}")
    return value
