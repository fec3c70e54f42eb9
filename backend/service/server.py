"""`relight serve`: the ZeroMQ ROUTER service. One socket thread; jobs run on worker threads and stream progress."""

import queue
import socket
import sys
import threading
import time
import traceback
import uuid
from dataclasses import replace
from pathlib import Path

import zmq

from relight_protocol import limits
from relight_protocol.client import TRANSPORT_HEARTBEAT_IVL_MS, TRANSPORT_HEARTBEAT_TIMEOUT_MS
from relight_protocol.envelope import Message, deserialize, serialize, split_identities
from relight_protocol.errors import KeyNotAllowed, MalformedMessage, PipelineUnavailable, ProtocolError
from relight_protocol.messages import (JOB_ACTIONS, PROGRESS, error_reply_for, make_progress, make_reply,
                                       validate_request)
from relight_protocol.version import PROTOCOL_VERSION
from relight_protocol.vocabulary import DEFAULT_ENDPOINT

from .. import __version__
from .jobs import Cancelled, Job
from .liveness import LivenessSettings, Peers
from .scheduler import QueueSettings, Scheduler
from .store import default_store_dir

DEFAULT_BIND = DEFAULT_ENDPOINT
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
POLL_MS = 250  # socket-thread poll timeout: the longest a stop request waits to be seen
MAX_RECV_PER_TURN = 64  # requests handled before the outbox is flushed again


class InsecureBind(Exception):
    """A bind other machines could reach, without keys and without --insecure."""


def insecure_bind_message(bind: str) -> str:
    return (f"refusing to serve {bind} without authentication: anyone who can reach this machine could use it "
            "(and read what is sent). Create keys with `relight keys --out KEYS --clients NAME ...` and start "
            f"`relight serve --bind {bind} --keys KEYS`, or bind tcp://127.0.0.1 and use an SSH tunnel; "
            "add --insecure only on a network you trust completely")


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
    except Exception as e:  # noqa: BLE001 - a ProtocolError, or a handler's bug (content JSON cannot hold)
        if msg.msg_type == PROGRESS:
            return None
        ename = e.ename if isinstance(e, ProtocolError) else "InternalError"
        content = {"status": "error", "ename": ename, "evalue": f"the server could not encode its reply: {e}"}
        return serialize(Message(msg.msg_type, content, parent_id=msg.parent_id))


# ---------------------------------------------------------------------------------------------- the service

class Server:
    """The ROUTER service. Only the thread that calls serve_forever() touches the socket; workers hand
    serialized frames to it through `_outbox` and wake it through a socket pair."""

    def __init__(self, bind: str = DEFAULT_BIND, store_dir: str | Path | None = None, *, out=None, generators=None,
                 keys_dir: str | Path | None = None, insecure: bool = False, cluster=None,
                 queues: QueueSettings | None = None, liveness: LivenessSettings | None = None):
        from ..generate.geometry.generators import GeneratorSettings

        self.bind = bind
        self.keys_dir = Path(keys_dir) if keys_dir else None  # CURVE keys (service/keys.py): server pair + allow-list
        self.insecure = insecure  # serve a non-loopback address without keys, as asked for
        self._allow_list = None  # keys.AllowList once started with keys
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
        self.cluster = cluster  # a cluster.RayCluster running the jobs' work, or None: this process runs it
        if cluster is not None:  # as many jobs in flight as the cluster has workers
            q, n = queues or QueueSettings(), len(cluster.actors)
            queues = replace(q, long_threads=max(q.long_threads, n), render_threads=max(q.render_threads, n))
        self._scheduler = Scheduler(queues)  # fair, bounded lanes: long jobs and a small render pool
        self._workers = self._scheduler.lanes
        self._peers = Peers(liveness)  # heartbeating clients, and when each was last heard
        self._next_housekeeping = 0.0
        self._instance = uuid.uuid4().hex  # this process: a client seeing another one knows its jobs are gone
        from .warm import Warmer  # noqa: PLC0415

        self._warmer = Warmer()  # started by warm_up(): the default HDRI, BRDF tables, shading kernels
        self._handlers = None  # the service.handlers module once imported (it imports the whole product)
        self._handlers_error: str | None = None
        self._store = None
        self._instant = {"hello": self._on_hello, "ping": self._on_ping, "cancel": self._on_cancel}  # answered now
        self._instant.update({"list_assets": self._on_list_assets, "delete_asset": self._on_delete_asset})

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
        else:
            if self.cluster is None:  # (a cluster's workers warm themselves: cluster.PipelineWorker)
                self._warmer.start()  # in the background: the socket answers meanwhile, hello says what is warm

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
        """Bind the socket; return the bound endpoint (a `:*` or `:0` port is resolved). With keys, only allow-listed
        CURVE clients get through; a non-loopback bind without keys raises InsecureBind unless `insecure`."""
        if self.keys_dir is None and not self.insecure and not is_loopback(self.bind):
            raise InsecureBind(insecure_bind_message(self.bind))
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, limits.ZMQ_MAX_FRAME_BYTES)
        if self.keys_dir is not None:
            self._start_curve(sock)
        sock.setsockopt(zmq.HEARTBEAT_IVL, TRANSPORT_HEARTBEAT_IVL_MS)  # ZMTP PING/PONG by libzmq, GIL or not:
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, TRANSPORT_HEARTBEAT_TIMEOUT_MS)  # a dead client's link is closed
        sock.bind(self.bind)
        self._socket = sock
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        if not is_loopback(self.endpoint) and self.keys_dir is None:
            self.log(f"warning: {self.endpoint} is reachable from other machines and has no authentication (--insecure)")
        return self.endpoint

    def _start_curve(self, sock: zmq.Socket) -> None:
        """The server's key pair on `sock` and the ZAP allow-list (reloaded when its folder changes)."""
        from .keys import AllowList, load_server_keys, make_curve_server

        public, secret, allow_dir = load_server_keys(self.keys_dir)  # KeysError names what is missing
        self._allow_list = AllowList(self._context, allow_dir, log=self.log)
        self._allow_list.start()
        make_curve_server(sock, public, secret)
        self.log(f"CURVE encryption and authentication on; server public key {public.decode()}")

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
            self._housekeeping()
        self._shutdown()

    def _shutdown(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()
        for worker in self._workers.values():
            if not worker.stop(timeout=2.0):
                self.log(f"warning: the {worker.name} worker is still busy; exiting without it")
        if self.cluster is not None:
            self.cluster.shutdown()
        self._flush_outbox()
        if self._socket is not None:
            self._socket.close(linger=0)
        if self._allow_list is not None:
            self._allow_list.stop()
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
            if self._allow_list is not None and not self._allow_list.admits(frames[-1]):
                raise KeyNotAllowed("authentication failed: this machine's key was removed from the backend's "
                                    "allow-list; ask for its .key file to be put back into the authorized folder")
            action, request = validate_request(msg)
        except ProtocolError as e:
            self._send(identities, error_reply_for(e, e.request_header or (msg.header if msg else None)))
            return
        except Exception as e:  # noqa: BLE001 - a bug in validation must not stop the server
            self._log_failure("validating a request", e)
            self._send(identities, error_reply_for(e, msg))
            return
        self._peers.seen(identities[0], heartbeat=action == "ping")
        try:
            if action in JOB_ACTIONS:
                self._submit(identities, msg, action, request)
            else:
                self._send(identities, make_reply(msg, self._instant[action](request)))
        except ProtocolError as e:  # expected: a named error the client can act on, no traceback
            self._send(identities, error_reply_for(e, msg))
        except Exception as e:  # noqa: BLE001
            self._log_failure(f"handling {msg.msg_type}", e)
            self._send(identities, error_reply_for(e, msg))

    @staticmethod
    def _log_failure(what: str, error: BaseException) -> None:
        """An unexpected error's traceback goes to the server's log (stderr); its reply names only the error."""
        print(f"relight serve: {what} failed:\n" + "".join(traceback.format_exception(error)), file=sys.stderr,
              flush=True)

    def _on_hello(self, request: dict) -> dict:
        return {
            "server_version": __version__,
            "protocol_version": PROTOCOL_VERSION,
            "device": self.device,
            "capabilities": ["generate", "reconstruct", "match_photo", "render", "bake", "cancel"],
            "providers": self._providers(),
            "limits": limits.as_dict(),
            "pipeline_ok": self._handlers is not None,
            "curve": self._allow_list is not None,  # (protocol 1.2) encrypted, allow-listed clients only
            **({"cluster": self.cluster.describe()} if self.cluster is not None else {}),
            **self._service_info(),
        }

    def _providers(self) -> list[str]:
        """The geometry providers this machine can run (file checks only: cheap enough for every hello)."""
        from ..generate.geometry.generators import available_providers

        return available_providers(self.generators)

    def _on_ping(self, request: dict) -> dict:
        return {"time": time.time(), "instance": self._instance}

    def _on_list_assets(self, request: dict) -> dict:
        from .library import list_assets  # noqa: PLC0415 (numpy and the store only)

        return list_assets(self.store)

    def _on_delete_asset(self, request: dict) -> dict:
        from .library import delete_asset  # noqa: PLC0415

        return delete_asset(self.store, request["asset_id"])

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
                reply = error_reply_for(error, msg)  # never a traceback: it was logged above
            self._post(identities, reply, finished=job.id)

        peer = identities[0]
        self._scheduler.admit(peer)  # raises Busy naming the bound

        def finish(job: Job, content: dict | None, error: BaseException | None) -> None:
            self._scheduler.release(peer)
            try:
                on_finish(job, content, error)
            except Exception as e:  # noqa: BLE001 - the reply itself failed: say so rather than stay silent
                self._post(identities, error_reply_for(e, msg), finished=job.id)

        if self.cluster is None:
            work = lambda progress: handler(self, request, progress)  # noqa: E731
        else:
            work = lambda progress: self._run_on_cluster(job, request, progress)  # noqa: E731
        job = Job(msg.msg_id, action, work, on_progress=on_progress, on_finish=finish)
        job.peer = peer
        self._jobs[job.id] = job
        self._scheduler.submit(job)

    def _service_info(self) -> dict:
        """What hello says of heartbeats, queue bounds and start-up warming."""
        return {"instance": self._instance, "heartbeat": self._peers.settings.as_dict(),
                "queue": self._scheduler.settings.as_dict(), "warm": self._warmer.status() if self.cluster is None else self.cluster.warm_status()}

    def _housekeeping(self) -> None:
        """Socket thread, about every keepalive_s / 4: a keepalive progress for each running job silent for
        keepalive_s (so a healthy job in one long step is never taken for dead); cancel the unfinished jobs of
        heartbeating clients that went silent."""
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        settings = self._peers.settings
        self._next_housekeeping = now + settings.keepalive_s / 4
        for job in list(self._jobs.values()):
            job.keepalive(now, settings.keepalive_s)  # through the job's on_progress, behind its own messages
        gone = set(self._peers.expired(now))
        for job in list(self._jobs.values()):
            if job.peer in gone and job.cancel():
                self.log(f"client went silent for {settings.client_timeout_s:.0f} s; cancelled its {job.action} "
                         f"job {job.id}")
        self._flush_outbox()

    def _run_on_cluster(self, job: Job, request: dict, progress) -> dict:
        """A job's work on the cluster worker holding its asset, else the least busy one (a lane thread)."""
        k = self.cluster.choose(request)
        try:
            return self.cluster.run(k, job, request, progress, self.store)
        finally:
            self.cluster.done(k)

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
