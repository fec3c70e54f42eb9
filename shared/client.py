"""A small DEALER client: non-blocking poll() for Blender timers, blocking call() for tests and the CLI."""

import collections
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from .curve_keys import CurveKeys
from .envelope import Message, deserialize, serialize
from .errors import ProtocolError
from .messages import PROGRESS, make_request
from .vocabulary import DEFAULT_ENDPOINT

# ZMTP 3.1 heartbeats (PING/PONG), sent and answered by libzmq's own I/O threads, so a backend whose Python is busy
# still answers them: a connection without any traffic for TRANSPORT_HEARTBEAT_TIMEOUT_MS after a PING is closed
TRANSPORT_HEARTBEAT_IVL_MS = 1000
TRANSPORT_HEARTBEAT_TIMEOUT_MS = 1500  # so a dead peer is noticed within IVL + TIMEOUT = 2.5 s


_REFUSALS = (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
# the socket's one monitor: handshakes (refused: authentication; succeeded: connected) and disconnections
WATCHED_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
for _event in _REFUSALS:
    WATCHED_EVENTS |= _event


AUTH_FAILED = "authentication failed"  # how every handshake_failure() message starts


def handshake_failure_message(event: int, has_keys: bool) -> str:
    """What a failed ZMTP handshake means to the artist, by the monitor event that reported it."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return (f"{AUTH_FAILED}: the backend does not accept this machine's key; ask for this machine's public "
                "key (the .key file) to be put into the backend's authorized folder")
    if has_keys:
        return (f"{AUTH_FAILED}: the backend refused the encrypted handshake; check that the server public key is "
                "that backend's server.key, and that it runs with --keys")
    return (f"{AUTH_FAILED}: the backend only serves clients with keys; set the server public key and this "
            "machine's key pair (from `relight keys`) in the add-on preferences")

class AuthenticationFailed(ConnectionError):
    """The backend answered the connection but refused this client's CURVE handshake (wrong or missing key)."""


class Client:
    """One DEALER socket to a `relight serve` ROUTER. Not thread-safe: use it from one thread.

    request() queues a message and returns its msg_id at once; poll() returns whatever arrived (progress and
    replies, matched to requests by parent_id) without blocking unless given a timeout.
    """

    def __init__(self, endpoint: str | None = None, *, max_per_poll: int = 64, curve: CurveKeys | None = None):
        self._context = zmq.Context()
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None  # the socket monitor's PAIR end: handshakes and disconnections
        self._refused: str | None = None  # why the last handshake failed, until one succeeds
        self.curve = curve  # CURVE keys to encrypt and authenticate with; None for a backend without keys
        self._backlog: collections.deque[Message] = collections.deque()  # received during call() for others
        self.max_per_poll = max_per_poll  # bounds the work of one poll() so a UI timer stays short
        self.endpoint: str | None = None
        self.pending: set[str] = set()  # msg_ids of requests without a reply yet
        self._transport: collections.deque[str] = collections.deque(maxlen=64)  # for transport_events()
        if endpoint:
            self.connect(endpoint)

    # -------------------------------------------------------------------------------------- connection

    def connect(self, endpoint: str = DEFAULT_ENDPOINT) -> None:
        """(Re)connect to `endpoint`. Never blocks: ZeroMQ connects in the background and queues sends."""
        self._close_socket()
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.HEARTBEAT_IVL, TRANSPORT_HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, TRANSPORT_HEARTBEAT_TIMEOUT_MS)
        if self.curve is not None:
            sock.curve_serverkey = self.curve.server_public
            sock.curve_publickey = self.curve.public
            sock.curve_secretkey = self.curve.secret
        self._monitor = sock.get_monitor_socket(WATCHED_EVENTS)  # before connect(), so the first events are seen
        self._refused = None
        self._transport.clear()
        sock.connect(endpoint)
        self._socket, self.endpoint = sock, endpoint
        self.pending.clear()
        self._backlog.clear()

    def reconnect(self) -> None:
        """Drop the socket (and anything queued on it) and connect again: the Lazy Pirate recovery step."""
        if self.endpoint is None:
            raise RuntimeError("reconnect() before connect()")
        self.connect(self.endpoint)

    @property
    def connected(self) -> bool:
        return self._socket is not None

    def _close_socket(self) -> None:
        if self._monitor is not None:  # closed before the socket and the context (term() waits for it otherwise)
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _drain_monitor(self) -> None:
        """Read the monitor's events without blocking: a refused handshake sets why (until one succeeds), and
        handshakes and disconnections queue up for transport_events()."""
        while self._monitor is not None:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)["event"]
            except zmq.Again:
                break
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._refused = None
                self._transport.append("connected")
            elif event in _REFUSALS:
                self._refused = handshake_failure_message(event, self.curve is not None)
            else:
                self._transport.append("disconnected")

    def handshake_failure(self) -> str | None:
        """Why the backend refused this client's handshake ("authentication failed: ..."), from the socket monitor,
        or None: no refusal seen (a backend that does not answer at all is silent here). Never blocks."""
        self._drain_monitor()
        return self._refused

    def close(self) -> None:
        """Close the socket and context without waiting for unsent messages (LINGER=0)."""
        self._close_socket()
        if not self._context.closed:
            self._context.term()

    def transport_events(self) -> list[str]:
        """What happened to the connection since the last call, oldest first, without blocking: "connected"
        (handshake done) or "disconnected" (the peer closed it, died, or missed its heartbeats)."""
        self._drain_monitor()
        out = list(self._transport)
        self._transport.clear()
        return out

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- messaging

    def send(self, msg: Message) -> str:
        if self._socket is None:
            raise RuntimeError("client is not connected; call connect(endpoint) first")
        frames = serialize(msg)
        try:
            self._socket.send_multipart([b"", *frames], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            raise ConnectionError(f"cannot queue a message to {self.endpoint}: the send queue is full "
                                  "(is `relight serve` running?)") from None
        self.pending.add(msg.msg_id)
        return msg.msg_id

    def request(self, msg_type: str, content: dict | None = None, arrays: dict | None = None) -> str:
        """Send a request; return its msg_id. Numpy arrays anywhere in `content` travel as buffers;
        `arrays` adds more top-level array fields (merged into content)."""
        body = dict(content or {})
        body.update(arrays or {})
        return self.send(make_request(msg_type, body))

    def cancel(self, job_id: str) -> str:
        return self.request("cancel_request", {"job_id": job_id})

    def poll(self, timeout_ms: int = 0) -> list[Message]:
        """Messages received so far (at most max_per_poll). Waits up to timeout_ms for the first; 0 never blocks.
        A reply that cannot be decoded becomes a local error reply with the same parent_id, so no request
        waits forever on it."""
        out: list[Message] = []
        self.handshake_failure()  # keeps the monitor's queue short, so the latest handshake is what it reports
        while self._backlog and len(out) < self.max_per_poll:
            out.append(self._backlog.popleft())
        if self._socket is not None and not out:
            if timeout_ms > 0 and not self._socket.poll(timeout_ms, zmq.POLLIN):
                return out
            while len(out) < self.max_per_poll:
                try:
                    frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                msg = self._decode(frames)
                if msg is not None:
                    out.append(msg)
        return self._track(out)

    def wait_readable(self, timeout_ms: int) -> bool:
        """Block up to timeout_ms until a message can be received (or one is held back); True if so. For loops that
        would otherwise spin on poll() (benchmarks, tests); a UI timer never calls it."""
        if self._backlog:
            return True
        return self._socket is not None and bool(self._socket.poll(max(0, int(timeout_ms)), zmq.POLLIN))

    def _track(self, msgs: list[Message]) -> list[Message]:
        for m in msgs:
            if m.msg_type != PROGRESS and m.parent_id:
                self.pending.discard(m.parent_id)
        return msgs

    @staticmethod
    def _decode(frames: list) -> Message | None:
        parts = frames[1:] if frames and memoryview(frames[0]).nbytes == 0 else frames
        try:
            return deserialize(parts, peer="client")
        except ProtocolError as e:
            header = e.request_header
            if header is None or header.get("msg_type") == PROGRESS:
                return None  # nothing to route it to; a lost progress message is harmless
            content = {"status": "error", "ename": e.ename, "evalue": f"could not decode the server's reply: {e}"}
            return Message(header["msg_type"], content, parent_id=header.get("parent_id"))

    def call(self, msg_type: str, content: dict | None = None, arrays: dict | None = None, *,
             timeout: float = 30.0, on_progress=None) -> Message:
        """Send a request and block until its reply (tests and CLI only). Progress messages for it go to
        on_progress(msg); messages for other requests are kept for the next poll(). Raises TimeoutError."""
        msg_id = self.request(msg_type, content, arrays)
        return self.wait(msg_id, timeout=timeout, on_progress=on_progress)

    def wait(self, msg_id: str, *, timeout: float = 30.0, on_progress=None) -> Message:
        """Block until the reply to `msg_id` arrives (see call())."""
        deadline = time.monotonic() + timeout
        held: list[Message] = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    refused = self.handshake_failure()
                    if refused:
                        raise AuthenticationFailed(f"{self.endpoint}: {refused}")
                    raise TimeoutError(f"no reply to {msg_id} from {self.endpoint} within {timeout:.1f} s "
                                       "(is `relight serve` running?)")
                for m in self.poll(timeout_ms=max(1, int(left * 1000))):
                    if m.parent_id != msg_id:
                        held.append(m)
                    elif m.msg_type == PROGRESS:
                        if on_progress is not None:
                            on_progress(m)
                    else:
                        return m
        finally:
            self._backlog.extend(held)


def connect(endpoint: str = DEFAULT_ENDPOINT, curve: CurveKeys | None = None) -> Client:
    """A Client connected to `endpoint` (with CURVE keys when given)."""
    return Client(endpoint, curve=curve)
