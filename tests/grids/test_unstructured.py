"""Tests of meshcnn.grids.unstructured: ICON/MPAS grid files written by the project's writers, read back."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from meshcnn.geometry import Mesh, icosphere, latlon_to_xyz
from meshcnn.geometry.coords import num_vertices_at
from meshcnn.grids import Grid
from meshcnn.grids.icosphere import mesh_cell_areas
from meshcnn.grids.unstructured import (
    ICON_SPHERE_RADIUS,
    GridFileError,
    UnstructuredGrid,
    write_icon_grid,
    write_mpas_grid,
)

netCDF4 = pytest.importorskip("netCDF4")
xr = pytest.importorskip("xarray")


def circumcentres(level):
    mesh = icosphere(level)
    a, b, c = (mesh.vertices[mesh.faces[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def face_set(faces):
    """Faces as a set of vertex triples, independent of orientation and order."""
    return {tuple(sorted(f)) for f in np.asarray(faces).tolist()}


def read_raw(path, name):
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        return np.asarray(ds[name][:])


def rewrite(path, out, **changes):
    """Copy the netCDF file ``path`` to ``out`` with variables replaced (``name=(dims, values)``) or
    dropped (``name=None``)."""
    with xr.open_dataset(path, mask_and_scale=False) as ds:
        ds = ds.load()
    for name, value in changes.items():
        if value is None:
            ds = ds.drop_vars(name)
        else:
            ds[name] = value
    ds.to_netcdf(out, encoding={v: {"_FillValue": None} for v in ds.variables})
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grids")
    return {"icon": write_icon_grid(folder / "icon_r2.nc", 2), "mpas": write_mpas_grid(folder / "mpas_l2.nc", 2)}


# ---------------------------------------------------------------------------------------------- ICON
@pytest.mark.parametrize("level", [1, 3])
def test_icon_round_trip(tmp_path, level):
    path = write_icon_grid(tmp_path / "icon.nc", level)
    grid = UnstructuredGrid.from_file(path)
    ncells = 20 * 4**level
    assert grid.convention == "icon" and grid.name == "icon"
    assert isinstance(grid, Grid)
    assert grid.shape == (ncells,) and grid.mesh.num_vertices == ncells and grid.mesh.level is None
    np.testing.assert_allclose(grid.points(), circumcentres(level), atol=1e-12, rtol=0)
    np.testing.assert_allclose(latlon_to_xyz(np.deg2rad(grid.lat), np.deg2rad(grid.lon)), grid.points(), atol=1e-12)
    assert np.all(np.abs(grid.lon) <= 180) and np.all(np.abs(grid.lat) <= 90)
    # a closed triangulation of the centres: Euler characteristic 2
    mesh = grid.mesh
    assert mesh.num_vertices - len(mesh.edges) + mesh.num_faces == 2
    # each Delaunay edge joins two cells that share an ICON vertex (checked here from the raw file)
    voc = read_raw(path, "vertex_of_cell") - 1
    i, j = mesh.edges.T
    shared = (voc[:, i][:, None, :] == voc[:, j][None, :, :]).any(axis=(0, 1))
    assert shared.all()
    assert grid.unmatched_edges.shape == (0, 2)


def test_icon_areas(files):
    grid = UnstructuredGrid.from_file(files["icon"])
    area = read_raw(files["icon"], "cell_area")
    np.testing.assert_allclose(area.sum(), 4 * np.pi * ICON_SPHERE_RADIUS**2, rtol=1e-12)
    np.testing.assert_allclose(grid.cell_areas(), area / ICON_SPHERE_RADIUS**2, rtol=1e-12)
    np.testing.assert_allclose(grid.cell_weights, area / area.sum(), rtol=1e-12)
    mesh_areas = UnstructuredGrid.from_file(files["icon"], areas="mesh").cell_areas()
    np.testing.assert_allclose(mesh_areas, mesh_cell_areas(grid.mesh), rtol=1e-12)
    assert not np.allclose(mesh_areas, grid.cell_areas(), rtol=1e-6)  # two different choices
    # without cell_area in the file: the mesh's areas
    stripped = rewrite(files["icon"], files["icon"].parent / "no_area.nc", cell_area=None)
    np.testing.assert_allclose(UnstructuredGrid.from_file(stripped).cell_areas(), mesh_areas, rtol=1e-12)


@pytest.mark.parametrize("fill", [-1, 0])
def test_icon_file_quirks(tmp_path, fill):
    level = 2
    path = write_icon_grid(tmp_path / "icon.nc", level, fill_value=fill)
    nvertex = num_vertices_at(level)
    with netCDF4.Dataset(path, "r+") as ds:  # the file opens in append mode
        assert ds.dimensions["cell"].size == 20 * 4**level and ds.dimensions["vertex"].size == nvertex
        assert ds.dimensions["nv"].size == 3 and ds.dimensions["ne"].size == 6
        assert ds["vertex_of_cell"].dimensions == ("nv", "cell")
        assert ds["clon"].units == "radian"
    voc = read_raw(path, "vertex_of_cell")
    assert voc.min() == 1 and voc.max() == nvertex  # 1-based
    np.testing.assert_array_equal(voc, icosphere(level).faces.T + 1)
    cov = read_raw(path, "cells_of_vertex")
    assert cov.shape == (6, nvertex)
    pentagons = np.flatnonzero((cov == fill).any(axis=0))
    np.testing.assert_array_equal(pentagons, np.arange(12))  # the icosahedron's vertices come first
    assert np.all(cov[5, :12] == fill) and np.all(cov[:5] >= 1) and np.all(cov[5, 12:] >= 1)
    # cells_of_vertex lists, counter-clockwise, the cells whose vertex_of_cell holds the vertex
    for v in (0, 40, nvertex - 1):
        cells = cov[:, v][cov[:, v] != fill] - 1
        assert set(cells) == set(np.flatnonzero((voc - 1 == v).any(axis=0)))
        centres = circumcentres(level)[cells]
        normal = icosphere(level).vertices[v]
        turns = np.einsum("ij,j->i", np.cross(centres, np.roll(centres, -1, axis=0)), normal)
        assert np.all(turns > 0)
    grid = UnstructuredGrid.from_file(path)
    assert grid.shape == (20 * 4**level,)


def test_icon_transposed_connectivity(files, tmp_path):
    voc = read_raw(files["icon"], "vertex_of_cell")
    out = rewrite(files["icon"], tmp_path / "t.nc", vertex_of_cell=(("cell", "nv"), voc.T))
    grid = UnstructuredGrid.from_file(out)
    np.testing.assert_array_equal(grid.points(), UnstructuredGrid.from_file(files["icon"]).points())


def test_icon_unmatched_edges_warned(files, tmp_path):
    voc = read_raw(files["icon"], "vertex_of_cell").copy()
    voc[:, [0, 200]] = voc[:, [200, 0]]  # two far-apart cells swap their ICON vertices
    out = rewrite(files["icon"], tmp_path / "swapped.nc", vertex_of_cell=(("nv", "cell"), voc), cells_of_vertex=None)
    with pytest.warns(UserWarning, match="share no ICON vertex") as record:
        grid = UnstructuredGrid.from_file(out)
    assert str(out) in str(record[0].message)
    bad = grid.unmatched_edges
    assert len(bad) > 0 and np.all(np.isin(bad, [0, 200]).any(axis=1))
    for i, j in bad:
        assert not set(voc[:, i]) & set(voc[:, j])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        UnstructuredGrid.from_file(files["icon"])  # the consistent file gives no warning


# ---------------------------------------------------------------------------------------------- MPAS
@pytest.mark.parametrize("level", [0, 2])
def test_mpas_round_trip(tmp_path, level):
    path = write_mpas_grid(tmp_path / "x1.grid.nc", level)
    grid = UnstructuredGrid.from_file(path)
    ico = icosphere(level)
    assert grid.convention == "mpas" and grid.name == "x1" and isinstance(grid, Grid)
    assert grid.shape == (ico.num_vertices,)
    np.testing.assert_allclose(grid.points(), ico.vertices, atol=1e-12, rtol=0)
    assert face_set(grid.mesh.faces) == face_set(ico.faces)
    # faces outward counter-clockwise
    v = grid.mesh.vertices[grid.mesh.faces]
    assert np.all(np.einsum("ij,ij->i", np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), v.sum(1)) > 0)
    np.testing.assert_allclose(grid.lon, np.rad2deg(ico.lon), atol=1e-10)  # (-180, 180], not MPAS's [0, 360)
    np.testing.assert_allclose(grid.lat, np.rad2deg(ico.lat), atol=1e-10)


def test_mpas_file_quirks(files):
    path = files["mpas"]
    ico = icosphere(2)
    with netCDF4.Dataset(path, "r+") as ds:  # the file opens in append mode
        assert ds.on_a_sphere == "YES" and ds.sphere_radius == 1.0
        assert ds["cellsOnVertex"].dimensions == ("nVertices", "vertexDegree")
        assert ds.dimensions["vertexDegree"].size == 3 and ds.dimensions["maxEdges"].size == 6
    lon = read_raw(path, "lonCell")
    assert lon.min() >= 0 and lon.max() < 2 * np.pi and lon.max() > np.pi  # MPAS's [0, 2 pi)
    cov = read_raw(path, "cellsOnVertex")
    np.testing.assert_array_equal(cov, ico.faces + 1)  # 1-based
    n_edges = read_raw(path, "nEdgesOnCell")
    np.testing.assert_array_equal(np.flatnonzero(n_edges == 5), np.arange(12))
    assert np.all(n_edges[12:] == 6)
    von = read_raw(path, "verticesOnCell")
    coc = read_raw(path, "cellsOnCell")
    assert np.all(von[:12, 5] == 0) and np.all(coc[:12, 5] == 0) and np.all(von[12:] > 0)  # 0 = none
    edges = {tuple(sorted(e)) for e in ico.edges.tolist()}
    for c in range(ico.num_vertices):
        assert all(tuple(sorted((c, d - 1))) in edges for d in coc[c, : n_edges[c]])
        assert np.all(np.isin(c + 1, cov[von[c, : n_edges[c]] - 1]))
    area = read_raw(path, "areaCell")
    np.testing.assert_allclose(area.sum(), 4 * np.pi, rtol=1e-12)  # Voronoi cells tile the sphere
    grid = UnstructuredGrid.from_file(path)
    np.testing.assert_allclose(grid.cell_areas(), area, rtol=1e-12)
    # Voronoi areas are close to (but not) the mesh's lumped areas
    np.testing.assert_allclose(grid.cell_areas(), mesh_cell_areas(grid.mesh), rtol=0.05)


def test_mpas_sphere_radius(tmp_path):
    path = write_mpas_grid(tmp_path / "earth.nc", 1, sphere_radius=6371229.0)
    np.testing.assert_allclose(read_raw(path, "areaCell").sum(), 4 * np.pi * 6371229.0**2, rtol=1e-12)
    np.testing.assert_allclose(UnstructuredGrid.from_file(path).cell_areas().sum(), 4 * np.pi, rtol=1e-12)


# ---------------------------------------------------------------------------------------------- hierarchy
@pytest.mark.parametrize("kind, coarse", [("icon", [2, 1]), ("mpas", [1, 0])])
def test_hierarchy(files, kind, coarse):
    grid = UnstructuredGrid.from_file(files[kind])
    h = grid.hierarchy(3)
    assert len(h) == 3 and h[0] is grid.mesh
    assert [m.level for m in h.meshes[1:]] == coarse
    assert all(m.num_vertices < grid.shape[0] for m in h.meshes[1:])
    assert num_vertices_at(coarse[0] + 1) >= grid.shape[0]  # the finest icosphere below the native mesh
    for r, p in zip(h.restrictions, h.prolongations):
        np.testing.assert_allclose(np.asarray(r.sum(axis=1)).ravel(), 1.0)
        np.testing.assert_allclose(np.asarray(p.sum(axis=1)).ravel(), 1.0)
    assert grid.hierarchy(3) is h
    assert len(grid.hierarchy(1)) == 1
    with pytest.raises(ValueError, match="at most"):
        grid.hierarchy(coarse[0] + 3)
    with pytest.raises(ValueError, match="levels"):
        grid.hierarchy(0)


# ---------------------------------------------------------------------------------------------- bad files
def check_error(path, *words):
    with pytest.raises(GridFileError) as info:
        UnstructuredGrid.from_file(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


def test_neither_convention(tmp_path):
    path = tmp_path / "other.nc"
    xr.Dataset({"lat": ("x", np.zeros(3)), "clon": ("cell", np.zeros(3))}).to_netcdf(path)
    check_error(path, "neither", "'clat'", "'vertex_of_cell'", "'latCell'", "'lonCell'", "'cellsOnVertex'")
    assert issubclass(GridFileError, ValueError)


def test_not_netcdf_and_missing(tmp_path):
    path = tmp_path / "text.nc"
    path.write_text("not a netCDF file\n")
    check_error(path, "netCDF")
    with pytest.raises(FileNotFoundError):
        UnstructuredGrid.from_file(tmp_path / "absent.nc")
    with pytest.raises(GridFileError, match="folder"):
        UnstructuredGrid.from_file(tmp_path)


def test_both_conventions(files, tmp_path):
    with xr.open_dataset(files["mpas"], mask_and_scale=False) as mpas:
        mpas = mpas.load()
    with xr.open_dataset(files["icon"], mask_and_scale=False) as icon:
        both = icon.load().merge(mpas)
    path = tmp_path / "both.nc"
    both.to_netcdf(path)
    check_error(path, "convention=")
    assert UnstructuredGrid.from_file(path, convention="mpas").shape == (162,)
    assert UnstructuredGrid.from_file(path, convention="icon").shape == (320,)
    with pytest.raises(GridFileError, match="lacks 'latCell'"):
        UnstructuredGrid.from_file(files["icon"], convention="mpas")


@pytest.mark.parametrize("kind, name", [("icon", "clat"), ("icon", "clon"), ("mpas", "latCell"), ("mpas", "lonCell")])
def test_degrees_refused(files, tmp_path, kind, name):
    values = read_raw(files[kind], name)
    out = rewrite(
        files[kind], tmp_path / "deg.nc", **{name: (xr.open_dataset(files[kind])[name].dims, np.rad2deg(values))}
    )
    check_error(out, repr(name), "radians")


def test_degree_units_refused(files, tmp_path):
    out = tmp_path / "units.nc"
    rewrite(files["icon"], out)
    with netCDF4.Dataset(out, "r+") as ds:
        ds["clat"].units = "degrees_north"
    check_error(out, "'clat'", "units")


@pytest.mark.parametrize(
    "kind, name, index",
    [
        ("icon", "vertex_of_cell", (1, 7)),
        ("icon", "cells_of_vertex", (2, 30)),
        ("mpas", "cellsOnVertex", (7, 1)),
    ],
)
def test_index_out_of_range(files, tmp_path, kind, name, index):
    out = tmp_path / "range.nc"
    rewrite(files[kind], out)
    with netCDF4.Dataset(out, "r+") as ds:
        count = ds.dimensions["vertex" if name == "vertex_of_cell" else ("cell" if kind == "icon" else "nCells")].size
        values = ds[name][:]
        values[index] = count + 1
        ds[name][:] = values
    check_error(out, repr(name), "out of the 1-based range", f"1..{count}")


def test_negative_index(files, tmp_path):
    out = tmp_path / "negative.nc"
    rewrite(files["icon"], out)
    with netCDF4.Dataset(out, "r+") as ds:
        ds["vertex_of_cell"][0, 3] = 0  # 0 is no fill value in vertex_of_cell
    check_error(out, "'vertex_of_cell'", "out of the 1-based range")


@pytest.mark.parametrize(
    "kind, name, dims, shape",
    [
        ("icon", "vertex_of_cell", ("four", "cell"), (4, 320)),
        ("icon", "vertex_of_cell", ("n",), (320,)),
        ("mpas", "cellsOnVertex", ("nVertices", "four"), (320, 4)),
        ("mpas", "cellsOnVertex", ("vertexDegree", "nVertices"), (3, 320)),
        ("icon", "clat", ("cell", "two"), (320, 2)),
        ("mpas", "latCell", ("other",), (100,)),
    ],
)
def test_wrong_shape(files, tmp_path, kind, name, dims, shape):
    out = rewrite(files[kind], tmp_path / "shape.nc", **{name: (dims, np.ones(shape, dtype=np.int32))})
    check_error(out, repr(name))


def test_mpas_regional_refused(files, tmp_path):
    cov = read_raw(files["mpas"], "cellsOnVertex").copy()
    cov[:5, 2] = 0  # a missing neighbour: an open (regional) mesh
    out = rewrite(files["mpas"], tmp_path / "regional.nc", cellsOnVertex=(("nVertices", "vertexDegree"), cov))
    check_error(out, "'cellsOnVertex'", "regional", "5 of 320", "global")


def test_mpas_not_closed(files, tmp_path):
    cov = read_raw(files["mpas"], "cellsOnVertex").copy()
    cov[1] = cov[0]  # a triangle twice, one missing: not a closed manifold triangulation
    out = rewrite(files["mpas"], tmp_path / "open.nc", cellsOnVertex=(("nVertices", "vertexDegree"), cov))
    check_error(out, "'cellsOnVertex' give no valid spherical mesh")


def test_icon_inconsistent_cells_of_vertex(files, tmp_path):
    cov = read_raw(files["icon"], "cells_of_vertex").copy()
    cov[0, 40], cov[0, 41] = cov[0, 41], cov[0, 40]
    out = rewrite(files["icon"], tmp_path / "cov.nc", cells_of_vertex=(("ne", "vertex"), cov))
    check_error(out, "'cells_of_vertex'", "'vertex_of_cell'", "disagree")


def test_icon_duplicate_centres(files, tmp_path):
    clat, clon = read_raw(files["icon"], "clat").copy(), read_raw(files["icon"], "clon").copy()
    clat[5], clon[5] = clat[6], clon[6]
    out = rewrite(files["icon"], tmp_path / "dup.nc", clat=("cell", clat), clon=("cell", clon))
    check_error(out, "'clon'/'clat' give no valid spherical mesh")


def test_bad_areas(files, tmp_path):
    area = read_raw(files["mpas"], "areaCell").copy()
    area[3] = -1.0
    out = rewrite(files["mpas"], tmp_path / "area.nc", areaCell=("nCells", area))
    check_error(out, "'areaCell'", "positive")
    assert UnstructuredGrid.from_file(out, areas="mesh").shape == (162,)  # the file's areas unused


def test_nan_coordinates(files, tmp_path):
    lat = read_raw(files["mpas"], "latCell").copy()
    lat[0] = np.nan
    out = rewrite(files["mpas"], tmp_path / "nan.nc", latCell=("nCells", lat))
    check_error(out, "'latCell'", "NaN")


def test_writer_arguments(tmp_path):
    with pytest.raises(ValueError, match="level"):
        write_icon_grid(tmp_path / "a.nc", -1)
    with pytest.raises(ValueError, match="fill_value"):
        write_icon_grid(tmp_path / "a.nc", 1, fill_value=5)
    with pytest.raises(ValueError, match="sphere_radius"):
        write_mpas_grid(tmp_path / "a.nc", 1, sphere_radius=0.0)
    assert not list(tmp_path.iterdir())  # nothing written, no temporary left


def test_constructor_checks():
    mesh = Mesh.from_points(icosphere(1).vertices, name="pts")
    grid = UnstructuredGrid(mesh)
    assert grid.name == "pts" and grid.convention is None
    np.testing.assert_allclose(grid.cell_areas(), mesh_cell_areas(mesh))
    with pytest.raises(ValueError, match="shape"):
        UnstructuredGrid(mesh, cell_areas=np.ones(3))
    with pytest.raises(TypeError):
        UnstructuredGrid(icosphere(1).vertices)
    with pytest.raises(ValueError, match="areas"):
        UnstructuredGrid.from_file("x.nc", areas="exact")
