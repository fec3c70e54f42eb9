"""glTF 2.0 binary (GLB) writer for a baked PBR mesh: metallic-roughness material with embedded PNG textures.

No bpy here. Positions arrive in Blender world space (Z up) and are converted to glTF's Y up via axes.py.
"""

import json
import struct

import cv2
import numpy as np

from ..core import axes
from ..core.colour import linear_to_srgb

_FLOAT, _UINT = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


def png_bytes(img: np.ndarray) -> bytes:
    """[H, W] grey or [H, W, 3|4] RGB(A), uint8 (or uint16) -> PNG bytes."""
    bgr = img[..., [2, 1, 0, 3][: img.shape[-1]]] if img.ndim == 3 and img.shape[-1] in (3, 4) else img
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def encode_textures(albedo, roughness, metallic, occlusion) -> tuple[bytes, bytes]:
    """Linear PBR maps -> (baseColor PNG in sRGB, ORM PNG: R occlusion, G roughness, B metallic, non-colour)."""
    base = np.clip(np.round(linear_to_srgb(np.clip(albedo, 0, 1)) * 255), 0, 255).astype(np.uint8)
    orm = np.stack([occlusion, roughness, metallic], -1)
    orm = np.clip(np.round(orm * 255), 0, 255).astype(np.uint8)
    return png_bytes(base), png_bytes(orm)


def write_glb(
    vertices: np.ndarray,  # [V, 3] Blender world space
    normals: np.ndarray,  # [V, 3] Blender world space, unit
    uvs: np.ndarray,  # [V, 2] glTF convention (v down from the image's top)
    faces: np.ndarray,  # [F, 3]
    base_color_png: bytes,
    orm_png: bytes,
    name: str = "relight_asset",
    tangents: np.ndarray | None = None,  # [V, 4] Blender world space xyz, w = +-1 bitangent sign (glTF TANGENT)
    normal_png: bytes | None = None,  # tangent-space normal map, n * 0.5 + 0.5, non-colour (glTF normalTexture)
    occlusion: bool = True,  # whether orm_png's R channel is ambient occlusion (occlusionTexture)
) -> bytes:
    """Assemble a GLB: one mesh, one node, one metallic-roughness material (roughness in the ORM's G, metallic in
    its B). With normal_png, the material gets a normalTexture; pass the tangents it was baked against with it.
    Returns the file's bytes."""
    if normal_png is not None and tangents is None:
        raise ValueError("write_glb: a normal map needs the tangents it was baked against")
    pos = axes.blender_to_gltf_points(vertices).astype(np.float32)
    nrm = axes.blender_to_gltf_points(normals).astype(np.float32)
    chunks: list[bytes] = []
    views = []
    offset = 0

    def add_view(data: bytes, target=None) -> int:
        nonlocal offset
        pad = (-len(data)) % 4
        view = {"buffer": 0, "byteOffset": offset, "byteLength": len(data)}
        if target:
            view["target"] = target
        views.append(view)
        chunks.append(data + b"\0" * pad)
        offset += len(data) + pad
        return len(views) - 1

    accessors = []

    def add_accessor(arr: np.ndarray, comp: int, typ: str, target, minmax=False) -> int:
        acc = {"bufferView": add_view(arr.tobytes(), target), "componentType": comp, "count": int(arr.shape[0]), "type": typ}
        if minmax:
            acc["min"], acc["max"] = arr.min(0).tolist(), arr.max(0).tolist()
        accessors.append(acc)
        return len(accessors) - 1

    a_pos = add_accessor(pos, _FLOAT, "VEC3", _ARRAY_BUFFER, minmax=True)
    a_nrm = add_accessor(nrm, _FLOAT, "VEC3", _ARRAY_BUFFER)
    a_uv = add_accessor(np.ascontiguousarray(uvs, np.float32), _FLOAT, "VEC2", _ARRAY_BUFFER)
    a_idx = add_accessor(np.ascontiguousarray(faces, np.uint32).reshape(-1), _UINT, "SCALAR", _ELEMENT_ARRAY_BUFFER)
    attributes = {"POSITION": a_pos, "NORMAL": a_nrm, "TEXCOORD_0": a_uv}
    if tangents is not None:
        tan = np.asarray(tangents, np.float32)
        # a rotation keeps handedness, so only xyz change axes; w (the bitangent's sign) stays
        tan = np.concatenate([axes.blender_to_gltf_points(tan[:, :3]), tan[:, 3:4]], 1).astype(np.float32)
        attributes["TANGENT"] = add_accessor(np.ascontiguousarray(tan), _FLOAT, "VEC4", _ARRAY_BUFFER)
    v_base = add_view(base_color_png)
    v_orm = add_view(orm_png)
    images = [
        {"bufferView": v_base, "mimeType": "image/png", "name": f"{name}_basecolor"},
        {"bufferView": v_orm, "mimeType": "image/png", "name": f"{name}_orm"},
    ]
    material = {
        "name": f"{name}_pbr",
        "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0},
            "metallicRoughnessTexture": {"index": 1},
            "metallicFactor": 1.0,
            "roughnessFactor": 1.0,
        },
    }
    if occlusion:
        material["occlusionTexture"] = {"index": 1}
    if normal_png is not None:
        images.append({"bufferView": add_view(normal_png), "mimeType": "image/png", "name": f"{name}_normal"})
        material["normalTexture"] = {"index": 2}
    doc = {
        "asset": {"version": "2.0", "generator": "Relight"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"name": name, "primitives": [{
            "attributes": attributes,
            "indices": a_idx, "material": 0, "mode": 4}]}],
        "materials": [material],
        "textures": [{"source": k, "sampler": 0} for k in range(len(images))],
        "images": images,
        "samplers": [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": offset}],
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * ((-len(js)) % 4)
    binary = b"".join(chunks)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return b"".join([
        struct.pack("<4sII", b"glTF", 2, total),
        struct.pack("<I4s", len(js), b"JSON"), js,
        struct.pack("<I4s", len(binary), b"BIN\0"), binary,
    ])


def read_glb_json(data: bytes) -> dict:
    """The JSON chunk of a GLB (for checks and tools)."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2 or length != len(data):
        raise ValueError("not a glTF 2.0 binary")
    n, kind = struct.unpack_from("<I4s", data, 12)
    if kind != b"JSON":
        raise ValueError("first GLB chunk is not JSON")
    return json.loads(data[20 : 20 + n])
