"""`relight serve`: the ZeroMQ ROUTER service. One socket thread; jobs run on worker threads and stream progress."""

import argparse
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

import zmq

from relight_protocol import limits
from relight_protocol.envelope import Message, deserialize, serialize, split_identities
from relight_protocol.errors import MalformedMessage, PipelineUnavailable, ProtocolError
from relight_protocol.messages import (JOB_ACTIONS, PROGRESS, error_reply_for, make_progress, make_reply,
                                       validate_request)
from relight_protocol.version import PROTOCOL_VERSION
from relight_protocol.vocabulary import DEFAULT_ENDPOINT

from .. import __version__
from .jobs import Cancelled, Job, JobWorker
from .store import default_store_dir

DEFAULT_BIND = DEFAULT_ENDPOINT
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
POLL_MS = 250  # socket-thread poll timeout: the longest a stop request waits to be seen
MAX_RECV_PER_TURN = 64  # requests handled before the outbox is flushed again


def is_loopback(endpoint: str) -> bool:
    """True for tcp://<loopback>:port and for ipc:// / inproc:// endpoints."""
    if not endpoint.startswith("tcp://"):
        return endpoint.startswith(("ipc://", "inproc://"))
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0]
    return host in LOOPBACK_HOSTS


def encode(msg: Message) -> list | None:
    """Frames for `msg`. A reply that cannot be encoded (over a limit, NaN in JSON) becomes an error reply with
    the same type and parent; such a progress message is dropped (None)."""
    try:
        return serialize(msg)
    except ProtocolError as e:
        if msg.msg_type == PROGRESS:
            return None
        content = {"status": "error", "ename": e.ename, "evalue": f"the server could not encode its reply: {e}"}
        return serialize(Message(msg.msg_type, content, parent_id=msg.parent_id))


# ---------------------------------------------------------------------------------------------- the service

class Server:
    """The ROUTER service. Only the thread that calls serve_forever() touches the socket; workers hand
    serialized frames to it through `_outbox` and wake it through a socket pair."""

    def __init__(self, bind: str = DEFAULT_BIND, store_dir: str | Path | None = None, *, out=None, generators=None):
        from ..generate.geometry.generators import GeneratorSettings

        self.bind = bind
        self.generators = generators or GeneratorSettings.from_environment()  # where hunyuan3d / command are
        self.store_dir = Path(store_dir) if store_dir else default_store_dir()
        self.out = out or sys.stdout
        self.endpoint: str | None = None
        self.device = "cpu"
        self._context = zmq.Context()
        self._socket: zmq.Socket | None = None
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()  # (identities, frames, finished job id | None)
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._stopping = threading.Event()
        self._jobs: dict[str, Job] = {}  # socket thread only: unfinished jobs by request msg_id
        self._workers = {"long": JobWorker("long"), "render": JobWorker("render")}
        self._handlers = None  # the service.handlers module once imported (it imports the whole product)
        self._handlers_error: str | None = None
        self._store = None
        self._instant = {"hello": self._on_hello, "ping": self._on_ping, "cancel": self._on_cancel}  # answered now

    # ------------------------------------------------------------------------------------------ lifecycle

    def log(self, text: str) -> None:
        print(f"relight serve: {text}", file=self.out, flush=True)

    def warm_up(self) -> None:
        """Import torch and the pipeline now, so the first request does not pay for it; learn the device."""
        try:
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        except Exception as e:  # noqa: BLE001 - report and keep serving protocol requests
            self.log(f"warning: torch is unavailable ({type(e).__name__}: {e}); using cpu")
        try:
            self.store
        except Exception as e:  # noqa: BLE001
            self.log(f"warning: the asset store at {self.store_dir} is unavailable ({type(e).__name__}: {e})")
        try:
            self._load_handlers()
        except PipelineUnavailable:
            pass  # logged; protocol requests still work and job requests get an error reply naming it

    def _load_handlers(self):
        """The service.handlers module (imported on first use; a failed import is retried next time)."""
        if self._handlers is None:
            try:
                from . import handlers
            except Exception as e:  # noqa: BLE001
                error = f"{type(e).__name__}: {e}"
                if error != self._handlers_error:
                    print(f"relight serve: the pipeline failed to import:\n{traceback.format_exc()}",
                          file=sys.stderr, flush=True)
                self._handlers_error = error
                raise PipelineUnavailable(f"the backend pipeline could not be loaded ({error}); "
                                          "see the server's log, then reinstall or update relight") from None
            self._handlers = handlers
        return self._handlers

    @property
    def store(self):
        """The AssetStore on store_dir (created on first use)."""
        if self._store is None:
            from .store import AssetStore  # noqa: PLC0415 (imports the asset format: numpy only)

            self._store = AssetStore(self.store_dir)
        return self._store

    def start(self) -> str:
        """Bind the socket; return the bound endpoint (a `:*` or `:0` port is resolved)."""
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, limits.ZMQ_MAX_FRAME_BYTES)
        sock.bind(self.bind)
        self._socket = sock
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        if not is_loopback(self.endpoint):
            self.log(f"warning: {self.endpoint} is reachable from other machines and has no authentication")
        return self.endpoint

    def stop(self) -> None:
        """Ask serve_forever() to return. Safe from signal handlers and other threads."""
        self._stopping.set()
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the socket thread already has a wake-up pending

    def serve_forever(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while not self._stopping.is_set():
            events = dict(poller.poll(POLL_MS))
            # pyzmq reports a plain socket by its file descriptor: look for both, or a pending wake-up byte is never
            # drained and the loop spins a core at 100 % from the first job on
            if self._wake_r in events or self._wake_r.fileno() in events:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
            self._flush_outbox()
            if self._socket in events:
                for _ in range(MAX_RECV_PER_TURN):
                    try:
                        frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._handle(frames)
                self._flush_outbox()
        self._shutdown()

    def _shutdown(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()
        for worker in self._workers.values():
            if not worker.stop(timeout=2.0):
                self.log(f"warning: the {worker.name} worker is still busy; exiting without it")
        self._flush_outbox()
        if self._socket is not None:
            self._socket.close(linger=0)
        self._context.term()
        self._wake_r.close()
        self._wake_w.close()
        self.log("stopped")

    # ------------------------------------------------------------------------------------------ socket thread

    def _send(self, identities: list, msg: Message) -> None:
        frames = encode(msg)
        if frames is not None:
            self._send_frames(identities, frames)

    def _send_frames(self, identities: list, frames: list) -> None:
        try:
            self._socket.send_multipart([*identities, b"", *frames], copy=False)
        except zmq.ZMQError as e:
            self.log(f"warning: could not send a reply ({e})")

    def _flush_outbox(self) -> None:
        while True:
            try:
                identities, frames, finished = self._outbox.get_nowait()
            except queue.Empty:
                return
            if frames is not None:
                self._send_frames(identities, frames)
            if finished is not None:
                self._jobs.pop(finished, None)

    def _handle(self, frames: list) -> None:
        """One incoming frame set -> exactly one reply now (hello, ping, cancel, errors) or a queued job."""
        try:
            identities, parts = split_identities(frames)
        except MalformedMessage as e:  # route the error to the identity ROUTER prepended
            self._send([frames[0].bytes], error_reply_for(e))
            return
        identities = [f.bytes for f in identities]
        msg = None
        try:
            msg = deserialize(parts)
            action, request = validate_request(msg)
        except ProtocolError as e:
            self._send(identities, error_reply_for(e, e.request_header or (msg.header if msg else None)))
            return
        except Exception as e:  # noqa: BLE001 - a bug in validation must not stop the server
            self._send(identities, error_reply_for(e, msg, with_traceback=True))
            return
        try:
            if action in JOB_ACTIONS:
                self._submit(identities, msg, action, request)
            else:
                self._send(identities, make_reply(msg, self._instant[action](request)))
        except ProtocolError as e:  # expected: a named error the client can act on, no traceback
            self._send(identities, error_reply_for(e, msg))
        except Exception as e:  # noqa: BLE001
            self._send(identities, error_reply_for(e, msg, with_traceback=True))

    def _on_hello(self, request: dict) -> dict:
        return {
            "server_version": __version__,
            "protocol_version": PROTOCOL_VERSION,
            "device": self.device,
            "capabilities": ["generate", "reconstruct", "match_photo", "render", "bake", "cancel"],
            "providers": self._providers(),
            "limits": limits.as_dict(),
            "pipeline_ok": self._handlers is not None,
        }

    def _providers(self) -> list[str]:
        """The geometry providers this machine can run (file checks only: cheap enough for every hello)."""
        from ..generate.geometry.generators import available_providers

        return available_providers(self.generators)

    def _on_ping(self, request: dict) -> dict:
        return {"time": time.time()}

    def _on_cancel(self, request: dict) -> dict:
        job = self._jobs.get(request["job_id"])
        if job is None:
            return {"cancelled": False,
                    "message": f"no unfinished job {request['job_id']!r} (it finished already or never existed)"}
        cancelled = job.cancel()
        self._flush_outbox()
        return {"cancelled": cancelled, "message": f"{job.action} job {job.id} {'cancelled' if cancelled else 'had finished'}"}

    def _submit(self, identities: list, msg: Message, action: str, request: dict) -> None:
        if msg.msg_id in self._jobs:
            raise MalformedMessage(f"a job with msg_id {msg.msg_id} is already running; use a fresh uuid per request")
        handler = self._load_handlers().JOB_HANDLERS[action]  # raises PipelineUnavailable naming a failed import

        def on_progress(job: Job, stage: str, fraction: float, message: str) -> None:
            self._post(identities, make_progress(job.id, stage, fraction, message))

        def on_finish(job: Job, content: dict | None, error: BaseException | None) -> None:
            if error is None:
                reply = make_reply(msg, content)
            else:
                expected = isinstance(error, (Cancelled, ProtocolError))
                if not expected:
                    print(f"relight serve: {action} job {job.id} failed:\n"
                          + "".join(traceback.format_exception(error)), file=sys.stderr, flush=True)
                reply = error_reply_for(error, msg, with_traceback=not expected)
            self._post(identities, reply, finished=job.id)

        job = Job(msg.msg_id, action, lambda progress: handler(self, request, progress),
                  on_progress=on_progress, on_finish=on_finish)
        self._jobs[job.id] = job
        self._workers["render" if action == "render" else "long"].submit(job)

    # ------------------------------------------------------------------------------------------ worker threads

    def _post(self, identities: list, msg: Message, finished: str | None = None) -> None:
        """Serialize on the calling (worker) thread and hand the frames to the socket thread."""
        frames = encode(msg)
        if frames is not None:
            self._outbox.put((identities, frames, finished))
        elif finished is not None:
            self._outbox.put(([], None, finished))
        self._wake()

    def asset(self, asset_id: str):
        """A stored asset (from the store's in-memory cache when hot); UnknownAsset names the store otherwise."""
        return self.store.get(asset_id)


# ---------------------------------------------------------------------------------------------- entry points

def serve(bind: str = DEFAULT_BIND, store_dir: str | Path | None = None, *, install_signals: bool = True,
          model_path: str | None = None, generator_cmd: str | None = None, hunyuan_steps: int | None = None,
          octree_resolution: int | None = None) -> int:
    """Run the service until SIGINT/SIGTERM. Prints 'relight serve: listening on <endpoint>' once ready."""
    # The renderer's OpenMP threads sleep between kernels instead of spinning (libgomp spins for a while by
    # default): on 2 cores shared with Blender, the spinning starved the add-on and the server's own serial steps
    # (`relight bench --addon`: 7 -> 19 fps, p95 210 -> 61 ms). Set before OpenMP loads, unless already chosen.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..generate.geometry.command import GeneratorError, check_template
    from ..generate.geometry.generators import GeneratorSettings

    if generator_cmd:
        try:
            check_template(generator_cmd)
        except GeneratorError as e:
            print(f"relight serve: {e}", file=sys.stderr, flush=True)
            return 2
    settings = GeneratorSettings.from_environment(model_path, generator_cmd, hunyuan_steps, octree_resolution)
    server = Server(bind, store_dir, generators=settings)
    server.log(f"store {server.store_dir}")
    server.log(f"geometry providers: {', '.join(server._providers())}")
    server.warm_up()
    try:
        endpoint = server.start()
    except zmq.ZMQError as e:
        print(f"relight serve: cannot bind {bind}: {e}; is another `relight serve` running? "
              "choose another port with --bind tcp://127.0.0.1:PORT", file=sys.stderr, flush=True)
        return 2
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: server.stop())
    server.log(f"listening on {endpoint}")
    server.serve_forever()
    return 0


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `serve` subcommand; its handler is args.func(args) -> exit code."""
    p = subparsers.add_parser("serve", help="run the backend service for the Blender add-on (ZeroMQ)",
                              description="Run the Relight backend service (ZeroMQ ROUTER).")
    p.add_argument("--bind", default=DEFAULT_BIND,
                   help=f"ZeroMQ endpoint to bind (default {DEFAULT_BIND}; a port of * or 0 picks a free one; "
                        "binding a non-loopback address exposes the service without authentication)")
    p.add_argument("--store", default=None, type=Path,
                   help="folder of stored assets (default $RELIGHT_STORE_DIR or ~/.cache/relight/assets)")
    p.add_argument("--model-path", default=None,
                   help="Hunyuan3D-2's models folder (default $HY3DGEN_MODELS or ~/.cache/hy3dgen); the hunyuan3d "
                        "provider is offered when the `hunyuan` extra is installed and the weights are there")
    p.add_argument("--generator-cmd", default=None,
                   help="an external mesh generator, offered as the `command` provider: a command line with {image} "
                        "(the object's PNG) and {mesh} or {mesh.obj|.ply|.stl} (the file it writes); default "
                        "$RELIGHT_GENERATOR_CMD")
    p.add_argument("--hunyuan-steps", type=int, default=None, help="Hunyuan3D-2's sampling steps (default 30)")
    p.add_argument("--octree-resolution", type=int, default=None,
                   help="Hunyuan3D-2's surface grid cells per side (default 256; about 128 on a CPU)")
    p.set_defaults(func=lambda args: serve(args.bind, args.store, model_path=args.model_path,
                                           generator_cmd=args.generator_cmd, hunyuan_steps=args.hunyuan_steps,
                                           octree_resolution=args.octree_resolution))
    return p
