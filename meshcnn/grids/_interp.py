r"""The interpolating regridders (``bilinear`` and ``nearest``), in the grid's canonical order.

Each function returns a sparse matrix whose lat-lon side is in the canonical order of
:class:`~meshcnn.grids.LatLonGrid` (:mod:`meshcnn.grids.regrid` maps it to file order).

``bilinear``, lat-lon -> mesh: bilinear in (latitude, longitude), periodic in longitude.
A vertex poleward of the outermost latitude row is interpolated linearly in latitude
between that row (at the vertex's longitude) and the pole value, taken as the
(cell-width weighted) mean of the outermost row; a row exactly at a pole counts as its
mean. mesh -> lat-lon: barycentric interpolation in the mesh triangle containing the
point (:func:`meshcnn.geometry.barycentric_interpolation`).

``nearest``: the value of the nearest sample by great-circle distance.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from ..geometry.locate import barycentric_interpolation, nearest_vertex
from ..geometry.mesh import Mesh
from .latlon import LatLonGrid

__all__ = ["bilinear_to_mesh", "barycentric_to_grid", "nearest_to_mesh", "nearest_to_grid"]

Entries = tuple[np.ndarray, np.ndarray, np.ndarray]  # (output index k, canonical column, weight)


def _row_interp(grid: LatLonGrid, row: int | np.ndarray, lon: np.ndarray, factor: np.ndarray) -> Entries:
    """Entries of the periodic linear interpolation along ``row`` at ``lon`` (degrees in ``[0, 360)``),
    times ``factor``; ``k`` indexes ``lon``. A row at a pole is replaced by its mean."""
    k = np.arange(len(lon))
    row = np.broadcast_to(np.asarray(row), k.shape)
    lons = grid.canonical_lon
    n = len(lons)
    j = np.searchsorted(lons, lon, side="right") - 1  # -1 .. n-1
    left = np.where(j >= 0, lons[np.maximum(j, 0)], lons[-1] - 360.0)
    right = np.where(j + 1 < n, lons[np.minimum(j + 1, n - 1)], lons[0] + 360.0)
    s = (lon - left) / (right - left)
    jl, jr = j % n, (j + 1) % n
    ks = [k, k]
    cols = [row * n + jl, row * n + jr]
    vals = [factor * (1.0 - s), factor * s]
    at_pole = np.abs(grid.canonical_lat[row]) >= 90.0 - 1e-9
    if np.any(at_pole):  # rows at a pole: the row mean instead
        for arr in (vals[0], vals[1]):
            arr[at_pole] = 0.0
        mean_k, mean_cols, mean_vals = _row_mean(grid, row[at_pole], factor[at_pole])
        ks.append(k[at_pole][mean_k])
        cols.append(mean_cols)
        vals.append(mean_vals)
    return np.concatenate(ks), np.concatenate(cols), np.concatenate(vals)


def _row_mean(grid: LatLonGrid, row: np.ndarray, factor: np.ndarray) -> Entries:
    """Entries of the cell-width weighted mean of each ``row``, times ``factor``."""
    w = grid.lon_weights()
    n = len(w)
    k = np.repeat(np.arange(len(row)), n)
    cols = (np.asarray(row)[:, None] * n + np.arange(n)[None, :]).reshape(-1)
    vals = (np.asarray(factor)[:, None] * w[None, :]).reshape(-1)
    return k, cols, vals


def _matrix(rows: list[np.ndarray], cols: list[np.ndarray], vals: list[np.ndarray],
            shape: tuple[int, int]) -> sp.csr_matrix:
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    keep = vals != 0.0
    out = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=shape)
    out.sum_duplicates()
    return out


def bilinear_to_mesh(grid: LatLonGrid, mesh: Mesh) -> sp.csr_matrix:
    """``(V, nlat * nlon)`` bilinear interpolation from the canonical grid to the vertices.

    Parameters
    ----------
    grid : LatLonGrid
    mesh : Mesh
    """
    lat = np.rad2deg(mesh.lat)
    lon = np.mod(np.rad2deg(mesh.lon), 360.0)
    lon = np.where(lon >= 360.0, 0.0, lon)
    lat_c = grid.canonical_lat
    m = len(lat_c)
    rows, cols, vals = [], [], []

    def add(vertex_idx: np.ndarray, entries: Entries) -> None:
        k, c, v = entries
        rows.append(vertex_idx[k])
        cols.append(c)
        vals.append(v)

    idx = np.nonzero((lat >= lat_c[0]) & (lat <= lat_c[-1]))[0]
    i = np.clip(np.searchsorted(lat_c, lat[idx], side="right") - 1, 0, m - 2)
    t = (lat[idx] - lat_c[i]) / (lat_c[i + 1] - lat_c[i])
    add(idx, _row_interp(grid, i, lon[idx], 1.0 - t))
    add(idx, _row_interp(grid, i + 1, lon[idx], t))
    for cap, row, pole in ((lat > lat_c[-1], m - 1, 90.0), (lat < lat_c[0], 0, -90.0)):
        idx = np.nonzero(cap)[0]
        if idx.size == 0:
            continue
        t = (lat[idx] - lat_c[row]) / (pole - lat_c[row])  # 0 at the row, 1 at the pole
        add(idx, _row_interp(grid, np.full(idx.size, row), lon[idx], 1.0 - t))
        add(idx, _row_mean(grid, np.full(idx.size, row), t))
    return _matrix(rows, cols, vals, (mesh.num_vertices, m * len(grid.canonical_lon)))


def barycentric_to_grid(grid: LatLonGrid, mesh: Mesh) -> sp.csr_matrix:
    """``(nlat * nlon, V)`` linear interpolation in the mesh triangle containing each canonical grid point.

    Parameters
    ----------
    grid : LatLonGrid
    mesh : Mesh
    """
    return barycentric_interpolation(mesh, grid.canonical_points(), normalize=False)


def nearest_to_mesh(grid: LatLonGrid, mesh: Mesh) -> sp.csr_matrix:
    """``(V, nlat * nlon)`` selection of the canonical grid point nearest to each vertex.

    Parameters
    ----------
    grid : LatLonGrid
    mesh : Mesh
    """
    _, nearest = cKDTree(grid.canonical_points()).query(mesh.vertices)
    v = mesh.num_vertices
    return sp.csr_matrix((np.ones(v), (np.arange(v), nearest)), shape=(v, int(np.prod(grid.canonical_shape))))


def nearest_to_grid(grid: LatLonGrid, mesh: Mesh) -> sp.csr_matrix:
    """``(nlat * nlon, V)`` selection of the vertex nearest to each canonical grid point.

    Parameters
    ----------
    grid : LatLonGrid
    mesh : Mesh
    """
    points = grid.canonical_points()
    _, nearest = nearest_vertex(mesh, points)
    n = len(points)
    return sp.csr_matrix((np.ones(n), (np.arange(n), nearest)), shape=(n, mesh.num_vertices))
