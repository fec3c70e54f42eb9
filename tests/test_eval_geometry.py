"""`relight eval relight --geometry`'s symmetry handling: a fit is judged modulo the object's own symmetry, and only
there: a cylinder turned about its axis is a twin of the truth, a tilt of it is an error, an asymmetric shape has no
twin."""

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from relight.core.surface import sample_surface, vertex_normals
from relight.evaluate.geometry_sources import nearest_symmetry, random_similarity, rotation_error_deg


def _samples(mesh: trimesh.Trimesh):
    v, f = np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces)
    vn = vertex_normals(v, f)
    ref = sample_surface(v, f, vn, 30_000, seed=0)[0].astype(np.float64)
    q = sample_surface(v, f, vn, 1500, seed=1)[0].astype(np.float64)
    c = ref.mean(0)
    return ref - c, q - c


def test_a_turn_about_a_cylinder_s_axis_is_a_twin_and_a_tilt_is_not():
    ref, q = _samples(trimesh.creation.cylinder(radius=0.5, height=1.6, sections=96))
    turn = Rotation.from_euler("z", 73, degrees=True).as_matrix()
    S = nearest_symmetry(ref, q, turn)
    assert rotation_error_deg(S, turn) < 0.5  # the turn itself maps the cylinder onto itself
    tilt = Rotation.from_euler("zx", [73, 6], degrees=True).as_matrix()
    S = nearest_symmetry(ref, q, tilt)
    left = rotation_error_deg(S, tilt)  # what no symmetry explains: the 6 degree tilt
    assert 4.0 < left < 8.0, left


def test_an_asymmetric_shape_has_no_twin():
    parts = [trimesh.creation.box((1.0, 0.4, 0.3)), trimesh.creation.box((0.3, 0.9, 0.3)),
             trimesh.creation.icosphere(radius=0.25)]
    parts[1].apply_translation((0.35, 0.3, 0.0))
    parts[2].apply_translation((-0.4, 0.0, 0.3))
    ref, q = _samples(trimesh.util.concatenate(parts))
    g0 = Rotation.from_rotvec([0.4, -1.1, 0.7]).as_matrix()
    assert rotation_error_deg(nearest_symmetry(ref, q, g0), np.eye(3)) < 1.0  # only the trivial symmetry


def test_random_similarities_are_seeded_rigid_and_scaled():
    a, b = random_similarity(3), random_similarity(3)
    np.testing.assert_array_equal(a, b)
    R = a[:3, :3] / np.cbrt(np.linalg.det(a[:3, :3]))
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
    assert 0.3 <= np.cbrt(np.linalg.det(a[:3, :3])) <= 3.0
