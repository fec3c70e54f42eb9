"""Mesh optimisation through the project's differentiable rasterizer: vertex positions (Adam) fitted to the views'
masks (antialiased coverage, for silhouette gradients), normals and depth, regularised by a uniform Laplacian and
normal consistency across edges, remeshed between phases so that shapes the hull cannot see (a bowl's inside) form.

Works in the hull's normalised frame (centred, bounding-box diagonal 1), so step sizes and weights hold at any scale,
and at a reduced resolution (longer side 160 by default: 0.1-0.3 s per step for six views and 12k faces on two CPU
cores, depending on what else runs).
"""

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..core.progress import no_progress
from ..render.mesh_antialias import antialias, antialias_construct_topology_hash
from ..render.mesh_raster import clip_from_camera, interpolate, rasterize
from .remesh import decimate, remesh
from .views import MultiViewSet


@dataclass
class OptimiseSettings:
    """The optimisation's knobs; the defaults fit six 320^2 views in ~35 s on two CPU cores."""

    size: int = 160
    """working resolution: each view's longer side is area-resampled to this many pixels"""
    faces: int = 12000
    """face budget: the hull is decimated to it, and every remesh returns to it"""
    lr: float = 0.004
    """Adam step, as a fraction of the mesh's bounding-box diagonal"""
    mask_weight: float = 1.0
    """antialiased coverage vs the (area-resampled) mask, mean squared over all pixels"""
    normal_weight: float | None = None
    """1 - cos between interpolated vertex normals and the normal buffer, mean over the mask's interior. None: 0.05
    with depth, 0.2 without. Measured at 90 steps, 6k faces: a box from masks and normals alone 0.033 -> 0.012
    Chamfer going from 0.05 to 0.2; a bowl with depth 0.0136 -> 0.0173 (depth already holds the shape there).
    (Measured before the coarse-to-fine schedule.)"""
    depth_weight: float = 0.5
    """|z - depth| over the mask's interior, in units of the bounding-box diagonal"""
    depth_relative: bool = False
    """depth known only up to a scale per view: each step compares z with the view's depth times the median ratio
    of the two over the view (the depth's shape, not its distance; the masks place the mesh). The pipeline sets it
    when the views' depth disagreed with the masks' hull (reconstruct.depth_scale)"""
    laplacian_weight: float = 40.0
    """squared uniform Laplacian of the normalised positions (times faces / 1000: per-vertex scale)"""
    consistency_weight: float = 0.002
    """1 - cos between the normals of faces sharing an edge"""
    lr_decay: float = 0.25
    """the step's final fraction of `lr` (cosine schedule from 1 to it over the steps)"""
    face_schedule: tuple[float, ...] | None = None
    """fraction of `faces` in each phase (before the first remesh, after each one). None: (1/4, 1/2, 1), coarse to
    fine, without depth: the mask-only hull is far off and large triangles move whole regions (at 320^2 from masks and
    normals, Chamfer coarse-to-fine vs full budget: box 0.0108 vs 0.0141, Suzanne 0.019 vs 0.025, sphere, torus and
    bowl within 0.001 either way, though their F@0.01 drops 0.06-0.09); (1, 1, 1) with depth: the
    depth-carved hull is close and decimating it first loses its detail (Suzanne at 320^2: F@0.01 0.95 at full
    budget, 0.83 coarse to fine)"""
    remesh_at: tuple[float, ...] = (0.35, 0.7)
    """fractions of the run (steps, or time when the budget binds) at which the mesh is remeshed to the next budget"""
    time_budget_s: float = 35.0
    """stop once the optimisation has taken this long; the phases and the schedule follow time when it binds"""
    device: str | None = None
    """torch device; None: CUDA when available (the rasterizer then dispatches to nvdiffrast if it imports), else CPU"""
    threads: int | None = 1
    """torch intra-op threads while optimising (restored after); None leaves torch's setting. The ops are small: on
    the 2-core machine shared with other jobs one thread ran a step in 0.18 s where two spun for 1.5 s"""


class OptimiseInputError(ValueError):
    """Views or a mesh the optimisation cannot use."""


def working_targets(views: MultiViewSet, size: int, device="cpu") -> dict:
    """The views with their longer side resampled to `size` (aspect kept): "hw" (h, w), soft mask [B, h, w, 1],
    normal [B, h, w, 3] + its valid pixels [B, h, w], depth [B, h, w] + valid, the resized cameras' clip matrices
    [B, 4, 4] and their world-to-camera z rows [B, 4]."""
    H, W = views.size
    h, w = max(round(size * H / max(H, W)), 1), max(round(size * W / max(H, W)), 1)
    B = views.n_views
    interp = cv2.INTER_AREA
    soft = np.stack([cv2.resize(m.astype(np.float32), (w, h), interpolation=interp) for m in views.mask])
    interior = soft > 0.999
    out = {"hw": (h, w), "mask": torch.tensor(soft[..., None], device=device)}
    if views.normal is not None:
        n = np.stack([cv2.resize(views.normal[i] * views.mask[i][..., None], (w, h), interpolation=interp)
                      for i in range(B)])
        n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-8)
        out["normal"], out["normal_valid"] = torch.tensor(n, device=device), torch.tensor(interior, device=device)
    if views.depth is not None:
        d = np.stack([cv2.resize(views.depth[i] * views.mask[i], (w, h), interpolation=interp) for i in range(B)])
        d = d / np.maximum(soft, 1e-8)
        out["depth"], out["depth_valid"] = torch.tensor(d, device=device), torch.tensor(interior, device=device)
    cams = [c.resized(w, h) for c in views.cameras]
    out["mvp"] = torch.tensor(np.stack([clip_from_camera(c) for c in cams]), dtype=torch.float32, device=device)
    out["zrow"] = torch.tensor(np.stack([c.viewmat[2] for c in cams]), dtype=torch.float32, device=device)
    return out


def vertex_normals(v: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """[V, 3], [F, 3] -> [V, 3] unit area-weighted vertex normals (differentiable)."""
    t = v[tri]
    fn = torch.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=1)  # [F, 3] twice the area
    n = torch.zeros_like(v).index_add_(0, tri.reshape(-1), fn.repeat_interleave(3, 0))
    return n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)


class MeshTopology:
    """Per-mesh constants: the triangle tensor, antialias's edge table, the unique edges and adjacent face pairs."""

    def __init__(self, faces: np.ndarray, n_vertices: int, device):
        """faces [F, 3] int, the vertex count, the torch device to hold the tensors on."""
        self.tri = torch.as_tensor(faces, dtype=torch.int64, device=device)
        self.hash = antialias_construct_topology_hash(self.tri)
        nb = self.hash.numpy()
        f = np.repeat(np.arange(len(faces)), 3)
        g = nb.reshape(-1)
        keep = (g >= 0) & (f < g)
        self.pairs = torch.as_tensor(np.stack([f[keep], g[keep]], 1), device=device)  # [E, 2] faces sharing an edge
        e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        e = np.unique(np.sort(e, 1), axis=0)
        self.edges = torch.as_tensor(e, device=device)  # [E, 2] unique vertex pairs
        deg = np.bincount(e.reshape(-1), minlength=n_vertices).astype(np.float32)
        self.degree = torch.as_tensor(np.maximum(deg, 1), device=device)[:, None]


def laplacian(v: torch.Tensor, topo: MeshTopology) -> torch.Tensor:
    """[V, 3] -> [V, 3] uniform Laplacian: each vertex minus the mean of its neighbours."""
    a, b = topo.edges[:, 0], topo.edges[:, 1]
    s = torch.zeros_like(v).index_add_(0, a, v[b]).index_add_(0, b, v[a])
    return v - s / topo.degree


def normal_consistency(v: torch.Tensor, topo: MeshTopology) -> torch.Tensor:
    """Mean (1 - cos) between the unit normals of faces sharing an edge."""
    t = v[topo.tri]
    fn = torch.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=1)
    fn = fn / fn.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (1 - (fn[topo.pairs[:, 0]] * fn[topo.pairs[:, 1]]).sum(1)).mean()


def view_losses(u: torch.Tensor, centre: torch.Tensor, scale: float, topo: MeshTopology, tg: dict,
                depth_relative: bool = False) -> dict:
    """Data terms of normalised positions u [V, 3] (world = centre + scale u) against the working targets."""
    v = centre + scale * u
    vh = torch.cat([v, torch.ones_like(v[:, :1])], 1)
    pos = torch.einsum("vk,bjk->bvj", vh, tg["mvp"])  # [B, V, 4] clip
    rast, _ = rasterize(pos, topo.tri, tg["hw"], grad_db=False)
    covered = rast[..., 3] > 0  # [B, h, w]
    cov = antialias(covered[..., None].float(), rast, pos, topo.tri, topo.hash)
    out = {"mask": ((cov - tg["mask"]) ** 2).mean()}
    B = tg["mvp"].shape[0]
    attrs = []  # one interpolate for every per-vertex attribute: [B, V, 3] normals, [B, V, 1] camera z
    if "normal" in tg:
        attrs.append(vertex_normals(v, topo.tri)[None].expand(B, -1, -1))
    if "depth" in tg:
        attrs.append((vh @ tg["zrow"].T).T[..., None])
    if not attrs:
        return out
    a, _ = interpolate(torch.cat(attrs, -1).contiguous(), rast, topo.tri)  # [B, h, w, 3 | 1 | 4]
    if "normal" in tg:
        n = a[..., :3] / a[..., :3].norm(dim=-1, keepdim=True).clamp_min(1e-12)
        ok = covered & tg["normal_valid"]
        out["normal"] = (1 - (n * tg["normal"]).sum(-1))[ok].mean() if ok.any() else u.sum() * 0
    if "depth" in tg:
        ok = covered & tg["depth_valid"]
        d = tg["depth"]
        if depth_relative:  # each view's depth rescaled to the mesh's: [B, 1, 1] median of z / depth over the view
            ratio = torch.where(ok, a[..., -1].detach() / d.clamp_min(1e-6), torch.nan).flatten(1)
            d = d * torch.nan_to_num(ratio.nanmedian(1).values, nan=1.0)[:, None, None]
        out["depth"] = ((a[..., -1] - d).abs()[ok] / scale).mean() if ok.any() else u.sum() * 0
    return out


def optimise_mesh(views: MultiViewSet, vertices: np.ndarray, faces: np.ndarray, progress=None, steps: int = 200,
                  seed: int = 0, settings: OptimiseSettings | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Hull mesh (vertices [V, 3] world, faces [F, 3]) -> (vertices [V', 3] float32 world, faces [F', 3] int64
    outward, stats) fitted to the views' masks, normals and depth (those given). stats: steps run, seconds, face
    count, and each loss term at the first and the last step."""
    s = settings or OptimiseSettings()
    progress = progress or no_progress
    if len(faces) == 0 or len(vertices) == 0:
        raise OptimiseInputError("optimise_mesh: the starting mesh is empty")
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(s.threads)
    try:
        return _optimise(views, vertices, faces, progress, steps, s)
    finally:
        torch.set_num_threads(threads)


def _optimise(views, vertices, faces, progress, steps, s):
    """optimise_mesh's loop (see there)."""
    t0 = time.perf_counter()
    dev = torch.device(s.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    schedule = s.face_schedule or ((1.0, 1.0, 1.0) if views.depth is not None else (0.25, 0.5, 1.0))
    budgets = [max(int(s.faces * x), 500) for x in schedule] + [s.faces] * (len(s.remesh_at) + 1)
    v_np, f_np = decimate(vertices, faces, budgets[0])
    lo, hi = v_np.min(0), v_np.max(0)
    centre = torch.tensor(0.5 * (lo + hi), dtype=torch.float32, device=dev)
    scale = float(np.linalg.norm(hi - lo))
    tg = working_targets(views, s.size, dev)
    nw = s.normal_weight if s.normal_weight is not None else (0.05 if views.depth is not None else 0.2)
    weights = {"mask": s.mask_weight, "normal": nw, "depth": s.depth_weight}
    phases = sorted(a for a in s.remesh_at if 0 < a < 1)  # remesh when the run's fraction passes each
    stats = {"steps": 0, "first": {}, "last": {}, "remeshes": 0}
    u, t_loop = None, time.perf_counter()
    for it in range(steps):
        # the run's fraction: of the steps, or of the time budget when that runs out first (a loaded machine), so
        # every phase and the whole learning-rate schedule happen either way
        frac = max(it / steps, (time.perf_counter() - t_loop) / max(s.time_budget_s - (t_loop - t0), 1e-6))
        if frac >= 1.0:
            break
        if u is None or (stats["remeshes"] < len(phases) and frac >= phases[stats["remeshes"]]):
            if u is not None:
                v_np = (centre + scale * u.detach()).cpu().numpy()
                stats["remeshes"] += 1
                v_np, f_np = remesh(v_np, f_np, budgets[stats["remeshes"]])
            topo = MeshTopology(f_np, len(v_np), dev)
            u = ((torch.tensor(v_np, dtype=torch.float32, device=dev) - centre) / scale).requires_grad_(True)
            opt = torch.optim.Adam([u], lr=s.lr)
        opt.zero_grad()
        terms = view_losses(u, centre, scale, topo, tg, s.depth_relative)
        terms["laplacian"] = (laplacian(u, topo) ** 2).sum(1).mean() * (len(f_np) / 1000.0)
        terms["consistency"] = normal_consistency(u, topo)
        weights.update(laplacian=s.laplacian_weight, consistency=s.consistency_weight)
        loss = sum(weights[k] * t for k, t in terms.items())
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = s.lr * (s.lr_decay + (1 - s.lr_decay) * 0.5 * (1 + np.cos(np.pi * frac)))
        opt.step()
        record = {k: float(t.detach()) for k, t in terms.items()}
        stats["first"] = stats["first"] or record
        stats["last"] = record
        stats["steps"] = it + 1
        if it % 10 == 0:
            progress("optimise", frac, f"step {it}/{steps}, mask {record['mask']:.5f}")
    v_out = (centre + scale * u.detach()).cpu().numpy().astype(np.float32)
    t = v_out[f_np].astype(np.float64)
    if np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() < 0:  # keep the winding outward
        f_np = f_np[:, ::-1].copy()
    stats.update(seconds=time.perf_counter() - t0, faces=len(f_np), vertices=len(v_out))
    progress("optimise", 1.0, f"{stats['steps']} steps, {len(f_np)} faces")
    return v_out, np.asarray(f_np, np.int64), stats
