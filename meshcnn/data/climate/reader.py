r"""ClimateNet data on the icosphere: the file reader and the UGSCNN format.

The real data (ClimateNet, CAM5 0.25-degree runs) is one netCDF file per time step
with 16 fields on a ``lat x lon`` grid (768 x 1152, with a time dimension of 1)
and a ``LABELS`` map (0 background, 1 tropical cyclone, 2 atmospheric river).
This module reads those files and regrids them onto the icosphere of a chosen level
(fields bilinearly, labels by nearest neighbour, with the matrices of
:mod:`meshcnn.grids.regrid`); :mod:`.dataset` serves them as a lazy
:class:`torch.utils.data.Dataset`. It also reads UGSCNN's preprocessed ``.npz`` samples.
Synthetic files in the same layout come from :mod:`meshcnn.data.climate.synth`.

Conventions
-----------
* Channels are :data:`VARIABLES` in this order; fields are returned in the file's
  units (CAM5: K, Pa, m, m/s, kg/m^2, kg/kg) and un-normalized by
  :func:`read_climatenet`; :class:`ClimateNetDataset` normalizes with per-channel
  statistics that :func:`compute_stats` computes from the training split.
* Mesh samples are ``data`` float32 ``(16, V)`` and ``labels`` int64 ``(V,)``;
  lat-lon samples (``grid="latlon"``, for planar baselines) are ``(16, nlat, nlon)``
  and ``(nlat, nlon)`` with latitude ascending (south to north).
* Latitude/longitude in files are degrees, as in the netCDF convention.

The command-line tools are in :mod:`meshcnn.data.climate.cli`.
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Any

import numpy as np

from ...geometry.coords import num_vertices_at
from ...geometry.mesh import check_level
from ...grids import regrid
from ...grids.base import Grid
from ...io import save_npz
from ._format import (
    NUM_CLASSES,
    VARIABLES,
    ClimateFileError,
    _existing_file,
    _netcdf4,
    verify_checksum_trailer,
)

__all__ = ["read_latlon", "regrid_sample", "read_climatenet", "read_ugscnn", "write_ugscnn"]


def _check_axis(path: str | os.PathLike, name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2 and min(values.shape) > 1:
        raise ClimateFileError(
            path,
            f"coordinate {name!r} is 2-D {values.shape} (a curvilinear grid); the reader needs a regular "
            "lat-lon grid with 1-D 'lat' and 'lon' coordinates in degrees: regrid the file to one first",
        )
    if values.ndim != 1 or len(values) < 2:
        raise ClimateFileError(
            path, f"coordinate {name!r} must be 1-D with at least 2 points, got shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ClimateFileError(path, f"coordinate {name!r} contains NaN or Inf")
    step = np.diff(values)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise ClimateFileError(
            path, f"coordinate {name!r} is not monotonic (strictly increasing or decreasing expected)"
        )
    if name == "lat" and (values.min() < -90 - 1e-6 or values.max() > 90 + 1e-6):
        raise ClimateFileError(path, f"latitude outside [-90, 90] degrees: {values.min()}..{values.max()}")
    if name == "lon" and abs(values[-1] - values[0]) > 360 + 1e-9:
        raise ClimateFileError(path, f"longitude spans {abs(values[-1] - values[0])} > 360 degrees")
    return values


_DEGREE_UNITS = re.compile(r"^\s*(deg|degree|degrees)(_?(north|east|n|e))?\s*$", re.IGNORECASE)


def _check_units(path: str | os.PathLike, name: str, var: Any) -> None:
    """A coordinate's ``units`` attribute, where present, must be degrees (CF: ``degrees_north``/``degrees_east``)."""
    units = getattr(var, "units", None)
    if units is None:
        return
    units = units.decode("latin-1") if isinstance(units, bytes) else str(units)
    if not units.strip():
        return
    if "rad" in units.lower():
        raise ClimateFileError(path, f"coordinate {name!r} is in radians (units {units!r}); degrees expected")
    if not _DEGREE_UNITS.match(units):
        raise ClimateFileError(
            path,
            f"coordinate {name!r} has units {units!r}; degrees expected "
            f"({'degrees_north' if name == 'lat' else 'degrees_east'})",
        )


def _check_global(path: str | os.PathLike, lat: np.ndarray, lon: np.ndarray) -> None:
    """The grid must cover the sphere in degrees, as :mod:`meshcnn.grids.regrid` needs (checked here so that
    the error names the file and happens when the file is read, not when it is regridded)."""
    if np.abs(lat).max() <= np.pi / 2 + 1e-9 and np.ptp(lon) <= 2 * np.pi + 1e-9:
        raise ClimateFileError(
            path,
            f"the grid spans only lat {lat.min():g}..{lat.max():g}, lon {lon.min():g}..{lon.max():g}: "
            "it looks like radians (degrees expected), or it is not global",
        )
    try:
        regrid.grid_cell_areas(lat, lon)  # validates: global coverage, monotonic, degrees
    except ValueError as exc:
        raise ClimateFileError(path, f"not a global lat-lon grid in degrees ({exc})") from None


def _squeeze_time(path: str | os.PathLike, name: str, array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(1, lat, lon)`` or ``(lat, lon)`` -> ``(lat, lon)``; anything else is an error."""
    array = np.asarray(array)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.shape != shape:
        raise ClimateFileError(
            path,
            f"variable {name!r} has shape {array.shape} but the (lat, lon) grid is {shape}"
            " (the reader expects one time step per file)",
        )
    return array


def _read_field(
    path: str | os.PathLike, ds: Any, name: str, shape: tuple[int, int], default_fillvals: dict[str, Any]
) -> np.ndarray:
    """One field ``(nlat, nlon)`` float32, refused if it holds fill values, NaN or Inf."""
    var = ds[name]
    values = _squeeze_time(path, name, var[:], shape).astype(np.float32)
    for attr in ("_FillValue", "missing_value", None):  # None: netCDF's default fill value
        fill = getattr(var, attr, None) if attr else default_fillvals.get(var.dtype.str[1:])
        fill = np.ravel(np.asarray(fill, dtype=np.float64)) if fill is not None else ()
        if any(np.any(values == np.float32(f)) for f in fill if np.isfinite(f)):
            raise ClimateFileError(
                path, f"variable {name!r} contains missing values ({attr or 'netCDF default fill value'}={fill[0]:g})"
            )
    if not np.all(np.isfinite(values)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise ClimateFileError(path, f"variable {name!r} contains NaN or Inf ({bad} points)")
    return values


def _read_labels(path: str | os.PathLike, ds: Any, shape: tuple[int, int]) -> np.ndarray:
    """The ``LABELS`` map ``(nlat, nlon)`` int64, refused unless every value is a class."""
    raw = _squeeze_time(path, "LABELS", ds["LABELS"][:], shape)
    if not np.all(np.isfinite(raw)):
        raise ClimateFileError(path, "variable 'LABELS' contains NaN or Inf")
    bad = ~np.isin(raw, np.arange(NUM_CLASSES))
    if np.any(bad):
        values = np.unique(raw[bad])[:5]
        raise ClimateFileError(path, f"variable 'LABELS' has values outside {{0, 1, 2}}: {values.tolist()}")
    return raw.astype(np.int64)


def read_latlon(
    path: str | os.PathLike, *, labels: bool = True
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Read and validate one ClimateNet netCDF file on its own grid.

    Returns
    -------
    fields : float32 ``(16, nlat, nlon)`` in :data:`VARIABLES` order, file units
    labels : int64 ``(nlat, nlon)`` with values in {0, 1, 2} (``None`` if ``labels=False``)
    lat, lon : float64 ``(nlat,)``, ``(nlon,)`` degrees, in the file's order

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ClimateFileError (a ValueError)
        Unreadable file (or a folder), missing variables (all named), NaN/Inf in a field
        (named), labels outside {0, 1, 2}, a non-monotonic or 2-D (curvilinear) grid, a grid
        that does not cover the globe or is not in degrees (``units`` attributes, where
        present, must be degrees), or mismatched shapes. Latitude and longitude may be
        ascending or descending; a duplicated periodic longitude column (0 and 360) is allowed.
    ImportError
        netCDF4 is not installed (the message names the extra ``meshcnn[climate]``).
    """
    path = _existing_file(path)
    netCDF4 = _netcdf4()
    verify_checksum_trailer(path)  # files written by meshcnn before issue 21
    try:
        ds = netCDF4.Dataset(path, "r")
    except (OSError, RuntimeError, ValueError, TypeError, UnicodeError, MemoryError) as exc:
        raise ClimateFileError(path, f"unreadable netCDF file ({exc})") from exc
    try:
        ds.set_auto_mask(False)
        names = set(ds.variables)
        wanted = list(VARIABLES) + (["LABELS"] if labels else [])
        missing = [v for v in wanted + ["lat", "lon"] if v not in names]
        if missing:
            raise ClimateFileError(path, f"missing variables: {', '.join(missing)}")
        _check_units(path, "lat", ds["lat"])
        _check_units(path, "lon", ds["lon"])
        lat = _check_axis(path, "lat", ds["lat"][:])
        lon = _check_axis(path, "lon", ds["lon"][:])
        _check_global(path, lat, lon)
        shape = (len(lat), len(lon))
        fields = np.empty((len(VARIABLES),) + shape, dtype=np.float32)
        for c, name in enumerate(VARIABLES):
            fields[c] = _read_field(path, ds, name, shape, netCDF4.default_fillvals)
        label_map = _read_labels(path, ds, shape) if labels else None
    except ClimateFileError:
        raise
    except (
        OSError,
        RuntimeError,
        IndexError,
        KeyError,
        ValueError,
        TypeError,
        UnicodeError,
        OverflowError,
        MemoryError,
    ) as exc:  # a damaged file fails inside netCDF4/HDF5 in many ways
        raise ClimateFileError(path, f"unreadable netCDF file ({type(exc).__name__}: {exc})") from exc
    finally:
        try:
            ds.close()
        except (OSError, RuntimeError):
            pass  # nothing was written; the read above already succeeded or raised
    return fields, label_map, lat, lon


def regrid_sample(
    fields: np.ndarray, labels: np.ndarray | None, lat: np.ndarray, lon: np.ndarray, level: int | Grid
) -> tuple[np.ndarray, np.ndarray | None]:
    """Lat-lon sample -> mesh sample: fields bilinear ``(16, V)`` float32, labels nearest ``(V,)`` int64.

    Uses the cached sparse matrices of :func:`meshcnn.grids.latlon_to_mesh` (one product per sample).

    Parameters
    ----------
    fields : (16, nlat, nlon) array
    labels : (nlat, nlon) int array or None
    lat, lon : 1-D arrays
        The grid's coordinates, degrees.
    level : int or grid
        Icosphere level, or the sphere grid of the samples (:func:`meshcnn.grids.sphere_grid`,
        e.g. a :class:`~meshcnn.grids.HealpixGrid`).

    Returns
    -------
    data : (16, V) float32 array
    labels : (V,) int64 array or None
        ``None`` when ``labels`` is.
    """
    data = regrid.apply(regrid.latlon_to_mesh(lat, lon, level, "bilinear"), fields.astype(np.float64))
    mesh_labels = None
    if labels is not None:
        mesh_labels = regrid.apply(regrid.latlon_to_mesh(lat, lon, level, "nearest"), labels).astype(np.int64)
    return data.astype(np.float32), mesh_labels


def read_climatenet(path: str | os.PathLike, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a ClimateNet netCDF file onto the icosphere of ``level``.

    Fields are interpolated bilinearly, labels by nearest neighbour
    (:mod:`meshcnn.grids.regrid`). Errors as in :func:`read_latlon`.

    Parameters
    ----------
    path : str or path-like
    level : int
        Icosphere level.

    Returns
    -------
    data : (16, V) float32 array
        In :data:`VARIABLES` order and file units (un-normalized).
    labels : (V,) int64 array
        In {0, 1, 2}.
    """
    level = check_level(level)
    fields, labels, lat, lon = read_latlon(path)
    data, mesh_labels = regrid_sample(fields, labels, lat, lon, level)
    return data, mesh_labels


def read_ugscnn(path: str | os.PathLike, level: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Read one UGSCNN preprocessed sample: ``data`` (16, V) float32 and one-hot ``labels`` (3, V).

    UGSCNN's files are on level 5.

    Parameters
    ----------
    path : str or path-like
        A ``.npz`` file with arrays ``data`` and ``labels``.
    level : int
        Must match the file's vertex count (default 5).

    Returns
    -------
    data : (16, V) float32 array
    labels : (V,) int64 array
        Like :func:`read_climatenet`.

    Raises
    ------
    ClimateFileError
        If the file is missing or unreadable, an array is missing or of the wrong shape,
        ``data`` holds NaN or Inf, or ``labels`` is not one-hot over 3 classes.
    """
    path = _existing_file(path, "UGSCNN sample file")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("data", "labels") if k not in f.files]
            if missing:
                raise ClimateFileError(path, f"missing arrays: {', '.join(missing)}")
            data, onehot = f["data"], f["labels"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ClimateFileError):
            raise
        raise ClimateFileError(path, f"unreadable .npz file ({exc})") from exc
    v = num_vertices_at(check_level(level))
    if data.shape != (len(VARIABLES), v):
        raise ClimateFileError(path, f"'data' has shape {data.shape}, expected (16, {v}) for level {level}")
    if onehot.shape != (NUM_CLASSES, v):
        raise ClimateFileError(path, f"'labels' has shape {onehot.shape}, expected (3, {v}) for level {level}")
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        raise ClimateFileError(path, f"'data' channel {VARIABLES[int(np.argmin(finite))]} contains NaN or Inf")
    if not (np.isin(onehot, (0, 1)).all() and np.all(onehot.sum(axis=0) == 1)):
        raise ClimateFileError(path, "'labels' is not one-hot over 3 classes")
    return data.astype(np.float32), np.argmax(onehot, axis=0).astype(np.int64)


def write_ugscnn(path: str | os.PathLike, data: np.ndarray, labels: np.ndarray) -> None:
    """Write a sample in the UGSCNN format (``data`` float32 (16, V), ``labels`` one-hot (3, V)).

    Parameters
    ----------
    path : str or path-like
    data : (16, V) array
    labels : (V,) int array
        Class indices in {0, 1, 2}, written one-hot.
    """
    onehot = np.zeros((NUM_CLASSES, len(labels)), dtype=np.float32)
    onehot[labels, np.arange(len(labels))] = 1
    save_npz(path, data=np.asarray(data, dtype=np.float32), labels=onehot)
