"""Surface Gaussians with PBR attributes, and the G-buffer layout they rasterize into."""

from dataclasses import dataclass, fields

import numpy as np

# Channel layout of the feature vector each Gaussian carries into the rasterizer, and so of the G-buffer.
GBUFFER_LAYOUT = {
    "albedo": slice(0, 3),  # linear Rec.709 base colour
    "roughness": slice(3, 4),  # perceptual roughness in [0, 1] (Principled BSDF semantics)
    "metallic": slice(4, 5),  # [0, 1]
    "normal": slice(5, 8),  # world-space unit normal (renormalise after compositing)
    "visibility": slice(8, 9),  # in [0, 1], drives specular occlusion: the AO, or a final render's lobe visibility
    "shadow": slice(9, 12),  # diffuse visibility under the current light, RGB in [0, 1] (1 = unshadowed)
}
GBUFFER_CHANNELS = 12


@dataclass
class SurfaceGaussians:
    """N flat 3D Gaussians lying on the asset's surface. Asset space, float32."""

    means: np.ndarray  # [N, 3] centres
    quats: np.ndarray  # [N, 4] rotation, (w, x, y, z), unit; local z axis is the surface normal
    scales: np.ndarray  # [N, 3] standard deviations along local axes (linear, not log)
    opacities: np.ndarray  # [N] in [0, 1]
    albedo: np.ndarray  # [N, 3] linear Rec.709
    roughness: np.ndarray  # [N]
    metallic: np.ndarray  # [N]
    normals: np.ndarray  # [N, 3] unit outward normals
    visibility: np.ndarray  # [N] ambient occlusion in [0, 1]
    voxel: np.ndarray  # [N] int32 index into the asset's active voxel list
    # [N, D / 8] uint8 bit-packed visibility over visibility.sphere_directions() (asset space), or None (older
    # assets): lets the renderer turn the current light into per-Gaussian shadows
    vis_bits: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.means.shape[0])

    def features(self, normal_matrix: np.ndarray | None = None, shadow: np.ndarray | None = None) -> np.ndarray:
        """[N, GBUFFER_CHANNELS] float32 features in GBUFFER_LAYOUT order.

        normal_matrix: optional [3, 3] rotation applied to normals (asset -> world).
        shadow: optional [N, 3] light-dependent diffuse visibility; default: the ambient occlusion."""
        n = self.normals if normal_matrix is None else self.normals @ np.asarray(normal_matrix).T
        if shadow is None:
            shadow = np.repeat(self.visibility[:, None], 3, 1)
        return np.concatenate(
            [
                self.albedo,
                self.roughness[:, None],
                self.metallic[:, None],
                n,
                self.visibility[:, None],
                shadow,
            ],
            axis=1,
        ).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"g_{f.name}": getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @staticmethod
    def from_arrays(d) -> "SurfaceGaussians":
        keys = set(d.keys()) if hasattr(d, "keys") else set(d.files)
        return SurfaceGaussians(**{f.name: np.asarray(d[f"g_{f.name}"]) for f in fields(SurfaceGaussians)
                                   if f"g_{f.name}" in keys or f.default is not None})  # fmt: skip

    def subset(self, idx: np.ndarray) -> "SurfaceGaussians":
        return SurfaceGaussians(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[idx]
                                   for f in fields(self)})  # fmt: skip


def quats_from_normals(normals: np.ndarray) -> np.ndarray:
    """[N, 3] unit normals -> [N, 4] (w, x, y, z) quaternions rotating local +z onto each normal."""
    n = np.asarray(normals, dtype=np.float64)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(np.broadcast_to(z, n.shape), n)  # [N, 3]
    w = 1.0 + n[:, 2]  # 1 + cos(theta)
    q = np.concatenate([w[:, None], axis], axis=1)
    flip = w < 1e-6  # normal ~ -z: rotate pi about x
    q[flip] = [0.0, 1.0, 0.0, 0.0]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.astype(np.float32)
