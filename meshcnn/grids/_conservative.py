r"""Conservative regridding: the overlap of the mesh's hat functions with the grid cells.

The grid cells are bounded by the midpoints between coordinates (and by the poles);
the "cell" of a vertex is its hat function (the piecewise-linear basis function that is
1 at the vertex and 0 at the others, a partition of unity over the sphere), a soft
Voronoi-like cell. The overlaps :math:`O_{vc} = \int_c \phi_v\,dA` are computed by a
supersampling quadrature: each grid cell is split into at least 2 x 2 sub-cells, at
most a third of the mesh's mean edge length wide, and each sub-cell's exact area is
shared among the corners of the mesh triangle containing its centre by barycentric
weights. The overlap matrix is then balanced
(:math:`O \to \mathrm{diag}(e^x)\,O\,\mathrm{diag}(e^y)`, Newton's method) so that its row
sums equal the mesh's cell areas (:func:`~meshcnn.grids.icosphere.mesh_cell_areas`) and its
column sums the exact grid cell areas (:meth:`~meshcnn.grids.LatLonGrid.cell_areas`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._cache import memoize
from ..geometry.coords import latlon_to_xyz
from ..geometry.locate import locate
from ..geometry.mesh import Mesh, icosphere
from .icosphere import MeshTarget, mesh_cell_areas
from .latlon import LatLonGrid

__all__ = ["conservative_overlap"]


@memoize(maxsize=8)
def conservative_overlap(lat: np.ndarray, lon: np.ndarray, target: int | MeshTarget) -> sp.csr_matrix:
    """Balanced overlap ``(V, nlat * nlon)`` (canonical columns), steradians: ``O[v, c]`` is the
    integral of vertex ``v``'s hat function over grid cell ``c``, balanced so that row ``v`` sums
    to the mesh side's cell area :math:`a_v` and column ``c`` to the grid cell's area :math:`A_c`.

    Parameters
    ----------
    lat, lon : ndarray
        The grid's coordinates, degrees, float64, file order (see :class:`LatLonGrid`).
    target : int or MeshTarget
        An icosphere level (cell areas :func:`~meshcnn.grids.icosphere.mesh_cell_areas`), or any mesh with
        its cell areas (:func:`~meshcnn.grids.icosphere.regrid_target`).
    """
    grid = LatLonGrid(lat, lon)
    if isinstance(target, MeshTarget):
        mesh, mesh_areas = target.mesh, target.cell_areas
    else:
        mesh = icosphere(target)
        mesh_areas = mesh_cell_areas(mesh)
    return _balance(_raw_overlap(grid, mesh), mesh_areas, grid.canonical_cell_areas().reshape(-1))


def _raw_overlap(grid: LatLonGrid, mesh: Mesh, min_sub: int = 2) -> sp.csr_matrix:
    """Quadrature of the hat functions over the grid cells, before balancing.

    Each grid cell is split into sub-cells (at least ``min_sub`` per direction, at
    most a third of the mesh's edge length wide) bounded by equally spaced
    latitudes and longitudes; each sub-cell's exact area is shared among the three
    corners of the mesh triangle containing its centre by barycentric weights.
    """
    points, cells, areas = _sub_cells(grid, mesh.mean_edge_length / 3.0, min_sub)
    face, bary = locate(mesh, points)
    rows = mesh.faces[face].reshape(-1)
    cols = np.repeat(cells, 3)
    vals = (bary * areas[:, None]).reshape(-1)
    keep = vals > 0.0
    shape = (mesh.num_vertices, int(np.prod(grid.canonical_shape)))
    overlap = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=shape)
    overlap.sum_duplicates()
    return overlap


def _sub_cells(grid: LatLonGrid, step: float, min_sub: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres ``(S, 3)``, canonical cell index ``(S,)`` and exact areas ``(S,)`` of the sub-cells:
    each cell split into at least ``min_sub`` x ``min_sub`` parts at most ``step`` radians wide."""
    lat_e = np.deg2rad(grid.lat_edges())
    lon_e = np.deg2rad(grid.lon_edges())
    dlon = np.diff(lon_e)
    nlon = len(dlon)
    points, cells, areas = [], [], []
    for i in range(len(grid.canonical_lat)):
        lo, hi = lat_e[i], lat_e[i + 1]
        n_lat = max(min_sub, int(np.ceil((hi - lo) / step)))
        band_edges = np.linspace(lo, hi, n_lat + 1)
        band_dsin = np.diff(np.sin(band_edges))
        sub_lat = 0.5 * (band_edges[1:] + band_edges[:-1])
        max_cos = 1.0 if lo <= 0.0 <= hi else max(np.cos(lo), np.cos(hi))
        n_lon = np.maximum(min_sub, np.ceil(dlon * max_cos / step).astype(np.int64))  # per column
        col = np.repeat(np.arange(nlon), n_lon)
        offset = np.arange(len(col)) - np.repeat(np.cumsum(n_lon) - n_lon, n_lon)
        sub_lon = lon_e[col] + (offset + 0.5) / n_lon[col] * dlon[col]
        sub_dlon = dlon[col] / n_lon[col]
        lat_g = np.repeat(sub_lat, len(col))
        lon_g = np.tile(sub_lon, n_lat)
        points.append(latlon_to_xyz(lat_g, lon_g))
        cells.append(np.tile(i * nlon + col, n_lat))
        areas.append(np.outer(band_dsin, sub_dlon).reshape(-1))
    return np.concatenate(points), np.concatenate(cells), np.concatenate(areas)


def _balance(
    overlap: sp.csr_matrix, row_target: np.ndarray, col_target: np.ndarray, tol: float = 1e-11, max_iter: int = 30
) -> sp.csr_matrix:
    r"""Scale ``overlap`` to ``diag(e^x) O diag(e^y)`` with the given row and column sums.

    Newton's method on the (Sinkhorn) balancing equations: the linearized system
    :math:`D_r x + O y = \Delta r`, :math:`O^T x + D_c y = \Delta c` is reduced to the
    graph Laplacian :math:`(D_r - O D_c^{-1} O^T) x = \Delta r - O D_c^{-1} \Delta c`
    on the vertices (gauge ``x_0 = 0``) and solved with a sparse LU factorization,
    reused while the error falls tenfold per step (chord method); the step is halved
    while it does not reduce the error. Converges in a few steps where plain
    Sinkhorn iterations crawl on smooth large-scale corrections.
    """
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import splu

    overlap = sp.csr_matrix(overlap, dtype=np.float64)
    if np.any(np.asarray(overlap.sum(axis=1)).ravel() <= 0) or np.any(np.asarray(overlap.sum(axis=0)).ravel() <= 0):
        raise RuntimeError("conservative regridding: an empty mesh or grid cell (report this as a bug)")
    if connected_components(overlap @ overlap.T, directed=False)[0] != 1:
        raise RuntimeError("conservative regridding: disconnected overlap graph (report this as a bug)")

    def error(o: sp.csr_matrix) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        row_sum = np.asarray(o.sum(axis=1)).ravel()
        col_sum = np.asarray(o.sum(axis=0)).ravel()
        err = max(np.abs(row_sum / row_target - 1).max(), np.abs(col_sum / col_target - 1).max())
        return err, row_sum, col_sum, row_target - row_sum, col_target - col_sum

    err, row_sum, col_sum, d_row, d_col = error(overlap)
    solve = None
    for _ in range(max_iter):
        if err < tol:
            return overlap
        if solve is None:  # (re)factor the Jacobian; kept while steps make good progress
            lap = sp.diags(row_sum) - overlap @ sp.diags(1.0 / col_sum) @ overlap.T
            solve = splu(sp.csc_matrix(lap[1:, 1:]), permc_spec="COLAMD").solve
        rhs = d_row - overlap @ (d_col / col_sum)
        x = np.zeros(len(row_sum))
        x[1:] = solve(rhs[1:])
        y = (d_col - overlap.T @ x) / col_sum
        for damping in (1.0, 0.5, 0.25, 0.125, 0.0625):
            trial = sp.csr_matrix(sp.diags(np.exp(damping * x)) @ overlap @ sp.diags(np.exp(damping * y)))
            trial_err, *rest = error(trial)
            if trial_err < err:
                break
        if trial_err > 0.1 * err:
            solve = None
        overlap, err = trial, trial_err
        row_sum, col_sum, d_row, d_col = rest
    if err < tol:
        return overlap
    raise RuntimeError(f"conservative regridding: balancing did not converge (relative error {err:.1e})")
