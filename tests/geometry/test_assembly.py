"""The face-by-face assembly of Mesh.build against the general (libigl) operators."""

import numpy as np
import pytest
import scipy.sparse as sp

from meshcnn.geometry import operators as ops
from meshcnn.geometry._assembly import closed_mesh_operators, face_pattern
from meshcnn.geometry.mesh import _geometry


def _reference(vertices, faces):
    """The operators as the general functions build them, one libigl call each."""
    h = ops.mean_edge_length(vertices, faces)
    grad_ew, grad_ns = ops.directional_derivatives(vertices, faces, scale=h)
    return {
        "vertex_areas": ops.vertex_areas(vertices, faces),
        "laplacian": ops.cotangent_laplacian(vertices, faces),
        "grad_ew": grad_ew,
        "grad_ns": grad_ns,
        "mean_edge_length": h,
    }


def _assert_matches_reference(vertices, faces, rtol=1e-12):
    built, ref = closed_mesh_operators(vertices, faces), _reference(vertices, faces)
    assert built.mean_edge_length == pytest.approx(ref["mean_edge_length"], rel=rtol)
    np.testing.assert_allclose(built.vertex_areas, ref["vertex_areas"], rtol=rtol, atol=0)
    for name in ("laplacian", "grad_ew", "grad_ns"):
        got, want = getattr(built, name), sp.csr_matrix(ref[name])
        assert got.has_sorted_indices and got.shape == want.shape
        assert abs(got - want).max() <= rtol * abs(want).max(), name


@pytest.mark.parametrize("level", range(0, 6))
def test_closed_mesh_operators_match_libigl(level):
    vertices, faces, _ = _geometry(level)
    _assert_matches_reference(vertices, faces)


def test_obtuse_triangles_match_libigl():
    """Jittered off the sphere, many triangles are obtuse: the mixed-Voronoi areas' other branch."""
    vertices, faces, _ = _geometry(2)
    rng = np.random.default_rng(0)
    vertices = vertices * rng.uniform(0.7, 1.3, size=(len(vertices), 1)) + rng.normal(0, 0.05, vertices.shape)
    e = [vertices[faces[:, (c + 2) % 3]] - vertices[faces[:, (c + 1) % 3]] for c in range(3)]
    cosines = [-np.einsum("ij,ij->i", e[(c + 1) % 3], e[(c + 2) % 3]) for c in range(3)]
    assert (np.min(cosines, axis=0) < 0).sum() > 20  # the case under test does occur
    _assert_matches_reference(vertices, faces, rtol=1e-11)


@pytest.mark.parametrize("level", [0, 3])
def test_face_pattern_places_every_face_entry(level):
    vertices, faces, _ = _geometry(level)
    pattern = face_pattern(faces, len(vertices))
    ring = ops.one_ring(faces, len(vertices))
    for v in range(len(vertices)):  # row v: v and its 1-ring, ascending
        want = np.sort(np.append(ring[v][ring[v] >= 0], v))
        np.testing.assert_array_equal(pattern.indices[pattern.indptr[v] : pattern.indptr[v + 1]], want)
    row = np.searchsorted(pattern.indptr, pattern.slots, side="right") - 1
    col = pattern.indices[pattern.slots]
    nxt = faces[:, [1, 2, 0]].T
    np.testing.assert_array_equal(row, np.concatenate([faces.T, faces.T, nxt]))
    np.testing.assert_array_equal(col, np.concatenate([faces.T, nxt, faces.T]))


def _broken_meshes():
    vertices, faces, _ = _geometry(1)
    flipped = faces.copy()
    flipped[5] = flipped[5, ::-1]
    yield "open", faces[1:], len(vertices)
    yield "one face flipped", flipped, len(vertices)
    yield "a face twice", np.concatenate([faces, faces[:1]]), len(vertices)
    yield "an unused vertex", faces, len(vertices) + 1
    yield "a vertex out of range", faces, len(vertices) - 1


@pytest.mark.parametrize("case", list(_broken_meshes()), ids=lambda c: c[0])
def test_face_pattern_rejects_meshes_that_are_not_closed(case):
    _, faces, num_vertices = case
    with pytest.raises(ValueError):
        face_pattern(faces, num_vertices)
