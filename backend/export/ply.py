"""3D Gaussian Splatting PLY writer: the standard 3DGS vertex fields plus PBR fields (binary little endian)."""

import numpy as np

from ..core.asset import RelightableAsset
from ..core.colour import linear_to_srgb

SH_C0 = 0.28209479177387814  # Y_0^0: 3DGS stores colour as (rgb - 0.5) / SH_C0


def gaussians_to_ply(means, quats, scales, opacities, normals, albedo, roughness, metallic, visibility) -> bytes:
    """World-space Gaussians -> PLY bytes. Colour (f_dc) is the sRGB albedo, so plain 3DGS viewers show the delit
    asset; the PBR fields (albedo linear, roughness, metallic, visibility) are for relighting."""
    n = len(means)
    f_dc = (linear_to_srgb(np.clip(albedo, 0, 1)) - 0.5) / SH_C0
    op = np.clip(opacities, 1e-4, 1 - 1e-4)
    cols = {
        "x": means[:, 0], "y": means[:, 1], "z": means[:, 2],
        "nx": normals[:, 0], "ny": normals[:, 1], "nz": normals[:, 2],
        "f_dc_0": f_dc[:, 0], "f_dc_1": f_dc[:, 1], "f_dc_2": f_dc[:, 2],
        "opacity": np.log(op / (1 - op)),
        "scale_0": np.log(scales[:, 0]), "scale_1": np.log(scales[:, 1]), "scale_2": np.log(scales[:, 2]),
        "rot_0": quats[:, 0], "rot_1": quats[:, 1], "rot_2": quats[:, 2], "rot_3": quats[:, 3],
        "albedo_0": albedo[:, 0], "albedo_1": albedo[:, 1], "albedo_2": albedo[:, 2],
        "roughness": roughness, "metallic": metallic, "visibility": visibility,
    }
    dtype = np.dtype([(k, "<f4") for k in cols])
    rec = np.empty(n, dtype)
    for k, v in cols.items():
        rec[k] = v
    header = "ply\nformat binary_little_endian 1.0\n" f"element vertex {n}\n"
    header += "".join(f"property float {k}\n" for k in cols) + "end_header\n"
    return header.encode("ascii") + rec.tobytes()


def read_ply(data: bytes) -> np.ndarray:
    """PLY bytes written by gaussians_to_ply -> structured array (for checks and tools)."""
    end = data.index(b"end_header\n") + len(b"end_header\n")
    lines = data[:end].decode("ascii").splitlines()
    names = [ln.split()[-1] for ln in lines if ln.startswith("property")]
    count = int(next(ln for ln in lines if ln.startswith("element vertex")).split()[-1])
    return np.frombuffer(data[end:], dtype=np.dtype([(k, "<f4") for k in names]), count=count)


def splats_ply(asset: RelightableAsset) -> bytes:
    """The asset's Gaussians in world space as a 3DGS PLY with PBR fields."""
    g, M, R, s = asset.gaussians, asset.model_matrix, asset.rotation, asset.scale
    means = g.means @ M[:3, :3].T + M[:3, 3]
    quats = _quat_mul(_quat_from_matrix(R), g.quats)
    return gaussians_to_ply(means, quats, g.scales * s, g.opacities, g.normals @ R.T, g.albedo, g.roughness,
                            g.metallic, g.visibility)


def _quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """[3, 3] rotation -> [4] (w, x, y, z)."""
    w = np.sqrt(max(0.0, 1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = np.copysign(np.sqrt(max(0.0, 1 + R[0, 0] - R[1, 1] - R[2, 2])) / 2, R[2, 1] - R[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] + R[1, 1] - R[2, 2])) / 2, R[0, 2] - R[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] - R[1, 1] + R[2, 2])) / 2, R[1, 0] - R[0, 1])
    return np.array([w, x, y, z])


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[4] (w, x, y, z) times [N, 4] -> [N, 4]."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return np.stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], 1).astype(np.float32)
