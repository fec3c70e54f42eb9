"""Message <-> ZeroMQ frames: JSON header and content plus raw array buffers, validated against limits."""

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from . import limits
from .errors import MalformedMessage, ProtocolError, RemoteError
from .version import PROTOCOL_VERSION, check_compatible

# dtypes an array may travel as (numpy names); always little-endian on the wire
DTYPES = frozenset(
    ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32", "float64"]
)
HEADER_FIELDS = ("msg_id", "msg_type", "protocol_version", "parent_id", "date")


def new_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Message:
    """One protocol message. Arrays appear inside `content` as numpy arrays (decoded ones are read-only)."""

    msg_type: str
    content: dict = field(default_factory=dict)
    msg_id: str = field(default_factory=new_id)
    parent_id: str | None = None
    protocol_version: str = PROTOCOL_VERSION
    date: str = field(default_factory=now_iso)
    header_extra: dict = field(default_factory=dict)  # unknown header fields, kept and tolerated

    @property
    def header(self) -> dict:
        h = dict(self.header_extra)
        h.update(msg_id=self.msg_id, msg_type=self.msg_type, protocol_version=self.protocol_version,
                 parent_id=self.parent_id, date=self.date)
        return h

    @property
    def status(self) -> str | None:
        return self.content.get("status")

    @property
    def is_error(self) -> bool:
        return self.status == "error"

    def raise_for_status(self) -> "Message":
        """Raise RemoteError if this is an error reply; return self otherwise."""
        if self.is_error:
            raise RemoteError(str(self.content.get("ename", "Error")), str(self.content.get("evalue", "")),
                              self.content.get("traceback"))
        return self


# ---------------------------------------------------------------------------------------------- encoding

def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _dumps(obj, what: str) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_json_default).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise MalformedMessage(f"{what} cannot be encoded as JSON: {e}") from None


def _wire_dtype(name: str) -> np.dtype:
    return np.dtype(name).newbyteorder("<")  # no-op for 1-byte dtypes


def _wire_array(arr: np.ndarray, where: str) -> np.ndarray:
    """C-contiguous little-endian version of `arr` (copies only when it must)."""
    if arr.dtype.name not in DTYPES:
        raise MalformedMessage(f"array {where} has dtype {arr.dtype}; allowed dtypes are {', '.join(sorted(DTYPES))}")
    return np.asarray(arr, dtype=_wire_dtype(arr.dtype.name), order="C")  # keeps 0-d arrays 0-d


def pack_arrays(content: dict) -> tuple[dict, list]:
    """Replace every numpy array inside `content` (any depth) by a descriptor; return (content, buffers)."""
    buffers: list = []

    def walk(obj, where: str, depth: int):
        if depth > limits.MAX_NESTING:
            raise limits.over("MAX_NESTING", f"{where} nests deeper than {limits.MAX_NESTING} levels")
        if isinstance(obj, np.ndarray):
            arr = _wire_array(obj, where)
            if arr.nbytes > limits.MAX_ARRAY_BYTES:
                raise limits.over("MAX_ARRAY_BYTES", f"array {where} is {arr.nbytes} bytes")
            buffers.append(arr.reshape(-1).view(np.uint8))
            return {"buffer": len(buffers) - 1, "dtype": arr.dtype.name, "shape": list(arr.shape)}
        if isinstance(obj, dict):
            return {str(k): walk(v, f"{where}.{k}", depth + 1) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
        return obj

    packed = walk(content, "content", 0)
    if len(buffers) > limits.MAX_BUFFERS:
        raise limits.over("MAX_BUFFERS", f"message has {len(buffers)} arrays")
    return packed, buffers


def serialize(msg: Message) -> list:
    """[header, content, *buffers] frames (bytes / uint8 arrays usable with send_multipart(copy=False))."""
    header = _dumps(msg.header, "header")
    if len(header) > limits.MAX_HEADER_BYTES:
        raise limits.over("MAX_HEADER_BYTES", f"header is {len(header)} bytes")
    packed, buffers = pack_arrays(msg.content)
    content = _dumps(packed, "content")
    if len(content) > limits.MAX_CONTENT_BYTES:
        raise limits.over("MAX_CONTENT_BYTES", f"content JSON is {len(content)} bytes")
    return [header, content, *buffers]


# ---------------------------------------------------------------------------------------------- decoding

def _nbytes(frame) -> int:
    return memoryview(frame).nbytes


def _loads(frame, what: str):
    try:
        return json.loads(bytes(memoryview(frame)).decode("utf-8"))
    except UnicodeDecodeError as e:
        raise MalformedMessage(f"{what} frame is not UTF-8 ({e.reason} at byte {e.start})") from None
    except ValueError as e:
        raise MalformedMessage(f"{what} frame is not valid JSON: {e}") from None
    except RecursionError:
        raise limits.over("MAX_NESTING", f"{what} JSON nests too deeply") from None


def decode_header(frame) -> dict:
    """Parse and validate a header frame; returns the header dict (parent_id/date filled in if absent)."""
    size = _nbytes(frame)
    if size > limits.MAX_HEADER_BYTES:
        raise limits.over("MAX_HEADER_BYTES", f"header is {size} bytes")
    header = _loads(frame, "header")
    if not isinstance(header, dict):
        raise MalformedMessage(f"header must be a JSON object, got {type(header).__name__}")
    for key, cap in (("msg_id", limits.MAX_ID_CHARS), ("msg_type", limits.MAX_MSG_TYPE_CHARS)):
        value = header.get(key)
        if not isinstance(value, str) or not value:
            raise MalformedMessage(f"header field {key!r} must be a non-empty string, got {value!r:.80}")
        if len(value) > cap:
            name = "MAX_ID_CHARS" if key == "msg_id" else "MAX_MSG_TYPE_CHARS"
            raise limits.over(name, f"header {key} is {len(value)} characters")
    if "protocol_version" not in header:
        raise MalformedMessage(f"header has no 'protocol_version'; send \"protocol_version\": \"{PROTOCOL_VERSION}\"")
    parent = header.setdefault("parent_id", None)
    if parent is not None and not isinstance(parent, str):
        raise MalformedMessage(f"header field 'parent_id' must be a string or null, got {type(parent).__name__}")
    date = header.setdefault("date", "")
    if not isinstance(date, str):
        raise MalformedMessage(f"header field 'date' must be an ISO 8601 string, got {type(date).__name__}")
    return header


def _array_from(desc: dict, where: str, buffers: list) -> np.ndarray:
    for key in ("buffer", "dtype", "shape"):
        if key not in desc:
            raise MalformedMessage(f"array descriptor {where} lacks {key!r} (needs buffer, dtype and shape)")
    index, dtype, shape = desc["buffer"], desc["dtype"], desc["shape"]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(buffers):
        raise MalformedMessage(f"array {where} refers to buffer {index!r} but the message has {len(buffers)} buffer frames")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise MalformedMessage(f"array {where} has dtype {dtype!r:.40}; allowed dtypes are {', '.join(sorted(DTYPES))}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise MalformedMessage(f"array {where} shape must be a list of non-negative integers, got {shape!r:.80}")
    if len(shape) > limits.MAX_NDIM:
        raise limits.over("MAX_NDIM", f"array {where} has {len(shape)} dimensions")
    wire = _wire_dtype(dtype)
    # An empty array ([0, 10**20]) needs no bytes, but numpy cannot even describe it: its non-zero dimensions alone
    # must fit the limit, as they would for any array that could hold data.
    span = math.prod(n for n in shape if n) * wire.itemsize
    if 0 in shape and span > limits.MAX_ARRAY_BYTES:
        shown = f"{shape}" if len(str(shape)) <= 120 else f"with {len(shape)} dimensions"
        raise limits.over("MAX_ARRAY_BYTES", f"array {where} declares shape {shown} {dtype}, whose non-zero "
                                             f"dimensions alone span {span} bytes")
    count = math.prod(shape)
    need = count * wire.itemsize
    if need > limits.MAX_ARRAY_BYTES:
        raise limits.over("MAX_ARRAY_BYTES", f"array {where} of shape {shape} {dtype} would be {need} bytes")
    have = _nbytes(buffers[index])
    if have != need:
        raise MalformedMessage(f"array {where}: shape {shape} {dtype} needs {need} bytes but buffer {index} has {have}")
    arr = np.frombuffer(buffers[index], dtype=wire, count=count) if count else np.empty(0, dtype=wire)
    return arr.astype(wire.newbyteorder("="), copy=False).reshape(tuple(shape))


def unpack_arrays(content: dict, buffers: list) -> dict:
    """Replace every array descriptor inside `content` by the numpy array decoded from its buffer frame. A buffer
    frame no descriptor refers to is a MalformedMessage: the frame count disagrees with the content."""
    used: set[int] = set()

    def walk(obj, where: str, depth: int):
        if depth > limits.MAX_NESTING:
            raise limits.over("MAX_NESTING", f"{where} nests deeper than {limits.MAX_NESTING} levels")
        if isinstance(obj, dict):
            if "buffer" in obj:
                arr = _array_from(obj, where, buffers)
                used.add(obj["buffer"])
                return arr
            return {k: walk(v, f"{where}.{k}", depth + 1) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
        return obj

    out = walk(content, "content", 0)
    if len(used) != len(buffers):
        unused = sorted(set(range(len(buffers))) - used)
        raise MalformedMessage(f"the message has {len(buffers)} buffer frame(s) but its content refers to "
                               f"{len(used)}; no array descriptor refers to buffer(s) {unused[:8]}")
    return out


def deserialize(parts: list, peer: str = "server") -> Message:
    """[header, content, *buffers] frames -> Message. Raises ProtocolError subclasses naming the problem;
    once the header has parsed, the error's `request_header` is set so a reply can name its parent."""
    if len(parts) < 2:
        raise MalformedMessage(
            f"message has {len(parts)} frame(s) after the delimiter; expected [header, content, *buffers]"
        )
    header = decode_header(parts[0])
    try:
        check_compatible(header["protocol_version"], peer)
        buffers = list(parts[2:])
        if len(buffers) > limits.MAX_BUFFERS:
            raise limits.over("MAX_BUFFERS", f"message has {len(buffers)} buffer frames")
        for i, b in enumerate(buffers):
            if _nbytes(b) > limits.MAX_ARRAY_BYTES:
                raise limits.over("MAX_ARRAY_BYTES", f"buffer frame {i} is {_nbytes(b)} bytes")
        size = _nbytes(parts[1])
        if size > limits.MAX_CONTENT_BYTES:
            raise limits.over("MAX_CONTENT_BYTES", f"content JSON is {size} bytes")
        content = _loads(parts[1], "content")
        if not isinstance(content, dict):
            raise MalformedMessage(f"content must be a JSON object, got {type(content).__name__}")
        content = unpack_arrays(content, buffers)
    except ProtocolError as e:
        e.request_header = header
        raise
    extra = {k: v for k, v in header.items() if k not in HEADER_FIELDS}
    return Message(header["msg_type"], content, header["msg_id"], header["parent_id"], header["protocol_version"],
                   header["date"], extra)


def split_identities(frames: list) -> tuple[list, list]:
    """ROUTER side: [identities..., b"", *parts] -> (identities, parts). Raises MalformedMessage without the
    delimiter (the caller can still route a reply to frames[0], the identity ROUTER always prepends)."""
    for i, f in enumerate(frames):
        if _nbytes(f) == 0:
            if i == 0:
                break
            return list(frames[:i]), list(frames[i + 1:])
    raise MalformedMessage('frames lack the empty delimiter frame; a DEALER must send [b"", header, content, *buffers]')
