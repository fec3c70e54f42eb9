"""A seeded corpus of malformed protocol messages (issue 17, part 4): every one must get an error reply from `relight
serve`. corpus(seed, n) -> [FuzzCase]; the same seed always gives the same frames.

Categories: random bytes, truncated frames, wrong frame counts, headers that are not JSON (or not valid headers), wrong
types in every field of every request type, arrays declaring huge shapes, JSON nested deeper than MAX_NESTING, buffer
counts that disagree with the content, and well-formed envelopes with invalid content for each request type.
"""

from __future__ import annotations

import copy
import io
import json
import random
import zipfile
from dataclasses import dataclass

import numpy as np

from relight_protocol import limits
from relight_protocol.envelope import Message, serialize
from relight_protocol.version import PROTOCOL_VERSION


@dataclass
class FuzzCase:
    """Frames a DEALER sends (delimiter included when the case has one) and the reply's expected parent_id: the
    request's msg_id when its header is valid, None when the server cannot know which request it answers."""

    category: str
    frames: list[bytes]
    parent: str | None


# ---------------------------------------------------------------------------------------------- valid bases

def _camera(w=32, h=24) -> dict:
    return {"viewmat": np.eye(4).tolist(), "K": [[40.0, 0, w / 2], [0, 40.0, h / 2], [0, 0, 1]], "width": w, "height": h}


def _mesh() -> dict:
    return {"vertices": np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), "faces": np.array([[0, 1, 2]], np.int32),
            "matrix_world": np.eye(4).tolist(), "corner_normals": np.tile(np.float32([0, 0, 1]), (1, 3, 1))}


def _world() -> dict:
    return {"equirect": np.full((4, 8, 3), 0.5, np.float32), "rotation_z": 0.1, "strength": 1.0}


def _zip() -> np.ndarray:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        # a fixed date: writestr(name) stamps the entry with the current time, and a corpus built twice across a
        # 2-second boundary came out different
        z.writestr(zipfile.ZipInfo("mask.png", date_time=(1980, 1, 1, 0, 0, 0)), b"not really a png")
    return np.frombuffer(buf.getvalue(), np.uint8)


def _bases() -> dict[str, dict]:
    """Valid content per request kind (validation accepts each); fuzzing makes exactly one thing wrong."""
    image = np.zeros((8, 8, 4), np.uint8)
    return {
        "generate_mesh": {"image": image, "name": "mug", "colorspace": "srgb", "provider": "scene",
                          "light_hint": "world", "mesh": _mesh(), "camera": _camera(), "world": _world(),
                          "mask": np.ones((8, 8), np.uint8)},
        "generate_file": {"image": image, "name": "mug", "provider": "auto",
                          "mesh_file": {"data": np.frombuffer(b"solid x\nendsolid x\n", np.uint8), "format": "stl",
                                        "up": "z"}},
        "match_photo": {"image": image, "colorspace": "srgb", "mesh": _mesh(), "focal_px": 30.0},
        "reconstruct": {"archive": _zip(), "name": "recon", "texture_size": 64, "optimise": False},
        "render": {"asset_id": "0123456789abcdef", "camera": _camera(), "world": _world(), "background": False,
                   "quality": "preview"},
        "bake": {"asset_id": "0123456789abcdef", "texture_size": 64, "format": "glb"},
        "cancel": {"job_id": "some-job"},
        "delete_asset": {"asset_id": "0123456789abcdef"},
        "splats": {"asset_id": "0123456789abcdef"},
        "passes": {"asset_id": "0123456789abcdef", "camera": _camera(), "world": _world(), "quality": "preview"},
        "turntable": {"asset_id": "0123456789abcdef", "camera": _camera(), "world": _world(), "frames": 4,
                      "mode": "orbit", "fps": 12, "quality": "preview", "background": True},
    }


def _msg_type(kind: str) -> str:
    return kind.split("_mesh")[0].split("_file")[0] + "_request"


# field path -> (kind of value it takes, required?) ; kinds choose which wrong values really are wrong
FIELDS = {
    "generate_mesh": {"image": ("array", 1), "name": ("str", 0), "colorspace": ("choice", 0), "provider": ("choice", 0),
                      "light_hint": ("choice", 0), "mesh": ("object", 0), "mesh.vertices": ("array", 1),
                      "mesh.faces": ("array", 1), "mesh.matrix_world": ("matrix", 1),
                      "mesh.corner_normals": ("array", 0), "camera": ("object", 0), "camera.viewmat": ("matrix", 1),
                      "camera.K": ("matrix", 1), "camera.width": ("int", 1), "camera.height": ("int", 1),
                      "world": ("object", 0), "world.equirect": ("array", 1), "world.rotation_z": ("float", 0),
                      "world.strength": ("float", 0), "mask": ("array", 0)},
    "generate_file": {"mesh_file": ("object", 0), "mesh_file.data": ("array", 1), "mesh_file.format": ("choice", 1),
                      "mesh_file.up": ("choice", 0)},
    "match_photo": {"image": ("array", 1), "colorspace": ("choice", 0), "mesh": ("object", 0),
                    "mesh.vertices": ("array", 1), "mesh.faces": ("array", 1), "mesh.matrix_world": ("matrix", 1),
                    "focal_px": ("float", 0)},
    "reconstruct": {"archive": ("array", 1), "name": ("str", 0), "texture_size": ("int", 0), "optimise": ("bool", 0)},
    "render": {"asset_id": ("id", 1), "camera": ("object", 1), "camera.viewmat": ("matrix", 1),
               "camera.K": ("matrix", 1), "camera.width": ("int", 1), "camera.height": ("int", 1),
               "world": ("object", 0), "world.equirect": ("array", 1), "world.rotation_z": ("float", 0),
               "world.strength": ("float", 0), "background": ("bool", 0), "quality": ("choice", 0)},
    "bake": {"asset_id": ("id", 1), "texture_size": ("int", 0), "format": ("choice", 0)},
    "cancel": {"job_id": ("str", 1)},
    "delete_asset": {"asset_id": ("id", 1)},
    "splats": {"asset_id": ("id", 1)},
    "passes": {"asset_id": ("id", 1), "camera": ("object", 1), "camera.viewmat": ("matrix", 1),
               "camera.K": ("matrix", 1), "camera.width": ("int", 1), "camera.height": ("int", 1),
               "world": ("object", 0), "world.equirect": ("array", 1), "world.rotation_z": ("float", 0),
               "world.strength": ("float", 0), "quality": ("choice", 0)},
    "turntable": {"asset_id": ("id", 1), "camera": ("object", 0), "camera.viewmat": ("matrix", 1),
                  "camera.K": ("matrix", 1), "world": ("object", 0), "world.equirect": ("array", 1),
                  "frames": ("int", 1), "mode": ("choice", 0), "fps": ("int", 0), "quality": ("choice", 0),
                  "background": ("bool", 0)},
}

WRONG = {  # name -> value of some type; _wrong_for() keeps the ones that are wrong for a field's kind
    "int": 7, "neg": -3, "float": -3.5, "huge": 10**30, "true": True, "false": False, "str": "text", "empty_str": "",
    "list": [1, 2], "empty_list": [], "dict": {"a": 1}, "empty_dict": {}, "nested": [[["x"]]],
    "f64_array": "ARRAY_F64", "i8_array": "ARRAY_I8",
}


def _wrong_for(kind: str, required: bool) -> list:
    bad = {"str": {"str", "empty_str"}, "id": {"str"}, "int": {"int", "neg", "huge"},
           "float": {"int", "neg", "float", "huge"}, "bool": {"true", "false"}}.get(kind, set())
    names = [n for n in WRONG if n not in bad]
    return names + (["none"] if required else [])


def _value(name: str, rng: random.Random):
    if name == "none":
        return None
    if name == "f64_array":
        return np.zeros(rng.randint(1, 5), np.float64)
    if name == "i8_array":
        return np.zeros((2, 2), np.int8)
    return copy.deepcopy(WRONG[name])


def _set(content: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for p in parents:
        content = content[p]
    content[leaf] = value


# ---------------------------------------------------------------------------------------------- frames

class _Ids:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def new(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"


def _header(msg_id: str, msg_type: str, /, **over) -> bytes:
    h = {"msg_id": msg_id, "msg_type": msg_type, "protocol_version": PROTOCOL_VERSION, "parent_id": None,
         "date": "2026-12-02T00:00:00+00:00"}
    h.update(over)
    return json.dumps(h).encode()


def _frames(msg_id: str, msg_type: str, content: dict) -> list[bytes]:
    """[b"", header, content, *buffers] of a message as the real encoder writes it."""
    frames = serialize(Message(msg_type, content, msg_id=msg_id, date="2026-12-02T00:00:00+00:00"))
    return [b"", *(bytes(memoryview(f)) for f in frames)]


def _random_bytes(rng: random.Random, lo: int = 1, hi: int = 200) -> bytes:
    return rng.randbytes(rng.randint(lo, hi))


# ---------------------------------------------------------------------------------------------- categories

def random_bytes(rng, ids, bases):
    frames = [_random_bytes(rng) for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.5:
        frames = [b"", *frames]
    return FuzzCase("random bytes", frames, None)


def truncated(rng, ids, bases):
    kind = rng.choice(list(bases))
    msg_id = ids.new()
    frames = _frames(msg_id, _msg_type(kind), copy.deepcopy(bases[kind]))
    which = rng.randrange(1, len(frames))
    frames[which] = frames[which][: rng.randrange(0, max(1, len(frames[which])))]
    if which == 1:  # a cut header: nothing tells the server which request this was
        return FuzzCase("truncated frames", frames, None)
    if which == 2:  # a cut content frame can be empty too: still not a JSON object
        return FuzzCase("truncated frames", frames, msg_id)
    return FuzzCase("truncated frames", frames, msg_id)  # a cut buffer no longer matches its shape


def frame_counts(rng, ids, bases):
    msg_id = ids.new()
    choice = rng.randrange(4)
    if choice == 0:
        return FuzzCase("wrong frame counts", [b""], None)  # the delimiter alone
    if choice == 1:
        return FuzzCase("wrong frame counts", [b"", _header(msg_id, "ping_request")], None)  # no content frame
    if choice == 2:  # no delimiter: a DEALER must send [b"", header, content, ...]
        return FuzzCase("wrong frame counts", [_header(msg_id, "ping_request"), b"{}"], None)
    n = rng.randint(limits.MAX_BUFFERS + 1, limits.MAX_BUFFERS + 40)  # more buffer frames than any message may have
    return FuzzCase("wrong frame counts", [b"", _header(msg_id, "ping_request"), b"{}", *[b"x"] * n], msg_id)


def bad_headers(rng, ids, bases):
    msg_id = ids.new()
    choice = rng.randrange(10)
    content = b"{}"
    if choice == 0:
        head = rng.choice([b"", b"\xff\xfe\x00", b"not json", b"{'single': 'quotes'}", b"{\"a\":", b"nul\x00l"])
        head = head or b" "
    elif choice == 1:
        head = json.dumps(rng.choice([[1, 2], "a string", 42, None, True, 3.5])).encode()
    elif choice == 2:  # a required field missing
        h = json.loads(_header(msg_id, "ping_request"))
        del h[rng.choice(["msg_id", "msg_type", "protocol_version"])]
        head = json.dumps(h).encode()
    elif choice == 3:  # msg_id / msg_type of a wrong type or empty
        field = rng.choice(["msg_id", "msg_type"])
        head = _header(msg_id, "ping_request", **{field: rng.choice([7, "", None, [1], {"a": 1}, True])})
    elif choice == 4:  # too long
        field = rng.choice(["msg_id", "msg_type"])
        head = _header(msg_id, "ping_request", **{field: "x" * rng.randint(129, 4000)})
    elif choice == 5:  # over MAX_HEADER_BYTES
        head = _header(msg_id, "ping_request", pad="p" * rng.randint(limits.MAX_HEADER_BYTES, 3 * limits.MAX_HEADER_BYTES))
    elif choice == 6:  # parent_id / date of a wrong type
        field = rng.choice(["parent_id", "date"])
        head = _header(msg_id, "ping_request", **{field: rng.choice([7, [1], {"a": 1}, True, 2.5])})
    elif choice == 7:  # an unparseable or other-major protocol version: the reply names the request
        version = rng.choice(["2.0", "0.9", "abc", "1", "1.2.3", "-1.0", "", 1.1, None, [1, 1]])
        return FuzzCase("headers not JSON or invalid", [b"", _header(msg_id, "ping_request", protocol_version=version),
                                                        content], msg_id)
    elif choice == 8:  # message types no request has
        kind = rng.choice(["ping_reply", "progress", "frobnicate_request", "_request", "request", "error_reply",
                           "hello", "GENERATE_REQUEST", "generate_request_x", "x" * 60])
        return FuzzCase("headers not JSON or invalid", [b"", _header(msg_id, kind), content], msg_id)
    else:  # a header that is JSON but not UTF-8 text
        head = _header(msg_id, "ping_request").replace(b"ping", b"p\xffng")
    return FuzzCase("headers not JSON or invalid", [b"", head, content], None)


def wrong_types(rng, ids, bases):
    kind = rng.choice(list(FIELDS))
    path = rng.choice(list(FIELDS[kind]))
    field_kind, required = FIELDS[kind][path]
    content = copy.deepcopy(bases[kind])
    _set(content, path, _value(rng.choice(_wrong_for(field_kind, bool(required))), rng))
    msg_id = ids.new()
    return FuzzCase("wrong types", _frames(msg_id, _msg_type(kind), content), msg_id)


def huge_shapes(rng, ids, bases):
    msg_id = ids.new()
    kind = rng.choice(["generate_mesh", "render", "match_photo"])
    field = {"generate_mesh": "image", "render": "world", "match_photo": "image"}[kind]
    shape = rng.choice([
        [0, 10**20], [0, 2**40, 2**40], [2**31, 2**31, 4], [2**62, 0], [10**6] * limits.MAX_NDIM,
        [1] * rng.randint(limits.MAX_NDIM + 1, 64), [rng.randint(2**20, 2**40), rng.randint(2**10, 2**30), 4],
        [0, 2**28, 2**28, 2**28], [-1, 4, 4], [4.5, 4, 4], ["4", 4, 4], [True, 4, 4], [10**400 // 10**390, 0],
    ])
    desc = {"buffer": 0, "dtype": rng.choice(["uint8", "float32", "float64", "bool"]), "shape": shape}
    content = json.loads(json.dumps({k: v for k, v in bases[kind].items() if not isinstance(v, (np.ndarray, dict))}))
    content[field] = desc if field == "image" else {"equirect": desc}
    buffer = _random_bytes(rng, 0, 64)
    return FuzzCase("arrays declaring huge shapes", [b"", _header(msg_id, _msg_type(kind)), json.dumps(content).encode(),
                                                     buffer], msg_id)


def deep_nesting(rng, ids, bases):
    msg_id = ids.new()
    depth = rng.choice([limits.MAX_NESTING + 1, limits.MAX_NESTING + 2, rng.randint(40, 2000),
                        rng.randint(50_000, 200_000)])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    inner = opener * depth + "1" + closer * depth
    body = f'{{"job_id": "j", "deep": {inner}}}'.encode()
    msg_type = rng.choice(["ping_request", "hello_request", "cancel_request", "render_request"])
    return FuzzCase("JSON nested deeper than the limit", [b"", _header(msg_id, msg_type), body], msg_id)


def buffer_counts(rng, ids, bases):
    kind = rng.choice(["generate_mesh", "generate_file", "match_photo", "reconstruct", "render"])
    msg_id = ids.new()
    frames = _frames(msg_id, _msg_type(kind), copy.deepcopy(bases[kind]))
    n_buffers = len(frames) - 3
    choice = rng.randrange(3)
    if choice == 0 and n_buffers > 0:  # a buffer frame missing: a descriptor refers past the end
        del frames[-1 - rng.randrange(n_buffers)]
    elif choice == 1:  # extra buffer frames no descriptor refers to
        frames += [_random_bytes(rng, 0, 32) for _ in range(rng.randint(1, 4))]
    else:  # a descriptor refers to a buffer index that does not exist
        content = json.loads(frames[2])
        content["extra"] = {"buffer": rng.choice([n_buffers, n_buffers + 5, -1, 10**9]), "dtype": "uint8", "shape": [1]}
        frames[2] = json.dumps(content).encode()
    return FuzzCase("buffer counts that disagree", frames, msg_id)


def _invalid_content(rng: random.Random, bases: dict) -> tuple[str, dict]:
    """(request kind, content of the right types with one invalid value)."""
    b = copy.deepcopy(bases)
    r = rng.randrange(30)
    g = b["generate_mesh"]
    if r == 0:
        g["image"] = np.zeros((rng.randint(1, limits.MIN_IMAGE_SIDE - 1), rng.randint(1, 64), 4), np.uint8)
    elif r == 1:
        g["image"] = np.zeros((8, 8, rng.choice([1, 2, 5])), np.uint8)
    elif r == 2:
        g["colorspace"] = rng.choice(["acescg", "SRGB", "", "linear "])
    elif r == 3:
        g["provider"] = rng.choice(["magic", "trellis", "AUTO", ""])
    elif r == 4:
        del g["world"]  # light_hint "world" without a world
    elif r == 5:
        g["mesh"]["faces"] = np.array([[0, 1, rng.randint(3, 10**6)]], np.int32)
    elif r == 6:
        g["mesh"]["vertices"] = np.array([[0, 0, 0], [1, 0, 0], [0, float("nan"), 0]], np.float32)
    elif r == 7:
        g["camera"]["width"] = rng.choice([0, -5, limits.MAX_RENDER_SIDE + rng.randint(1, 10**6)])
    elif r == 8:
        g["camera"]["K"] = [[0.0, 0, 1], [0, 40.0, 1], [0, 0, 1]]
    elif r == 9:
        g["camera"]["viewmat"] = np.zeros((4, 4)).tolist()
    elif r == 10:
        g["world"]["strength"] = -rng.uniform(0.1, 100)
    elif r == 11:
        g["world"]["equirect"] = np.full((4, 8, 3), np.inf, np.float32)
    elif r == 12:
        g["mask"] = np.ones((rng.randint(1, 7), 8), np.uint8)
    elif r == 13:
        g["name"] = "n" * rng.randint(limits.MAX_NAME_CHARS + 1, 5000)
    elif r == 14:
        g["mesh"]["corner_normals"] = np.zeros((rng.randint(2, 9), 3, 3), np.float32)
    elif r == 15:
        g["world"]["equirect"] = np.zeros((1, 1, 3), np.float32)
    elif r == 16:
        f = b["generate_file"]
        f["mesh"] = _mesh()  # mesh and mesh_file at once
        return "generate_file", f
    elif r == 17:
        f = b["generate_file"]
        f["mesh_file"]["format"] = rng.choice(["fbx", "blend", "STL", ""])
        return "generate_file", f
    elif r == 18:
        f = b["generate_file"]
        f["mesh_file"]["data"] = np.zeros(0, np.uint8)
        return "generate_file", f
    elif r == 19:
        m = b["match_photo"]
        m["focal_px"] = -rng.uniform(0, 100)
        return "match_photo", m
    elif r == 20:
        m = b["match_photo"]
        del m["mesh"]  # nothing to fit
        return "match_photo", m
    elif r == 21:
        rec = b["reconstruct"]
        rec["texture_size"] = rng.choice([0, 15, limits.MAX_TEXTURE_SIZE + 1, -64])
        return "reconstruct", rec
    elif r == 22:
        rec = b["reconstruct"]
        rec["archive"] = np.zeros(0, np.uint8)
        return "reconstruct", rec
    elif r == 23:
        ren = b["render"]
        ren["asset_id"] = rng.choice(["../etc/passwd", "a b", "x" * 200, "id;rm", "é"])
        return "render", ren
    elif r == 24:
        ren = b["render"]
        ren["quality"] = rng.choice(["ultra", "", "Preview"])
        return "render", ren
    elif r == 25:
        ren = b["render"]
        ren["camera"]["height"] = rng.choice([0, limits.MAX_RENDER_SIDE + 1])
        return "render", ren
    elif r == 26:
        bake = b["bake"]
        bake["texture_size"] = rng.choice([8, 15, limits.MAX_TEXTURE_SIZE + 1, 10**12])
        return "bake", bake
    elif r == 27:
        bake = b["bake"]
        bake["format"] = rng.choice(["fbx", "usdz", "GLB", ""])
        return "bake", bake
    elif r == 28:
        return "cancel", {"job_id": "j" * rng.randint(limits.MAX_ID_CHARS + 1, 2000)}
    else:
        g["image"] = np.full((8, 8, 4), np.nan, np.float32)
    return "generate_mesh", g


def invalid_content(rng, ids, bases):
    kind, content = _invalid_content(rng, bases)
    msg_id = ids.new()
    return FuzzCase("invalid content per request type", _frames(msg_id, _msg_type(kind), content), msg_id)


CATEGORIES = {  # generator -> share of the corpus
    random_bytes: 0.12, truncated: 0.12, frame_counts: 0.07, bad_headers: 0.13, wrong_types: 0.22, huge_shapes: 0.08,
    deep_nesting: 0.05, buffer_counts: 0.07, invalid_content: 0.14,
}


def corpus(seed: int = 17, n: int = 10_000) -> list[FuzzCase]:
    """n malformed messages, the same for the same seed, in a shuffled order."""
    rng = random.Random(seed)
    ids = _Ids(random.Random(seed + 1))
    bases = _bases()
    cases = []
    for make, share in CATEGORIES.items():
        cases += [make(rng, ids, bases) for _ in range(round(share * n))]
    while len(cases) < n:
        cases.append(wrong_types(rng, ids, bases))
    rng.shuffle(cases)
    return cases
