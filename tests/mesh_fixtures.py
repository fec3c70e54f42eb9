"""Meshes and clip-space positions shared by the mesh rasterizer tests (test_mesh_raster, test_mesh_visible_triangles,
test_mesh_antialias, test_mesh_texture)."""

import numpy as np
import torch


def icosphere(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: ([V, 3] float32 vertices, [20 * 4**level, 3] int64 faces, outward winding)."""
    g = (1 + 5**0.5) / 2
    v = np.array([[-1, g, 0], [1, g, 0], [-1, -g, 0], [1, -g, 0], [0, -1, g], [0, 1, g], [0, -1, -g], [0, 1, -g],
                  [g, 0, -1], [g, 0, 1], [-g, 0, -1], [-g, 0, 1]], float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
                  [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
                  [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for _ in range(level):
        e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(e, axis=0, return_inverse=True)
        mid = v[uniq].mean(1)
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        m = inv.reshape(3, -1).T + len(v)  # [F, 3] midpoints of edges 01, 12, 20
        v = np.concatenate([v, mid])
        f = np.concatenate([np.stack([f[:, 0], m[:, 0], m[:, 2]], 1), np.stack([f[:, 1], m[:, 1], m[:, 0]], 1),
                            np.stack([f[:, 2], m[:, 2], m[:, 1]], 1), m])
    return v.astype(np.float32), f.astype(np.int64)


def clip_from_pixels(px, w, z=0.5, H=32, W=40):
    """Clip positions [N, 4] of pixel positions px [N, 2] (continuous, x along a row) with homogeneous w [N]."""
    px, w = torch.as_tensor(px, dtype=torch.float64), torch.as_tensor(w, dtype=torch.float64)
    x = (px[:, 0] / W * 2 - 1) * w
    y = (px[:, 1] / H * 2 - 1) * w
    return torch.stack([x, y, z * w, w], 1)


def screen_area(pos, H, W):
    """Exact area in pixels of a single clip-space triangle [3, 4] (differentiable)."""
    sx = (pos[:, 0] / pos[:, 3] + 1) / 2 * W
    sy = (pos[:, 1] / pos[:, 3] + 1) / 2 * H
    return 0.5 * ((sx[1] - sx[0]) * (sy[2] - sy[0]) - (sx[2] - sx[0]) * (sy[1] - sy[0])).abs()


def random_clip_triangles(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n separate triangles scattered over the screen (some partly off it) at varied depths and w:
    ([3n, 4] float64 clip positions, [n, 3] faces)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1.1, 1.1, (n, 1, 2)) + rng.normal(scale=0.15, size=(n, 3, 2))  # triangles, some off screen
    w = rng.uniform(0.5, 3.0, (n, 3, 1))
    z = rng.uniform(-0.9, 0.9, (n, 1, 1)) + rng.normal(scale=0.05, size=(n, 3, 1))
    pos = torch.from_numpy(np.concatenate([c * w, z * w, w], 2).reshape(-1, 4))
    return pos, torch.arange(3 * n).reshape(n, 3)


def random_clip_grid(n: int, seed: int, fins: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A connected sheet: an n x n grid of cells (two triangles each, random diagonal) a little wider than the screen,
    its vertices jittered by half a cell so that it folds over itself (faces of both facings, overlapping at random
    depths and w). `fins` extra triangles each hang on an edge of a random face, making most of those edges
    non-manifold: ([(n + 1)^2 + fins, 4] float64 clip positions, [2 n^2 + fins, 3] faces)."""
    rng = np.random.default_rng(seed)
    g = np.linspace(-1.2, 1.2, n + 1)
    xy = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    xy = np.concatenate([xy + rng.normal(scale=0.5 * 2.4 / n, size=xy.shape), rng.uniform(-1, 1, (fins, 2))])
    r, c = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a = (r * (n + 1) + c).reshape(-1)
    b, d, e = a + 1, a + n + 1, a + n + 2  # the cell's corners (r, c + 1), (r + 1, c), (r + 1, c + 1)
    flip = rng.random(n * n) < 0.5
    f = np.concatenate([np.where(flip[:, None], np.stack([a, b, d], 1), np.stack([a, b, e], 1)),
                        np.where(flip[:, None], np.stack([b, e, d], 1), np.stack([a, e, d], 1))])
    host = f[rng.integers(0, len(f), fins)]
    k = rng.integers(0, 3, fins)
    fin = np.stack([host[np.arange(fins), k], host[np.arange(fins), (k + 1) % 3], (n + 1) ** 2 + np.arange(fins)], 1)
    w = rng.uniform(0.5, 3.0, (len(xy), 1))
    z = rng.uniform(-0.9, 0.9, (len(xy), 1))
    pos = torch.from_numpy(np.concatenate([xy * w, z * w, w], 1))
    return pos, torch.from_numpy(np.concatenate([f, fin]).astype(np.int64))
