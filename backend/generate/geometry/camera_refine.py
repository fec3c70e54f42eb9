"""Camera refinement through the differentiable rasterizer: rotation, translation and (optionally) focal length
optimised with Adam so the mesh's antialiased silhouette covers the mask.

Loss per step, at one resolution of a coarse-to-fine ladder:
- soft IoU of the antialiased coverage (render.mesh_antialias gives its gradients at silhouette edges) and the mask
  (area-filtered to that resolution);
- pulls from afar, beyond a one-pixel dead zone so they leave the fit to the IoU once it is close: every projected
  vertex outside the mask by its distance to it (the mask's distance transform, sampled bilinearly), and every mask
  pixel the render misses by the distance to its nearest projected vertex (a one-sided chamfer).
Parameters: a rotation vector left-multiplying the start rotation (camera frame), the image-plane offset t_xy / t_z,
log t_z, and log focal (focal / image width)."""

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from ...render.mesh_antialias import antialias, antialias_construct_topology_hash
from ...render.mesh_visible_triangles import visible_triangles
from .camera_pose import ObjectFrame, Pose

PULL_WEIGHT = 0.05  # default weight of the distance pulls (per pixel of distance, relative to the IoU loss)
DEAD_ZONE_PX = 1.0  # distances below this many pixels (at the step's resolution) are left to the IoU term
MAX_CHAMFER_PIXELS = 2000  # missed mask pixels sampled per step for the chamfer pull
LR_END = 0.15  # the learning rate at a rung's last step, relative to its first
WINDOW_MARGIN = 0.3  # each rung sees the object's bounding box grown by this fraction of its size on every side


@dataclass
class Level:
    """One rung of the coarse-to-fine ladder: a window of the mask around the object (so that a rung's pixels go to
    the object however small it is in the photo), resampled to the rung's resolution, and what the loss reads of it."""

    size: tuple[int, int]  # (h, w) pixels of the rung
    window: tuple[int, int, int, int]  # (x0, y0, width, height) of the window, in mask pixels
    image: tuple[int, int]  # (H, W) of the whole mask (the principal point is at its centre)
    target: torch.Tensor  # [1, h, w, 1] float32 mask coverage in [0, 1] (area-filtered)
    outside: torch.Tensor  # [1, 1, h, w] float32 pixels (of the rung) from each pixel to the mask (0 inside)
    inside: np.ndarray  # [P, 2] int (row, column) of the mask's pixels at the rung's resolution

    @staticmethod
    def of(mask: np.ndarray, long_side: int, margin: float = WINDOW_MARGIN) -> "Level":
        """mask [H, W] bool -> the rung whose window (the object's bounding box grown by `margin` of its size on
        every side, inside the image) is resampled to `long_side` pixels on its longer side (never upsampled)."""
        H, W = mask.shape
        ys, xs = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        grow = margin * max(ys[-1] - ys[0] + 1, xs[-1] - xs[0] + 1)
        x0, x1 = max(0, int(xs[0] - grow)), min(W, int(np.ceil(xs[-1] + 1 + grow)))
        y0, y1 = max(0, int(ys[0] - grow)), min(H, int(np.ceil(ys[-1] + 1 + grow)))
        crop = mask[y0:y1, x0:x1].astype(np.float32)
        s = min(1.0, long_side / max(crop.shape))
        h, w = max(1, round(crop.shape[0] * s)), max(1, round(crop.shape[1] * s))
        m = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA) if (h, w) != crop.shape else crop
        hard = m > 0.5
        dist = distance_transform_edt(~hard).astype(np.float32)
        return Level((h, w), (x0, y0, x1 - x0, y1 - y0), (H, W), torch.from_numpy(m)[None, :, :, None],
                     torch.from_numpy(dist)[None, None], np.argwhere(hard))  # fmt: skip

    def projection(self) -> tuple[float, float, float, float]:
        """(ax, bx, ay, by): clip x = focal * ax * x + bx * z, clip y = focal * ay * y + by * z for a camera-frame
        point (x, y, z), focal as a fraction of the mask's width. From NDC = 2 (pixel - window start) / window size - 1
        with pixel = focal W x / z + W / 2 (and likewise for y)."""
        H, W = self.image
        x0, y0, w, h = self.window
        return 2 * W / w, (W - 2 * x0) / w - 1, 2 * W / h, (H - 2 * y0) / h - 1


def rotation_from_vector(w: torch.Tensor) -> torch.Tensor:
    """[3] rotation vector (radians) -> [3, 3] rotation matrix (Rodrigues), differentiable also at 0."""
    theta2 = (w * w).sum()
    theta = torch.sqrt(theta2 + 1e-20)
    K = torch.zeros(3, 3, dtype=w.dtype)
    K[0, 1], K[0, 2], K[1, 0], K[1, 2], K[2, 0], K[2, 1] = -w[2], w[1], w[2], -w[0], -w[1], w[0]
    small = theta2 < 1e-8  # Taylor terms near 0
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / (theta2 + 1e-20))
    return torch.eye(3, dtype=w.dtype) + a * K + b * (K @ K)


class PoseParameters(torch.nn.Module):
    """A Pose as free parameters around its start: x_cam = exp(w) R0 x + t, t = depth * (q, 1).

    With a free focal length the image scale focal / depth is a parameter of its own (log_scale), and log depth then
    moves only the strength of perspective: the silhouette pins the scale well and the perspective weakly, so the two
    do not drag each other (log focal and log depth together are nearly degenerate for a distant object)."""

    def __init__(self, pose: Pose, fit_focal: bool):
        super().__init__()
        self.R0 = torch.as_tensor(pose.R, dtype=torch.float32)
        depth = float(pose.t[2])
        self.fit_focal = fit_focal
        self.focal = pose.focal  # focal length / image width when it is not fitted
        self.w = torch.nn.Parameter(torch.zeros(3))
        self.q = torch.nn.Parameter(torch.tensor(pose.t[:2] / depth, dtype=torch.float32))  # image-plane offset
        self.log_depth = torch.nn.Parameter(torch.tensor(np.log(depth), dtype=torch.float32))
        self.log_scale = torch.nn.Parameter(torch.tensor(np.log(pose.focal / depth), dtype=torch.float32))

    def focal_now(self) -> torch.Tensor:
        """Focal length / image width (scalar tensor)."""
        if self.fit_focal:
            return torch.exp(self.log_scale + self.log_depth)
        return torch.tensor(self.focal, dtype=torch.float32)

    def clip(self, unit: torch.Tensor, level: Level, far: float) -> torch.Tensor:
        """[V, 3] unit-frame vertices, the rung, far plane (radii) -> [1, V, 4] clip positions of the rung's window
        (Level.projection)."""
        depth = torch.exp(self.log_depth)
        t = torch.cat([self.q * depth, depth[None]])
        xc = unit @ (rotation_from_vector(self.w) @ self.R0).T + t  # [V, 3]
        f = self.focal_now()
        ax, bx, ay, by = level.projection()
        near = 0.01
        z = (far + near) / (far - near) * xc[:, 2] - 2 * far * near / (far - near)
        return torch.stack([f * ax * xc[:, 0] + bx * xc[:, 2], f * ay * xc[:, 1] + by * xc[:, 2], z, xc[:, 2]], 1)[None]

    def pose(self) -> Pose:
        """The current parameters as a Pose."""
        with torch.no_grad():
            U, _, Vt = np.linalg.svd((rotation_from_vector(self.w) @ self.R0).double().numpy())
            R = U @ Vt  # the nearest rotation: float32 products drift from orthonormal by ~1e-7
            depth = float(torch.exp(self.log_depth))
            t = np.array([*(self.q.double().numpy() * depth), depth])
            return Pose(R, t, float(self.focal_now()) if self.fit_focal else self.focal)


def triangle_ids(pos: torch.Tensor, faces: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[1, V, 4] clip, [F, 3], (H, W) -> [1, H, W, 4] what `antialias` reads of a rast: channel 3 the triangle id + 1
    (0 = empty), channel 2 a depth to tell the occluding side of an edge between two triangles (the triangle's mean
    NDC z: enough for that, and it spares the barycentric pass of `rasterize`, which a silhouette does not need)."""
    H, W = size
    tid = visible_triangles(pos[0], faces, (H, W))  # [H, W] int64
    p = pos[0]
    face_z = (p[:, 2] / p[:, 3].clamp(min=1e-9))[faces].mean(1)  # [F]
    rast = torch.zeros(1, H, W, 4)
    rast[0, :, :, 3] = tid.float()
    rast[0, :, :, 2] = torch.where(tid > 0, face_z[(tid - 1).clamp(min=0)], torch.zeros(()))
    return rast


def silhouette_loss(params: PoseParameters, unit: torch.Tensor, faces: torch.Tensor, topology: torch.Tensor,
                    level: Level, far: float, pull_weight: float = PULL_WEIGHT) -> tuple[torch.Tensor, float]:
    """One step's loss (scalar tensor) and the hard-coverage IoU (float) at `level`'s resolution. pull_weight 0
    leaves the IoU term alone (the pulls are then not computed)."""
    H, W = level.size
    pos = params.clip(unit, level, far)  # [1, V, 4]
    rast = triangle_ids(pos.detach(), faces, (H, W))
    hard = (rast[..., 3:4] > 0).float()  # [1, H, W, 1]
    cov = antialias(hard, rast, pos, faces, topology_hash=topology)  # edges covered by their true fraction
    m = level.target
    inter = (cov * m).sum()
    loss = 1 - inter / (cov.sum() + m.sum() - inter).clamp(min=1e-6)
    with torch.no_grad():
        h_inter = (hard * m).sum()
        hard_iou = float(h_inter / (hard.sum() + m.sum() - h_inter).clamp(min=1e-6))

    if pull_weight == 0:
        return loss, hard_iou
    ndc = pos[0, :, :2] / pos[0, :, 3:4].clamp(min=1e-6)  # [V, 2]: grid_sample's coordinates (align_corners=False)
    out_d = torch.nn.functional.grid_sample(level.outside, ndc[None, None], mode="bilinear", padding_mode="border",
                                            align_corners=False)[0, 0, 0]  # fmt: skip  # [V] pixels
    pull = (out_d - DEAD_ZONE_PX).clamp(min=0).mean()
    with torch.no_grad():
        px = ((ndc + 1) * 0.5 * torch.tensor([W, H], dtype=ndc.dtype)).numpy()  # [V, 2] pixels
        ij = level.inside[hard[0, :, :, 0].numpy()[level.inside[:, 0], level.inside[:, 1]] == 0]
        missed = ij[:, ::-1] + 0.5  # [P, 2] (x, y) pixel centres of the mask the render misses
        if len(missed) > MAX_CHAMFER_PIXELS:
            missed = missed[np.linspace(0, len(missed) - 1, MAX_CHAMFER_PIXELS).astype(int)]
    if len(missed):
        dist, nearest = cKDTree(px).query(missed)
        far_enough = dist > DEAD_ZONE_PX
        if far_enough.any():
            gap = torch.from_numpy(missed[far_enough]).float() - (ndc[nearest[far_enough]] + 1) * 0.5 * torch.tensor(
                [W, H], dtype=ndc.dtype)  # fmt: skip
            pull = pull + (gap.norm(dim=1) - DEAD_ZONE_PX).mean() * far_enough.mean()
    return loss + pull_weight * pull, hard_iou


def refine(frame: ObjectFrame, pose: Pose, level: Level, steps: int, fit_focal: bool,
           topology: torch.Tensor | None = None, pull_weight: float = PULL_WEIGHT) -> tuple[Pose, float]:  # fmt: skip
    """Adam on `pose` for `steps` steps at `level` -> (the pose of the best step, its hard IoU at that level).
    Learning rates are per pixel of the rung: one step moves the silhouette by about a pixel (the object spans about
    1 / (1 + 2 WINDOW_MARGIN) of the rung)."""
    H, W = level.size
    unit = torch.from_numpy(frame.unit)
    faces = torch.from_numpy(frame.faces)
    topology = antialias_construct_topology_hash(faces) if topology is None else topology
    params = PoseParameters(pose, fit_focal)
    px = 1.0 / max(H, W)  # one pixel as a fraction of the rung
    q_px = level.window[2] / W / (pose.focal * level.image[1])  # one pixel of the rung in image-plane units (x / z)
    groups = [{"params": [params.w], "lr": 2.5 * px}, {"params": [params.q], "lr": q_px},
              {"params": [params.log_depth], "lr": 2 * px}]  # fmt: skip
    if fit_focal:
        groups.append({"params": [params.log_scale], "lr": 2 * px})
    opt = torch.optim.Adam(groups, betas=(0.8, 0.95))
    # steps shrink linearly to LR_END of their start over the rung: the last steps place edges below a pixel
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - (1 - LR_END) * i / max(steps - 1, 1))
    far = float(pose.t[2]) * 4 + 10
    best = (-1.0, pose)
    for _ in range(steps):
        opt.zero_grad()
        loss, hard_iou = silhouette_loss(params, unit, faces, topology, level, far, pull_weight)
        if hard_iou > best[0]:
            best = (hard_iou, params.pose())
        loss.backward()
        opt.step()
        decay.step()
    with torch.no_grad():
        _, hard_iou = silhouette_loss(params, unit, faces, topology, level, far, pull_weight)
    if hard_iou > best[0]:
        best = (hard_iou, params.pose())
    return best[1], best[0]
