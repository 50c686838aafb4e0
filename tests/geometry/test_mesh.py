"""The icosphere hierarchy: combinatorics, nesting, orientation, file format."""

import numpy as np
import pytest

from meshcnn import icosphere
from meshcnn.geometry.mesh import FORMAT_VERSION, Mesh, level_of, main, mesh_file, num_vertices_at

LEVELS = range(0, 7)


@pytest.mark.parametrize("level", LEVELS)
def test_counts_and_euler_characteristic(level):
    m = icosphere(level)
    assert m.num_vertices == 10 * 4**level + 2 == num_vertices_at(level)
    assert m.num_faces == 20 * 4**level
    assert len(m.edges) == 30 * 4**level
    assert m.num_vertices - len(m.edges) + m.num_faces == 2
    assert level_of(m.num_vertices) == level
    assert m.vertices.dtype == np.float64 and m.faces.dtype == np.int64
    # every edge is shared by exactly two faces: a closed manifold
    half_edges = np.sort(np.concatenate([m.faces[:, [0, 1]], m.faces[:, [1, 2]], m.faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(half_edges, axis=0, return_counts=True)
    assert np.all(counts == 2)


@pytest.mark.parametrize("level", LEVELS)
def test_unit_norm_and_outward_orientation(level):
    m = icosphere(level)
    np.testing.assert_allclose(np.linalg.norm(m.vertices, axis=1), 1.0, atol=1e-15)
    a, b, c = (m.vertices[m.faces[:, k]] for k in range(3))
    normals = np.cross(b - a, c - a)
    assert np.all(np.einsum("ij,ij->i", normals, a + b + c) > 0)


@pytest.mark.parametrize("level", range(1, 7))
def test_nesting(level):
    fine, coarse = icosphere(level), icosphere(level - 1)
    assert np.array_equal(fine.vertices[: coarse.num_vertices], coarse.vertices)
    midpoints = fine.vertices[coarse.num_vertices :]
    ends = coarse.vertices[fine.parent_edges]
    expected = ends.sum(1) / np.linalg.norm(ends.sum(1), axis=1, keepdims=True)
    np.testing.assert_allclose(midpoints, expected, atol=1e-15)


def test_poles_and_coordinates():
    m = icosphere(3)
    for pole in ([0, 0, 1], [0, 0, -1]):  # poles are icosahedron vertices, on the z axis
        assert np.min(np.linalg.norm(m.vertices[:12] - pole, axis=1)) < 1e-15
    np.testing.assert_allclose(np.sin(m.lat), m.vertices[:, 2], atol=1e-14)
    np.testing.assert_allclose(np.cos(m.lat) * np.cos(m.lon), m.vertices[:, 0], atol=1e-14)
    np.testing.assert_allclose(np.cos(m.lat) * np.sin(m.lon), m.vertices[:, 1], atol=1e-14)
    assert np.all(np.abs(m.lon) <= np.pi)


@pytest.mark.parametrize("level", range(1, 6))
def test_upsample_averages_edge_ends(level):
    fine, coarse = icosphere(level), icosphere(level - 1)
    up = fine.upsample
    assert up.shape == (fine.num_vertices, coarse.num_vertices)
    u = np.random.default_rng(level).normal(size=coarse.num_vertices)
    v = up @ u
    np.testing.assert_array_equal(v[: coarse.num_vertices], u)
    np.testing.assert_allclose(v[coarse.num_vertices :], u[fine.parent_edges].mean(1), atol=1e-15)
    assert icosphere(0).upsample is None


def test_neighbors_are_one_ring():
    m = icosphere(3)
    nb = m.neighbors
    assert nb.shape == (m.num_vertices, 6)
    degree = (nb >= 0).sum(1)
    assert np.sum(degree == 5) == 12 and np.all(degree[12:] == 6)
    edge_set = {tuple(e) for e in np.sort(m.edges, axis=1)}
    for i in range(0, m.num_vertices, 37):
        for j in nb[i][nb[i] >= 0]:
            assert tuple(sorted((i, j))) in edge_set


def test_vertex_areas_sum_to_polyhedron_area():
    for level in range(0, 6):
        m = icosphere(level)
        a, b, c = (m.vertices[m.faces[:, k]] for k in range(3))
        polyhedron = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum()
        assert m.vertex_areas.sum() == pytest.approx(polyhedron, rel=1e-12)
        assert np.all(m.vertex_areas > 0)
    assert icosphere(6).vertex_areas.sum() == pytest.approx(4 * np.pi, rel=1e-3)


@pytest.mark.parametrize("bad", [-1, 10, 2.5, "3", None])
def test_bad_level(bad):
    with pytest.raises(ValueError, match="level must be an integer in 0..9"):
        icosphere(bad)


def _same(a: Mesh, b: Mesh) -> None:
    assert a.level == b.level and a.mean_edge_length == b.mean_edge_length
    for name in ("vertices", "faces", "parent_edges", "vertex_areas"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("laplacian", "grad_ew", "grad_ns"):
        assert (getattr(a, name) != getattr(b, name)).nnz == 0


def test_cli_writes_loadable_files(tmp_path):
    main(["--levels", "0-2", "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"icosphere_{l}.npz" for l in range(3)]
    for level in range(3):
        _same(Mesh.load(mesh_file(tmp_path, level)), Mesh.build(level))
        with np.load(mesh_file(tmp_path, level), allow_pickle=False) as f:
            assert int(f["format_version"]) == FORMAT_VERSION


def _corrupt_truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_checksum(path):
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    arrays["vertices"] = arrays["vertices"] * (1 + 1e-12)
    np.savez(path, **arrays)


def _corrupt_version(path):
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    arrays["format_version"] = np.array(FORMAT_VERSION + 1)
    np.savez(path, **arrays)


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_checksum, _corrupt_version, lambda p: p.unlink()])
def test_bad_mesh_file_is_recomputed_with_warning(tmp_path, corrupt):
    main(["--levels", "2", "--out", str(tmp_path)])
    path = mesh_file(tmp_path, 2)
    corrupt(path)
    with pytest.warns(UserWarning, match="level 2 not usable"):
        m = icosphere(2, mesh_dir=tmp_path)
    _same(m, Mesh.build(2))
    _same(Mesh.load(path), m)  # rewritten, now valid


def test_mesh_dir_from_environment(tmp_path, monkeypatch):
    main(["--levels", "1", "--out", str(tmp_path)])
    monkeypatch.setenv("MESHCNN_MESH_DIR", str(tmp_path))
    _same(icosphere(1), Mesh.build(1))


def test_load_rejects_pickles(tmp_path):
    path = tmp_path / "icosphere_1.npz"
    np.savez(path, vertices=np.array([object()], dtype=object))
    with pytest.raises(ValueError):
        Mesh.load(path)


def test_geometry_layer_does_not_import_torch():
    """The geometry layer (and its command-line tool) is numpy/scipy/libigl only: importing it,
    and building a mesh, leaves torch unloaded."""
    import subprocess
    import sys

    code = "import sys, meshcnn.geometry as g; g.icosphere(2).grad_tangent; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
