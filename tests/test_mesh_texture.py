"""Mesh texture sampling: bilinear and nearest taps with each boundary mode, the mip pyramid and level selection
(also from interpolated uv derivatives), cube-map orientation and seams, and argument checks."""

import numpy as np
import pytest
import torch

from relight.render import mesh_raster as mr
from relight.render import mesh_texture as mt

from mesh_fixtures import clip_from_pixels


def test_bilinear_is_exact_at_texel_centres_and_wraps():
    g = torch.Generator().manual_seed(0)
    tex = torch.rand(2, 5, 7, 3, dtype=torch.float64, generator=g)
    jj, ii = torch.meshgrid(torch.arange(5), torch.arange(7), indexing="ij")
    uv = torch.stack([(ii + 0.5) / 7, (jj + 0.5) / 5], -1).double()[None].expand(2, -1, -1, -1)
    for mode in ("wrap", "clamp", "zero"):
        assert torch.allclose(mt.texture(tex, uv, boundary_mode=mode), tex)
        assert torch.allclose(mt.texture(tex, uv, filter_mode="nearest", boundary_mode=mode), tex)
    mid = torch.tensor([[[[0.0, 0.5 / 5]]]], dtype=torch.float64).expand(2, 1, 1, 2)  # on the u = 0 seam, row 0
    half = 0.5 * (tex[:, 0, 0] + tex[:, 0, 6])
    assert torch.allclose(mt.texture(tex, mid, boundary_mode="wrap")[:, 0, 0], half)
    assert torch.allclose(mt.texture(tex, mid, boundary_mode="clamp")[:, 0, 0], tex[:, 0, 0])
    assert torch.allclose(mt.texture(tex, mid, boundary_mode="zero")[:, 0, 0], 0.5 * tex[:, 0, 0])
    corner = torch.zeros(2, 1, 1, 2, dtype=torch.float64)  # uv (0, 0): a quarter of texel (0, 0), the rest outside
    assert torch.allclose(mt.texture(tex, corner, boundary_mode="zero")[:, 0, 0], 0.25 * tex[:, 0, 0])
    assert torch.allclose(mt.texture(tex, corner, boundary_mode="wrap")[:, 0, 0], tex[:, [0, 0, 4, 4], [0, 6, 0, 6]].mean(1))
    assert torch.autograd.gradcheck(lambda t, u: mt.texture(t, u, boundary_mode="wrap"),
                                    (tex[:1].clone().requires_grad_(True), torch.rand(1, 3, 4, 2, dtype=torch.float64, generator=g).requires_grad_(True)),
                                    fast_mode=True)


def test_mip_pyramid_and_level_selection():
    g = torch.Generator().manual_seed(0)
    tex = torch.rand(1, 16, 16, 1, dtype=torch.float64, generator=g)
    mip = mt.texture_construct_mip(tex)
    assert [m.shape[1] for m in mip] == [16, 8, 4, 2, 1]
    assert torch.allclose(mip[2][0, 1, 3], tex[0, 4:8, 12:16].mean((0, 1)))
    # uv at the centre of level-2 texel (3, 1); a footprint of 4 level-0 texels per pixel selects level 2
    uv = torch.tensor([[[[(3 + 0.5) / 4, (1 + 0.5) / 4]]]], dtype=torch.float64)
    da = lambda k: torch.tensor([[[[k / 16, 0.0, 0.0, k / 16]]]], dtype=torch.float64)  # (du/dX, du/dY, dv/dX, dv/dY)
    assert torch.allclose(mt.texture(tex, uv, da(4.0), mip=mip)[0, 0, 0], mip[2][0, 1, 3])
    assert torch.allclose(mt.texture(tex, uv, da(4.0))[0, 0, 0], mip[2][0, 1, 3])  # builds its own pyramid
    # lod 2.5: halfway between levels 2 and 3 (trilinear); nearest-mip rounds to 3
    l3 = mt.texture(mip[3], uv)[0, 0, 0]
    assert torch.allclose(mt.texture(tex, uv, da(2**2.5), mip=mip)[0, 0, 0], 0.5 * (mip[2][0, 1, 3] + l3))
    assert torch.allclose(mt.texture(tex, uv, da(2**2.6), mip=mip, filter_mode="linear-mipmap-nearest")[0, 0, 0], l3)
    # bias alone selects the level; magnification (footprint < 1 texel) stays on level 0; max_mip_level caps it
    assert torch.allclose(mt.texture(tex, uv, mip_level_bias=torch.full((1, 1, 1), 2.0, dtype=torch.float64))[0, 0, 0], mip[2][0, 1, 3])
    uv0 = torch.tensor([[[[(5 + 0.5) / 16, (9 + 0.5) / 16]]]], dtype=torch.float64)
    assert torch.allclose(mt.texture(tex, uv0, da(0.25))[0, 0, 0], tex[0, 9, 5])
    assert torch.allclose(mt.texture(tex, uv, da(64.0), max_mip_level=2)[0, 0, 0], mip[2][0, 1, 3])
    # gradients reach tex, uv and uv_da
    uvr = (uv + 0.01).requires_grad_(True)
    dar = da(2**2.3).requires_grad_(True)
    texr = tex[:, :8, :8].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, u, d: mt.texture(t, u, d), (texr, uvr, dar / 2), fast_mode=True)


def test_interpolated_uv_derivatives_drive_the_mip_level():
    # a textured quad seen at 1:1 texel-to-pixel, then 4x smaller: the 4x smaller one samples level 2
    tex = torch.rand(1, 32, 32, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    mip = mt.texture_construct_mip(tex)
    uvs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]])
    for size, level in ((32.0, 0), (8.0, 2)):
        px = torch.tensor([[0.0, 0.0], [size, 0.0], [size, size], [0.0, size]])
        pos = clip_from_pixels(px, [1.0] * 4, H=32, W=32)[None]
        rast, db = mr.rasterize(pos, tri, (32, 32))
        uv, uv_da = mr.interpolate(uvs, rast, tri, rast_db=db, diff_attrs="all")
        out = mt.texture(tex, uv, uv_da, mip=mip)
        n = int(size)
        assert torch.allclose(out[0, :n, :n], mip[level][0], atol=1e-9)


def test_cube_map_faces_orientation_and_seams():
    S = 4
    tex = torch.arange(6 * S * S, dtype=torch.float64).reshape(1, 6, S, S, 1)  # unique value per texel
    axes = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=torch.float64)
    assert (mt.cube_face(axes) == torch.arange(6)).all()
    faces = torch.arange(6, dtype=torch.float64).reshape(1, 6, 1, 1, 1).expand(1, 6, S, S, 1)
    out = mt.texture(faces, axes.reshape(1, 1, 6, 3) * 2.5, boundary_mode="cube")
    assert torch.equal(out[0, 0, :, 0], torch.arange(6, dtype=torch.float64))
    # orientation (OpenGL's table): column s = (sc/|ma| + 1)/2, row t = (tc/|ma| + 1)/2
    cases = [  # direction, face, expected (column, row) on a 4x4 face
        ((1, -0.5, -0.3), 0, (2, 3)),  # +X: sc = -z, tc = -y
        ((-1, 0.6, -0.6), 1, (0, 0)),  # -X: sc = z, tc = -y
        ((0.6, 1, 0.6), 2, (3, 3)),  # +Y: sc = x, tc = z
        ((0.6, -1, 0.6), 3, (3, 0)),  # -Y: sc = x, tc = -z
        ((-0.6, -0.6, 1), 4, (0, 3)),  # +Z: sc = x, tc = -y
        ((-0.6, 0.6, -1), 5, (3, 0)),  # -Z: sc = -x, tc = -y
    ]
    d = torch.tensor([c[0] for c in cases], dtype=torch.float64).reshape(1, 1, 6, 3)
    got = mt.texture(tex, d, filter_mode="nearest", boundary_mode="cube")[0, 0, :, 0]
    want = torch.tensor([(f * S + r) * S + c for _, f, (c, r) in cases], dtype=torch.float64)
    assert torch.equal(got, want)
    # seamless: a smooth function of direction stored in the faces is read back smoothly across every edge
    lin = torch.linspace(-1 + 1 / 32, 1 - 1 / 32, 32, dtype=torch.float64)
    tc, sc = torch.meshgrid(lin, lin, indexing="ij")
    R = torch.as_tensor(mt._CUBE)
    dirs = torch.einsum("fki,hwk->fhwi", R, torch.stack([sc, tc, torch.ones_like(sc)], -1))  # [6, 32, 32, 3]
    field = lambda x: (x / x.norm(dim=-1, keepdim=True) @ torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64))[..., None]
    ctex = field(dirs)[None]
    a = torch.linspace(0, 2 * np.pi, 721, dtype=torch.float64)
    for ring in (torch.stack([a.cos(), a.sin(), 0.3 * torch.ones_like(a)], -1), torch.stack([a.cos(), 0.2 * torch.ones_like(a), a.sin()], -1)):
        got = mt.texture(ctex, ring.reshape(1, 1, -1, 3), boundary_mode="cube")[0, 0, :, 0]
        assert (got - field(ring)[:, 0]).abs().max() < 0.01
        assert got.diff().abs().max() < 0.02
    # mip levels of a cube map from direction derivatives
    mip = mt.texture_construct_mip(ctex)
    assert mip[1].shape == (1, 6, 16, 16, 1)
    dd = torch.tensor([[[[0.0, 0.0, 4 / 16, 0.0, 0.0, 4 / 16]]]], dtype=torch.float64)  # 4 texels per pixel at +X's centre
    uvx = torch.tensor([[[[1.0, 1 / 8, 1 / 8]]]], dtype=torch.float64)  # +X, texel (3, 3) of level 2
    assert torch.allclose(mt.texture(ctex, uvx, dd, mip=mip, boundary_mode="cube")[0, 0, 0], mip[2][0, 0, 3, 3], atol=1e-6)


def test_texture_rejects_bad_arguments():
    tex = torch.zeros(1, 4, 4, 3)
    with pytest.raises(ValueError, match="filter_mode"):
        mt.texture(tex, torch.zeros(1, 2, 2, 2), filter_mode="cubic")
    with pytest.raises(ValueError, match="cube map"):
        mt.texture(tex, torch.zeros(1, 2, 2, 3), boundary_mode="cube")
