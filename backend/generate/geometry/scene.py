"""The `scene` geometry provider: the mesh sent with the request (world space), normalised into the unit cube; the
image's camera is the given one when the mesh's silhouette through it matches the photo's mask, else the camera
`camera_fit` finds from the mask (no camera given, or one that does not see the mesh as the photo does)."""

import time

import numpy as np

from ...core.camera import Camera
from ...core.frames import camera_to_asset, normalise
from ...core.surface import split_by_normals
from .base import GeometryResult
from .camera_fit import fit_camera
from .camera_pose import silhouette_iou

# A given camera is kept when the mesh's silhouette through it reaches this IoU with the mask. Below it the camera is
# taken as not placed for this photo and the camera is fitted. Set well under what a placed camera reaches (0.95 and
# up; a segmentation's fringe of a pixel or two costs ~0.02 at 256 px) and well over what a camera from another side
# gives (0.3 to 0.7 in the tests): a photo matched by hand in Blender is not second-guessed.
REFIT_IOU = 0.8


def scene_geometry(vertices: np.ndarray, faces: np.ndarray, camera: Camera | None, mask: np.ndarray,
                   progress=None, corner_normals: np.ndarray | None = None) -> GeometryResult:  # fmt: skip
    """World vertices [V, 3], faces [F, 3], the image's world camera or None, the photo's object mask [H, W] bool ->
    GeometryResult. Its meta["camera_fit"] says whether the camera was fitted and why ({"done", "reason", "iou",
    "seconds"}); a fit whose silhouette still does not match adds a warning. progress goes to fit_camera.
    corner_normals [F, 3, 3] world: the artist's shading (flat faces, sharp edges, custom normals); the mesh is then
    split where they differ and carries them as vertex normals (None: smooth normals from the triangles)."""
    t0 = time.perf_counter()
    reason, score = "no camera", None
    if camera is not None:
        score = silhouette_iou(camera, vertices, faces, mask)  # one visibility pass at the mask's size
        reason = None if score >= REFIT_IOU else f"camera IoU {score:.2f} < {REFIT_IOU}"
    warnings = []
    if reason is None:
        info = {"done": False, "reason": f"camera IoU {score:.2f} >= {REFIT_IOU}", "iou": score}
    else:
        fit = fit_camera(vertices, faces, mask, progress=progress)
        camera, warnings = fit.camera, [fit.warning] if fit.warning else []
        info = {"done": True, "reason": reason, "iou": fit.iou, "focal_px": float(fit.camera.K[0, 0])}
    info["seconds"] = time.perf_counter() - t0
    vn = None
    if corner_normals is not None:  # normalise() only moves and scales: normals keep their directions
        vertices, faces, vn = split_by_normals(vertices, faces, corner_normals)
    v_a, M = normalise(np.asarray(vertices, np.float64))
    return GeometryResult(v_a, np.asarray(faces, np.int32), camera_to_asset(camera, M), M, "scene",
                          meta={"camera_fit": info}, warnings=warnings, vertex_normals=vn)
