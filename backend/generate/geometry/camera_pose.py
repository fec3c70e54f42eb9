"""The pose a camera fit searches over, and its silhouette score: a mesh seen in its own unit frame (centred on its
bounding box, bounding radius 1) through a rigid (R, t) and a focal length relative to the image width, turned into the
backend's one `Camera` type at the end. Shared by camera_search (coarse), camera_refine (Adam) and camera_fit (API)."""

from dataclasses import dataclass

import fast_simplification
import numpy as np

from ...core.camera import Camera
from ...render.mesh_coverage import mesh_coverage

DEFAULT_FOV_DEG = 39.6  # Blender's default 50 mm lens on its 36 mm sensor (horizontal field of view)
DEFAULT_FOCAL = 0.5 / np.tan(np.radians(DEFAULT_FOV_DEG) / 2)  # focal length / image width of that lens (1.389)


@dataclass
class ObjectFrame:
    """The mesh in its unit frame: world = centre + radius * unit."""

    unit: np.ndarray  # [V, 3] float32 vertices, bounding box centred at 0, half its diagonal 1
    faces: np.ndarray  # [F, 3] int64
    centre: np.ndarray  # [3] world units: the bounding box centre
    radius: float  # world units: half the bounding box diagonal

    @staticmethod
    def of(vertices: np.ndarray, faces: np.ndarray) -> "ObjectFrame":
        """World vertices [V, 3], faces [F, 3] -> the mesh's unit frame."""
        v = np.asarray(vertices, np.float64)
        lo, hi = v.min(0), v.max(0)
        centre, radius = 0.5 * (lo + hi), max(float(np.linalg.norm(hi - lo)) / 2, 1e-12)
        unit = ((v - centre) / radius).astype(np.float32)
        return ObjectFrame(unit, np.asarray(faces, np.int64).reshape(-1, 3), centre, radius)

    def decimated(self, max_faces: int) -> "ObjectFrame":
        """The same frame with the mesh quadric-decimated to about `max_faces` faces (itself when it has fewer): at
        the low resolutions of the search its silhouette differs from the full mesh's by well under a pixel."""
        if len(self.faces) <= max_faces:
            return self
        v, f = fast_simplification.simplify(self.unit, self.faces.astype(np.int32), target_count=max_faces)
        return ObjectFrame(v.astype(np.float32), f.astype(np.int64), self.centre, self.radius)


@dataclass
class Pose:
    """Unit frame -> OpenCV camera: x_cam = R @ x_unit + t; principal point at the image centre, square pixels."""

    R: np.ndarray  # [3, 3] rotation, unit frame -> camera
    t: np.ndarray  # [3] camera-frame translation in bounding radii (t[2] = depth of the bounding-box centre)
    focal: float  # focal length / image width (px per px; DEFAULT_FOCAL for a 50 mm lens on 36 mm)

    def camera(self, frame: ObjectFrame, width: int, height: int) -> Camera:
        """The pose as a world-space Camera of the given image size (pixels)."""
        viewmat = np.eye(4)
        viewmat[:3, :3] = self.R
        # world -> camera: x_cam * radius = R (x_world - centre) + radius t (a uniform scale of camera space does not
        # change the projection, and keeps the view matrix rigid)
        viewmat[:3, 3] = frame.radius * self.t - self.R @ frame.centre
        f = self.focal * width
        K = np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
        return Camera(viewmat, K, int(width), int(height))

    @staticmethod
    def of_camera(camera: Camera, frame: ObjectFrame) -> "Pose":
        """A world Camera -> its pose in the mesh's unit frame (its principal point is taken as the image centre)."""
        R = camera.viewmat[:3, :3].copy()
        t = (camera.viewmat[:3, 3] + R @ frame.centre) / frame.radius
        return Pose(R, t, float(camera.K[0, 0]) / camera.width)


def look_from(direction: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """[3] unit direction from the object to the camera, roll (radians, the image turned clockwise on screen)
    -> [3, 3] rotation unit frame -> OpenCV camera, the camera looking at the origin."""
    fwd = -np.asarray(direction, np.float64) / np.linalg.norm(direction)
    helper = np.eye(3)[int(np.argmin(np.abs(fwd)))]  # any axis not along the view
    right = np.cross(fwd, helper)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    return roll_matrix(roll) @ np.stack([right, down, fwd])


def roll_matrix(angle: float) -> np.ndarray:
    """[3, 3] rotation about the camera's optical axis: image points (x right, y down) turn by
    [[cos, -sin], [sin, cos]] about the principal point."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    """Geodesic angle (degrees) between two [3, 3] rotations."""
    c = (np.trace(Ra @ Rb.T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [H, W] bool masks (1 when both are empty)."""
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b)) / union if union else 1.0


def silhouette_iou(camera: Camera, vertices: np.ndarray, faces: np.ndarray, mask: np.ndarray) -> float:
    """IoU of the mesh's silhouette seen by `camera` (world vertices [V, 3], faces [F, 3]) with mask [H, W] bool;
    the camera is resized to the mask's size first. One visibility pass, no gradients."""
    H, W = mask.shape
    cam = camera if (camera.width, camera.height) == (W, H) else camera.resized(W, H)
    return iou(mesh_coverage(cam, np.asarray(vertices, np.float64), np.asarray(faces, np.int64)), mask)
