"""CURVE keys as a client is given them: a 40-character Z85 key, the text of a .key / .key_secret file written by
`relight keys` (zmq.auth's format), or the path of such a file. Stdlib only, so the add-on can read them too."""

import os
import re
from dataclasses import dataclass

Z85_KEY_CHARS = 40  # a 32-byte CURVE key in Z85 text
_Z85 = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
_FIELD = re.compile(r"(public|secret)-key\s*=\s*\"([^\"]*)\"")


class KeyFormatError(ValueError):
    """A key setting that is neither a key, nor a key file's text, nor the path of a key file."""


def _fields(text: str) -> dict[str, str]:
    """{'public': ..., 'secret': ...} found in a key file's text (either may be missing)."""
    return {kind: value for kind, value in _FIELD.findall(text)}


def _text_of(setting: str, what: str) -> str:
    """The setting itself when it holds a key or key-file text, else the content of the file it names."""
    text = setting.strip()
    if _Z85.match(text) or _FIELD.search(text):
        return text
    path = os.path.expanduser(text)
    if not os.path.isfile(path):
        raise KeyFormatError(f"the {what} is neither a 40-character key, nor the text of a .key file, nor a key "
                             f"file that exists ({text[:60]!r})")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(64 * 1024)
    except (OSError, UnicodeDecodeError) as e:
        raise KeyFormatError(f"the {what} file {text[:60]!r} cannot be read ({e})") from None


def _checked(key: str, what: str) -> bytes:
    if not _Z85.match(key):
        raise KeyFormatError(f"the {what} must be {Z85_KEY_CHARS} Z85 characters, got {len(key)} characters")
    return key.encode("ascii")


def parse_public_key(setting: str, what: str = "server public key") -> bytes:
    """A public key from a key, a .key file's text, or its path."""
    text = _text_of(setting, what)
    if _Z85.match(text):
        return _checked(text, what)
    fields = _fields(text)
    if "public" not in fields:
        raise KeyFormatError(f"the {what} file holds no public-key line")
    return _checked(fields["public"], what)


def parse_key_pair(secret_setting: str, public_setting: str = "", what: str = "client key pair") -> tuple[bytes, bytes]:
    """(public, secret) from a .key_secret file (path or text, which holds both), or from a secret key plus a
    public key given apart."""
    text = _text_of(secret_setting, what)
    if _Z85.match(text):
        secret, public = _checked(text, f"{what}'s secret key"), None
    else:
        fields = _fields(text)
        if "secret" not in fields:
            raise KeyFormatError(f"the {what} holds no secret-key line: give the .key_secret file, not the .key")
        secret = _checked(fields["secret"], f"{what}'s secret key")
        public = _checked(fields["public"], f"{what}'s public key") if "public" in fields else None
    if public_setting.strip():
        public = parse_public_key(public_setting, f"{what}'s public key")
    if public is None:
        raise KeyFormatError(f"the {what} has a secret key but no public key: give the .key_secret file, or the "
                             "public key too")
    return public, secret


@dataclass(frozen=True)
class CurveKeys:
    """What a CURVE client needs: the server's public key and its own key pair (Z85 bytes)."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def from_settings(cls, server_public: str, client_secret: str, client_public: str = "") -> "CurveKeys | None":
        """From the add-on's preferences (paths or pasted text); None when none is set; KeyFormatError when only some
        are, or one cannot be read."""
        if not (server_public.strip() or client_secret.strip() or client_public.strip()):
            return None
        if not server_public.strip() or not client_secret.strip():
            raise KeyFormatError("CURVE needs both the server public key and this machine's client key pair "
                                 "(its .key_secret file); set both, or clear both for a backend without keys")
        public, secret = parse_key_pair(client_secret, client_public)
        return cls(parse_public_key(server_public), public, secret)
