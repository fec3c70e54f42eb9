"""The G-buffer folder's trip over the wire (relight_protocol.archive): a round trip keeps every file, and a hostile
or broken archive gets a named error without writing outside the destination."""

import io
import zipfile

import numpy as np
import pytest

from relight_protocol import limits
from relight_protocol.archive import pack_folder, unpack_archive
from relight_protocol.errors import InvalidRequest, LimitExceeded
from relight_protocol.messages import make_request, validate_request


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_folder_round_trips(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir(), dst.mkdir()
    rng = np.random.default_rng(0)
    files = {f"view_{i}_albedo.png": rng.bytes(1000 + i) for i in range(5)} | {"cameras.json": b'{"views": []}'}
    for name, data in files.items():
        (src / name).write_bytes(data)
    (src / ".DS_Store").write_bytes(b"junk")  # hidden files stay behind
    names = unpack_archive(pack_folder(src), dst)
    assert sorted(names) == sorted(files)
    assert {p.name: p.read_bytes() for p in dst.iterdir()} == files


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(InvalidRequest, match="no files"):
        pack_folder(tmp_path)


@pytest.mark.parametrize("name", ["../evil.png", "sub/inner.png", "/abs.png", "..\\\\evil.png", ".hidden"])
def test_entries_outside_the_flat_folder_are_refused(tmp_path, name):
    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(InvalidRequest, match="plain file name"):
        unpack_archive(_zip({"ok.png": b"1", name: b"2"}), dst)
    assert not (tmp_path / "evil.png").exists()


def test_not_a_zip_is_named(tmp_path):
    with pytest.raises(InvalidRequest, match="not a zip"):
        unpack_archive(b"PK\x03\x04 garbage", tmp_path)


def test_too_many_files_and_too_many_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_ARCHIVE_FILES", 3)
    with pytest.raises(LimitExceeded, match="MAX_ARCHIVE_FILES"):
        unpack_archive(_zip({f"f{i}": b"x" for i in range(4)}), tmp_path)
    monkeypatch.setattr(limits, "MAX_ARCHIVE_UNPACKED_BYTES", 1000)
    bomb = _zip({"a.png": b"\0" * 600, "b.png": b"\0" * 600})  # compresses to little, unpacks past the limit
    with pytest.raises(LimitExceeded, match="MAX_ARCHIVE_UNPACKED_BYTES"):
        unpack_archive(bomb, tmp_path)


def test_the_reconstruct_request_is_validated():
    ok = make_request("reconstruct_request", {"archive": np.frombuffer(b"PK..", np.uint8), "texture_size": 512})
    action, req = validate_request(ok)
    assert action == "reconstruct" and req["texture_size"] == 512 and req["optimise"] is True
    assert req["name"] == "reconstruction"
    for content, match in [({}, "archive"), ({"archive": "zip"}, "archive must be"),
                           ({"archive": np.zeros(0, np.uint8)}, "empty"),
                           ({"archive": np.zeros(4, np.uint8), "texture_size": 99999}, "MAX_TEXTURE_SIZE"),
                           ({"archive": np.zeros(4, np.uint8), "optimise": "yes"}, "optimise")]:
        with pytest.raises((InvalidRequest, LimitExceeded), match=match):
            validate_request(make_request("reconstruct_request", content))
