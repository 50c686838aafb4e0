r"""Regridding between regular latitude-longitude grids and a mesh: the icosphere, HEALPix, any sphere mesh.

Every method is a precomputed ``scipy.sparse`` matrix, so a whole data set is
regridded by one sparse product per sample::

    W = latlon_to_mesh(lat, lon, level=5)          # (V, nlat * nlon)
    mesh_values = W @ grid_values.reshape(nlat * nlon)
    M = mesh_to_latlon(5, lat, lon)                # (nlat * nlon, V)
    grid_values = (M @ mesh_values).reshape(nlat, nlon)
    W = latlon_to_mesh(lat, lon, HealpixGrid(16))  # (12 * 16**2, nlat * nlon), pixels in NESTED order

The mesh side (the ``level`` argument) is one of

* an icosphere level (int): :func:`meshcnn.geometry.icosphere`; an icosphere
  :class:`~meshcnn.geometry.Mesh` (``mesh.is_icosphere``), or a grid on one such as
  :class:`~meshcnn.grids.IcosphereGrid`, is its level (the same matrices, the same cache entry);
* any other :class:`~meshcnn.geometry.Mesh` (:meth:`~meshcnn.geometry.Mesh.from_points`,
  :meth:`~meshcnn.geometry.Mesh.from_faces`): its vertices in their order, cell areas
  :func:`~meshcnn.grids.icosphere.mesh_cell_areas`;
* a grid with a ``mesh`` attribute and ``cell_areas()`` (the :class:`~meshcnn.grids.base.Grid`
  protocol, e.g. :class:`~meshcnn.grids.HealpixGrid`): its mesh, in the grid's order, and the
  grid's own cell areas (exactly equal for HEALPix) as the weights ``conservative`` preserves.

Conventions
-----------
* ``lat`` and ``lon`` are the 1-D coordinate vectors of the file, in **degrees**.
  Latitude may be ascending or descending, equiangular or Gaussian, with or
  without rows at the poles; longitude may be in ``0..360`` or ``-180..180``
  (a duplicated periodic column such as both 0 and 360 is allowed) and ascending
  or descending. Both must be strictly monotonic and cover the globe, otherwise
  ``ValueError``.
* Grid values are flattened row-major, latitude-major, in the order of the file:
  ``index = i_lat * nlon + i_lon``.
* Mesh values are in the order of the mesh's vertices (of the grid's points).

Methods
-------
``bilinear``, ``nearest`` (xESMF's ``nearest_s2d``), ``patch`` (higher order, for smooth fields) and
``nearest_d2s`` are built in :mod:`meshcnn.grids._interp`, ``conservative`` in
:mod:`meshcnn.grids._conservative` (area-weighted, preserving
:math:`\sum_c A_c f_c = \sum_v a_v f_v` with the cell areas of :mod:`meshcnn.grids.base`:
:math:`A_c` the lat-lon cells', :math:`a_v` the mesh side's, see above).
Every matrix is cached per (lat-lon grid, mesh, method), a mesh other than an icosphere level by its
:attr:`~meshcnn.geometry.Mesh.fingerprint` and cell areas; a fresh copy is returned each call.
The functions here are thin wrappers over :class:`meshcnn.grids.Regridder`, which holds the same
matrices and applies them (:func:`apply` is its NumPy kernel).

Missing values (masked fields)
------------------------------
Fields with NaN where they are undefined (sea-surface temperature over land, a
regional product padded with NaN) are regridded with ``skipna=True`` in
:func:`apply`, :class:`~meshcnn.grids.Regridder`, :func:`regrid_dataarray` and
:func:`mesh_dataarray_to_latlon`, in both directions and for every method, as in xESMF: each output
is the weighted mean of the *valid* inputs of its row (the weights renormalised by the valid weight
:math:`w_v = \sum_{c\,valid} W_{vc}`), and NaN where more than ``na_thres`` of the row's weight is
missing, i.e. where the valid fraction is below ``1 - na_thres`` (clipped to ``[NA_TOL, 1 - NA_TOL]``
as xESMF does; ``na_thres=1``: NaN only where no input is valid). ``na_thres`` is xESMF's keyword
and meaning; the ``na_thresh`` of earlier releases (the smallest *valid* fraction, the other way
round) still works for one release, converted to ``na_thres = 1 - na_thresh`` with a
``DeprecationWarning``. Rows without a missing input are bit-identical to ``skipna=False``;
a field without NaN gives exactly the ``skipna=False`` result. With the
conservative method the area integral of the valid part is kept:
:math:`\sum_v a_v w_v f_v = \sum_{c\,valid} A_c f_c` over the outputs that are not
NaN (all of them at ``na_thres=1``), i.e. the output is the valid mean over a
cell whose valid fraction is :math:`w_v`. Weights of every method but ``patch`` are non-negative,
so outputs stay within the range of the valid inputs they mix (no overshoot).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._cache import memoize
from ..geometry.mesh import Mesh, icosphere
from . import _interp
from ._conservative import conservative_overlap
from .icosphere import MeshTarget
from .latlon import LatLonGrid

__all__ = [
    "METHODS",
    "latlon_to_mesh",
    "mesh_to_latlon",
    "apply",
    "grid_cell_areas",
    "latlon_grid",
]

METHODS = ("bilinear", "nearest", "conservative", "patch", "nearest_s2d", "nearest_d2s")

#: xESMF's names that are another name of a method here.
_ALIASES = {"nearest_s2d": "nearest"}

#: Tolerance of the ``na_thres`` comparison, as in xESMF: the threshold ``1 - na_thres`` is clipped
#: to ``[NA_TOL, 1 - NA_TOL]`` so that rounding in the valid weight sums does not decide.
NA_TOL = 1e-6


def _coordinates(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"a grid coordinate must be 1-D (degrees), got shape {arr.shape}")
    return arr


def _check_method(method: str) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown regridding method {method!r}; choose one of {METHODS}")
    return method


def _canonical_method(method: str) -> str:
    """The method a name builds (``nearest_s2d`` is ``nearest``), checked."""
    return _ALIASES.get(_check_method(method), method)


def check_na_thres(na_thres: float, na_thresh: float | None = None, *, stacklevel: int = 3) -> float:
    """``na_thres`` checked, or (deprecated) the old ``na_thresh`` converted to it with a warning.

    Parameters
    ----------
    na_thres : float
        xESMF's threshold, in ``[0, 1]``: the largest fraction of an output's weight that may be
        missing; NaN where more is (module docstring).
    na_thresh : float, optional
        The keyword of earlier releases, the other way round: the *smallest valid* fraction.
        ``na_thres = 1 - na_thresh``; a ``DeprecationWarning`` says so.

    Returns
    -------
    float
    """
    if na_thresh is not None:
        import warnings

        warnings.warn(
            "na_thresh is deprecated and will be removed in the next release: use na_thres, which means what it "
            "means in xESMF, the largest missing fraction of an output's weight (NaN where the valid fraction is "
            f"below 1 - na_thres); na_thresh={na_thresh!r} (the smallest valid fraction) is na_thres={1 - na_thresh!r}",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        if not 0.0 <= na_thresh <= 1.0:
            raise ValueError(f"na_thresh must be within [0, 1], got {na_thresh}")
        na_thres = 1.0 - na_thresh
    if not 0.0 <= na_thres <= 1.0:
        raise ValueError(f"na_thres must be within [0, 1], got {na_thres}")
    return float(na_thres)


@memoize(maxsize=16, copy=False)  # a LatLonGrid is not modified after construction
def latlon_grid(lat: Any, lon: Any) -> LatLonGrid:
    """The validated :class:`LatLonGrid` of coordinates ``lat``, ``lon`` (degrees), cached.

    Parameters
    ----------
    lat, lon : array_like, shapes ``(nlat,)``, ``(nlon,)``
        Degrees.

    Returns
    -------
    LatLonGrid
    """
    return LatLonGrid(_coordinates(lat), _coordinates(lon))


def _mesh_of(target: int | MeshTarget) -> Mesh:
    return icosphere(target) if isinstance(target, int) else target.mesh


def latlon_to_mesh(lat: Any, lon: Any, level: int | Mesh | Any, method: str = "bilinear") -> sp.csr_matrix:
    """The regridding matrix from a lat-lon grid to a mesh: the icosphere of ``level``, or any mesh or grid.

    The weights of :class:`~meshcnn.grids.Regridder` ``(LatLonGrid(lat, lon), level, method)``.

    Parameters
    ----------
    lat, lon : array_like, shapes ``(nlat,)``, ``(nlon,)``
        The file's coordinates, degrees (:class:`~meshcnn.grids.LatLonGrid`).
    level : int, Mesh or grid with a ``mesh``
        The mesh side: an icosphere level, a :class:`~meshcnn.geometry.Mesh`, or a grid such as
        :class:`~meshcnn.grids.HealpixGrid` (module docstring).
    method : one of :data:`METHODS`
        See the module docstring.

    Returns
    -------
    scipy.sparse.csr_matrix, shape ``(V, nlat * nlon)``
        Rows in the mesh's vertex order, columns in file order, ``index = i_lat * nlon + i_lon``;
        each row sums to 1 (``nearest_d2s``: the number of grid points mapped to the vertex). Cached per
        (grid, mesh, method); a fresh copy is returned each call, carrying ``grid_shape = (nlat, nlon)``,
        which :func:`apply` checks a 2-D field against.
    """
    from .regridder import Regridder

    out = Regridder(latlon_grid(lat, lon), level, method).weights
    out.grid_shape = (len(lat), len(lon))
    return out


def mesh_to_latlon(level: int | Mesh | Any, lat: Any, lon: Any, method: str = "bilinear") -> sp.csr_matrix:
    """The regridding matrix from a mesh (the icosphere of ``level``, or any mesh or grid) to a lat-lon grid.

    The weights of :class:`~meshcnn.grids.Regridder` ``(level, LatLonGrid(lat, lon), method)``.

    Parameters
    ----------
    level : int, Mesh or grid with a ``mesh``
        The mesh side, as in :func:`latlon_to_mesh`.
    lat, lon : array_like, shapes ``(nlat,)``, ``(nlon,)``
        Degrees, as in :func:`latlon_to_mesh`.
    method : one of :data:`METHODS`

    Returns
    -------
    scipy.sparse.csr_matrix, shape ``(nlat * nlon, V)``
        Rows in file order (``i_lat * nlon + i_lon``), columns in the mesh's vertex order; each row
        sums to 1 (``nearest_d2s``: see :func:`latlon_to_mesh`); carries ``grid_shape``.
    """
    from .regridder import Regridder

    out = Regridder(level, latlon_grid(lat, lon), method).weights
    out.grid_shape = (len(lat), len(lon))
    return out


def grid_cell_areas(lat: Any, lon: Any) -> np.ndarray:
    """Spherical areas of the grid cells (:meth:`LatLonGrid.cell_areas`).

    Cells are bounded by the midpoints between coordinates and by the poles, so the
    areas sum to :math:`4\\pi`; a duplicated periodic column (e.g. 360 next to 0) gets
    area 0. These are the weights conservative regridding preserves.

    Parameters
    ----------
    lat, lon : array_like, shapes ``(nlat,)``, ``(nlon,)``
        Degrees.

    Returns
    -------
    ndarray, shape ``(nlat, nlon)``
        Steradians, file order.
    """
    return latlon_grid(lat, lon).cell_areas()


def _row_normalized(weights: sp.spmatrix) -> sp.spmatrix:
    """``diag(1 / row sums) @ weights``: the conservative overlap as an averaging matrix."""
    return sp.diags(1.0 / np.asarray(weights.sum(axis=1)).ravel()) @ weights


@memoize(maxsize=32)
def _latlon_to_mesh(lat: np.ndarray, lon: np.ndarray, target: int | MeshTarget, method: str) -> sp.csr_matrix:
    grid = latlon_grid(lat, lon)
    mesh = _mesh_of(target)
    if method == "bilinear":
        canon = _interp.bilinear_to_mesh(grid, mesh)
    elif method == "nearest":
        canon = _interp.nearest_to_mesh(grid, mesh)
    elif method == "patch":
        canon = _interp.patch_from_grid(grid, mesh.lat, mesh.lon)
    elif method == "nearest_d2s":
        canon = _interp.nearest_d2s(grid.canonical_points(), mesh.vertices)
    else:
        overlap = conservative_overlap(lat, lon, target)
        canon = _row_normalized(overlap)
    # canonical columns -> file columns (a duplicated periodic column gets no weight)
    coo = sp.coo_matrix(canon)
    cols = grid.file_of_canonical()[coo.col]
    out = sp.csr_matrix((coo.data, (coo.row, cols)), shape=(mesh.num_vertices, grid.lat.size * grid.lon.size))
    out.sum_duplicates()
    return out


@memoize(maxsize=32)
def _mesh_to_latlon(lat: np.ndarray, lon: np.ndarray, target: int | MeshTarget, method: str) -> sp.csr_matrix:
    grid = latlon_grid(lat, lon)
    mesh = _mesh_of(target)
    if method == "bilinear":
        canon = _interp.barycentric_to_grid(grid, mesh)
    elif method == "nearest":
        canon = _interp.nearest_to_grid(grid, mesh)
    elif method == "patch":
        canon = _interp.patch_from_points(mesh.vertices, grid.canonical_points())
    elif method == "nearest_d2s":
        canon = _interp.nearest_d2s(mesh.vertices, grid.canonical_points())
    else:
        canon = _row_normalized(sp.csr_matrix(conservative_overlap(lat, lon, target).T))
    out = sp.csr_matrix(canon)[grid.canonical_of_file()]
    out.sum_duplicates()
    return sp.csr_matrix(out)


def split_field(shape: tuple[int, ...], n_in: int, grid_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The leading shape of a field of ``shape`` whose last axes are one field of ``n_in`` values.

    The last axis of length ``n_in``, or the last two of ``grid_shape`` (``(nlat, nlon)``; any two of product
    ``n_in`` without one).

    Raises
    ------
    ValueError
        For any other shape; a transposed ``(nlon, nlat)`` field is named as such.
    """
    if len(shape) >= 1 and shape[-1] == n_in:
        return tuple(shape[:-1])
    if len(shape) >= 2 and shape[-2] * shape[-1] == n_in:
        if grid_shape is not None and len(grid_shape) == 2 and tuple(shape[-2:]) != tuple(grid_shape):
            raise ValueError(
                f"values of shape {tuple(shape)} do not match the grid: the last two axes must be "
                f"(nlat, nlon) = {tuple(grid_shape)} (a transposed (lon, lat) field?)"
            )
        return tuple(shape[:-2])
    raise ValueError(f"values of shape {tuple(shape)} do not match a regridding matrix with {n_in} inputs")


def apply(
    matrix: sp.spmatrix,
    values: Any,
    *,
    skipna: bool = False,
    na_thres: float = 0.5,
    grid_shape: tuple[int, int] | None = None,
    na_thresh: float | None = None,
) -> np.ndarray:
    """Apply a regridding matrix to the last axis of ``values`` (the NumPy kernel of :class:`Regridder`).

    Parameters
    ----------
    matrix : sparse ``(N_out, N_in)``, from :func:`latlon_to_mesh` or :func:`mesh_to_latlon`
    values : ``(..., N_in)``, or ``(..., nlat, nlon)`` with ``nlat * nlon = N_in``
        (flattened for you). A 2-D field must have exactly the grid's shape
        ``(nlat, nlon)``: the ``grid_shape`` the matrices of this module carry, or the
        ``grid_shape`` argument; a transposed ``(nlon, nlat)`` field is an error.
    skipna : regrid a field with missing values (NaN): each output is the mean of the
        valid inputs of its row with renormalised weights (see the module doc).
    na_thres : with ``skipna``, as in xESMF: outputs where more than this fraction of the row's
        weight is missing are NaN (``1``: NaN only where no input is valid; ``0``: NaN where any is missing).
    grid_shape : ``(nlat, nlon)`` of the lat-lon side, overriding the matrix's own.
    na_thresh : deprecated (the smallest valid fraction, ``1 - na_thres``); a ``DeprecationWarning``.

    Returns
    -------
    ``(..., N_out)``. Integer input through a selection matrix (``nearest``) keeps its
    dtype; otherwise the result is floating point (float32 stays float32).
    """
    values = np.asarray(values)
    n_out, n_in = matrix.shape
    if grid_shape is None:
        grid_shape = getattr(matrix, "grid_shape", None)
    lead = split_field(values.shape, n_in, grid_shape)
    na_thres = check_na_thres(na_thres, na_thresh)
    out = apply_flat(sp.csr_matrix(matrix), values.reshape(-1, n_in), skipna=skipna, na_thres=na_thres)
    return out.reshape(*lead, n_out)


def is_selection(csr: sp.csr_matrix) -> bool:
    """Whether every row of ``csr`` picks one input with weight 1 (``nearest``)."""
    return bool(np.all(np.diff(csr.indptr) == 1) and np.all(csr.data == 1.0))


def apply_flat(
    csr: sp.csr_matrix, flat: np.ndarray, *, skipna: bool, na_thres: float, weights32: sp.csr_matrix | None = None
) -> np.ndarray:
    """``(B, N_in)`` -> ``(B, N_out)``: the regridding of :func:`apply` on fields already flat.

    ``weights32`` is ``csr`` as float32, if the caller keeps one (it is made here otherwise).
    """
    n_out = csr.shape[0]
    if not np.issubdtype(flat.dtype, np.floating):
        if is_selection(csr):
            return flat[:, csr.indices]
        flat = flat.astype(np.float64)
    if flat.dtype == np.float32:
        weights = weights32 if weights32 is not None else csr.astype(np.float32)
    else:
        weights = csr.astype(np.float64, copy=False)  # read only below
    dtype = weights.dtype
    if flat.dtype != dtype:
        flat = flat.astype(dtype)
    if skipna:
        missing = np.isnan(flat)
        if missing.any():
            return _apply_skipna(weights, flat, missing, na_thres)
    if flat.shape[0] <= 64:
        # one sparse mat-vec per field: no transposed copy of the fields (timing: experiments/benchmark/
        # RESULTS.md, "Moved from docstrings: geometry and grids"); each output is the same sum in the
        # same order as the mat-mat product
        out = np.empty((flat.shape[0], n_out), dtype=dtype)
        for i, row in enumerate(flat):
            out[i] = weights @ row
        return out
    return np.ascontiguousarray((weights @ flat.T).T)


def na_threshold(na_thres: float) -> float:
    """The smallest valid fraction of a row's weight for a value: ``1 - na_thres`` clipped to
    ``[NA_TOL, 1 - NA_TOL]``, as xESMF."""
    return float(np.clip(1.0 - na_thres, NA_TOL, 1.0 - NA_TOL))


def _apply_skipna(weights: sp.csr_matrix, flat: np.ndarray, missing: np.ndarray, na_thres: float) -> np.ndarray:
    """``(B, N_in)`` with NaN at ``missing`` -> ``(B, N_out)``: renormalised mean over the valid inputs.

    Rows with no missing input are computed exactly as without ``skipna`` (same
    products in the same order), so they are bit-identical to it. A row is NaN where its valid
    weight fraction is below :func:`na_threshold` (or zero).
    """
    dtype = weights.dtype
    filled = np.where(missing, dtype.type(0), flat).astype(dtype, copy=False)
    num = np.asarray(weights @ filled.T).T  # (B, N_out)
    valid_weight = np.asarray(weights @ (~missing).T.astype(dtype)).T
    pattern = sp.csr_matrix(
        (np.ones_like(weights.data, dtype=np.float32), weights.indices, weights.indptr), shape=weights.shape
    )
    touched = np.asarray(pattern @ missing.T.astype(np.float32)).T > 0  # rows that see a missing input
    row_sum = np.asarray(weights.sum(axis=1), dtype=np.float64).ravel()[None, :]
    fraction = np.where(row_sum > 0, valid_weight / np.where(row_sum > 0, row_sum, 1.0), 0.0)
    empty = (valid_weight <= 0) | (fraction < na_threshold(na_thres))
    with np.errstate(invalid="ignore", divide="ignore"):
        renorm = num / np.where(valid_weight > 0, valid_weight, 1) * row_sum.astype(dtype)
    out = np.where(touched, np.where(empty, np.nan, renorm), num).astype(dtype, copy=False)
    return np.ascontiguousarray(out)
