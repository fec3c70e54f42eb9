"""CURVE encryption and authentication of `relight serve --keys`: real `relight keys` and `relight serve` subprocesses,
real ZeroMQ clients on 127.0.0.1 with good, unknown and missing keys; the allow-list reloaded while serving."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from relight.service.keys import KeyLayout, create_keys, load_server_keys, KeysError
from relight.service.server import InsecureBind, Server
from relight_protocol.client import AUTH_FAILED, AuthenticationFailed, Client
from relight_protocol.curve_keys import CurveKeys, KeyFormatError, parse_key_pair, parse_public_key
from server_fixture import start_server

TIMEOUT = 60.0  # seconds for a reply from a server that serves us (2 shared cores)
REFUSED_WITHIN = 10.0  # seconds a refused client waits before it reports


def relight(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "relight.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> KeyLayout:
    """A keys folder written by `relight keys` with one client, 'anna'."""
    root = tmp_path_factory.mktemp("keys")
    done = relight("keys", "--out", str(root), "--clients", "anna")
    assert done.returncode == 0, done.stderr
    layout = KeyLayout(root)
    # the output says what goes where
    assert f"copy to EVERY artist's machine: {layout.server_public.resolve()}" in done.stdout
    assert f"copy to anna's machine only: {(layout.clients / 'anna.key_secret').resolve()}" in done.stdout
    assert f"relight serve --bind tcp://0.0.0.0:5557 --keys {root.resolve()}" in done.stdout
    return layout


@pytest.fixture(scope="module")
def stranger(tmp_path_factory) -> KeyLayout:
    """Keys of another studio: a server and a client 'eve' the first server has never heard of."""
    return create_keys(tmp_path_factory.mktemp("other-keys"), ["eve"])


@pytest.fixture(scope="module")
def server(keys, tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("store"), extra_args=("--keys", str(keys.root)))
    yield s
    s.stop()


def curve(server_key: Path, pair: Path) -> CurveKeys:
    return CurveKeys.from_settings(str(server_key), str(pair))


def hello(endpoint: str, keys: CurveKeys | None, timeout: float = TIMEOUT):
    with Client(endpoint, curve=keys) as c:
        return c.call("hello_request", timeout=timeout)


def test_keys_layout_and_what_the_server_loads(keys):
    public, secret, allow = load_server_keys(keys.root)
    assert len(public) == len(secret) == 40 and allow == keys.authorized
    assert sorted(p.name for p in keys.authorized.iterdir()) == ["anna.key"]
    assert (keys.clients / "anna.key_secret").is_file() and not list(keys.authorized.glob("*.key_secret"))
    for secret in (keys.server_secret, keys.clients / "anna.key_secret"):  # only their owner may read them
        assert secret.stat().st_mode & 0o077 == 0, oct(secret.stat().st_mode)
    # a second run adds a client and keeps the server's key (the artists' copies stay valid)
    create_keys(keys.root, ["ben"])
    assert load_server_keys(keys.root)[0] == public
    (keys.authorized / "ben.key").unlink()
    with pytest.raises(KeysError, match="exists already"):
        create_keys(keys.root, ["anna"])
    with pytest.raises(KeysError, match="client name '../x' must be"):
        create_keys(keys.root, ["../x"])


def test_key_settings_accept_paths_and_pasted_text(keys):
    pair_file = keys.clients / "anna.key_secret"
    public, secret = parse_key_pair(str(pair_file))
    text = pair_file.read_text()
    assert parse_key_pair(text) == (public, secret)  # the file's text pasted
    assert parse_key_pair(" ".join(text.split())) == (public, secret)  # pasted into a one-line field
    assert parse_key_pair(secret.decode(), public.decode()) == (public, secret)  # the two keys alone
    assert parse_public_key(str(keys.clients / "anna.key")) == public
    with pytest.raises(KeyFormatError, match="holds no secret-key line: give the .key_secret file, not the .key"):
        parse_key_pair(str(keys.clients / "anna.key"))
    with pytest.raises(KeyFormatError, match="neither a 40-character key"):
        parse_public_key("not a key")
    with pytest.raises(KeyFormatError, match="has a secret key but no public key"):
        parse_key_pair(secret.decode())
    with pytest.raises(KeyFormatError, match="needs both the server public key"):
        CurveKeys.from_settings("", str(pair_file))
    assert CurveKeys.from_settings("", "", "") is None


def test_a_client_with_a_listed_key_is_served(server, keys):
    reply = hello(server.endpoint, curve(keys.server_public, keys.clients / "anna.key_secret"))
    assert reply.status == "ok" and reply.content["curve"] is True
    assert any("CURVE encryption and authentication on" in line for line in server.stdout)


@pytest.mark.parametrize("who", ["unknown key", "no key", "wrong server key"])
def test_a_client_with_a_wrong_or_missing_key_gets_no_service(server, keys, stranger, who):
    client_keys = {"unknown key": curve(keys.server_public, stranger.clients / "eve.key_secret"),
                   "no key": None,
                   "wrong server key": curve(stranger.server_public, keys.clients / "anna.key_secret")}[who]
    expected = {"unknown key": "the backend does not accept this machine's key",
                "no key": "the backend only serves clients with keys",
                "wrong server key": "the backend refused the encrypted handshake"}[who]
    with Client(server.endpoint, curve=client_keys) as c:
        with pytest.raises(AuthenticationFailed) as refused:
            c.call("hello_request", timeout=REFUSED_WITHIN)
        assert f"{AUTH_FAILED}: {expected}" in str(refused.value)
        assert c.poll(timeout_ms=200) == []  # nothing was served
    assert server.proc.poll() is None


def test_no_answer_at_all_is_not_an_authentication_failure(keys):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"tcp://127.0.0.1:{port}", curve=curve(keys.server_public, keys.clients / "anna.key_secret")) as c:
        with pytest.raises(TimeoutError, match="is `relight serve` running"):
            c.call("hello_request", timeout=1.0)
        assert c.handshake_failure() is None


def test_the_allow_list_is_reloaded_while_serving(server, keys, tmp_path):
    late = create_keys(tmp_path / "late", ["carl"])  # made elsewhere: not in the allow-list yet
    carl = curve(keys.server_public, late.clients / "carl.key_secret")
    with pytest.raises(AuthenticationFailed, match="does not accept this machine's key"):
        hello(server.endpoint, carl, timeout=REFUSED_WITHIN)
    shutil.copyfile(late.clients / "carl.key", keys.authorized / "carl.key")  # the admin adds carl's public key
    try:
        deadline = time.monotonic() + 60
        while True:  # the server looks at the folder every second; give it a generous while on 2 shared cores
            try:
                reply = hello(server.endpoint, carl, timeout=3.0)
                break
            except (AuthenticationFailed, TimeoutError):
                assert time.monotonic() < deadline, "carl's key was added but the server never let carl in"
        assert reply.status == "ok"
        assert any("allow-list changed: 2 client key(s)" in line for line in server.stdout), server.stdout
        connected = Client(server.endpoint, curve=carl)  # a connection carl keeps open
        assert connected.call("ping_request", timeout=TIMEOUT).status == "ok"
    finally:
        (keys.authorized / "carl.key").unlink()
    try:
        deadline = time.monotonic() + 60
        while True:  # removing the key refuses carl's open connection from its next message on
            reply = connected.call("ping_request", timeout=TIMEOUT)
            if reply.status == "error":
                break
            assert time.monotonic() < deadline, "carl's key was removed but the server still serves carl"
            time.sleep(0.5)
        assert reply.content["ename"] == "KeyNotAllowed"
        assert reply.content["evalue"].startswith("authentication failed: this machine's key was removed")
    finally:
        connected.close()
    with pytest.raises(AuthenticationFailed):  # and a new connection at its handshake
        hello(server.endpoint, carl, timeout=REFUSED_WITHIN)


def test_a_non_loopback_bind_without_keys_refuses_to_start(tmp_path):
    done = relight("serve", "--bind", "tcp://0.0.0.0:0", "--store", str(tmp_path / "store"), timeout=300)
    assert done.returncode == 2
    assert "refusing to serve tcp://0.0.0.0:0 without authentication" in done.stderr
    assert "relight keys --out KEYS --clients NAME" in done.stderr and "--insecure" in done.stderr
    with pytest.raises(InsecureBind, match="refusing to serve tcp://\\*:0"):
        Server("tcp://*:0", tmp_path / "store").start()
    bad = relight("serve", "--bind", "tcp://0.0.0.0:0", "--keys", str(tmp_path / "nokeys"), timeout=300)
    assert bad.returncode == 2 and "server.key_secret does not exist; create the keys with `relight keys" in bad.stderr


def test_insecure_non_loopback_bind_starts_with_a_warning(tmp_path):
    server = Server("tcp://0.0.0.0:0", tmp_path / "store", insecure=True, out=open(tmp_path / "log", "w"))
    try:
        assert server.start().startswith("tcp://0.0.0.0:")
    finally:
        server.stop()
        server._shutdown()
    assert "has no authentication (--insecure)" in (tmp_path / "log").read_text()


def test_curve_needs_libzmq_with_curve():
    assert zmq.has("curve"), "this pyzmq's libzmq was built without CURVE"
