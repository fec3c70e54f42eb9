"""Pinhole camera: world-to-camera (OpenCV) plus intrinsics, the one camera type of the backend."""

from dataclasses import dataclass

import numpy as np

from . import axes


@dataclass
class Camera:
    viewmat: np.ndarray  # [4, 4] world-to-camera, OpenCV (x right, y down, looks down +Z)
    K: np.ndarray  # [3, 3] intrinsics in pixels; pixel centres at integer + 0.5
    width: int  # pixels
    height: int  # pixels

    @property
    def position(self) -> np.ndarray:
        """[3] camera centre in world space."""
        return -self.viewmat[:3, :3].T @ self.viewmat[:3, 3]

    def resized(self, width: int, height: int) -> "Camera":
        """Same view at another resolution (intrinsics scaled per axis)."""
        K = self.K.copy()
        K[0] *= width / self.width
        K[1] *= height / self.height
        return Camera(self.viewmat.copy(), K, int(width), int(height))

    def cropped(self, x0: int, y0: int, width: int, height: int) -> "Camera":
        """The window [x0, x0 + width) x [y0, y0 + height) of this camera's image as a camera of its own: same
        view and focal lengths, principal point moved (its pixel (i, j) is this camera's (x0 + i, y0 + j))."""
        K = self.K.copy()
        K[0, 2] -= x0
        K[1, 2] -= y0
        return Camera(self.viewmat.copy(), K, int(width), int(height))

    def to_dict(self) -> dict:
        return {
            "viewmat": np.asarray(self.viewmat, dtype=float).tolist(),
            "K": np.asarray(self.K, dtype=float).tolist(),
            "width": int(self.width),
            "height": int(self.height),
        }

    @staticmethod
    def from_dict(d: dict) -> "Camera":
        return Camera(
            np.asarray(d["viewmat"], dtype=np.float64).reshape(4, 4),
            np.asarray(d["K"], dtype=np.float64).reshape(3, 3),
            int(d["width"]),
            int(d["height"]),
        )

    @staticmethod
    def look_at(eye, target, fov_deg: float, width: int, height: int, up=(0.0, 0.0, 1.0)) -> "Camera":
        """Camera at `eye` looking at `target` with horizontal field of view `fov_deg`."""
        f = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
        K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
        return Camera(axes.look_at_viewmat(eye, target, up), K, width, height)

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel world rays: origin [3], directions [H, W, 3] unit length."""
        j, i = np.meshgrid(np.arange(self.height) + 0.5, np.arange(self.width) + 0.5, indexing="ij")
        x = (i - self.K[0, 2]) / self.K[0, 0]
        y = (j - self.K[1, 2]) / self.K[1, 1]
        d_cam = np.stack([x, y, np.ones_like(x)], axis=-1)
        d = d_cam @ self.viewmat[:3, :3]  # camera -> world: R^T d
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        return self.position, d
