"""Relight wire protocol v1: ZeroMQ multipart envelope, array buffers, message types and limits.

Stdlib + numpy only (client.py alone needs pyzmq and is not imported here); imports stay relative so the
add-on can vendor this folder as a sub-package.
"""

from . import limits
from .envelope import Message, deserialize, new_id, serialize, split_identities
from .errors import (InvalidRequest, LimitExceeded, MalformedMessage, ProtocolError, RemoteError, UnknownAsset,
                     UnknownMessageType, VersionMismatch)
from .messages import (ACTIONS, ERROR_REPLY, JOB_ACTIONS, PROGRESS, make_error_reply, make_progress, make_reply,
                       make_request, reply_type, validate_request)
from .version import PROTOCOL_VERSION, check_compatible, parse_version

__all__ = [
    "limits", "Message", "deserialize", "new_id", "serialize", "split_identities",
    "InvalidRequest", "LimitExceeded", "MalformedMessage", "ProtocolError", "RemoteError", "UnknownAsset",
    "UnknownMessageType", "VersionMismatch",
    "ACTIONS", "ERROR_REPLY", "JOB_ACTIONS", "PROGRESS", "make_error_reply", "make_progress", "make_reply",
    "make_request", "reply_type", "validate_request",
    "PROTOCOL_VERSION", "check_compatible", "parse_version",
]
