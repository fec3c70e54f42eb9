"""RelightableAsset: mesh, surface Gaussians with PBR attributes, sparse voxels and visibility, saved as one folder."""

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .camera import Camera
from .gaussians import SurfaceGaussians
from .frames import similarity_scale

FORMAT_VERSION = 1


@dataclass
class RelightableAsset:
    asset_id: str  # content id of the inputs that made it
    name: str
    vertices: np.ndarray  # [V, 3] float32 asset space (unit cube)
    faces: np.ndarray  # [F, 3] int32
    vertex_normals: np.ndarray  # [V, 3] float32
    gaussians: SurfaceGaussians
    voxels: np.ndarray  # [L, 3] int32 active cells of the 64^3 grid
    model_matrix: np.ndarray  # [4, 4] asset -> world (similarity)
    input_camera: Camera  # the input image's camera, asset space
    thumbnail: np.ndarray  # [h, w, 4] uint8 sRGB input image (for contact sheets and the UI)
    meta: dict = field(default_factory=dict)  # provider, light hint, estimated light, timings
    # a GLB made with the asset (a reconstruction's own baked maps, normal map included): `bake` returns it as is
    # rather than re-baking the Gaussians; saved as baked.glb beside the arrays
    baked_glb: bytes | None = None

    @property
    def scale(self) -> float:
        """Uniform scale of model_matrix (asset units -> world units)."""
        return similarity_scale(self.model_matrix)

    @property
    def rotation(self) -> np.ndarray:
        """[3, 3] rotation part of model_matrix."""
        return self.model_matrix[:3, :3] / self.scale

    def save(self, folder: Path) -> None:
        """Write atomically: a temp folder renamed into place, so a crash never leaves half an asset."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            np.savez(
                tmp / "asset.npz",
                vertices=self.vertices, faces=self.faces, vertex_normals=self.vertex_normals,
                voxels=self.voxels, model_matrix=self.model_matrix, thumbnail=self.thumbnail,
                **self.gaussians.to_arrays(),
            )
            meta = {
                "format_version": FORMAT_VERSION, "asset_id": self.asset_id, "name": self.name,
                "input_camera": self.input_camera.to_dict(), "meta": self.meta,
            }
            (tmp / "asset.json").write_text(json.dumps(meta, indent=1, default=_jsonable))
            if self.baked_glb is not None:
                (tmp / "baked.glb").write_bytes(self.baked_glb)
            for f in (*tmp.iterdir(), tmp):  # on disk before the rename makes them visible
                fsync_path(f)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
            fsync_path(folder.parent)  # the rename itself
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @staticmethod
    def load(folder: Path) -> "RelightableAsset":
        folder = Path(folder)
        meta = json.loads((folder / "asset.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"asset {folder.name} has format {meta.get('format_version')}, expected {FORMAT_VERSION}")
        with np.load(folder / "asset.npz") as z:
            d = {k: z[k] for k in z.files}
        return RelightableAsset(
            asset_id=meta["asset_id"], name=meta["name"], vertices=d["vertices"], faces=d["faces"],
            vertex_normals=d["vertex_normals"], gaussians=SurfaceGaussians.from_arrays(d), voxels=d["voxels"],
            model_matrix=d["model_matrix"], input_camera=Camera.from_dict(meta["input_camera"]),
            thumbnail=d["thumbnail"], meta=meta["meta"],
            baked_glb=(folder / "baked.glb").read_bytes() if (folder / "baked.glb").exists() else None,
        )


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's data to disk (a folder: its entries; where the OS cannot, nothing)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. folders on Windows
    finally:
        os.close(fd)


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")
