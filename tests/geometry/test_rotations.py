"""Tests of meshcnn.geometry.rotations and the point locator (meshcnn.geometry.locate)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from meshcnn.geometry import (
    barycentric_interpolation,
    icosahedral_rotations,
    icosphere,
    locate,
    random_rotation,
    rotate_signal,
    rotation_about_axis,
    rotation_about_z,
    vertex_permutation,
)
from meshcnn.geometry.rotations import check_rotation, rotation_matrix_on_mesh


def test_rotation_error_shrinks_with_level():
    rotation = random_rotation(np.random.default_rng(4))
    errors = []
    for level in (2, 3, 4):
        f = np.exp(2 * icosphere(level).vertices @ np.array([0.6, 0.0, 0.8]))
        exact = np.exp(2 * icosphere(level).vertices @ (rotation @ np.array([0.6, 0.0, 0.8])))
        errors.append(np.abs(rotate_signal(f, level, rotation) - exact).max())
    assert errors[0] > 3 * errors[1] > 9 * errors[2]  # O(h^2)


def test_rotate_signal_is_exact_for_icosahedral_rotations():
    level = 2
    signal = np.random.default_rng(5).standard_normal((2, 3, icosphere(level).num_vertices))
    for rotation in icosahedral_rotations():
        perm = vertex_permutation(level, rotation)
        expected = np.empty_like(signal)
        expected[..., perm] = signal
        np.testing.assert_allclose(rotate_signal(signal, level, rotation), expected, atol=1e-12)
        out = rotate_signal(torch.from_numpy(signal), level, rotation)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


def test_rotate_signal_keeps_constants_and_dtype():
    rotation = random_rotation(np.random.default_rng(6))
    ones = np.ones(icosphere(3).num_vertices, dtype=np.float32)
    out = rotate_signal(ones, 3, rotation)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="level 3"):
        rotate_signal(np.ones(10), 3, rotation)
    with pytest.raises(ValueError, match="rotation"):
        rotate_signal(ones, 3, np.diag([1.0, 1.0, -1.0]))


def test_barycentric_interpolation_weights():
    mesh = icosphere(2)
    at_vertices = barycentric_interpolation(mesh, mesh.vertices * 3.0).toarray()
    np.testing.assert_allclose(at_vertices, np.eye(mesh.num_vertices), atol=1e-12)
    a, b, c = mesh.vertices[mesh.faces[7]]
    weights = np.array([0.2, 0.5, 0.3])
    row = barycentric_interpolation(mesh, (weights @ np.stack([a, b, c]))[None]).toarray()[0]
    np.testing.assert_allclose(row[mesh.faces[7]], weights, atol=1e-12)
    assert row.sum() == pytest.approx(1.0)


def test_rotation_about_axis_and_z():
    r = rotation_about_axis([1.0, 2.0, 2.0], 0.7)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-14)
    assert np.isclose(np.linalg.det(r), 1.0)
    np.testing.assert_allclose(r @ np.array([1.0, 2.0, 2.0]), [1.0, 2.0, 2.0], atol=1e-14)  # the axis is fixed
    assert np.isclose(np.arccos((np.trace(r) - 1) / 2), 0.7)
    np.testing.assert_allclose(rotation_about_axis([0, 0, 3.0], 0.4), rotation_about_z(0.4), atol=1e-15)
    np.testing.assert_allclose(rotation_about_z(np.pi / 2) @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-15)  # lon + 90 deg
    with pytest.raises(ValueError, match="non-zero"):
        rotation_about_axis([0, 0, 0], 1.0)


def test_check_rotation():
    r = random_rotation(np.random.default_rng(1))
    np.testing.assert_array_equal(check_rotation(r.tolist()), r)
    reflection = np.diag([1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="proper rotation"):
        check_rotation(reflection)
    np.testing.assert_array_equal(check_rotation(reflection, proper=False), reflection)
    for bad in (np.eye(2), np.full((3, 3), np.nan), 2 * np.eye(3)):
        with pytest.raises(ValueError, match="rotation"):
            check_rotation(bad)


def test_locate_finds_the_containing_face_at_every_level_0_to_3():
    rng = np.random.default_rng(2)
    points = rng.standard_normal((500, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    for level in range(4):
        mesh = icosphere(level)
        face, bary = locate(mesh, points)
        assert np.all(bary >= 0) and np.allclose(bary.sum(1), 1.0)
        corners = mesh.vertices[mesh.faces[face]]  # (P, 3, 3)
        flat = np.einsum("pk,pkc->pc", bary, corners)  # on the flat triangle, along the ray through the point
        flat /= np.linalg.norm(flat, axis=1, keepdims=True)
        np.testing.assert_allclose(flat, points, atol=1e-12)


def test_rotation_matrix_on_mesh_is_a_permutation_for_the_icosahedral_group():
    level = 2
    rotation = icosahedral_rotations()[11]
    op = sp.csr_matrix(rotation_matrix_on_mesh(level, rotation))
    inverse = np.argsort(vertex_permutation(level, rotation))
    np.testing.assert_allclose(op.toarray(), np.eye(icosphere(level).num_vertices)[inverse], atol=1e-12)
