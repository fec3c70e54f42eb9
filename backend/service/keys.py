"""CURVE keys for `relight serve` (pyzmq's own zmq.auth): `relight keys` writes them; the server loads its key pair
and lets in only the client public keys in the allow-list folder, re-read whenever that folder changes."""

import argparse
import os
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

RELOAD_INTERVAL = 1.0  # seconds between looks at the allow-list folder
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class KeysError(ValueError):
    """A keys folder that cannot be used; the message says what to run or copy."""


@dataclass(frozen=True)
class KeyLayout:
    """Where each key of a keys folder lives:

    server/server.key          the server's public key: copy it to every artist's machine
    server/server.key_secret   the server's secret key: never leaves the server
    authorized/<name>.key      the allow-list: public keys of the clients the server lets in
    clients/<name>.key_secret  one artist's key pair (public and secret): copy it to that artist's machine only
    clients/<name>.key         the same artist's public key alone (the copy in authorized/ is what counts)
    """

    root: Path

    @property
    def server_public(self) -> Path:
        return self.root / "server" / "server.key"

    @property
    def server_secret(self) -> Path:
        return self.root / "server" / "server.key_secret"

    @property
    def authorized(self) -> Path:
        return self.root / "authorized"

    @property
    def clients(self) -> Path:
        return self.root / "clients"


def create_keys(out: str | Path, clients: list[str]) -> KeyLayout:
    """Write the server's key pair (kept when it exists, so adding clients never locks the others out) and a key pair
    per client name, whose public key also goes into the allow-list."""
    layout = KeyLayout(Path(out))
    for name in clients:
        if not _CLIENT_NAME.match(name):
            raise KeysError(f"client name {name!r} must be 1-64 letters, digits, '_' or '-' (it names the key files)")
    if not layout.server_secret.exists():
        layout.server_secret.parent.mkdir(parents=True, exist_ok=True)
        _, secret = zmq.auth.create_certificates(layout.server_secret.parent, "server")
        os.chmod(secret, 0o600)  # zmq.auth writes it with the umask's mode: readable by everyone on most systems
    layout.authorized.mkdir(parents=True, exist_ok=True)
    layout.clients.mkdir(parents=True, exist_ok=True)
    for name in clients:
        if (layout.clients / f"{name}.key_secret").exists():
            raise KeysError(f"a key pair for client {name!r} exists already in {layout.clients}; pick another name "
                            f"or delete its two files first")
        public, secret = zmq.auth.create_certificates(layout.clients, name)
        os.chmod(secret, 0o600)
        shutil.copyfile(public, layout.authorized / f"{name}.key")
    return layout


def load_server_keys(keys_dir: str | Path) -> tuple[bytes, bytes, Path]:
    """(public, secret, allow-list folder) of a keys folder; KeysError names what is missing and how to make it."""
    layout = KeyLayout(Path(keys_dir))
    if not layout.server_secret.is_file():
        raise KeysError(f"{layout.server_secret} does not exist; create the keys with `relight keys --out "
                        f"{layout.root} --clients NAME ...`")
    try:
        public, secret = zmq.auth.load_certificate(layout.server_secret)
    except (OSError, ValueError) as e:
        raise KeysError(f"{layout.server_secret} is not a key pair written by `relight keys` ({e})") from None
    if not secret:
        raise KeysError(f"{layout.server_secret} holds no secret key; give the server's .key_secret file")
    if not layout.authorized.is_dir():
        raise KeysError(f"the allow-list folder {layout.authorized} does not exist; `relight keys --out "
                        f"{layout.root} --clients NAME` makes it")
    return public, secret, layout.authorized


def allowed_keys(folder: Path) -> list[str]:
    """The public-key files of the allow-list folder."""
    return sorted(p.name for p in folder.glob("*.key"))


class AllowList:
    """A ZAP authenticator (zmq.auth's ThreadAuthenticator) that lets in the CURVE clients whose public keys are in
    `folder`, and a small thread that re-reads the folder when its listing or a file's mtime changes."""

    def __init__(self, context: zmq.Context, folder: Path, log=print, interval: float = RELOAD_INTERVAL):
        self.folder = Path(folder)
        self.log = log
        self.interval = interval
        self._auth = ThreadAuthenticator(context)
        self._seen: tuple | None = None
        self._keys: frozenset[str] = frozenset()  # Z85 public keys let in now (ZAP checks new connections only)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="relight-allow-list", daemon=True)

    def _signature(self) -> tuple:
        """What changes when a key is added, removed or rewritten: (name, mtime_ns, size) per .key file."""
        try:
            return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in self.folder.glob("*.key")))
        except OSError:
            return ()

    def reload_if_changed(self) -> bool:
        """Re-read the allow-list when it changed since the last look; True when it did."""
        seen = self._signature()
        if seen == self._seen:
            return False
        self._auth.configure_curve(domain="*", location=str(self.folder))  # zmq.auth reloads the folder's keys
        try:
            self._keys = frozenset(k.decode("ascii") for k in zmq.auth.load_certificates(str(self.folder)))
        except (OSError, ValueError) as e:  # a half-written key file: keep the last good list, look again next time
            self.log(f"warning: could not read the allow-list {self.folder} ({e}); keeping the previous one")
            return False
        first = self._seen is None
        self._seen = seen
        self.log(f"{'allow-list' if first else 'allow-list changed'}: {len(seen)} client key(s) in {self.folder}")
        return True

    def admits(self, frame: zmq.Frame) -> bool:
        """Whether the client that sent `frame` (its CURVE key, ZAP's User-Id) is still in the allow-list: a key
        removed after its owner connected is refused from its next message on, not only at its next connection."""
        try:
            return frame.get("User-Id") in self._keys
        except zmq.ZMQError:  # no metadata on this frame
            return False

    def start(self) -> None:
        self._auth.start()
        self.reload_if_changed()
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.reload_if_changed()
            except Exception as e:  # noqa: BLE001 - a bad key file must not end the watching
                self.log(f"warning: could not re-read the allow-list {self.folder} ({type(e).__name__}: {e})")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2 * self.interval + 1.0)
        self._auth.stop()


def make_curve_server(sock: zmq.Socket, public: bytes, secret: bytes) -> None:
    """Make `sock` (before bind) a CURVE server with this key pair."""
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True


# ---------------------------------------------------------------------------------------------- `relight keys`

def _cmd_keys(args) -> int:
    try:
        layout = create_keys(args.out, args.clients)
    except KeysError as e:
        print(f"relight keys: error: {e}", file=sys.stderr)
        return 2
    root = layout.root.resolve()
    print(f"relight keys: keys in {root}")
    print(f"  on the server, run:   relight serve --bind tcp://0.0.0.0:5557 --keys {root}")
    print(f"  never copy {layout.server_secret.name} ({layout.server_secret.parent.resolve()}) anywhere else.")
    print(f"  copy to EVERY artist's machine: {layout.server_public.resolve()}  (the add-on's 'Server Public Key')")
    for name in args.clients:
        print(f"  copy to {name}'s machine only: {(layout.clients / f'{name}.key_secret').resolve()}  "
              "(the add-on's 'Client Key Pair')")
    print(f"  the server lets in the public keys in {layout.authorized.resolve()}: add `relight keys --out {root} "
          "--clients NEW` there at any time (read within seconds), delete a .key file to lock its owner out.")
    return 0


def add_keys_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `keys` subcommand; its handler is args.func(args) -> exit code."""
    p = subparsers.add_parser("keys", help="create CURVE keys for a `relight serve` other machines connect to",
                              description="Write the server's key pair and one key pair per client (artist) into "
                                          "a keys folder for `relight serve --keys`.")
    p.add_argument("--out", required=True, type=Path, help="the keys folder (created; an existing server key is kept)")
    p.add_argument("--clients", nargs="*", default=[], metavar="NAME",
                   help="one name per artist or machine, e.g. --clients anna ben (letters, digits, '_', '-')")
    p.set_defaults(func=_cmd_keys)
    return p
