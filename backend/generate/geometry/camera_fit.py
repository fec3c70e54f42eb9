"""Match photo: the camera under which a mesh's silhouette covers a photo's object mask, for a mesh in any pose and
scale. A coarse search over view directions and rolls (camera_search) keeps a few distinct poses, near-symmetric ones
included; each is refined through the differentiable rasterizer, coarse to fine (camera_refine); the best wins.

Focal length: kept exactly when given (EXIF, or the user's); otherwise it starts from Blender's default 50 mm lens on
a 36 mm sensor and is optimised with the rest. Focal length and distance trade off: for an object that is small
against its distance (weak perspective) the silhouette fixes only their ratio, so a free focal may end far from the
photo's true one while the silhouette still matches; give the focal length when it is known."""

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ...core.camera import Camera
from ...core.progress import no_progress
from ...render.mesh_antialias import antialias_construct_topology_hash
from .camera_pose import DEFAULT_FOCAL, ObjectFrame, Pose, iou, look_from, silhouette_iou
from .camera_refine import Level, refine
from .camera_search import RENDER_DISTANCE, RENDER_PX, coarse_search, fibonacci_directions, render_silhouette

MATCH_IOU = 0.9  # below this silhouette IoU the fit warns: the mesh does not have the photo's outline
TORCH_THREADS = 1  # torch intra-op threads while fitting (restored after): the ops are small, and on a busy 2-core
# machine two threads made each step ~6x slower than one (measured: 19 s against 3 s for the same fit)
KEEP = 4  # distinct poses kept from the coarse search and refined
COARSE_FACES = 3000  # the search and the low rungs see the mesh decimated to this many faces; the last the full mesh
COARSE_CHECK_IOU = 0.97  # a decimation is used only if its silhouettes match the full mesh's this well (6 views)
# the coarse-to-fine ladder: (longer image side in pixels, Adam steps, how many poses go on to this rung, full mesh?,
# weight of the distance pulls). The pulls bring a far start in on the first rung; later they would bias the edges
# (the chamfer pull measures to projected vertices, which lie pixels apart along the outline), so the IoU alone
# finishes: without them 11 cases at 256 px reached mean IoU 0.9954 against 0.9908 with them on every rung
LADDER = ((64, 25, KEEP, False, 0.05), (128, 20, 2, False, 0.0), (256, 12, 1, True, 0.0))


@dataclass
class CameraFit:
    """What fit_camera found."""

    camera: Camera  # world space, the mask's image size
    iou: float  # silhouette IoU of `camera` with the mask, at the mask's resolution
    candidates: list[tuple[float, Camera]] = field(default_factory=list)  # each kept pose, refined: (IoU, camera)
    seconds: float = 0.0  # wall time of the fit
    warning: str | None = None  # set when iou < MATCH_IOU


def fit_camera(vertices: np.ndarray, faces: np.ndarray, mask: np.ndarray, focal_px: float | None = None,
               progress=None, seed: int = 0) -> CameraFit:  # fmt: skip
    """World vertices [V, 3], faces [F, 3] int, the photo's object mask [H, W] bool, its focal length in pixels (None:
    unknown) -> CameraFit, the camera in world space with image size W x H.

    progress: a core.progress callable (stage "camera fit"), which may raise to cancel between steps. seed: the search
    and the refinement are deterministic; it is accepted so that callers can vary it, and only seeds torch."""
    progress = progress or no_progress
    mask = np.asarray(mask, bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"fit_camera: the mask must be [H, W] bool with some object pixels, got shape {mask.shape}")
    if len(faces) == 0 or len(vertices) == 0:
        raise ValueError("fit_camera: the mesh is empty")
    if focal_px is not None and not focal_px > 0:
        raise ValueError(f"fit_camera: focal_px must be positive pixels, got {focal_px}")
    threads = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    try:
        return _fit(vertices, faces, mask, focal_px, progress, seed)
    finally:
        torch.set_num_threads(threads)


def _fit(vertices, faces, mask, focal_px, progress, seed) -> CameraFit:
    """fit_camera's work (see there), with torch's threads set."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    H, W = mask.shape
    frame = ObjectFrame.of(vertices, faces)
    focal = DEFAULT_FOCAL if focal_px is None else float(focal_px) / W
    progress("camera fit", 0.0, "searching view directions")
    coarse = coarse_mesh(frame)
    poses = [p for _, p in coarse_search(coarse, mask, focal, KEEP)]
    meshes = {False: (coarse, antialias_construct_topology_hash(coarse.faces))}
    meshes[True] = meshes[False] if coarse is frame else (frame, antialias_construct_topology_hash(frame.faces))
    refined: dict[int, Pose] = {}  # the latest pose of each coarse candidate
    order = list(range(len(poses)))
    for rung, (side, steps, count, full, pull) in enumerate(LADDER):
        level = Level.of(mask, side)
        mesh, topology = meshes[full]
        results = []
        for k in order[:count]:
            progress("camera fit", 0.1 + 0.85 * rung / len(LADDER), f"refining pose {k + 1} at {side} px")
            pose, score = refine(mesh, refined.get(k, poses[k]), level, steps, focal_px is None, topology, pull)
            refined[k] = pose
            results.append((score, k))
        order = [k for _, k in sorted(results, key=lambda r: -r[0])] + order[count:]
    cams = [(silhouette_iou(c, vertices, faces, mask), c) for c in
            (refined.get(k, poses[k]).camera(frame, W, H) for k in range(len(poses)))]  # fmt: skip
    if focal_px is not None:  # exactly the given focal length, not its round trip through focal / width
        for _, c in cams:
            c.K[0, 0] = c.K[1, 1] = float(focal_px)
    cams.sort(key=lambda s: -s[0])
    best_iou, best = cams[0]
    warning = None
    if best_iou < MATCH_IOU:
        warning = f"the mesh does not match the photo's outline (silhouette IoU {best_iou:.2f})"
    progress("camera fit", 1.0, f"silhouette IoU {best_iou:.3f}")
    return CameraFit(best, best_iou, cams, time.perf_counter() - t0, warning)


def coarse_mesh(frame: ObjectFrame) -> ObjectFrame:
    """The mesh the search and the low rungs use: decimated to COARSE_FACES, or to twice that, when its silhouettes
    from six directions (RENDER_PX) match the full mesh's to COARSE_CHECK_IOU; else the full mesh. Quadric
    decimation can wreck a mesh of separate, thin parts (seen: a bracket of slabs keeping 0.18 of its outline)."""
    views = [look_from(d) for d in fibonacci_directions(6)]
    f_px = 0.4 * RENDER_PX * RENDER_DISTANCE

    def outlines(m: ObjectFrame) -> list[np.ndarray]:
        return [render_silhouette(m.unit, m.faces, R, RENDER_DISTANCE, f_px, RENDER_PX) for R in views]

    full = outlines(frame)
    for target in (COARSE_FACES, 2 * COARSE_FACES):
        small = frame.decimated(target)
        if small is frame:
            return frame
        if all(iou(a, b) >= COARSE_CHECK_IOU for a, b in zip(outlines(small), full)):
            return small
    return frame
