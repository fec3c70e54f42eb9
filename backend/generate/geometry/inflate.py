"""Silhouette inflation: a Poisson height field on the mask, mirrored to close the back, unprojected by the camera.

For a disc, h solving lap(h) = -1 with h = 0 on the rim is (R^2 - r^2)/4, so 2*sqrt(h) is exactly a hemisphere:
that profile gives round, sensibly thick shapes for any silhouette.
"""

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ...core.camera import Camera
from ...core.frames import camera_to_asset, normalise
from .base import GeometryResult

DEFAULT_FOV_DEG = 39.6  # a 50 mm lens on a 36 mm sensor: a typical product photo


def poisson_height(mask: np.ndarray) -> np.ndarray:
    """[h, w] bool -> [h, w] float64 solution of lap(u) = -1 inside the mask, u = 0 outside (pixel units^2)."""
    idx = -np.ones(mask.shape, np.int64)
    ys, xs = np.nonzero(mask)
    n = ys.size
    idx[ys, xs] = np.arange(n)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [np.full(n, 4.0)]
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        yy, xx = ys + dy, xs + dx
        inside = (yy >= 0) & (yy < mask.shape[0]) & (xx >= 0) & (xx < mask.shape[1])
        nb = np.full(n, -1)
        nb[inside] = idx[yy[inside], xx[inside]]
        ok = nb >= 0
        rows.append(np.nonzero(ok)[0])
        cols.append(nb[ok])
        vals.append(np.full(ok.sum(), -1.0))
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    u = spla.spsolve(A.tocsc(), np.ones(n))
    out = np.zeros(mask.shape)
    out[ys, xs] = u
    return out


def inflate(mask: np.ndarray, camera: Camera | None = None, grid: int = 112, thickness: float = 1.0) -> GeometryResult:
    """[H, W] bool silhouette -> closed mesh in asset space and the camera that sees it as the silhouette.

    grid: cells across the silhouette's longer side. thickness: 1.0 gives a round (sphere-like) cross-section."""
    H, W = mask.shape
    if camera is None:
        f = 0.5 * W / np.tan(np.radians(DEFAULT_FOV_DEG) / 2)
        K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
        camera = Camera(np.eye(4), K, W, H)  # placeholder pose; the world is defined by this camera below
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    step = max(y1 - y0, x1 - x0) / grid  # image pixels per grid cell
    # grid nodes at image positions (x0 + (i - 1) * step, ...) with one node of margin on each side
    gw, gh = int(np.ceil((x1 - x0) / step)) + 3, int(np.ceil((y1 - y0) / step)) + 3
    gx = x0 + (np.arange(gw) - 1) * step
    gy = y0 + (np.arange(gh) - 1) * step
    # sample the mask (nearest) at nodes
    mi = np.clip(np.round(gy - 0.5).astype(int), 0, H - 1)[:, None]
    mj = np.clip(np.round(gx - 0.5).astype(int), 0, W - 1)[None, :]
    inside = mask[mi, mj] & (gy[:, None] >= 0) & (gy[:, None] < H) & (gx[None, :] >= 0) & (gx[None, :] < W)
    inside[0], inside[-1], inside[:, 0], inside[:, -1] = False, False, False, False
    if inside.sum() < 4:
        raise ValueError("silhouette too small to inflate")
    ring = ndi.binary_dilation(inside, structure=np.ones((3, 3), bool)) & ~inside  # rim nodes, height 0
    u = poisson_height(inside)
    height_px = thickness * 2.0 * np.sqrt(np.maximum(u, 0.0)) * step  # image pixels

    fx, fy, cx, cy = camera.K[0, 0], camera.K[1, 1], camera.K[0, 2], camera.K[1, 2]
    extent_px = max(y1 - y0, x1 - x0)
    depth0 = fx / extent_px  # camera distance at which the silhouette spans ~1 unit
    node = inside | ring
    vid_front = -np.ones(node.shape, np.int64)
    vid_back = -np.ones(node.shape, np.int64)
    yy, xx = np.nonzero(node)
    nf = yy.size
    vid_front[yy, xx] = np.arange(nf)
    iy, ix = np.nonzero(inside)
    vid_back[ring] = vid_front[ring]  # the rim is shared by front and back: the surface closes there
    vid_back[iy, ix] = nf + np.arange(iy.size)

    def unproject(py, px, z_offset):
        d = depth0 - z_offset  # camera-space depth (OpenCV: +z away from the camera)
        return np.stack([(gx[px] - cx) / fx * d, (gy[py] - cy) / fy * d, d], axis=1)

    hz = height_px[yy, xx] * depth0 / fx
    hb = height_px[iy, ix] * depth0 / fx
    verts_cam = np.concatenate([unproject(yy, xx, hz), unproject(iy, ix, -hb)])

    faces = []
    a, b = vid_front[:-1, :-1], vid_front[:-1, 1:]
    c, d = vid_front[1:, :-1], vid_front[1:, 1:]
    rim = ring[:-1, :-1], ring[:-1, 1:], ring[1:, :-1], ring[1:, 1:]
    for (p, q, r), (rp, rq, rr) in (((a, c, b), (rim[0], rim[2], rim[1])), ((b, c, d), (rim[1], rim[2], rim[3]))):
        ok = (p >= 0) & (q >= 0) & (r >= 0) & ~(rp & rq & rr)
        # front faces the camera (-z in camera space); image y is down, so (a, c, b) is counter-clockwise from the camera
        faces.append(np.stack([p[ok], q[ok], r[ok]], 1))
    front = np.concatenate(faces)
    back_map = np.concatenate([vid_back[yy, xx]])  # front vertex id -> back vertex id
    back = back_map[front][:, ::-1]
    tris = np.concatenate([front, back]).astype(np.int64)
    tris = _orient_outward(verts_cam, tris)
    used = np.unique(tris)  # rim nodes whose triangles were all rim are left unreferenced: drop them
    remap = -np.ones(len(verts_cam), np.int64)
    remap[used] = np.arange(used.size)
    verts_cam, tris = verts_cam[used], remap[tris]

    # world := camera looking along +Y from -Y (Blender front view), Z up; then normalise to the unit cube
    cam_to_world = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1.0]])  # x->x, y(down)->-z, z->y
    verts_w = verts_cam @ cam_to_world[:3, :3].T
    verts_a, M = normalise(verts_w)
    view_w = np.linalg.inv(cam_to_world)
    cam_w = Camera(view_w, camera.K.copy(), W, H)
    cam_a = camera_to_asset(cam_w, M)
    # the asset is its own world: the inflated object sits at the origin with unit size
    return GeometryResult(verts_a, tris.astype(np.int32), cam_a, np.eye(4), "inflate")


def _orient_outward(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Flip all faces if the signed volume is negative (so normals point outward)."""
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    vol = np.einsum("ij,ij->i", p0, np.cross(p1, p2)).sum()
    return f if vol > 0 else f[:, ::-1].copy()
