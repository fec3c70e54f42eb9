"""Meshes from files (generate.geometry.mesh_file): every format reads into the Z-up world, scenes merge with their
transforms, the cleaning removes what it says, and a file that cannot be used gets an error that names it."""

import io

import numpy as np
import pytest
import trimesh

from relight.export.gltf import encode_textures, write_glb
from relight.generate.geometry.mesh_file import MeshFileError, clean_mesh, read_mesh_bytes, read_mesh_file


def _box_scene() -> trimesh.Scene:
    """Two parts: a unit box moved +2 along the file's Y axis, and a sphere at the origin."""
    s = trimesh.Scene()
    s.add_geometry(trimesh.creation.box(), node_name="box", transform=trimesh.transformations.translation_matrix([0, 2, 0]))
    s.add_geometry(trimesh.creation.icosphere(subdivisions=2, radius=0.5), node_name="ball")
    return s


@pytest.mark.parametrize("fmt", ["glb", "obj", "ply", "stl"])
def test_every_format_merges_the_parts_with_their_transforms(tmp_path, fmt):
    path = tmp_path / f"scene.{fmt}"
    data = _box_scene().export(file_type=fmt)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    v, f = read_mesh_file(path)
    n_faces = 12 + len(trimesh.creation.icosphere(subdivisions=2).faces)
    assert len(f) == n_faces and f.dtype == np.int32 and v.dtype == np.float32
    assert f.max() == len(v) - 1  # no unreferenced vertex
    lo, hi = v.min(0), v.max(0)
    if fmt in ("glb", "obj"):  # Y up in the file: the box's +2 along Y is +2 along Z in the Z-up world
        np.testing.assert_allclose([lo[2], hi[2]], [-0.5, 2.5], atol=1e-5)
        np.testing.assert_allclose([lo[1], hi[1]], [-0.5, 0.5], atol=1e-5)
    else:  # taken as they are
        np.testing.assert_allclose([lo[1], hi[1]], [-0.5, 2.5], atol=1e-5)


def test_up_override(tmp_path):
    path = tmp_path / "scene.stl"
    path.write_bytes(_box_scene().export(file_type="stl"))
    v, _ = read_mesh_file(path, up="y")
    np.testing.assert_allclose([v[:, 2].min(), v[:, 2].max()], [-0.5, 2.5], atol=1e-5)


def test_the_projects_own_glb_reads_back_in_blender_coordinates():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(30, 3)).astype(np.float32) + np.array([0, 0, 5], np.float32)  # Blender world, Z up
    f = np.array([[i, i + 1, i + 2] for i in range(0, 27, 3)], np.int32)
    n = v / np.linalg.norm(v, axis=1, keepdims=True)
    png, orm = encode_textures(np.full((4, 4, 3), 0.5, np.float32), np.full((4, 4), 0.5, np.float32),
                               np.zeros((4, 4), np.float32), np.ones((4, 4), np.float32))
    data = write_glb(v, n, np.zeros((30, 2), np.float32), f, png, orm)
    v2, f2 = read_mesh_bytes(data, "glb")
    np.testing.assert_allclose(v2[f2], v[f], atol=1e-5)  # same triangles, same places


def test_cleaning():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0], [9, 9, 9], [np.nan, 0, 0]], np.float64)
    f = np.array([
        [0, 1, 2],  # kept
        [1, 3, 2],  # kept
        [0, 4, 2],  # duplicate of the first once vertex 4 merges into vertex 1
        [2, 1, 0],  # the first, wound the other way: a duplicate
        [0, 1, 1],  # repeated vertex
        [0, 1, 4],  # collapses to a repeated vertex after the merge
        [0, 1, 6],  # uses a NaN vertex
        [0, 1, 7],  # index out of range
    ])
    v2, f2 = clean_mesh(v, f)
    assert len(f2) == 2 and len(v2) == 4  # vertex 5 (unreferenced), 4 (merged) and 6 (NaN) are gone
    assert {tuple(sorted(map(tuple, v2[t].tolist()))) for t in f2} == {
        ((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)), ((0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (1.0, 1.0, 0.0))}


def test_a_zero_area_mesh_is_refused():
    data = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]], process=False).export(file_type="ply")
    with pytest.raises(MeshFileError, match="degenerate"):
        read_mesh_bytes(data, "ply", "flat.ply")


@pytest.mark.parametrize("fmt,data,match", [
    ("stl", b"solid empty\nendsolid empty\n", "no triangles"),
    ("ply", trimesh.PointCloud(np.random.default_rng(0).random((10, 3))).export(file_type="ply"), "no triangles"),
    ("glb", b"glTF garbage that is not a GLB", "could not read it as GLB"),
    ("obj", b"v 0 0 0\nv 1 0 0\n", "no triangles"),
])
def test_unusable_files_are_named(fmt, data, match):
    with pytest.raises(MeshFileError, match=match) as e:
        read_mesh_bytes(data, fmt, f"broken.{fmt}")
    assert f"broken.{fmt}" in str(e.value)


def test_wrong_extension_and_missing_file(tmp_path):
    with pytest.raises(MeshFileError, match="unsupported mesh format '.?fbx'|unsupported mesh format 'fbx'"):
        read_mesh_file(tmp_path / "chair.fbx")
    with pytest.raises(MeshFileError, match="no such file"):
        read_mesh_file(tmp_path / "missing.obj")
