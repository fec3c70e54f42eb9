"""The measures of `relight eval multiview`: surface Chamfer distance and F-score between two meshes, a baked mesh's
albedo seen by the project's rasterizer against a reference albedo, and the seeded degradations that make exact
G-buffers look like a network's predictions."""

import numpy as np

from ..core.camera import Camera
from ..reconstruct.views import MultiViewSet, ReconstructedMesh

N_SAMPLES = 100_000  # surface samples per side
FSCORE_TAU = 0.01  # F-score threshold, unit-cube units
CANDIDATES = 8  # nearest reference samples whose triangles are searched for the exact closest point

# ------------------------------------------------------------------------------------------- geometry


def unit_cube_transform(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre [3], scale) taking `vertices` [V, 3] into the unit cube at the origin (longest side 1); the scoring
    frame: apply the true mesh's transform to both meshes with `to_frame`."""
    lo, hi = vertices.min(0), vertices.max(0)
    return 0.5 * (lo + hi), 1.0 / max(float((hi - lo).max()), 1e-12)


def to_frame(vertices: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    return (np.asarray(vertices, np.float64) - centre) * scale


def sample_points(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform random surface points [n, 3] and their face ids [n]."""
    import trimesh

    m = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), process=False)
    pts, fid = trimesh.sample.sample_surface(m, n, seed=seed)
    return np.asarray(pts), np.asarray(fid)


def surface_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, seed: int = 1,
                     n_ref: int = 2 * N_SAMPLES) -> np.ndarray:  # fmt: skip
    """[P] distance from each point [P, 3] to the surface (vertices [V, 3], faces [F, 3]): the exact point-triangle
    distance to the triangles of its CANDIDATES nearest dense surface samples (n_ref of them, plus every vertex), so
    it is a distance to the surface, not to a point cloud, wherever the closest triangle holds a nearby sample."""
    import trimesh
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    ref, rfid = sample_points(v, f, n_ref, seed)
    vert_face = np.full(len(v), -1, np.int64)
    vert_face[f.reshape(-1)] = np.repeat(np.arange(len(f)), 3)  # one face per vertex
    keep = vert_face >= 0
    ref = np.concatenate([ref, v[keep]])
    rfid = np.concatenate([rfid, vert_face[keep]])
    _, idx = cKDTree(ref).query(points, k=CANDIDATES)  # [P, k]
    cand = rfid[idx]  # [P, k] face ids
    tris = v[f[cand.reshape(-1)]]  # [P k, 3, 3]
    q = np.repeat(np.asarray(points, np.float64), CANDIDATES, 0)
    closest = trimesh.triangles.closest_point(tris, q)
    d = np.linalg.norm(closest - q, axis=1).reshape(-1, CANDIDATES)
    return d.min(1)


def chamfer_fscore(v_true: np.ndarray, f_true: np.ndarray, v_rec: np.ndarray, f_rec: np.ndarray,
                   n: int = N_SAMPLES, tau: float = FSCORE_TAU, seed: int = 0) -> dict:  # fmt: skip
    """Symmetric Chamfer distance (the mean of the two directions' mean nearest-surface distances) and F-score at
    tau, both meshes first moved by the transform that takes the TRUE mesh into the unit cube.
    -> {chamfer, chamfer_true_to_rec, chamfer_rec_to_true, precision, recall, fscore, hausdorff_95}."""
    c, s = unit_cube_transform(np.asarray(v_true, np.float64))
    vt, vr = to_frame(v_true, c, s), to_frame(v_rec, c, s)
    pt, _ = sample_points(vt, f_true, n, seed)
    pr, _ = sample_points(vr, f_rec, n, seed + 1)
    d_tr = surface_distance(pt, vr, f_rec, seed + 2)  # true samples -> reconstruction: completeness
    d_rt = surface_distance(pr, vt, f_true, seed + 3)  # reconstruction samples -> truth: accuracy
    precision, recall = float((d_rt < tau).mean()), float((d_tr < tau).mean())
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"chamfer": float(0.5 * (d_tr.mean() + d_rt.mean())), "chamfer_true_to_rec": float(d_tr.mean()),
            "chamfer_rec_to_true": float(d_rt.mean()), "precision": precision, "recall": recall, "fscore": float(f),
            "hausdorff_95": float(max(np.percentile(d_tr, 95), np.percentile(d_rt, 95)))}  # fmt: skip


# ------------------------------------------------------------------------------------------- albedo


def render_albedo(mesh: ReconstructedMesh, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """The baked albedo map seen from `camera` by the project's rasterizer: one point-sampled (bilinear, no mips)
    lookup at each pixel centre, as Cycles' AOV pass samples the true material.
    -> ([H, W, 3] linear albedo, 0 outside; [H, W] bool coverage)."""
    import torch

    from ..render.mesh_raster import clip_from_camera, interpolate, rasterize, to_clip
    from ..render.mesh_texture import texture

    tri = torch.as_tensor(np.asarray(mesh.faces, np.int64))
    with torch.no_grad():
        rast, _ = rasterize(to_clip(mesh.vertices, clip_from_camera(camera)), tri, (camera.height, camera.width),
                            grad_db=False)  # fmt: skip
        uv, _ = interpolate(torch.as_tensor(mesh.uvs, dtype=torch.float32), rast, tri)  # [1, H, W, 2] glTF uvs
        tex = torch.as_tensor(np.ascontiguousarray(mesh.albedo, np.float32))[None]  # [1, S, S, 3]
        col = texture(tex, uv, filter_mode="linear", boundary_mode="clamp")[0].numpy()
    cov = rast[0, ..., 3].numpy() > 0
    return np.where(cov[..., None], col, 0.0).astype(np.float32), cov


def albedo_scores(mesh: ReconstructedMesh, truth: MultiViewSet) -> list[dict]:
    """Per view of `truth`: PSNR of the baked albedo against the true albedo pass over the true mask AND the
    rendered coverage (sRGB-encoded [0, 1], and linear), and the masks' IoU (the pixels PSNR leaves out)."""
    from ..core.colour import linear_to_srgb
    from ..core.metrics import psnr

    rows = []
    for i, cam in enumerate(truth.cameras):
        ours, cov = render_albedo(mesh, cam)
        ref, m = truth.albedo[i], truth.mask[i]
        both = m & cov
        enc = lambda x: linear_to_srgb(np.clip(x, 0.0, 1.0))  # noqa: E731
        rows.append({"psnr": psnr(enc(ours), enc(ref), both), "psnr_linear": psnr(np.clip(ours, 0, 1), ref, both),
                     "iou": float(both.sum() / max((m | cov).sum(), 1)),
                     "missing": float((m & ~cov).sum() / max(m.sum(), 1)),  # true pixels the mesh does not cover
                     "extra": float((cov & ~m).sum() / max(m.sum(), 1))})  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------- degradations

DEGRADATIONS = ("normal", "depth", "albedo", "mask")
NORMAL_TILT_DEG = 5.0  # mean tilt of the smooth normal noise
NOISE_SIGMA_PX = 8.0  # smoothness of the normal noise
DEPTH_SCALE = 0.02  # per-view depth scale drawn from 1 +- this
ALBEDO_BLUR_PX = 1.0  # Gaussian sigma before JPEG
JPEG_QUALITY = 75
MASK_PX = 2  # erosion or dilation, per view


def _seed(seed: int, kind: str) -> np.random.Generator:
    return np.random.default_rng([seed, DEGRADATIONS.index(kind)])


def _tilt_normals(normal: np.ndarray, mask: np.ndarray, rng) -> tuple[np.ndarray, float]:
    """[H, W, 3] unit normals tilted by smooth noise of mean angle NORMAL_TILT_DEG inside mask -> (normals, mean
    tilt in degrees)."""
    from scipy.ndimage import gaussian_filter

    noise = np.stack([gaussian_filter(rng.standard_normal(mask.shape), NOISE_SIGMA_PX) for _ in range(3)], -1)
    t = noise - (noise * normal).sum(-1, keepdims=True) * normal  # tangent part
    k = np.tan(np.radians(NORMAL_TILT_DEG)) / max(float(np.linalg.norm(t, axis=-1)[mask].mean()), 1e-12)
    out = normal + k * t
    out /= np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
    ang = np.degrees(np.arccos(np.clip((out * normal).sum(-1), -1, 1)))[mask]
    return np.where(mask[..., None], out, 0.0).astype(np.float32), float(ang.mean()) if ang.size else 0.0


def _jpeg_albedo(albedo: np.ndarray, rng) -> np.ndarray:
    """[H, W, 3] linear -> blurred, 8-bit sRGB JPEG at JPEG_QUALITY, decoded back to linear."""
    import cv2

    from ..core.colour import linear_to_srgb, srgb_to_linear

    u8 = (np.clip(linear_to_srgb(np.clip(albedo, 0, 1)), 0, 1) * 255 + 0.5).astype(np.uint8)
    u8 = cv2.GaussianBlur(u8, (0, 0), ALBEDO_BLUR_PX)
    ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
    return srgb_to_linear(dec).astype(np.float32)


def _reshape_mask(views: dict, i: int, rng) -> str:
    """Erode or dilate view i's mask by MASK_PX (a coin flip); pixels a dilation adds take their nearest covered
    pixel's values (a network predicts something there, not zeros); pixels an erosion removes are cleared."""
    from scipy.ndimage import binary_dilation, binary_erosion, distance_transform_edt

    m = views["mask"][i]
    grow = bool(rng.random() < 0.5)
    new = binary_dilation(m, iterations=MASK_PX) if grow else binary_erosion(m, iterations=MASK_PX)
    if grow:
        _, (jj, ii) = distance_transform_edt(~m, return_indices=True)
        for k in ("normal", "depth", "albedo", "roughness", "metallic", "rgb"):
            if views.get(k) is not None:
                views[k][i] = views[k][i][jj, ii]
    for k in ("normal", "depth", "albedo", "roughness", "metallic"):
        if views.get(k) is not None:
            views[k][i][~new] = 0
    views["mask"][i] = new
    return "dilate" if grow else "erode"


def degrade(views: MultiViewSet, kinds: tuple[str, ...], seed: int = 0) -> MultiViewSet:
    """A copy of `views` with each degradation in `kinds` (DEGRADATIONS) applied, seeded per kind; meta["degraded"]
    records what was drawn (mean normal tilt, depth scales, mask operations)."""
    d = {k: (None if getattr(views, k) is None else getattr(views, k).copy())
         for k in ("mask", "rgb", "normal", "depth", "albedo", "roughness", "metallic")}  # fmt: skip
    info = {}
    for kind in kinds:
        rng = _seed(seed, kind)
        if kind == "normal":
            tilts = []
            for i in range(views.n_views):
                d["normal"][i], t = _tilt_normals(d["normal"][i], d["mask"][i], rng)
                tilts.append(t)
            info["normal_tilt_deg"] = float(np.mean(tilts))
        elif kind == "depth":
            s = 1.0 + rng.uniform(-DEPTH_SCALE, DEPTH_SCALE, views.n_views)
            d["depth"] = (d["depth"] * s[:, None, None]).astype(np.float32)
            info["depth_scales"] = [float(x) for x in s]
            # what that scale means on the object: the mean shift along the optical axis, world (unit-cube) units
            info["depth_shift_mean"] = float(np.mean([abs(s[i] - 1) * np.median(views.depth[i][views.mask[i]])
                                                      for i in range(views.n_views) if views.mask[i].any()]))  # fmt: skip
        elif kind == "albedo":
            for i in range(views.n_views):
                d["albedo"][i] = np.where(d["mask"][i][..., None], _jpeg_albedo(d["albedo"][i], rng), 0.0)
            info["albedo"] = f"blur {ALBEDO_BLUR_PX} px + JPEG q{JPEG_QUALITY}"
        elif kind == "mask":
            info["mask_ops"] = [_reshape_mask(d, i, rng) for i in range(views.n_views)]
        else:
            raise ValueError(f"unknown degradation {kind!r}; known: {', '.join(DEGRADATIONS)}")
    return MultiViewSet(list(views.cameras), d["mask"], d["rgb"], d["normal"], d["depth"], d["albedo"], d["roughness"],
                        d["metallic"], {**views.meta, "degraded": {"kinds": list(kinds), "seed": seed, **info}})  # fmt: skip
