"""Meshes of any point set (Mesh.from_points, Mesh.from_faces): Delaunay, operators, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp

from meshcnn.geometry import Mesh, icosphere, latlon_to_xyz
from meshcnn.geometry import operators as ops


def random_points(n, seed=0):
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def test_from_points_of_icosphere_vertices_equals_the_icosphere():
    """Same points, same operators: the hull of the icosphere's vertices is the icosphere."""
    ico = icosphere(3)
    mesh = Mesh.from_points(ico.vertices, name="ico3")
    assert mesh.level is None and not mesh.is_icosphere and mesh.name == "ico3"
    assert sorted(map(tuple, np.sort(mesh.faces, axis=1))) == sorted(map(tuple, np.sort(ico.faces, axis=1)))
    np.testing.assert_allclose(mesh.vertex_areas, ico.vertex_areas, rtol=1e-12)
    for name in ("laplacian", "grad_ew", "grad_ns"):
        assert abs(getattr(mesh, name) - getattr(ico, name)).max() < 1e-12
    assert mesh.fingerprint != ico.fingerprint  # same points, faces in another order


def test_faces_are_outward_and_delaunay():
    points = random_points(500)
    mesh = Mesh.from_points(points)
    p = mesh.vertices[mesh.faces]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    assert np.all(np.einsum("ij,ij->i", normal, p.sum(1)) > 0)
    assert len(mesh.faces) == 2 * len(points) - 4  # Euler: closed genus-0 triangulation
    # empty circumcircles: every point on the inner side of every face's plane
    unit = normal / np.linalg.norm(normal, axis=1, keepdims=True)
    offset = np.einsum("ij,ij->i", unit, p[:, 0])
    assert (points @ unit.T - offset).max() < 1e-12


def test_lat_lon_in_degrees():
    lat = np.array([90.0, -90.0, 0.0, 0.0, 0.0, 0.0, 45.0])
    lon = np.array([0.0, 0.0, 0.0, 90.0, 180.0, 270.0, 45.0])
    mesh = Mesh.from_points(lat=lat, lon=lon)
    np.testing.assert_allclose(mesh.vertices, latlon_to_xyz(np.deg2rad(lat), np.deg2rad(lon)), atol=1e-15)
    np.testing.assert_allclose(np.rad2deg(mesh.lat), lat, atol=1e-12)


def test_operators_match_the_general_libigl_path():
    mesh = Mesh.from_points(random_points(300, seed=1))
    np.testing.assert_allclose(mesh.vertex_areas, ops.vertex_areas(mesh.vertices, mesh.faces), rtol=1e-12)
    ref = sp.csr_matrix(ops.cotangent_laplacian(mesh.vertices, mesh.faces))
    assert abs(mesh.laplacian - ref).max() < 1e-12 * abs(ref).max()
    ew, ns = ops.directional_derivatives(mesh.vertices, mesh.faces, scale=mesh.mean_edge_length)
    assert abs(mesh.grad_ew - ew).max() < 1e-12 and abs(mesh.grad_ns - ns).max() < 1e-12


def test_neighbors_table_is_as_wide_as_the_largest_degree():
    mesh = Mesh.from_points(random_points(2000))
    degree = np.bincount(mesh.edges.reshape(-1), minlength=mesh.num_vertices)
    assert mesh.neighbors.shape == (mesh.num_vertices, degree.max())
    np.testing.assert_array_equal((mesh.neighbors >= 0).sum(1), degree)


def test_laplacian_eigenvalue_of_a_degree_one_harmonic_converges():
    """The Rayleigh quotient z^T L z / z^T M z -> -2 (l = 1) as random points get denser.

    Pointwise, M^{-1} L z does not converge on irregular meshes (a known property of the
    lumped cotangent Laplacian); the weak form, which is what the eigenvalue measures, does.
    """
    errors = []
    for n in (500, 2000, 8000):
        mesh = Mesh.from_points(random_points(n, seed=n))
        z = mesh.vertices[:, 2]
        quotient = (z @ (mesh.laplacian @ z)) / (z @ (mesh.vertex_areas * z))
        errors.append(abs(quotient + 2) / 2)
    assert errors[0] > errors[1] > errors[2] and errors[2] < 2e-3, errors


def test_save_and_load_keep_the_name_and_no_level(tmp_path):
    mesh = Mesh.from_points(random_points(100), name="stations")
    mesh.save(tmp_path / "m.npz")
    back = Mesh.load(tmp_path / "m.npz")
    assert back.name == "stations" and back.level is None and back.parent_edges is None
    assert back.fingerprint == mesh.fingerprint and back.upsample is None
    assert abs(back.laplacian - mesh.laplacian).max() == 0


@pytest.mark.parametrize(
    "points, message",
    [
        (random_points(3), "at least 4 points"),
        (np.vstack([random_points(50), random_points(50)[7:8]]), "duplicate or coincident points"),
        (random_points(50) * 1.001, "unit sphere"),
        (
            np.vstack(
                [
                    random_points(50)[:, :2],
                ]
            ),
            "(N, 3)",
        ),
        (np.where(np.arange(150)[:, None] == 3, np.nan, random_points(150)), "finite"),
    ],
)
def test_bad_points_are_refused(points, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Mesh.from_points(points)


def test_a_regional_grid_is_refused():
    p = random_points(400)
    with pytest.raises(ValueError, match="one hemisphere"):
        Mesh.from_points(p[p[:, 2] > 0.05])  # the northern cap
    with pytest.raises(ValueError, match="one hemisphere"):
        Mesh.from_points(p[p[:, 0] > 0.01])  # a hemisphere about another axis
    rim = latlon_to_xyz(np.zeros(8), np.linspace(0, 2 * np.pi, 8, endpoint=False))
    with pytest.raises(ValueError, match="one hemisphere"):
        Mesh.from_points(np.vstack([p[p[:, 2] > 0.05], rim]))  # a closed hemisphere, its rim included


def test_points_and_lat_lon_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        Mesh.from_points(random_points(10), lat=[0.0], lon=[0.0])
    with pytest.raises(ValueError, match=r"\[-90, 90\]"):
        Mesh.from_points(lat=[0.0, 100.0, 0, 0], lon=[0.0, 1.0, 2, 3])


def test_from_faces_reorients_and_checks_closure():
    ico = icosphere(2)
    flipped = ico.faces.copy()
    flipped[::3] = flipped[::3, ::-1]
    mesh = Mesh.from_faces(ico.vertices, flipped, name="file")
    np.testing.assert_array_equal(mesh.faces, ico.faces)
    assert abs(mesh.laplacian - ico.laplacian).max() < 1e-14
    with pytest.raises(ValueError, match="closed"):
        Mesh.from_faces(ico.vertices, ico.faces[1:])  # a hole
    with pytest.raises(ValueError, match="degenerate"):
        Mesh.from_faces(ico.vertices, np.vstack([ico.faces, [[0, 0, 1]]]))
    with pytest.raises(ValueError, match="indices"):
        Mesh.from_faces(ico.vertices, ico.faces + 1)


# ---------------------------------------------------------------------------- reorder="rcm"
def _bandwidth(m):
    c = m.tocoo()
    return int(np.abs(c.row - c.col).max())


def _permutation(order):
    n = len(order)
    return sp.csr_matrix((np.ones(n), (np.arange(n), order)), shape=(n, n))


def test_rcm_reorder_permutes_the_mesh_of_the_points_in_their_order():
    """The reordered mesh is the unreordered one with its vertices renumbered, P A P^T, exactly."""
    points = random_points(1500, seed=3)
    plain, mesh = Mesh.from_points(points), Mesh.from_points(points, reorder="rcm")
    order = mesh.point_order
    assert plain.point_order is None
    assert sorted(order) == list(range(len(points)))
    np.testing.assert_array_equal(mesh.vertices, plain.vertices[order])
    p = _permutation(order)
    for name in ("laplacian", "grad_ew", "grad_ns"):
        assert abs(getattr(mesh, name) - p @ getattr(plain, name) @ p.T).max() == 0, name
    for a, b in zip(mesh.grad_tangent, plain.grad_tangent):
        assert abs(a - p @ b @ p.T).max() < 1e-15
    np.testing.assert_array_equal(mesh.vertex_areas, plain.vertex_areas[order])
    assert sorted(map(tuple, np.sort(order[mesh.faces], axis=1))) == sorted(map(tuple, np.sort(plain.faces, axis=1)))
    # the point of it: a small bandwidth (neighbours close in memory)
    assert _bandwidth(mesh.laplacian) < _bandwidth(plain.laplacian) / 5
    assert mesh.fingerprint != plain.fingerprint


def test_points_to_vertices_and_back():
    import torch

    points = random_points(300, seed=4)
    mesh = Mesh.from_points(points, reorder="rcm")
    lat = np.arcsin(points[:, 2])  # a field known on the points, in their order
    np.testing.assert_allclose(mesh.points_to_vertices(lat), mesh.lat, atol=1e-12)
    x = torch.randn(2, 3, 300, dtype=torch.float64)
    y = mesh.points_to_vertices(x)
    assert torch.equal(y, x[..., torch.as_tensor(mesh.point_order)])
    assert torch.equal(mesh.vertices_to_points(y), x)
    plain = Mesh.from_points(points)
    assert plain.points_to_vertices(x) is x and plain.vertices_to_points(x) is x
    with pytest.raises(ValueError, match=r"\(\.\.\., 300\)"):
        mesh.points_to_vertices(x[..., :10])


def test_rcm_reorder_of_from_faces_and_polar_symmetry():
    ico = icosphere(2)
    shuffle = np.random.default_rng(0).permutation(ico.num_vertices)
    rank = np.argsort(shuffle)
    mesh = Mesh.from_faces(ico.vertices[shuffle], rank[ico.faces], reorder="rcm")
    np.testing.assert_allclose(mesh.vertices, ico.vertices[shuffle][mesh.point_order], atol=1e-15)
    assert _bandwidth(mesh.laplacian) < _bandwidth(Mesh.from_faces(ico.vertices[shuffle], rank[ico.faces]).laplacian)
    # a polar symmetry is found again among the renumbered vertices
    lon = np.repeat(np.arange(0, 360, 30.0), 5)
    lat = np.tile([-60.0, -20.0, 0.0, 30.0, 70.0], 12)
    sym = Mesh.from_points(lat=lat, lon=lon, polar_symmetry=4, reorder="rcm")
    ref = Mesh.from_points(lat=lat, lon=lon, polar_symmetry=4)
    p = _permutation(sym.point_order)
    assert abs(sym.laplacian - p @ ref.laplacian @ p.T).max() < 1e-12


def test_reorder_is_checked_and_saved(tmp_path):
    with pytest.raises(ValueError, match="reorder must be one of"):
        Mesh.from_points(random_points(50), reorder="hilbert")
    mesh = Mesh.from_points(random_points(200), reorder="rcm", name="stations")
    mesh.save(tmp_path / "m.npz")
    back = Mesh.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.point_order, mesh.point_order)
    assert back.fingerprint == mesh.fingerprint
    Mesh.from_points(random_points(200)).save(tmp_path / "plain.npz")
    assert Mesh.load(tmp_path / "plain.npz").point_order is None
