"""The geometry-provider interface: every provider returns a mesh normalised to the unit cube plus the input camera
(`core.frames.normalise` does the normalising)."""

from dataclasses import dataclass, field

import numpy as np

from ...core.camera import Camera


@dataclass
class GeometryResult:
    vertices: np.ndarray  # [V, 3] float32, asset space: centred, longest side 1 (inside [-0.5, 0.5]^3)
    faces: np.ndarray  # [F, 3] int32, counter-clockwise seen from outside
    camera: Camera  # the input image's camera, in asset space
    model_matrix: np.ndarray  # [4, 4] asset -> world similarity (uniform scale, rotation, translation)
    provider: str
    meta: dict = field(default_factory=dict)  # what the provider did, for asset.meta (e.g. scene's "camera_fit")
    warnings: list[str] = field(default_factory=list)  # for the artist, joined to asset.meta["warnings"]
    vertex_normals: np.ndarray | None = None  # [V, 3] the mesh's own normals (split at sharp edges); None: smooth
