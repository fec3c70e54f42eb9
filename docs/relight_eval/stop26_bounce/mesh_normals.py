"""Probe: the G-buffer's normals from the mesh (interpolated vertex normals at each pixel) instead of the splats',
in the forward evaluation's cases. Prints PSNR against Cycles both ways."""
import sys, numpy as np, torch
from forward_case import forward_case, score
from relight.render import frame
from relight.render.frame import render
from relight.render.mesh_raster import clip_from_camera, rasterize, interpolate
from relight.core.gaussians import GBUFFER_LAYOUT
STATE = {"on": False}
orig_cov = frame._mesh_coverage
orig_fill = frame.fill_coverage
def cov(asset, view):
    STATE["view"], STATE["asset"] = view, asset
    return orig_cov(asset, view)
def fill(colors, alphas, covered, out=None):
    c, a = orig_fill(colors, alphas, covered, out=out)
    if STATE["on"]:
        view, asset = STATE["view"], STATE["asset"]
        pos = torch.as_tensor(np.c_[asset.vertices, np.ones(len(asset.vertices))] @ clip_from_camera(view).T, dtype=torch.float32)[None]
        rast, _ = rasterize(pos, asset.faces, (view.height, view.width), grad_db=False)
        nw = asset.vertex_normals @ asset.rotation.T
        n, _ = interpolate(torch.as_tensor(nw, dtype=torch.float32), rast, asset.faces)
        n = n[0].numpy(); hit = rast[0, ..., 3].numpy() > 0
        n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-8)
        sl = GBUFFER_LAYOUT["normal"]
        c[..., sl] = np.where(hit[..., None], n * a, c[..., sl])
    return c, a
frame._mesh_coverage = cov; frame.fill_coverage = fill
for spec in sys.argv[1:]:
    asset, cam, env, ground, cyc = forward_case(spec)
    out = []
    for on in (False, True):
        STATE["on"] = on
        res = render(asset, cam, env, ground=ground)
        sc = score(res, cyc, cam, env)
        out.append((sc["psnr"], sc["psnr_interior"], sc["psnr_edge"]))
    print(f"{spec:24s} splat normals {out[0][0]:.2f} (int {out[0][1]:.2f} edge {out[0][2]:.2f})  mesh normals "
          f"{out[1][0]:.2f} (int {out[1][1]:.2f} edge {out[1][2]:.2f})", flush=True)
