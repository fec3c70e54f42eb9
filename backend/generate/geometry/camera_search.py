"""Coarse camera search by silhouette: the mesh rendered once from each of a Fibonacci set of view directions, every
silhouette and the mask moved into one canonical frame (centroid at the centre, sqrt(area) fixed), the in-plane roll
searched by turning the mask instead of the renders, and scored by IoU. Distinct poses of the best scores are kept,
near-symmetric ones included (a silhouette and its mirror image score alike from opposite directions)."""

import cv2
import numpy as np
import torch

from ...render.mesh_visible_triangles import visible_triangles
from .camera_pose import ObjectFrame, Pose, look_from, roll_matrix, rotation_angle_deg

SEARCH_DIRECTIONS = 160  # Fibonacci view directions over the sphere: ~16 degrees apart
SEARCH_ROLLS = 36  # in-plane rolls, 10 degrees apart
RENDER_PX = 96  # side of each search render (pixels)
RENDER_DISTANCE = 3.2  # camera distance of the search renders, in bounding radii (about a 50 mm framing)
CANVAS_PX = 80  # side of the canonical frame the silhouettes are compared in (pixels)
CANVAS_ROOT_AREA = 24.0  # sqrt(area) of every silhouette in the canonical frame (pixels): a 10:1 bar still fits
DISTINCT_DEG = 25.0  # kept poses differ pairwise by more than this rotation


def fibonacci_directions(n: int) -> np.ndarray:
    """[n, 3] unit vectors spread evenly over the sphere (golden-angle spiral)."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (3 - np.sqrt(5)) * k
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


def moments(img: np.ndarray) -> tuple[float, np.ndarray]:
    """[h, w] coverage in [0, 1] -> (area in pixels, [2] centroid (x, y) in pixels, pixel centres at + 0.5)."""
    area = float(img.sum())
    ys, xs = np.nonzero(img)
    w = img[ys, xs]
    return area, np.array([(w * (xs + 0.5)).sum(), (w * (ys + 0.5)).sum()]) / max(area, 1e-12)


def to_canvas(img: np.ndarray, area: float, centroid: np.ndarray) -> np.ndarray:
    """[h, w] coverage -> [CANVAS_PX, CANVAS_PX] float32 in the canonical frame: q = s (p - centroid) + centre with
    s = CANVAS_ROOT_AREA / sqrt(area) (p, q in pixels, centres at + 0.5; cv2 puts them at integers)."""
    s = CANVAS_ROOT_AREA / np.sqrt(max(area, 1e-12))
    c = CANVAS_PX / 2
    M = np.array([[s, 0, s * (0.5 - centroid[0]) + c - 0.5], [0, s, s * (0.5 - centroid[1]) + c - 0.5]])
    return cv2.warpAffine(img.astype(np.float32), M, (CANVAS_PX, CANVAS_PX), flags=cv2.INTER_LINEAR)


def turned(canvas: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """[G, G] canonical image, [R] angles (radians) -> [R, G, G]: out_r(q) = canvas(Rot(angle_r) (q - c) + c), c the
    canvas centre, Rot = [[cos, -sin], [sin, cos]] on (x right, y down). A render turned by +angle against the mask
    scores as the render against the mask turned so."""
    c = CANVAS_PX / 2 - 0.5  # the centre in cv2's pixel coordinates
    out = []
    for a in angles:
        R2 = roll_matrix(a)[:2, :2]
        M = np.c_[R2, np.array([c, c]) - R2 @ np.array([c, c])]
        out.append(cv2.warpAffine(canvas, M, canvas.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP))
    return np.stack(out)


def render_silhouette(unit: np.ndarray, faces: np.ndarray, R: np.ndarray, distance: float, focal_px: float,
                      size: int) -> np.ndarray:  # fmt: skip
    """Unit-frame vertices [V, 3], faces [F, 3], rotation [3, 3], depth of the origin (radii), focal (pixels) ->
    [size, size] bool silhouette, principal point at the centre. Visibility pass only (numba)."""
    xc = unit.astype(np.float64) @ R.T + np.array([0.0, 0.0, distance])  # [V, 3] camera frame
    near, far = 0.01, distance + 10.0
    a = 2 * focal_px / size
    z_clip = (far + near) / (far - near) * xc[:, 2] - 2 * far * near / (far - near)
    pos = np.stack([a * xc[:, 0], a * xc[:, 1], z_clip, xc[:, 2]], 1)  # [V, 4] clip
    return visible_triangles(torch.from_numpy(pos), faces, (size, size)).numpy() > 0


def coarse_search(frame: ObjectFrame, mask: np.ndarray, focal: float, keep: int, directions: int = SEARCH_DIRECTIONS,
                  rolls: int = SEARCH_ROLLS) -> list[tuple[float, Pose]]:
    """The mesh's unit frame, mask [H, W] bool, focal length / mask width -> up to `keep` (IoU in the canonical frame,
    Pose for the mask's image) pairs, best first, pairwise more than DISTINCT_DEG apart. Each pose puts the rendered
    silhouette's centroid on the mask's and matches sqrt(area) through the depth (weak perspective)."""
    H, W = mask.shape
    m = mask.astype(np.float32)
    shrink = min(1.0, 2 * CANVAS_ROOT_AREA / np.sqrt(max(m.sum(), 1.0)))  # pre-shrink big masks (area filter)
    if shrink < 1.0:
        small = cv2.resize(m, (max(1, round(W * shrink)), max(1, round(H * shrink))), interpolation=cv2.INTER_AREA)
        a_s, c_s = moments(small)
        canvas_m = to_canvas(small, a_s, c_s)
    a_m, c_m = moments(m)
    if shrink >= 1.0:
        canvas_m = to_canvas(m, a_m, c_m)
    angles = 2 * np.pi * np.arange(rolls) / rolls
    mask_turns = turned(canvas_m, angles).reshape(rolls, -1)  # [R, G*G]

    dirs = fibonacci_directions(directions)
    f_r = 0.4 * RENDER_PX * RENDER_DISTANCE  # the unit sphere spans ~0.84 of the render
    Rd, shapes, stats = [], [], []
    for d in dirs:
        R = look_from(d)
        sil = render_silhouette(frame.unit, frame.faces, R, RENDER_DISTANCE, f_r, RENDER_PX).astype(np.float32)
        a, c = moments(sil)
        if a < 1:
            continue
        Rd.append(R)
        shapes.append(to_canvas(sil, a, c).reshape(-1))
        stats.append((a, c))
    S = np.stack(shapes)  # [N, G*G]
    inter = S @ mask_turns.T  # [N, R]
    union = S.sum(1)[:, None] + mask_turns.sum(1)[None, :] - inter
    scores = inter / np.maximum(union, 1e-9)

    f_m = focal * W
    kept: list[tuple[float, Pose]] = []
    for flat in np.argsort(-scores, axis=None)[: 40 * keep]:
        i, j = divmod(int(flat), rolls)
        R = roll_matrix(angles[j]) @ Rd[i]
        if any(rotation_angle_deg(R, p.R) < DISTINCT_DEG for _, p in kept):
            continue
        a_r, c_r = stats[i]
        k = np.sqrt(a_m / a_r)  # render pixels -> mask pixels
        depth = RENDER_DISTANCE * f_m / (f_r * k)
        centre_r = roll_matrix(angles[j])[:2, :2] @ (c_r - RENDER_PX / 2)  # the turned render's centroid offset
        off = c_m - np.array([W / 2, H / 2]) - k * centre_r  # pixels still to move in the mask's image
        kept.append((float(scores[i, j]), Pose(R, np.array([*(off * depth / f_m), depth]), float(focal))))
        if len(kept) == keep:
            break
    return kept
