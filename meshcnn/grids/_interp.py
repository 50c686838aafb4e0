r"""The interpolating regridders (``bilinear``, ``nearest``, ``patch``, ``nearest_d2s``), in the grid's canonical order.

Each function returns a sparse matrix whose lat-lon side is in the canonical order of
:class:`~meshcnn.grids.LatLonGrid` (:mod:`meshcnn.grids.regrid` maps it to file order).

``bilinear``, lat-lon -> mesh: bilinear in (latitude, longitude), periodic in longitude.
A vertex poleward of the outermost latitude row is interpolated linearly in latitude
between that row (at the vertex's longitude) and the pole value, taken as the
(cell-width weighted) mean of the outermost row; a row exactly at a pole counts as its
mean. mesh -> lat-lon: barycentric interpolation in the mesh triangle containing the
point (:func:`meshcnn.geometry.barycentric_interpolation`).

``nearest``: the value of the nearest sample by great-circle distance (xESMF's ``nearest_s2d``).

``nearest_d2s`` (ESMF's "nearest destination to source"): each *source* point is mapped to
its nearest destination point with weight 1, so a destination point receives the sum of the
sources mapped to it, and 0 where none is (meant for a destination at least as fine as the source).

``patch``: a higher-order method for smooth fields, exact for polynomials of degree 2 (mesh
sources) or bicubic in (latitude, longitude) (lat-lon sources); its weights may be negative, so
it can overshoot at sharp fronts (use ``bilinear`` or ``conservative`` for those).

* lat-lon -> any points (:func:`patch_from_grid`): the tensor-product cubic Lagrange interpolant
  on the 4 x 4 grid points around the point (the bicubic that fits them exactly), periodic in
  longitude; across a pole the rows continue on the far side of the pole (latitude mirrored,
  longitude + 180 degrees), along the same great circle; a row at a pole counts as its mean.
  Non-uniform (Gaussian) latitudes are fine: Lagrange weights use the nodes' own positions.
* mesh -> any points (:func:`patch_from_points`): at each destination point, the weighted
  least-squares quadratic :math:`c_0 + c_1 x + c_2 y + c_3 x^2 + c_4 xy + c_5 y^2` in gnomonic
  coordinates of the tangent plane, fitted to the :data:`PATCH_NEIGHBOURS` nearest source points
  with weights :math:`(1 - (d / 1.05 d_{max})^2)^2`; the value is :math:`c_0`. This is ESMF's
  patch recovery (a least-squares quadratic patch), with one patch per destination point instead
  of ESMF's average over the patches of the source cells around it. Rows sum to 1 (constants are
  reproduced).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from ..geometry.locate import barycentric_interpolation, nearest_vertex
from ..geometry.mesh import Mesh
from .latlon import LatLonGrid

__all__ = [
    "bilinear_to_mesh",
    "bilinear_to_points",
    "barycentric_to_grid",
    "nearest_to_mesh",
    "nearest_to_grid",
    "patch_from_grid",
    "patch_from_points",
    "nearest_d2s",
    "PATCH_NEIGHBOURS",
]

#: Source points of each least-squares patch of :func:`patch_from_points` (6 coefficients).
PATCH_NEIGHBOURS = 16

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


def _matrix(
    rows: list[np.ndarray], cols: list[np.ndarray], vals: list[np.ndarray], shape: tuple[int, int]
) -> sp.csr_matrix:
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
    return bilinear_to_points(grid, mesh.lat, mesh.lon)


def bilinear_to_points(grid: LatLonGrid, lat_rad: np.ndarray, lon_rad: np.ndarray) -> sp.csr_matrix:
    """``(P, nlat * nlon)`` bilinear interpolation from the canonical grid to points.

    Parameters
    ----------
    grid : LatLonGrid
    lat_rad, lon_rad : ndarray, shape ``(P,)``
        The points' latitude and longitude, radians.
    """
    lat = np.rad2deg(lat_rad)
    lon = np.mod(np.rad2deg(lon_rad), 360.0)
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
    return _matrix(rows, cols, vals, (len(lat), m * len(grid.canonical_lon)))


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


def nearest_d2s(src_points: np.ndarray, dst_points: np.ndarray) -> sp.csr_matrix:
    """``(P_dst, P_src)``: each source point to its nearest destination point, weight 1 (module docstring).

    Parameters
    ----------
    src_points, dst_points : ndarray, shapes ``(P_src, 3)``, ``(P_dst, 3)``
        Unit vectors (chord distance orders as great-circle distance).
    """
    _, nearest = cKDTree(dst_points).query(src_points)
    n = len(src_points)
    out = sp.csr_matrix((np.ones(n), (nearest, np.arange(n))), shape=(len(dst_points), n))
    out.sum_duplicates()
    return out


def _lagrange(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cubic Lagrange weights ``(P, 4)`` of the nodes ``(P, 4)`` (distinct) at ``x`` ``(P,)``."""
    w = np.ones_like(nodes)
    for a in range(4):
        for b in range(4):
            if a != b:
                w[:, a] *= (x - nodes[:, b]) / (nodes[:, a] - nodes[:, b])
    return w


def patch_from_grid(grid: LatLonGrid, lat_rad: np.ndarray, lon_rad: np.ndarray) -> sp.csr_matrix:
    """``(P, nlat * nlon)`` bicubic (cubic Lagrange) interpolation from the canonical grid to points.

    Parameters
    ----------
    grid : LatLonGrid
        At least 3 latitudes and 4 distinct longitudes.
    lat_rad, lon_rad : ndarray, shape ``(P,)``
        The points, radians.

    Notes
    -----
    Latitude nodes are extended by two rows beyond each pole: the rows nearest the pole (a row at
    the pole itself left out) mirrored, read at longitude + 180 degrees. Longitude nodes wrap by
    two columns on each side.
    """
    lat = np.rad2deg(np.asarray(lat_rad, dtype=np.float64))
    lon = np.mod(np.rad2deg(np.asarray(lon_rad, dtype=np.float64)), 360.0)
    lon = np.where(lon >= 360.0, 0.0, lon)
    lat_c, lon_c = grid.canonical_lat, grid.canonical_lon
    m, n = len(lat_c), len(lon_c)
    south = 1 if lat_c[0] <= -90.0 + 1e-9 else 0  # first row off the pole
    north = m - 2 if lat_c[-1] >= 90.0 - 1e-9 else m - 1
    if north - south < 1 or n < 4:
        raise ValueError(f"patch regridding needs at least 2 latitudes off the poles and 4 longitudes, got {m} x {n}")
    rows = np.concatenate([[south + 1, south], np.arange(m), [north, north - 1]])
    lat_ext = np.concatenate([-180.0 - lat_c[[south + 1, south]], lat_c, 180.0 - lat_c[[north, north - 1]]])
    across = np.concatenate([[True, True], np.zeros(m, dtype=bool), [True, True]])
    lon_ext = np.concatenate([lon_c[-2:] - 360.0, lon_c, lon_c[:2] + 360.0])
    p = len(lat)
    i = np.clip(np.searchsorted(lat_ext, lat, side="right") - 1, 1, len(lat_ext) - 3)
    stencil = i[:, None] + np.arange(-1, 3)[None, :]
    w_lat = _lagrange(lat_ext[stencil], lat)
    ks, cols, vals = [], [], []
    for a in range(4):
        row = rows[stencil[:, a]]
        lon_a = np.mod(lon + np.where(across[stencil[:, a]], 180.0, 0.0), 360.0)
        j = np.searchsorted(lon_c, lon_a, side="right") + 1  # position in lon_ext of the node at or left of lon_a
        lon_stencil = j[:, None] + np.arange(-1, 3)[None, :]
        w_lon = _lagrange(lon_ext[lon_stencil], lon_a)
        at_pole = np.abs(lat_c[row]) >= 90.0 - 1e-9
        w = np.where(at_pole[:, None], 0.0, w_lat[:, a : a + 1] * w_lon)
        ks.append(np.repeat(np.arange(p), 4))
        cols.append((row[:, None] * n + (lon_stencil - 2) % n).reshape(-1))
        vals.append(w.reshape(-1))
        if np.any(at_pole):  # a row at a pole: its mean
            k = np.nonzero(at_pole)[0]
            mean_k, mean_cols, mean_vals = _row_mean(grid, row[k], w_lat[k, a])
            ks.append(k[mean_k])
            cols.append(mean_cols)
            vals.append(mean_vals)
    return _matrix(ks, cols, vals, (p, m * n))


def _tangent_basis(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal east-like and north-like vectors ``(P, 3)`` perpendicular to each unit vector."""
    helper = np.where(np.abs(points[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
    e1 = np.cross(helper, points)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    return e1, np.cross(points, e1)


def patch_from_points(
    src_points: np.ndarray, dst_points: np.ndarray, k: int = PATCH_NEIGHBOURS, chunk: int = 32768
) -> sp.csr_matrix:
    """``(P_dst, P_src)`` least-squares quadratic patch of the ``k`` nearest source points (module docstring).

    Parameters
    ----------
    src_points, dst_points : ndarray, shapes ``(P_src, 3)``, ``(P_dst, 3)``
        Unit vectors; at least ``k`` source points, not all on one circle near a destination.
    k : int
        Source points per patch (at least 6).
    chunk : int
        Destination points solved at once (bounds memory).
    """
    src_points = np.asarray(src_points, dtype=np.float64)
    dst_points = np.asarray(dst_points, dtype=np.float64)
    k = min(int(k), len(src_points))
    if k < 6:
        raise ValueError(f"patch regridding needs at least 6 source points, got {len(src_points)}")
    tree = cKDTree(src_points)
    rows, cols, vals = [], [], []
    for start in range(0, len(dst_points), chunk):
        dst = dst_points[start : start + chunk]
        dist, idx = tree.query(dst, k)
        q = src_points[idx]  # (P, k, 3)
        e1, e2 = _tangent_basis(dst)
        dot = np.einsum("pkc,pc->pk", q, dst)
        scale = np.maximum(dist[:, -1:], 1e-300)
        x = np.einsum("pkc,pc->pk", q, e1) / dot / scale
        y = np.einsum("pkc,pc->pk", q, e2) / dot / scale
        basis = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], -1)  # (P, k, 6)
        w = (1.0 - (dist / (1.05 * scale)) ** 2) ** 2
        weighted = basis.transpose(0, 2, 1) * w[:, None, :]  # A^T W, (P, 6, k)
        gram = weighted @ basis  # (P, 6, 6), symmetric positive definite
        e0 = np.zeros((len(dst), 6, 1))
        e0[:, 0] = 1.0
        coef = np.linalg.solve(gram, e0)[..., 0]  # row 0 of gram^-1 (symmetric)
        rows.append(np.repeat(np.arange(start, start + len(dst)), k))
        cols.append(idx.reshape(-1))
        vals.append(np.einsum("pb,pbk->pk", coef, weighted).reshape(-1))
    out = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(dst_points), len(src_points))
    )
    out.sum_duplicates()
    return out
