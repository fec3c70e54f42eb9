"""The Relight extension in real headless bpy against a real `relight serve --keys`: with the keys in its preferences it
is served; with a wrong or no key the panel's status says "authentication failed", not "backend unreachable"."""

import pytest
from blender_fixture import addon_prefs, addon_tree, addon_zip, free_port, import_without_blender  # noqa: F401
from blender_fixture import relight_addon  # noqa: F401  (fixtures)

from relight.service.keys import create_keys
from server_fixture import start_server

import bpy  # after conftest set the Blender user folders


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """(keys layout with client 'anna', a stranger's layout with client 'eve', a `relight serve --keys` process)."""
    keys = create_keys(tmp_path_factory.mktemp("keys"), ["anna"])
    other = create_keys(tmp_path_factory.mktemp("other"), ["eve"])
    server = start_server(tmp_path_factory.mktemp("store"), extra_args=("--keys", str(keys.root)))
    yield keys, other, server
    server.stop()


def _prefs(endpoint: str, server_key: str = "", pair: str = "", public: str = ""):
    prefs = addon_prefs()
    prefs.endpoint = endpoint
    prefs.request_timeout = 10.0
    prefs.server_public_key, prefs.client_key_pair, prefs.client_public_key = server_key, pair, public
    return prefs


def test_keys_as_files_are_served(relight_addon, keyed):
    keys, _, server = keyed
    _prefs(server.endpoint, str(keys.server_public), str(keys.clients / "anna.key_secret"))
    status = bpy.context.window_manager.relight
    assert bpy.ops.relight.check_backend() == {"FINISHED"}
    assert status.connected and not status.auth_failed
    assert relight_addon.session.SESSION.hello["curve"] is True


def test_keys_pasted_as_text_are_served(relight_addon, keyed):
    from relight_protocol.curve_keys import parse_key_pair, parse_public_key

    keys, _, server = keyed
    public, secret = parse_key_pair(str(keys.clients / "anna.key_secret"))
    _prefs(server.endpoint, parse_public_key(str(keys.server_public)).decode(), secret.decode(), public.decode())
    assert bpy.ops.relight.check_backend() == {"FINISHED"}
    assert bpy.context.window_manager.relight.connected


@pytest.mark.parametrize("who", ["unknown key", "no key"])
def test_a_refused_key_says_authentication_failed(relight_addon, keyed, who):
    keys, other, server = keyed
    if who == "unknown key":
        _prefs(server.endpoint, str(keys.server_public), str(other.clients / "eve.key_secret"))
    else:
        _prefs(server.endpoint)
    status = bpy.context.window_manager.relight
    with pytest.raises(RuntimeError, match="authentication failed"):
        bpy.ops.relight.check_backend()
    assert status.auth_failed and not status.connected
    assert "authentication failed" in status.last_error and "No Relight backend answered" not in status.last_error
    bpy.context.scene.relight.image = bpy.data.images.new("input", 16, 16)
    with pytest.raises(RuntimeError, match="authentication failed"):  # and Generate says the same, sending nothing
        bpy.ops.relight.generate()
    assert relight_addon.session.SESSION.running_job() is None


def test_an_unreachable_backend_is_not_an_authentication_failure(relight_addon, keyed, free_port):
    keys, _, _ = keyed
    _prefs(f"tcp://127.0.0.1:{free_port}", str(keys.server_public), str(keys.clients / "anna.key_secret"))
    addon_prefs().request_timeout = 0.5
    with pytest.raises(RuntimeError, match="No Relight backend answered"):
        bpy.ops.relight.check_backend()
    status = bpy.context.window_manager.relight
    assert not status.auth_failed and "authentication failed" not in status.last_error


def test_an_unreadable_key_setting_says_which(relight_addon, keyed, tmp_path):
    keys, _, server = keyed
    _prefs(server.endpoint, str(keys.server_public), str(tmp_path / "missing.key_secret"))
    with pytest.raises(RuntimeError, match="Relight backend keys .add-on preferences.: the client key pair is neither"):
        bpy.ops.relight.check_backend()
    _prefs(server.endpoint, "", str(keys.clients / "anna.key_secret"))
    with pytest.raises(RuntimeError, match="needs both the server public key"):
        bpy.ops.relight.check_backend()


def test_session_without_blender_reports_authentication_failed(addon_tree, keyed):
    """connection.Session from the installed tree (its bundled relight_protocol), without bpy."""
    conn = import_without_blender(addon_tree, "connection")
    curve_keys = import_without_blender(addon_tree, "relight_protocol.curve_keys")
    keys, other, server = keyed
    session = conn.Session(lambda job, content: "applied")
    try:
        bad = curve_keys.CurveKeys.from_settings(str(keys.server_public), str(other.clients / "eve.key_secret"))
        with pytest.raises(conn.AuthenticationFailed, match="authentication failed: the backend does not accept"):
            session.say_hello(server.endpoint, 10.0, bad)
        good = curve_keys.CurveKeys.from_settings(str(keys.server_public), str(keys.clients / "anna.key_secret"))
        assert session.say_hello(server.endpoint, 30.0, good)["curve"] is True
    finally:
        session.close()


@pytest.mark.parametrize("refusal_seen_first", [False, True])
def test_a_job_on_a_refused_connection_ends_saying_authentication_failed(addon_tree, keyed, refusal_seen_first):
    """A job on a connection the backend refuses (its key left the allow-list, say) ends at once saying so: queued
    before the refusal, in the session's own poll, instead of waiting out the job timeout; after it, when the
    socket has no connection left to queue it on (a refused handshake tears it down until the next retry), as
    AuthenticationFailed from start_job, not a bare ConnectionError. Which of the two happens is zmq's timing, so
    both are accepted; with refusal_seen_first the test waits for the monitor to report the refusal first."""
    import time

    conn = import_without_blender(addon_tree, "connection")
    curve_keys = import_without_blender(addon_tree, "relight_protocol.curve_keys")
    keys, other, server = keyed
    events = []
    session = conn.Session(lambda job, content: "applied", events.append)
    try:
        session._connect(server.endpoint, curve_keys.CurveKeys.from_settings(str(keys.server_public),
                                                                           str(other.clients / "eve.key_secret")))
        deadline = time.monotonic() + 30
        while refusal_seen_first and session.client.handshake_failure() is None:
            assert time.monotonic() < deadline, "the backend's refusal never reached the socket monitor"
            time.sleep(0.02)
        try:
            session.start_job("render", {"asset_id": "0123abcd"}, "Scene")
        except conn.AuthenticationFailed as e:  # refused before the request could be queued
            assert "authentication failed" in str(e) and session.running_job() is None
            return
        deadline = time.monotonic() + 30
        while session.running_job() is not None:
            assert time.monotonic() < deadline, "the refused job never ended"
            session.poll_once()
            time.sleep(0.02)
        finished = events[-1]
        assert finished.outcome == "render failed" and "authentication failed" in finished.error
    finally:
        session.close()


def test_a_key_removed_while_connected_says_authentication_failed(addon_tree, keyed, tmp_path):
    import shutil
    import time

    conn = import_without_blender(addon_tree, "connection")
    curve_keys = import_without_blender(addon_tree, "relight_protocol.curve_keys")
    keys, _, server = keyed
    zoe = create_keys(tmp_path / "zoe", ["zoe"])
    shutil.copyfile(zoe.clients / "zoe.key", keys.authorized / "zoe.key")
    zoe_keys = curve_keys.CurveKeys.from_settings(str(keys.server_public), str(zoe.clients / "zoe.key_secret"))
    session = conn.Session(lambda job, content: "applied")
    try:
        deadline = time.monotonic() + 60
        while True:  # until the server has read the new key
            try:
                session.say_hello(server.endpoint, 3.0, zoe_keys)
                break
            except conn.BackendUnavailable:
                assert time.monotonic() < deadline, "zoe's key was added but never let in"
        (keys.authorized / "zoe.key").unlink()
        deadline = time.monotonic() + 60
        while True:  # the same open connection, refused once the server has re-read the folder
            try:
                session.say_hello(server.endpoint, 10.0, zoe_keys)
            except conn.AuthenticationFailed as e:
                assert "authentication failed: this machine's key was removed" in str(e)
                break
            assert time.monotonic() < deadline, "zoe's key was removed but zoe is still served"
            time.sleep(0.5)
    finally:
        session.close()
        (keys.authorized / "zoe.key").unlink(missing_ok=True)
