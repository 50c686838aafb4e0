"""The input side of ``meshcnn predict``: finding the netCDF files and reading their fields.

A file holds the model's variables on any global 1-D lat-lon grid the regridding
accepts (either latitude order, ``0..360`` or ``-180..180`` longitude, Gaussian or
equiangular), with or without one time dimension of any length. Fields are read as
float32 with NaN at missing values, in the file's own grid order.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.climate import ClimateFileError
from ..data.climate._format import _verified_content
from .predictor import PredictError

__all__ = ["find_inputs", "read_fields"]

LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "longitude")


def find_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The netCDF files named or inside the given folders (``*.nc``, sorted per folder, recursively).

    Parameters
    ----------
    paths : iterable of path-like
        Files, or folders searched recursively (hidden files left out).

    Returns
    -------
    list of Path

    Raises
    ------
    PredictError
        A path that does not exist, an empty selection, or two inputs with the same
        file name (their outputs would collide).
    """
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.nc") if f.is_file() and not f.name.startswith(".")))
        elif p.is_file():
            files.append(p)
        else:
            raise PredictError(f"{p}: no such file or folder")
    if not files:
        raise PredictError("no input netCDF files (*.nc) found")
    seen: dict[str, Path] = {}
    for f in files:
        if f.name in seen:
            raise PredictError(f"{f}: same file name as {seen[f.name]}; outputs are named after the inputs, "
                               "so predict the two folders into different --out folders")
        seen[f.name] = f
    return files


def find_name(ds: Any, names: Sequence[str], path: Path, what: str) -> str:
    """The first of ``names`` that is a variable of the open dataset ``ds``.

    Parameters
    ----------
    ds : netCDF4.Dataset
        The open dataset.
    names : sequence of str
        Candidate variable names, in order of preference.
    path : Path
        The dataset's file, for the error message.
    what : str
        What the variable is (e.g. ``"latitude"``), for the error message.

    Returns
    -------
    str

    Raises
    ------
    ClimateFileError
        If none of ``names`` is a variable of ``ds``.
    """
    for n in names:
        if n in ds.variables:
            return n
    raise ClimateFileError(path, f"no {what} coordinate variable (looked for {', '.join(names)})")


def _missing_mask(var: Any, raw: np.ndarray) -> np.ndarray | None:
    """Where ``raw`` holds the variable's ``_FillValue``, ``missing_value`` or (neither set) the netCDF default fill."""
    import netCDF4

    fills = [getattr(var, name) for name in ("_FillValue", "missing_value") if hasattr(var, name)]
    if not hasattr(var, "_FillValue") and raw.dtype.kind in "fiu" and raw.dtype.itemsize > 1:
        default = netCDF4.default_fillvals.get(raw.dtype.str[1:])
        if default is not None:
            fills.append(default)
    invalid = None
    for fill in fills:
        for value in np.atleast_1d(np.asarray(fill)).tolist():
            if isinstance(value, float) and np.isnan(value):
                continue  # NaN fill: NaN already
            hit = raw == np.asarray(value, dtype=raw.dtype)
            invalid = hit if invalid is None else invalid | hit
    return invalid


def _read_variable(var: Any, index: tuple = (slice(None),)) -> np.ndarray:
    """A netCDF variable as float32 with NaN at missing values and ``scale_factor``/``add_offset`` applied.

    The same values as netCDF4's automatic masking and scaling, without its masked-array
    copies (the time saved: ``experiments/benchmark/RESULTS.md``, "Moved from docstrings:
    training and prediction").
    """
    var.set_auto_maskandscale(False)
    raw = np.asarray(var[index])
    invalid = _missing_mask(var, raw)
    values = raw.astype(np.float32, copy=False)
    scale, offset = getattr(var, "scale_factor", None), getattr(var, "add_offset", None)
    if scale is not None or offset is not None:
        values = values * np.float32(1.0 if scale is None else scale) + np.float32(0.0 if offset is None else offset)
    if invalid is not None and invalid.any():
        values = np.array(values, copy=True) if np.shares_memory(values, raw) else values
        values[invalid] = np.nan
    return values


def _open(path: Path, verify: bool) -> Any:
    """The file as an open ``netCDF4.Dataset``.

    With ``verify``, a file ending with meshcnn's SHA-256 trailer (files written by
    :mod:`meshcnn.data.climate.synth`) is checked and opened from memory: a damaged file
    is a :class:`ClimateFileError` instead of being parsed by HDF5 (which can hang or read
    fill values on damaged chunk addresses). Other files are opened from disk.
    """
    import netCDF4

    if not path.is_file():
        raise ClimateFileError(path, "no such file")
    try:
        content = _verified_content(path) if verify else None
        return netCDF4.Dataset(path.name, "r", memory=content) if content is not None else netCDF4.Dataset(path, "r")
    except ClimateFileError:
        raise
    except (OSError, RuntimeError, ValueError, TypeError, UnicodeError, MemoryError) as exc:
        raise ClimateFileError(path, f"unreadable netCDF file ({exc})") from exc


def _grid(ds: Any, path: Path, variables: Sequence[str]) -> dict[str, Any]:
    """The file's grid: ``lat``, ``lon`` (degrees, file order), their variable and dimension names."""
    missing = [v for v in variables if v not in ds.variables]
    if missing:
        raise ClimateFileError(path, f"missing variables the checkpoint needs: {', '.join(missing)}")
    lat_name = find_name(ds, LAT_NAMES, path, "latitude")
    lon_name = find_name(ds, LON_NAMES, path, "longitude")
    lat = np.asarray(ds[lat_name][:], dtype=np.float64)
    lon = np.asarray(ds[lon_name][:], dtype=np.float64)
    if lat.ndim != 1 or lon.ndim != 1:
        raise ClimateFileError(path, f"latitude/longitude must be 1-D coordinates, got shapes {lat.shape}, {lon.shape}")
    return {"lat": lat, "lon": lon, "lat_name": lat_name, "lon_name": lon_name,
            "lat_dim": ds[lat_name].dimensions[0], "lon_dim": ds[lon_name].dimensions[0]}


def _time_dimension(var: Any, name: str, grid: dict[str, Any], time_name: str | None, path: Path) -> str | None:
    """The variable's dimension besides the grid's (its time axis), or ``None``; checks its layout."""
    dims, lat_dim, lon_dim = var.dimensions, grid["lat_dim"], grid["lon_dim"]
    if lat_dim not in dims or lon_dim not in dims:
        raise ClimateFileError(path, f"variable {name!r} has dimensions {dims}, not on the ({lat_dim}, {lon_dim}) grid")
    extra = [d for d in dims if d not in (lat_dim, lon_dim)]
    if len(extra) > 1:
        raise ClimateFileError(path, f"variable {name!r} has dimensions {dims}: one time dimension at most")
    if extra and time_name is not None and extra[0] != time_name:
        raise ClimateFileError(path, f"variable {name!r} has time dimension {extra[0]!r}, others {time_name!r}")
    nlat, nlon = len(grid["lat"]), len(grid["lon"])
    if tuple(var.shape[dims.index(d)] for d in (lat_dim, lon_dim)) != (nlat, nlon):
        raise ClimateFileError(path, f"variable {name!r} has shape {var.shape}, the grid is {nlat} x {nlon}")
    return extra[0] if extra else None


def _field(var: Any, name: str, grid: dict[str, Any], time_dim: str | None, steps: tuple[int, int] | None,
           allow_nan: bool, path: Path) -> np.ndarray:
    """The variable's values ``(T, nlat, nlon)`` float32 (time steps ``steps`` only, when given)."""
    dims = var.dimensions
    index = tuple(slice(*steps) if (d == time_dim and steps is not None) else slice(None) for d in dims)
    values = _read_variable(var, index)
    order = ([dims.index(time_dim)] if time_dim else []) + [dims.index(grid["lat_dim"]), dims.index(grid["lon_dim"])]
    values = np.transpose(values, order).reshape(-1, len(grid["lat"]), len(grid["lon"]))
    if np.isinf(values).any():
        raise ClimateFileError(path, f"variable {name!r} contains Inf")
    if not allow_nan and np.isnan(values).any():
        bad = int(np.count_nonzero(np.isnan(values)))
        raise ClimateFileError(path, f"variable {name!r} contains NaN or missing values ({bad} points); "
                                     "use --allow-nan to regrid from the valid points only")
    return values


def read_fields(path: str | os.PathLike, variables: Sequence[str], *, allow_nan: bool = False,
                steps: tuple[int, int] | None = None, header_only: bool = False) -> dict[str, Any]:
    """Read the model's variables from one netCDF file on its own grid.

    Parameters
    ----------
    path : path-like
        The netCDF file.
    variables : sequence of str
        The variables to read, in channel order.
    allow_nan : bool
        Accept NaN and missing values (else an error).
    steps : tuple of int, optional
        Read only the time steps ``[t0, t1)`` (all by default), for a long file read in chunks.
    header_only : bool
        Check the variables, dimensions and grid, read no field values.

    Returns
    -------
    dict
        ``fields`` float32 ``(T, C, nlat, nlon)`` (file order, NaN where missing; absent
        with ``header_only``), ``lat``, ``lon`` (degrees, file order), ``lat_name``,
        ``lon_name``, ``time_name`` (``None`` without a time dimension, then ``T = 1``),
        ``time`` (the values of the steps read, or ``None``) and ``num_steps`` (in the file).

    Raises
    ------
    ClimateFileError
        Naming the file: unreadable, missing variables (all named), a variable not on the ``(lat, lon)``
        grid, more than one extra dimension, Inf, or NaN/missing values without ``allow_nan``.
    """
    path = Path(path)
    ds = _open(path, verify=not header_only)
    try:
        grid = _grid(ds, path, variables)
        time_name, num_steps, arrays = None, None, []
        for name in variables:
            var = ds[name]
            time_dim = _time_dimension(var, name, grid, time_name, path)
            time_name = time_name or time_dim
            n = var.shape[var.dimensions.index(time_dim)] if time_dim else 1
            if num_steps is not None and n != num_steps:
                raise ClimateFileError(path, f"variable {name!r} has {n} time steps, others {num_steps}")
            num_steps = n
            if not header_only:
                arrays.append(_field(var, name, grid, time_dim, steps, allow_nan, path))
        time_values = None
        if time_name is not None and time_name in ds.variables:
            time_values = np.asarray(ds[time_name][slice(*steps) if steps is not None else slice(None)])
        if not num_steps:
            raise ClimateFileError(path, "no time steps")
    except (OSError, RuntimeError, IndexError, KeyError) as exc:
        raise ClimateFileError(path, f"unreadable netCDF file ({exc})") from exc
    finally:
        ds.close()
    out = {key: grid[key] for key in ("lat", "lon", "lat_name", "lon_name")}
    out.update(time_name=time_name, time=time_values, num_steps=num_steps)
    if not header_only:
        out["fields"] = np.stack(arrays, axis=1)
    return out


def time_strings(source: Path, time_name: str | None, steps: int) -> list[str]:
    """The file's time steps as text.

    Parameters
    ----------
    source : Path
        The netCDF file.
    time_name : str or None
        Its time variable; None for a file without one.
    steps : int
        How many ``""`` to return when there are no times to read.

    Returns
    -------
    list of str
        ISO dates of the file's time axis when it has CF units, else the raw values, else
        ``""`` (``steps`` of them: no time variable, or the file cannot be read).
    """
    if time_name is None:
        return [""] * steps
    import netCDF4

    try:
        with netCDF4.Dataset(source, "r") as ds:
            if time_name not in ds.variables:
                return [""] * steps
            var = ds[time_name]
            values = np.asarray(var[:])
            units = getattr(var, "units", None)
            calendar = getattr(var, "calendar", "standard")
        if units:
            try:
                dates = netCDF4.num2date(values, units, calendar)
                return [d.isoformat() if hasattr(d, "isoformat") else str(d) for d in np.atleast_1d(dates)]
            except (ValueError, TypeError):
                pass
        return [str(v) for v in np.atleast_1d(values)]
    except (OSError, RuntimeError, KeyError):
        return [""] * steps
