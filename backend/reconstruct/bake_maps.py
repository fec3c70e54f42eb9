"""Bake posed G-buffers onto a mesh: xatlas charts, a UV-space raster of the surface, every texel projected into every
view (depth-tested against the mesh's own z-buffer there, and inside the view's mask), angle-weighted blending,
on-surface filling of texels no view sees, and seam dilation. MultiViewSet + mesh in, ReconstructedMesh out.

The blend weight of a view at a texel is max(0, n . v)^ANGLE_POWER (n the texel's geometric normal, v the unit
direction to the camera), times the share of its bilinear taps that pass the mask and depth tests, times a feather
min(1, d / FEATHER_PX) of the taps' distance d (pixels) to the mask's outside."""

import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from ..core.camera import Camera
from ..core.progress import no_progress
from ..export.bake import simplify, unwrap
from ..render.mesh_raster import clip_from_camera, to_clip
from ..render.mesh_visible_triangles import visible_triangles
from .bake_normals import FLAT, vertex_tangents, world_to_tangent
from .views import MultiViewSet, ReconstructedMesh

MAX_BAKE_FACES = 20_000  # above this the mesh is decimated first: xatlas time grows fast with faces
ANGLE_POWER = 2.0  # k in weight = max(0, n . v)^k; MAGE's public code (onpix/mage) stops at the G-buffer images
# and states no baking rule, so k = 2 is this project's choice: a view at 60 degrees counts a quarter of a head-on one
MIN_COS = 0.05  # a view seeing a texel more grazing than this (87 degrees) gives it nothing
DEPTH_TOL_TEXELS = 3.0  # depth-test tolerance in texel sizes (world units per texel), plus the pixel term below
DEPTH_TOL_PIXELS = 1.5  # ... plus this many pixel footprints times tan(view angle) (capped at MAX_TAN)
MAX_TAN = 4.0
FEATHER_PX = 3.0  # a view's weight ramps up over this many pixels inside its mask (silhouette pixels are mixed)
FILL_NEIGHBOURS = 4  # unseen texels take the inverse-distance blend of this many nearest seen texels ...
FILL_NORMAL_SCALE = 0.25  # ... nearest in (position, s * normal), s this fraction of the mesh's bounding diagonal
MIN_TANGENT_Z = 0.1  # tangent-space normals are kept this far in front of the surface (a map normal pointing into
# the surface, e.g. a hull bridging a concavity the views' normals see, would shade black)
DEFAULTS = {"albedo": 0.6, "roughness": 0.5, "metallic": 0.0}  # values used when the views lack a domain


@dataclass
class TexelSurface:
    """The covered texels of a size^2 atlas and what the surface is at each (P covered texels, row-major order)."""

    covered: np.ndarray  # [S, S] bool, texel centre inside a chart triangle
    points: np.ndarray  # [P, 3] float64 world positions
    geo_normals: np.ndarray  # [P, 3] float64 unit face normals of the texel's triangle
    normals: np.ndarray  # [P, 3] float64 interpolated vertex normals (not unit)
    tangents: np.ndarray  # [P, 4] float64 interpolated vertex tangents
    texel_size: float  # world units per texel (median over faces of sqrt(3D area / texel area))


def texel_surface(vertices, normals, tangents, uvs, faces, size: int) -> TexelSurface:
    """UV-space raster of the charts: [V, 3] world, [V, 3], [V, 4], [V, 2] glTF uvs, [F, 3] -> TexelSurface.
    The project rasterizer's depth test says which triangle covers each texel centre; barycentrics are affine there.

    Row j of the atlas covers v = (j + 0.5) / size (row 0 is v = 0, glTF's top), column i covers
    u = (i + 0.5) / size."""
    f64 = np.asarray(faces, np.int64)
    clip = np.zeros((len(uvs), 4), np.float32)
    clip[:, 0] = uvs[:, 0] * 2 - 1
    clip[:, 1] = uvs[:, 1] * 2 - 1
    clip[:, 3] = 1
    tid = visible_triangles(torch.from_numpy(clip), f64, (size, size)).numpy()  # [S, S] triangle id + 1
    covered = tid > 0
    j, i = np.nonzero(covered)  # row-major, as covered's boolean indexing
    t = tid[j, i] - 1
    corner = np.asarray(uvs, np.float64)[f64[t]] * size  # [P, 3, 2] texels; UV space is affine (w = 1)
    e1, e2 = corner[:, 1] - corner[:, 0], corner[:, 2] - corner[:, 0]
    q = np.stack([i + 0.5, j + 0.5], 1) - corner[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) > 1e-30, det, 1e-30)
    b1 = (q[:, 0] * e2[:, 1] - q[:, 1] * e2[:, 0]) / det
    b2 = (e1[:, 0] * q[:, 1] - e1[:, 1] * q[:, 0]) / det
    bary = np.stack([1 - b1 - b2, b1, b2], 1)  # [P, 3]
    attrs = np.concatenate([vertices, normals, tangents], 1).astype(np.float64)  # [V, 10]
    px = sum(bary[:, k:k + 1] * attrs[f64[t, k]] for k in range(3))  # [P, 10], no [P, 3, 10] temporary
    v = np.asarray(vertices, np.float64)
    tri = v[f64]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # [F, 3]
    area3 = 0.5 * np.linalg.norm(fn, axis=1)
    fn /= np.maximum(2 * area3[:, None], 1e-30)
    t = np.asarray(uvs, np.float64)[f64] * size  # [F, 3, 2] texels
    area_uv = 0.5 * np.abs(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]))
    ok = area_uv > 1e-9
    texel = float(np.median(np.sqrt(area3[ok] / area_uv[ok]))) if ok.any() else 1.0 / size
    return TexelSurface(covered, px[:, :3], fn[tid[covered] - 1], px[:, 3:6], px[:, 6:10], texel)


def mesh_depth(camera: Camera, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[H, W] float32 camera-space z of the mesh seen from `camera` (its own z-buffer), +inf where it is empty.

    Which triangle each pixel sees comes from the project rasterizer's depth test; the z is exact: the pixel centre's
    ray (x, y, 1) z meets the triangle's plane n . X = n . P0 (camera space) at z = n . P0 / n . (x, y, 1)."""
    f64 = np.asarray(faces, np.int64)
    H, W = camera.height, camera.width
    tid = visible_triangles(to_clip(vertices, clip_from_camera(camera))[0], f64, (H, W)).numpy()  # [H, W] id + 1
    cam = np.asarray(vertices, np.float64) @ camera.viewmat[:3, :3].T + camera.viewmat[:3, 3]  # [V, 3]
    tri = cam[f64]  # [F, 3, 3]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # [F, 3] plane normals (camera space)
    offset = (n * tri[:, 0]).sum(1)  # [F]
    j, i = np.nonzero(tid)
    t = tid[j, i] - 1
    ray = np.stack([(i + 0.5 - camera.K[0, 2]) / camera.K[0, 0], (j + 0.5 - camera.K[1, 2]) / camera.K[1, 1],
                    np.ones(len(i))], 1)  # [P, 3] camera-space rays with z = 1
    den = (n[t] * ray).sum(1)
    depth = np.full((H, W), np.inf, np.float32)
    depth[j, i] = offset[t] / np.where(np.abs(den) > 1e-30, den, 1e-30)
    return depth


def view_taps(surf: TexelSurface, camera: Camera, depth: np.ndarray, mask: np.ndarray):
    """Where the texels fall in one view and how much that view may say about them.

    depth [H, W] the mesh's own z-buffer in this view, mask [H, W] bool the view's object mask ->
    (weight [P] = max(0, n . v)^ANGLE_POWER times the share of valid taps, idx [P, 4] flat pixel indices of the
    bilinear taps, tap [P, 4] bilinear weights renormalised over the valid taps; 0 where invalid). A tap is valid when
    it is inside the image and the mask and the mesh's depth there is within the tolerance of the texel's own z."""
    H, W = depth.shape
    p = surf.points
    cam = p @ camera.viewmat[:3, :3].T + camera.viewmat[:3, 3]  # [P, 3] camera space
    z = cam[:, 2]
    to_cam = camera.position[None] - p
    dist = np.linalg.norm(to_cam, axis=1)
    cos = (surf.geo_normals * to_cam).sum(1) / np.maximum(dist, 1e-12)  # [P]
    front = (cos > MIN_COS) & (z > 1e-6)
    zs = np.where(front, z, 1.0)
    x = camera.K[0, 0] * cam[:, 0] / zs + camera.K[0, 2] - 0.5  # continuous pixel index (centres at integers)
    y = camera.K[1, 1] * cam[:, 1] / zs + camera.K[1, 2] - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    tan = np.sqrt(np.maximum(1 - cos**2, 0)) / np.maximum(cos, 1e-6)
    pixel_world = zs / camera.K[0, 0]
    tol = DEPTH_TOL_TEXELS * surf.texel_size + DEPTH_TOL_PIXELS * pixel_world * np.minimum(tan, MAX_TAN)
    idx = np.zeros((len(p), 4), np.int64)
    tap = np.zeros((len(p), 4))
    for k, (dx, dy) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
        xi, yi = (x0 + dx).astype(np.int64), (y0 + dy).astype(np.int64)
        inside = front & (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
        flat = np.where(inside, yi * W + xi, 0)
        valid = inside & mask.reshape(-1)[flat] & (np.abs(depth.reshape(-1)[flat] - z) < tol)
        idx[:, k] = flat
        tap[:, k] = np.where(valid, (fx if dx else 1 - fx) * (fy if dy else 1 - fy), 0.0)
    share = tap.sum(1)
    tap /= np.maximum(share, 1e-12)[:, None]
    weight = np.where(share > 1e-6, np.maximum(cos, 0.0) ** ANGLE_POWER * share, 0.0)
    return weight, idx, tap


def view_channels(views: MultiViewSet, i: int) -> tuple[np.ndarray, list[str]]:
    """View i's G-buffer as [H * W, C] float32 (albedo 3, roughness 1, metallic 1, normal 3, those present) and the
    names of the domains it holds, in that order."""
    cols, names = [], []
    for name, width in (("albedo", 3), ("roughness", 1), ("metallic", 1), ("normal", 3)):
        img = getattr(views, name)
        if img is not None:
            cols.append(np.asarray(img[i], np.float32).reshape(-1, width))
            names.append(name)
    return np.concatenate(cols, 1), names


def blend_views(views: MultiViewSet, surf: TexelSurface, vertices, faces, progress=no_progress):
    """Angle-weighted, depth-tested, silhouette-feathered blend of every view at every texel -> (values [P, C] with
    the channels of view_channels, weight sum [P]: 0 where no view sees the texel)."""
    P = len(surf.points)
    acc = None
    wsum = np.zeros(P)
    for i, cam in enumerate(views.cameras):
        progress("bake", 0.3 + 0.4 * i / views.n_views, f"projecting view {i + 1} of {views.n_views}")
        depth = mesh_depth(cam, vertices, faces)
        weight, idx, tap = view_taps(surf, cam, depth, np.asarray(views.mask[i], bool))
        chans, _ = view_channels(views, i)
        edge = np.minimum(distance_transform_edt(views.mask[i]) / FEATHER_PX, 1.0).reshape(-1)  # [H * W]
        weight = weight * (tap * edge[idx]).sum(1)  # views seeing a texel near their silhouette say less
        if acc is None:
            acc = np.zeros((P, chans.shape[1]))
        for k in range(4):  # bilinear over the valid taps, one tap at a time ([P, C] float32 each, not [P, 4, C])
            acc += (weight * tap[:, k]).astype(np.float32)[:, None] * chans[idx[:, k]]
        wsum += weight
    return acc / np.maximum(wsum, 1e-12)[:, None], wsum


def fill_on_surface(points: np.ndarray, normals: np.ndarray, values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Texels no view sees take the inverse-distance blend of the FILL_NEIGHBOURS nearest seen texels, nearest in
    (position, s * normal) with s = FILL_NORMAL_SCALE x the bounding diagonal: points [P, 3], unit normals [P, 3],
    values [P, C], seen [P] bool -> [P, C].

    The normal term keeps the fill on its own side of a thin wall: a texel across a 1 cm plate is 1 cm away but
    faces the other way (2 s further in normal), so the seen surface around the unseen patch wins. Where every seen
    texel faces away (the unseen bottom of a box) the term is about the same for all and position decides."""
    out = values.copy()
    if seen.all() or not seen.any():
        return out
    s = FILL_NORMAL_SCALE * float(np.linalg.norm(points.max(0) - points.min(0)))
    key = np.concatenate([points, s * normals], 1)  # [P, 6]
    k = min(FILL_NEIGHBOURS, int(seen.sum()))
    d, j = cKDTree(key[seen]).query(key[~seen], k=k)
    d, j = d.reshape(len(d), k), j.reshape(len(j), k)
    w = 1.0 / np.maximum(d, 1e-9)
    w /= w.sum(1, keepdims=True)
    out[~seen] = np.einsum("pk,pkc->pc", w, values[seen][j])
    return out


def dilate(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """[S, S, C] with chart texels `covered` [S, S] -> every gutter texel copies its nearest chart texel (no dark
    seams under bilinear filtering and mip-mapping)."""
    if covered.all() or not covered.any():
        return image
    _, (iy, ix) = distance_transform_edt(~covered, return_indices=True)
    return image[iy, ix]


def check_inputs(views: MultiViewSet, vertices, faces) -> None:
    """Raise ValueError naming what does not fit: no faces, non-finite vertices, a camera whose size is not the
    images', or a view without a mask."""
    if len(faces) == 0:
        raise ValueError("bake_views: the mesh has no faces")
    if not np.isfinite(np.asarray(vertices, np.float64)).all():
        raise ValueError("bake_views: the mesh has non-finite vertices")
    H, W = views.size
    for i, cam in enumerate(views.cameras):
        if (cam.height, cam.width) != (H, W):
            raise ValueError(f"bake_views: camera {i} is {cam.width}x{cam.height} but the views are {W}x{H}")
    if views.mask.shape[0] != views.n_views:
        raise ValueError(f"bake_views: {views.mask.shape[0]} masks for {views.n_views} cameras")


def bake_views(views: MultiViewSet, vertices: np.ndarray, faces: np.ndarray, size: int = 1024, progress=None,
               max_faces: int = MAX_BAKE_FACES) -> ReconstructedMesh:
    """Unwrap `vertices` [V, 3] world / `faces` [F, 3] and bake the views' albedo, roughness, metallic and normals
    into size^2 maps. Meshes over max_faces are decimated first (quadric, export.bake.simplify). Domains the views
    lack get DEFAULTS (a missing normal domain gives a flat normal map)."""
    check_inputs(views, vertices, faces)
    step = progress or no_progress
    t0 = time.perf_counter()
    timings = {}
    n_in = len(faces)
    step("bake", 0.0, f"preparing {n_in} faces")
    # n0: angle-weighted vertex normals (core.surface.vertex_normals)
    v0, f0, n0 = simplify(np.asarray(vertices, np.float32), np.asarray(faces, np.int64), max_faces)
    step("bake", 0.05, f"unwrapping UVs of {len(f0)} faces (xatlas)")
    t = time.perf_counter()
    vmap, faces_uv, uvs = unwrap(v0, f0, n0, size)
    timings["unwrap_s"] = time.perf_counter() - t
    verts, normals = v0[vmap].astype(np.float32), n0[vmap].astype(np.float32)
    faces_uv = faces_uv.astype(np.int64)
    tangents = vertex_tangents(verts, normals, uvs, faces_uv)
    step("bake", 0.2, f"rasterizing {len(faces_uv)} triangles into a {size}x{size} atlas")
    t = time.perf_counter()
    surf = texel_surface(verts, normals, tangents, uvs, faces_uv, size)
    timings["texel_raster_s"] = time.perf_counter() - t
    t = time.perf_counter()
    values, wsum = blend_views(views, surf, v0, f0, step)
    timings["project_s"] = time.perf_counter() - t
    seen = wsum > 1e-9
    names = view_channels(views, 0)[1]
    step("bake", 0.75, "filling unseen texels from their neighbours on the surface")
    t = time.perf_counter()
    maps = {}
    col = 0
    for name, width in (("albedo", 3), ("roughness", 1), ("metallic", 1), ("normal", 3)):
        if name in names:
            maps[name] = values[:, col:col + width]
            col += width
    layout = (("albedo", 3), ("roughness", 1), ("metallic", 1))
    default = np.concatenate([np.full(w, DEFAULTS[n]) for n, w in layout])  # [5]
    material = np.concatenate([maps.get(n, np.full((len(seen), w), DEFAULTS[n])) for n, w in layout], 1)
    material[~seen] = default  # stays where no view sees anything at all
    material = fill_on_surface(surf.points, surf.geo_normals, material, seen)
    tnorm = np.tile(FLAT, (len(seen), 1))
    if "normal" in maps and seen.any():
        ts = world_to_tangent(maps["normal"][seen], surf.normals[seen], surf.tangents[seen])
        ts[:, 2] = np.maximum(ts[:, 2], MIN_TANGENT_Z)
        tnorm[seen] = ts / np.linalg.norm(ts, axis=1, keepdims=True)
    tex = np.zeros((size, size, 8), np.float32)
    tex[..., 7] = 1.0
    tex[surf.covered] = np.concatenate([material, tnorm], 1)
    tex = dilate(tex, surf.covered)
    timings["fill_s"] = time.perf_counter() - t
    timings["bake_s"] = time.perf_counter() - t0
    step("bake", 1.0, "baked")
    meta = {"timings": timings, "faces_in": int(n_in), "faces": len(faces_uv), "texel_size": surf.texel_size,
            "chart_texels": int(surf.covered.sum()), "seen_fraction": float(seen.mean()) if len(seen) else 0.0,
            "angle_power": ANGLE_POWER}
    return ReconstructedMesh(
        verts, normals, tangents, uvs.astype(np.float32), faces_uv.astype(np.uint32),
        np.ascontiguousarray(tex[..., :3]), np.ascontiguousarray(tex[..., 3]), np.ascontiguousarray(tex[..., 4]),
        np.ascontiguousarray(tex[..., 5:8]), meta,
    )
