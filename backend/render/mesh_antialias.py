"""Antialiasing shaped like nvdiffrast's `antialias`: colour blended across silhouette edges by their analytic
coverage, so an image loss gives gradients to the vertex positions. The numba kernel `_silhouette_pairs` finds the
pixel pairs that straddle each silhouette edge; the coverage itself is torch, differentiable."""


import numpy as np
import torch
from torch import Tensor

from ..core.jit import njit_cached as _jit
from .mesh_nvdiffrast import nvdiffrast_or_none
from .mesh_raster import face_table, edge_barycentrics


def antialias_construct_topology_hash(tri) -> Tensor:
    """[F, 3] -> [F, 3] int64: for edge k of each triangle (the edge opposite vertex k) the other triangle sharing
    it, -1 on a boundary edge, -2 on a non-manifold edge (three or more triangles). Reusable across antialias calls."""
    t = np.asarray(tri.cpu() if isinstance(tri, Tensor) else tri, dtype=np.int64).reshape(-1, 3)
    F = len(t)
    a = np.concatenate([t[:, 1], t[:, 2], t[:, 0]])  # edge k: vertices (k+1)%3, (k+2)%3
    b = np.concatenate([t[:, 2], t[:, 0], t[:, 1]])
    key = np.minimum(a, b) * (int(t.max(initial=0)) + 1) + np.maximum(a, b)
    slot = np.arange(3 * F)  # slot = k * F + f
    order = np.argsort(key, kind="stable")
    ks = key[order]
    start = np.r_[0, np.nonzero(np.diff(ks))[0] + 1]
    count = np.diff(np.r_[start, len(ks)])
    nb = np.full(3 * F, -1, np.int64)
    two = start[count == 2]
    s0, s1 = slot[order[two]], slot[order[two + 1]]
    nb[s0], nb[s1] = s1 % F, s0 % F
    many = np.repeat(count > 2, count)
    nb[order[many]] = -2
    return torch.from_numpy(nb.reshape(3, F).T.copy())


def antialias(color: Tensor, rast: Tensor, pos: Tensor, tri, topology_hash: Tensor | None = None,
              pos_gradient_boost: float = 1.0) -> Tensor:
    """color [B, H, W, C], rast [B, H, W, 4] from `rasterize(pos, tri)`, pos [B, V, 4] -> [B, H, W, C].

    Blends colour across silhouette edges by their analytic coverage, so the image (and any loss on it) varies
    continuously with the vertex positions and gives gradients to `pos` at silhouettes.
    For each pair of 4-neighbour pixels with different triangles, the segment between the two pixel centres is
    followed from the occluding side (the nearer triangle, or the only one) across same-facing neighbouring triangles
    until it leaves through a silhouette edge (a boundary edge, or one whose two triangles face opposite ways on
    screen), at fraction t (0 at the covered centre, 1 at the other). Each edge is handled by the pixel pairs that
    cross it more squarely (horizontal pairs for steep edges, vertical pairs for flat ones), so it counts once. If
    t > 1/2 the edge lies in the other pixel, which takes (t - 1/2) of the covered side's colour; if t < 1/2 the
    covered pixel takes (1/2 - t) of the other colour. The pixels' summed coverage then moves by the edge's length
    per pixel of normal displacement, as the true area does. topology_hash: from antialias_construct_topology_hash
    (rebuilt per call when None). pos_gradient_boost scales the gradient to pos."""
    dr = nvdiffrast_or_none(color)
    if dr is not None:
        t32 = torch.as_tensor(tri, dtype=torch.int32, device=color.device).contiguous()
        return dr.antialias(color.contiguous(), rast, pos.contiguous(), t32, pos_gradient_boost=pos_gradient_boost)
    B, H, W, C = color.shape
    trit = torch.as_tensor(tri, dtype=torch.int64, device=color.device).reshape(-1, 3)
    nb = topology_hash if topology_hash is not None else antialias_construct_topology_hash(trit)
    nb_np = np.ascontiguousarray(nb.cpu().numpy(), dtype=np.int64)
    tri_np = np.ascontiguousarray(trit.cpu().numpy())
    p_all = pos if pos.dim() == 3 else pos[None]
    flat = color.reshape(B * H * W, C)
    out = flat
    tid_np = rast[..., 3].detach().cpu().numpy().astype(np.int64).reshape(B, H * W)
    z_np = rast[..., 2].detach().cpu().double().numpy().reshape(B, H * W)
    for bi in range(B):
        p = p_all[bi if p_all.shape[0] > 1 else 0]
        pd = np.ascontiguousarray(p.detach().cpu().double().numpy())
        pin, pout, face, edge, step = (torch.from_numpy(x).to(color.device) for x in
                                       _silhouette_pairs(pd, tri_np, nb_np, tid_np[bi], z_np[bi], H, W, _AA_WALK))
        if pin.numel() == 0:
            continue
        if pos_gradient_boost != 1.0:
            p = _GradScale.apply(p, pos_gradient_boost)
        T = face_table(p, trit, H, W)[face]  # [P, 14] with gradients to p
        X = (pin % W).to(p.dtype) + 0.5
        Y = torch.div(pin, W, rounding_mode="floor").to(p.dtype) + 0.5
        k = edge[:, None]
        lam = edge_barycentrics(T, X, Y).gather(1, k)[:, 0]  # the edge's barycentric at the covered centre
        sdx, sdy = step[:, 0:1].to(p.dtype), step[:, 1:2].to(p.dtype)
        slope = (T[:, 2:5] * sdx + T[:, 5:8] * sdy).gather(1, k)[:, 0]  # its change over the step
        t = (lam / (-slope)).clamp(0, 1)  # where the segment crosses the silhouette edge
        off = bi * H * W
        cin, cout = flat[off + pin], flat[off + pout]
        out = out.index_add(0, off + pout, (t - 0.5).clamp(min=0)[:, None].to(flat.dtype) * (cin - cout))
        out = out.index_add(0, off + pin, (0.5 - t).clamp(min=0)[:, None].to(flat.dtype) * (cout - cin))
    return out.reshape(B, H, W, C)


_AA_WALK = 8  # triangles crossed at most between a covered pixel centre and the silhouette edge


@_jit()
def _silhouette_pairs(pos, tri, nb, tid, z, H, W, walk):  # pragma: no cover - compiled
    """The non-differentiable half of antialias: which pixel pairs straddle which silhouette edge.

    pos [V, 4] float64 clip, tri [F, 3], nb [F, 3] edge neighbours, tid / z [H*W] from rast -> (pin, pout [P] pixel
    of the covered side and of the other, face, edge [P] the silhouette edge (edge k is opposite vertex k), step
    [P, 2] the pixel step from pin to pout). From the covered centre, the segment is followed across same-facing
    neighbours (at most `walk` of them): thin triangles along a contour often cover no pixel centre."""
    V = pos.shape[0]
    F = tri.shape[0]
    sx = np.empty(V)
    sy = np.empty(V)
    for v in range(V):
        w = pos[v, 3] if abs(pos[v, 3]) > 1e-12 else 1e-12
        sx[v] = (pos[v, 0] / w + 1.0) * 0.5 * W
        sy[v] = (pos[v, 1] / w + 1.0) * 0.5 * H
    facing = np.empty(F, np.bool_)
    for f in range(F):
        a, b, c = tri[f, 0], tri[f, 1], tri[f, 2]
        facing[f] = (sx[b] - sx[a]) * (sy[c] - sy[a]) - (sx[c] - sx[a]) * (sy[b] - sy[a]) > 0
    cap = 2 * H * W
    pin = np.empty(cap, np.int64)
    pout = np.empty(cap, np.int64)
    face = np.empty(cap, np.int64)
    edge = np.empty(cap, np.int64)
    step = np.empty((cap, 2), np.int64)
    n = 0
    lam = np.empty(3)
    slope = np.empty(3)
    for d in range(2):
        dx, dy = (1, 0) if d == 0 else (0, 1)
        for j in range(H - dy):
            for i in range(W - dx):
                pa = j * W + i
                pb = (j + dy) * W + i + dx
                if tid[pa] == tid[pb]:
                    continue
                for side in range(2):
                    p0, p1, sgn = (pa, pb, 1) if side == 0 else (pb, pa, -1)
                    if tid[p0] == 0 or not (tid[p1] == 0 or z[p0] < z[p1]):
                        continue
                    X = (p0 % W) + 0.5
                    Y = (p0 // W) + 0.5
                    sdx, sdy = sgn * dx, sgn * dy
                    f = tid[p0] - 1
                    for _ in range(walk):
                        vi = (tri[f, 0], tri[f, 1], tri[f, 2])
                        x0, x1, x2 = sx[vi[0]], sx[vi[1]], sx[vi[2]]
                        y0, y1, y2 = sy[vi[0]], sy[vi[1]], sy[vi[2]]
                        D = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
                        if D == 0.0:
                            break
                        # edge functions (2D barycentrics) at the covered centre and their change over the step
                        lam[0] = ((x1 - X) * (y2 - Y) - (x2 - X) * (y1 - Y)) / D
                        lam[1] = ((x2 - X) * (y0 - Y) - (x0 - X) * (y2 - Y)) / D
                        lam[2] = 1.0 - lam[0] - lam[1]
                        slope[0] = ((y1 - y2) * sdx + (x2 - x1) * sdy) / D
                        slope[1] = ((y2 - y0) * sdx + (x0 - x2) * sdy) / D
                        slope[2] = -slope[0] - slope[1]
                        best, k = np.inf, -1
                        for e in range(3):
                            if slope[e] < 0:
                                te = -lam[e] / slope[e]
                                if te < best:
                                    best, k = te, e
                        if k < 0 or best > 1.0:
                            break  # the segment ends inside this face
                        g = nb[f, k]
                        if g < 0 or facing[g] != facing[f]:  # silhouette edge
                            ea, eb = vi[(k + 1) % 3], vi[(k + 2) % 3]
                            steep = abs(sy[eb] - sy[ea]) >= abs(sx[eb] - sx[ea])
                            if steep == (d == 0):
                                pin[n], pout[n], face[n], edge[n] = p0, p1, f, k
                                step[n, 0], step[n, 1] = sdx, sdy
                                n += 1
                            break
                        f = g
    return pin[:n].copy(), pout[:n].copy(), face[:n].copy(), edge[:n].copy(), step[:n].copy()


class _GradScale(torch.autograd.Function):
    """Identity forward, gradient scaled by `k` backward."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None
