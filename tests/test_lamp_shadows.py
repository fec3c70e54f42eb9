"""Point, spot and area lamps near the asset: each pixel's own direction and distance to the lamp (falloff and the
spot's cone across a slab, against the lamp formulas evaluated at the slab's exact points), and each Gaussian's own
shadow ray towards the lamp's position (against a plain numpy ray-triangle oracle), with the interactive stored blend
agreeing with it."""

import numpy as np

from relight.core.camera import Camera
from relight.core.envmap import Environment
from relight.core.surface import vertex_normals
from relight.evaluate.reference_assets import asset_from_mesh
from relight.render.frame import render
from relight.render.lamp_shadows import lamp_visibility, stored_visibility_towards, _to_asset
from relight.render.lamps import Lamp
from relight.render.settings import PREVIEW

from test_hard_light_and_texture import _two_boxes

BLACK = np.zeros((16, 32, 3), np.float32)
LAMP = np.array([1.1, -0.5, 2.2])  # world, m: above the slab, beside the tall box, ~1-3 m from the slab's points


def _segment_hits(origins: np.ndarray, target: np.ndarray, v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """[N] bool: the segment from each origin [N, 3] to target [3] meets a triangle of (v, f) (Moller-Trumbore per
    origin, plain numpy: independent of the voxel march)."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]  # [F, 3]
    e1, e2 = b - a, c - a
    out = np.zeros(len(origins), bool)
    for i, o in enumerate(origins):
        d = target - o
        length = np.linalg.norm(d)
        d = d / length
        p = np.cross(d, e2)
        det = (e1 * p).sum(1)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = o - a
        u = (s * p).sum(1) * inv
        q = np.cross(s, e1)
        w = (q @ d) * inv
        t = (q * e2).sum(1) * inv
        out[i] = (ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t > 1e-4) & (t < length)).any()
    return out


def _boxes_asset():
    v, f = _two_boxes()
    cam = Camera.look_at((0.0, -6.0, 3.0), (0.0, 0.0, 0.4), 40.0, 64, 64)
    return v, f, asset_from_mesh(v, f, vertex_normals(v, f), (0.7, 0.7, 0.7), 0.6, 0.0, n_gaussians=30_000, camera=cam)


def test_a_point_lamps_shadow_follows_each_gaussians_own_ray_to_it():
    """The slab's Gaussians are in the tall box's shadow exactly when the segment to the lamp meets the mesh. The
    lamp is ~2 m away, so the directions towards it spread over ~60 degrees across the slab: one direction from the
    asset's centre would shadow the wrong part. Points within two occupancy voxels of the shadow's edge (the march's
    resolution) are not scored."""
    v, f, asset = _boxes_asset()
    g = asset.gaussians
    lamp = (Lamp("point", (1, 1, 1), 500.0, tuple(LAMP), (0, 0, -1)),)
    exact = lamp_visibility(asset, lamp, exact=True)[:, 0]
    means_w = g.means @ asset.rotation.T * asset.scale + asset.model_matrix[:3, 3]  # asset -> world
    normals_w = g.normals @ asset.rotation.T
    top = (np.abs(means_w[:, 2] - 0.2) < 1e-3) & (normals_w[:, 2] > 0.9)  # the slab's top face
    idx = np.random.default_rng(0).choice(np.nonzero(top)[0], 500, replace=False)
    origins = means_w[idx] + 1e-3 * normals_w[idx]
    blocked = _segment_hits(origins, LAMP, v, f)
    voxel = 2 * asset.scale / 128  # world size of two occupancy voxels (the grid spans the unit cube)
    far = np.ones(len(idx), bool)
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        far &= _segment_hits(origins + voxel * np.array([dx, dy, 0.0]), LAMP, v, f) == blocked
    assert blocked[far].sum() >= 30 and (~blocked[far]).sum() >= 30, "both lit and shadowed points are scored"
    assert np.array_equal(exact[idx][far] > 0.5, ~blocked[far])
    # the shadow is not the one a single direction from the asset's centre would cast
    centre_dir = LAMP - asset.model_matrix[:3, 3]
    from_centre = lamp_visibility(asset, (Lamp("sun", (1, 1, 1), 1.0, (0, 0, 0), tuple(-centre_dir)),))[:, 0]
    assert np.mean((from_centre[idx][far] > 0.5) != ~blocked[far]) > 0.05
    # the interactive preview's blend of stored directions agrees away from the tangent planes' terminator
    soft = lamp_visibility(asset, lamp, exact=False)[:, 0]
    assert np.array_equal(soft, stored_visibility_towards(asset, _to_asset(asset, LAMP)))
    to_lamp = LAMP - means_w
    facing = np.einsum("ij,ij->i", normals_w, to_lamp / np.linalg.norm(to_lamp, axis=1, keepdims=True))
    clear = facing > 0.3
    assert np.mean(np.abs(soft[idx][far & clear[idx]] - exact[idx][far & clear[idx]]) < 0.5) > 0.9
    assert soft[facing < 0].max() == 0.0 and exact[facing < 0].max() == 0.0, "a lamp behind the surface never lights"


def _slab_asset():
    """A 2 m x 2 m plane at z = 0 facing up, grey and rough (roughness 1), and a camera looking straight down."""
    v = np.array([(-1.0, -1.0, 0.0), (1.0, -1.0, 0.0), (1.0, 1.0, 0.0), (-1.0, 1.0, 0.0)], np.float32)
    f = np.array([(0, 1, 2), (0, 2, 3)], np.int64)
    cam = Camera.look_at((0.0, 0.0, 3.0), (0.0, 0.0, 0.0), 45.0, 96, 96, up=(0.0, 1.0, 0.0))
    asset = asset_from_mesh(v, f, vertex_normals(v, f), (0.8, 0.8, 0.8), 1.0, 0.0, n_gaussians=40_000, camera=cam)
    return asset, cam


def _slab_points(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """([P] pixel indices, [P, 3] world points on the slab's top z = 0) of the pixels well inside the slab."""
    o, d = cam.rays()  # [H, W, 3]
    t = -o[..., 2] / d[..., 2]
    pts = (o + d * t[..., None]).reshape(-1, 3)
    inside = np.all(np.abs(pts[:, :2]) < 0.9, 1)
    return np.nonzero(inside)[0], pts[inside]


def test_a_point_lamp_lights_each_pixel_by_its_own_distance_and_a_spot_by_its_own_cone():
    """A point lamp 0.8 m above a slab: the irradiance P / (4 pi) h / r^3 falls ~8x from the middle to the corners.
    Each pixel's radiance over albedo / pi x that irradiance, with r from the pixel's own slab point, is 1 up to the
    GGX term of a rough dielectric (F0 = 0.04: under 5 % at these angles) and splat blending; the old lamp seen from
    the asset's centre lit the slab evenly."""
    asset, cam = _slab_asset()
    h = 0.8
    P = 200.0
    r = render(asset, cam, Environment(BLACK), PREVIEW, lamps=(Lamp("point", (1, 1, 1), P, (0.2, 0.1, h), (0, 0, -1)),))
    idx, pts = _slab_points(cam)
    d = np.array([0.2, 0.1, h]) - pts
    r2 = (d * d).sum(1)
    e = P / (4 * np.pi) * h / r2**1.5  # [P] W/m^2 on the slab (cos = h / r)
    ratio = r.hdr.reshape(-1, 3)[idx].mean(1) / (0.8 / np.pi * e)
    assert e.max() / e.min() > 6
    assert np.percentile(ratio, 2) > 0.95 and np.percentile(ratio, 98) < 1.08, np.percentile(ratio, [0, 2, 50, 98, 100])
    # a spot pointing straight down, cone 60 degrees: lit inside ~28 degrees of its axis, dark beyond 30
    spot = Lamp("spot", (1, 1, 1), P, (0.0, 0.0, h), (0, 0, -1), spot_size=np.radians(60), spot_blend=0.1)
    s = render(asset, cam, Environment(BLACK), PREVIEW, lamps=(spot,)).hdr.reshape(-1, 3)[idx].mean(1)
    angle = np.degrees(np.arctan2(np.linalg.norm(pts[:, :2], axis=1), h))
    assert s[angle < 25].min() > 0.5 * (0.8 / np.pi * P / (4 * np.pi) / h**2) * np.cos(np.radians(25)) ** 3
    far_out = angle > 33  # beyond the cone's edge by more than a pixel's footprint
    assert far_out.sum() > 100 and s[far_out].max() == 0.0


def test_a_point_and_a_spot_lamp_near_a_plane_agree_with_cycles():
    """The same plane, lamps and camera rendered by Cycles (black world, lamps of radius 0): per pixel, our radiance
    over Cycles' is 1 within Cycles' noise after denoising (64 samples: a few %) and the two BRDFs' rough-specular
    difference (GGX with F0 = 0.04 against Cycles' multiscatter Principled: a few % at most)."""
    from relight.evaluate.cycles_scenes import (CyclesSettings, Material, import_bpy, new_mesh_object,
                                                principled_material, render_to_array, set_camera, setup_cycles)  # fmt: skip

    asset, cam = _slab_asset()
    h, P = 0.8, 200.0
    lamps = (Lamp("point", (1, 1, 1), P, (0.2, 0.1, h), (0, 0, -1)),
             Lamp("spot", (1.0, 0.6, 0.3), 2 * P, (-0.4, 0.3, 1.2), (0.3, -0.2, -1.0) / np.linalg.norm((0.3, -0.2, -1.0)),
                  spot_size=np.radians(50), spot_blend=0.2))  # fmt: skip
    bpy = import_bpy()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    setup_cycles(scene, cam, CyclesSettings(samples=64))
    v, f = asset.vertices @ asset.rotation.T * asset.scale + asset.model_matrix[:3, 3], asset.faces  # world
    plane = new_mesh_object(bpy, "plane", v.astype(np.float64), f)
    plane.data.materials.append(principled_material(bpy, "grey", Material((0.8, 0.8, 0.8), 1.0, 0.0)))
    from mathutils import Vector

    for lamp in lamps:
        data = bpy.data.lights.new(lamp.kind, lamp.kind.upper())
        data.energy, data.color, data.shadow_soft_size = lamp.energy, lamp.color, 0.0
        if lamp.kind == "spot":
            data.spot_size, data.spot_blend = lamp.spot_size, lamp.spot_blend
        obj = bpy.data.objects.new(lamp.kind, data)
        obj.location = lamp.position
        obj.rotation_euler = Vector((0.0, 0.0, -1.0)).rotation_difference(Vector(lamp.direction)).to_euler()
        scene.collection.objects.link(obj)
    set_camera(bpy, scene, cam)
    cycles = render_to_array(bpy, scene)[..., :3].reshape(-1, 3)
    ours = render(asset, cam, Environment(BLACK), PREVIEW, lamps=lamps).hdr.reshape(-1, 3)
    idx, _ = _slab_points(cam)
    lit = idx[cycles[idx].mean(1) > 0.02 * cycles[idx].mean(1).max()]  # outside the spot's cone both are ~0
    ratio = ours[lit].sum(1) / cycles[lit].sum(1)
    assert len(lit) > 0.5 * len(idx)
    assert 0.95 < np.median(ratio) < 1.05 and np.percentile(ratio, 5) > 0.88 and np.percentile(ratio, 95) < 1.12, \
        np.percentile(ratio, [0, 5, 50, 95, 100])


def test_the_lamp_kernel_agrees_with_the_numpy_reference():
    """shade_lamps' numba pass against its vectorised reference on a random G-buffer (every lamp kind, random
    visibility, depth, materials and a turned camera): the same maths in float32 and float64, so they agree to float32
    rounding."""
    from relight.render.lamps import shade_lamps

    rng = np.random.default_rng(5)
    H, W = 24, 32
    n = rng.normal(size=(H, W, 3))
    passes = {"normal": (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32),
              "albedo": rng.uniform(0, 1, (H, W, 3)).astype(np.float32),
              "roughness": rng.uniform(0, 1, (H, W, 1)).astype(np.float32),
              "metallic": rng.uniform(0, 1, (H, W, 1)).astype(np.float32)}  # fmt: skip
    alpha = np.where(rng.uniform(size=(H, W, 1)) < 0.2, 0.0, rng.uniform(0.5, 1, (H, W, 1))).astype(np.float32)
    cam = Camera.look_at((0.7, -2.5, 1.1), (0.0, 0.1, 0.0), 40.0, W, H)
    lamps = (Lamp("sun", (1.0, 0.9, 0.8), 3.0, (0, 0, 0), (0.3, 0.2, -0.93)),
             Lamp("point", (0.5, 1.0, 1.0), 300.0, (0.5, -0.4, 1.0), (0, 0, -1)),
             Lamp("spot", (1, 1, 1), 500.0, (-0.6, -0.8, 1.3), (0.4, 0.5, -0.77), spot_size=1.0, spot_blend=0.5),
             Lamp("area", (1, 0.5, 0.2), 200.0, (0.0, -1.0, 0.2), (0.0, 0.98, -0.2)))  # fmt: skip
    vis = rng.uniform(0, 1, (H, W, len(lamps))).astype(np.float32)
    depth = rng.uniform(2.0, 3.5, (H, W, 1)).astype(np.float32)
    fast = shade_lamps(passes, alpha, vis, lamps, cam, depth)
    ref = shade_lamps(passes, alpha, vis, lamps, cam, depth, impl="numpy")
    assert ref.max() > 1.0 and np.count_nonzero(ref.sum(-1)) > 0.5 * H * W, "the reference lights the buffer"
    np.testing.assert_allclose(fast, ref, rtol=2e-4, atol=1e-6 * ref.max())
