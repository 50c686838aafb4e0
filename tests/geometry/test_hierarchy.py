"""MeshHierarchy: restriction and prolongation between any two meshes; the icosphere instance."""

import numpy as np
import pytest

from meshcnn.geometry import Mesh, MeshHierarchy, icosphere
from meshcnn.geometry.hierarchy import area_weighted_restriction


def random_points(n, seed=0):
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def mixed():
    """Random points over two icosphere levels: a hierarchy with no nesting at all."""
    return MeshHierarchy([Mesh.from_points(random_points(3000)), icosphere(3), icosphere(2)])


def test_operators_have_the_right_shapes_and_keep_constants(mixed):
    assert len(mixed) == 3 and not mixed.nested
    for i, (r, p) in enumerate(zip(mixed.restrictions, mixed.prolongations)):
        assert r.shape == (mixed[i + 1].num_vertices, mixed[i].num_vertices)
        assert p.shape == (mixed[i].num_vertices, mixed[i + 1].num_vertices)
        np.testing.assert_allclose(r @ np.ones(r.shape[1]), 1.0, rtol=1e-13)
        np.testing.assert_allclose(p @ np.ones(p.shape[1]), 1.0, rtol=1e-13)
        assert r.data.min() >= 0 and p.data.min() >= 0


def test_linear_fields_move_between_levels_to_interpolation_accuracy(mixed):
    for i in range(2):
        fine, coarse = mixed[i], mixed[i + 1]
        for axis in range(3):
            # prolongation reproduces a linear field to O(h^2) (the flat triangles' sag)
            err_p = np.abs(mixed.prolongations[i] @ coarse.vertices[:, axis] - fine.vertices[:, axis]).max()
            assert err_p < 0.5 * coarse.mean_edge_length**2
            err_r = np.abs(mixed.restrictions[i] @ fine.vertices[:, axis] - coarse.vertices[:, axis]).max()
            assert err_r < 0.5 * coarse.mean_edge_length  # a weighted mean over the coarse hat: O(h)


def test_restriction_is_the_area_adjoint_of_prolongation(mixed):
    """<R u, v>_coarse-weights == <u, P v>_fine-areas up to the row normalisation."""
    fine, r, p = mixed[0], mixed.restrictions[0], mixed.prolongations[0]
    total = p.T @ fine.vertex_areas
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=fine.num_vertices), rng.normal(size=mixed[1].num_vertices)
    assert np.dot(total * (r @ u), v) == pytest.approx(np.dot(fine.vertex_areas * u, p @ v), rel=1e-12)


def test_icosphere_instance_is_exactly_nested():
    h = MeshHierarchy.icosphere(4, 1)
    assert h.nested and h.is_icosphere and [m.level for m in h] == [4, 3, 2, 1]
    for i in range(3):
        assert (h.prolongations[i] != h[i].upsample).nnz == 0
        np.testing.assert_array_equal(h[i].vertices[: h[i + 1].num_vertices], h[i + 1].vertices)
    assert MeshHierarchy.icosphere(4, 1) is h  # cached
    sub = h[1:]
    assert isinstance(sub, MeshHierarchy) and sub[0] is h[1] and sub.restrictions[0] is h.restrictions[1]
    assert sub.fingerprint != h.fingerprint


def test_a_coarse_vertex_outside_every_fine_hat_gets_an_interpolated_value():
    """A coarse mesh finer than the 'fine' one in places: no row of R is empty."""
    fine, coarse = icosphere(1), Mesh.from_points(random_points(40, seed=3))
    r = area_weighted_restriction(fine, coarse)
    np.testing.assert_allclose(r @ np.ones(fine.num_vertices), 1.0)


def test_bad_hierarchies_are_refused():
    with pytest.raises(ValueError, match="fine to coarse"):
        MeshHierarchy([icosphere(2), icosphere(3)])
    with pytest.raises(ValueError, match="nested"):
        MeshHierarchy([Mesh.from_points(random_points(500)), icosphere(2)], nested=True)
    with pytest.raises(ValueError, match="shape"):
        MeshHierarchy([icosphere(3), icosphere(2)], restrictions=[icosphere(3).laplacian])
    with pytest.raises(ValueError, match="non-empty"):
        MeshHierarchy([])
