"""The data the reconstruction stage passes along: the posed G-buffers in (MultiViewSet) and the baked mesh out
(ReconstructedMesh). Conventions, held everywhere in reconstruct/:

- World frame: the project's (Blender's) right-handed, Z up. Cameras are core.camera.Camera: world-to-camera
  OpenCV (x right, y down, looking down +Z), intrinsics in pixels with pixel centres at integer + 0.5.
- Images are [V, H, W, ...] with row 0 at the top; every view has the same H and W.
- rgb and albedo are linear Rec.709 (sRGB-encoded files are decoded on load); roughness and metallic in [0, 1].
- normal is world space, unit length (view-space inputs are rotated to world on load).
- depth is the camera-space z (distance along the optical axis, not along the ray), world units; 0 outside the mask.
"""

from dataclasses import dataclass, field

import numpy as np

from ..core.camera import Camera

DOMAINS = ("rgb", "normal", "depth", "albedo", "roughness", "metallic", "mask")


@dataclass
class MultiViewSet:
    cameras: list[Camera]  # V cameras, world-to-camera OpenCV
    mask: np.ndarray  # [V, H, W] bool, the object
    rgb: np.ndarray | None = None  # [V, H, W, 3] float32 linear radiance
    normal: np.ndarray | None = None  # [V, H, W, 3] float32 world-space unit normals
    depth: np.ndarray | None = None  # [V, H, W] float32 camera-space z, world units; 0 outside the mask
    albedo: np.ndarray | None = None  # [V, H, W, 3] float32 linear
    roughness: np.ndarray | None = None  # [V, H, W] float32
    metallic: np.ndarray | None = None  # [V, H, W] float32
    meta: dict = field(default_factory=dict)  # source ("zero123pp" / "folder"), normal space declared, file names

    @property
    def n_views(self) -> int:
        return len(self.cameras)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of every view."""
        return int(self.mask.shape[1]), int(self.mask.shape[2])


@dataclass
class ReconstructedMesh:
    vertices: np.ndarray  # [V, 3] float32 world (the views' frame), split along UV seams
    normals: np.ndarray  # [V, 3] float32 unit vertex normals
    tangents: np.ndarray  # [V, 4] float32 glTF tangents (xyz unit, w = +-1 bitangent sign)
    uvs: np.ndarray  # [V, 2] float32 glTF convention: (0, 0) is the image's top-left texel corner
    faces: np.ndarray  # [F, 3] uint32
    albedo: np.ndarray  # [S, S, 3] float32 linear
    roughness: np.ndarray  # [S, S] float32
    metallic: np.ndarray  # [S, S] float32
    normal_map: np.ndarray  # [S, S, 3] float32 tangent-space unit normals (glTF: +Y is the bitangent), not encoded
    meta: dict = field(default_factory=dict)  # per-stage timings (s), hull / optimisation statistics
