"""Protocol exceptions; each carries the short `ename` sent in error replies."""


class ProtocolError(Exception):
    """Base of every error the protocol reports to the peer; str(e) is the actionable evalue.

    `request_header` is the offending message's parsed header when it got that far (so the error reply can
    carry parent_id = its msg_id), else None.
    """

    request_header: dict | None = None

    @property
    def ename(self) -> str:
        return type(self).__name__


class MalformedMessage(ProtocolError):
    """Frames, header or content that cannot be parsed (bad framing, garbage JSON, bad array descriptor)."""


class VersionMismatch(ProtocolError):
    """The peer speaks another major protocol version."""


class LimitExceeded(ProtocolError):
    """A size is over one of the limits in limits.py; the message names the limit."""


class InvalidRequest(ProtocolError):
    """A request whose content is missing a field or has a field of the wrong type or value."""


class UnknownMessageType(ProtocolError):
    """A msg_type this side does not handle."""


class PipelineUnavailable(ProtocolError):
    """The backend's pipeline could not be loaded (a broken install); the message names the failed import."""


class GeneratorFailed(ProtocolError):
    """A mesh generator (Hunyuan3D-2, an external program) that is not available or did not produce a mesh."""


class KeyNotAllowed(ProtocolError):
    """A CURVE client whose public key left the server's allow-list after it connected (protocol 1.2)."""


class UnknownAsset(ProtocolError):
    """An asset_id that is not in the server's store."""


class UnknownWorld(ProtocolError):
    """A render's world_id that the server has not cached (never sent, or dropped from its cache): send the equirect
    again with the same world_id."""


class RemoteError(Exception):
    """An error reply received from the peer, raised on the client by Message.raise_for_status()."""

    def __init__(self, ename: str, evalue: str, traceback: str | None = None):
        super().__init__(f"{ename}: {evalue}")
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback


class Busy(ProtocolError):
    """A queue bound was reached (too many unfinished jobs of this client, or of all); the message names the
    limit. Try again when a job has finished."""
