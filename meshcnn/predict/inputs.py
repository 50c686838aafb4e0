"""The input side of ``meshcnn predict``: finding the netCDF files (and Zarr stores) and reading their fields.

A Zarr store (a folder ``NAME.zarr``, as ``xarray.Dataset.to_zarr`` writes it) is read through
the same :class:`FileReader`, by an adapter that gives it the netCDF4 interface the reader
uses (:class:`ZarrSource`: raw values, CF attributes, chunking); its output is ``NAME.nc``.

A file holds the model's variables on any global 1-D lat-lon grid the regridding
accepts (either latitude order, ``0..360`` or ``-180..180`` longitude, Gaussian or
equiangular), with or without one time dimension of any length. Fields are read as
float32 with NaN at missing values, in the file's own grid order.

A file is read in chunks of time steps by one :class:`FileReader`, which keeps it open
and reads whole HDF5 chunks (plus read-ahead up to :data:`READ_AHEAD_BYTES`), then
slices the steps asked for in memory: each compressed chunk is decompressed once, not
once per chunk of steps that touches it. The cost against a plain netCDF4 read is in
``experiments/benchmark/RESULTS.md``, "Predict reading at disk speed (issue 21)".
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.climate import ClimateFileError, verify_checksum_trailer
from .predictor import PredictError

__all__ = [
    "find_inputs",
    "read_fields",
    "FileReader",
    "READ_AHEAD_BYTES",
    "ZarrSource",
    "is_zarr",
    "output_name",
    "open_source",
]

LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "longitude")

#: Decoded data a :class:`FileReader` keeps in memory beyond the time steps asked for, all
#: variables together: it reads whole HDF5 chunks along time, and as many more whole
#: chunks as fit in this, so that a file read in chunks of a few time steps decompresses
#: each HDF5 chunk once and makes few netCDF4 calls. The steps asked for (and the whole
#: HDF5 chunks holding them) are always read, whatever this is.
READ_AHEAD_BYTES = 64 * 2**20


def is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Zarr store: a folder with Zarr metadata (``zarr.json``, ``.zgroup`` or ``.zattrs``)."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in ("zarr.json", ".zgroup", ".zattrs"))


def output_name(path: str | os.PathLike) -> str:
    """The name of the output of input ``path`` in ``--out``: the same name, ``NAME.nc`` for a store ``NAME.zarr``."""
    path = Path(path)
    return f"{path.stem}.nc" if is_zarr(path) else path.name


def find_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The netCDF files and Zarr stores named or inside the given folders (``*.nc``, ``*.zarr``, sorted per folder,
    recursively).

    Parameters
    ----------
    paths : iterable of path-like
        Files or Zarr stores, or folders searched recursively (hidden files left out).

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
        if is_zarr(p):
            files.append(p)
        elif p.is_dir():
            found = [f for f in p.rglob("*.nc") if f.is_file() and not f.name.startswith(".")]
            stores = [f for f in p.rglob("*.zarr") if is_zarr(f) and not f.name.startswith(".")]
            files.extend(sorted(found + stores))
        elif p.is_file():
            files.append(p)
        else:
            raise PredictError(f"{p}: no such file or folder")
    if not files:
        raise PredictError("no input netCDF files (*.nc) or Zarr stores (*.zarr) found")
    seen: dict[str, Path] = {}
    for f in files:
        name = output_name(f)
        if name in seen:
            raise PredictError(
                f"{f}: same file name as {seen[name]}; outputs are named after the inputs, "
                "so predict the two folders into different --out folders"
            )
        seen[name] = f
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


def _fill_values(var: Any) -> list[Any]:
    """The values that mark a missing point of ``var``: its ``_FillValue`` and ``missing_value``, or (no
    ``_FillValue`` attribute) the netCDF default fill of its type; NaN fills left out (NaN is missing already)."""
    import netCDF4

    fills = [getattr(var, name) for name in ("_FillValue", "missing_value") if hasattr(var, name)]
    if not hasattr(var, "_FillValue") and var.dtype.kind in "fiu" and var.dtype.itemsize > 1:
        default = netCDF4.default_fillvals.get(var.dtype.str[1:])
        if default is not None:
            fills.append(default)
    values = []
    for fill in fills:
        for value in np.atleast_1d(np.asarray(fill)).tolist():
            if not (isinstance(value, float) and np.isnan(value)):
                values.append(np.asarray(value, dtype=var.dtype))
    return values


class _Variable:
    """One variable of an open file: its layout, how to decode it, and the block of time steps in memory.

    Parameters
    ----------
    var : netCDF4.Variable
    time_dim : str or None
        Its time dimension.
    order : list of int
        The axes of ``var`` in ``(time,) lat, lon`` order.
    """

    def __init__(self, var: Any, time_dim: str | None, order: list[int]) -> None:
        var.set_auto_maskandscale(False)
        self.var, self.order = var, order
        self.time_axis = var.dimensions.index(time_dim) if time_dim else None
        self.fills = _fill_values(var)
        self.scale, self.offset = getattr(var, "scale_factor", None), getattr(var, "add_offset", None)
        chunking = var.chunking()
        self.chunk_steps = 1  # contiguous storage: any step range is one direct read
        if self.time_axis is not None and isinstance(chunking, (list, tuple)):
            self.chunk_steps = max(int(chunking[self.time_axis]), 1)
            var.set_var_chunk_cache(size=0)  # whole chunks only: HDF5 need not keep a second copy
        self.step_bytes = var.dtype.itemsize * int(np.prod(var.shape)) // max(self._num_steps(), 1)
        self.block: tuple[int, int, np.ndarray] | None = None  # (first step, end step, raw values in file order)

    def _num_steps(self) -> int:
        return self.var.shape[self.time_axis] if self.time_axis is not None else 1

    def raw(self, t0: int, t1: int, budget: int) -> np.ndarray:
        """The raw values of steps ``[t0, t1)`` in file order, from the block in memory (read when needed).

        A new block starts at the HDF5 chunk holding ``t0`` and spans whole chunks, at least up
        to ``t1``, and more while it stays within ``budget`` bytes.
        """
        if self.time_axis is None:
            if self.block is None:
                self.block = (0, 1, np.asarray(self.var[...]))
            return self.block[2]
        if self.block is None or t0 < self.block[0] or t1 > self.block[1]:
            n, cs = self._num_steps(), self.chunk_steps
            b0 = t0 // cs * cs
            b1 = -(-t1 // cs) * cs
            more = (budget // max(self.step_bytes, 1) - (b1 - b0)) // cs * cs
            b1 = min(b1 + max(more, 0), n)
            keep, start = None, b0  # the old block's whole chunks from b0 on are kept, not read again
            if self.block is not None and self.block[0] <= b0 < self.block[1] <= b1:
                keep, start = self._steps(self.block, b0, self.block[1]), self.block[1]
            self.block = None  # free it before reading the next one
            index = tuple(slice(start, b1) if a == self.time_axis else slice(None) for a in range(self.var.ndim))
            values = np.asarray(self.var[index])
            if keep is not None:
                values = np.concatenate([keep, values], axis=self.time_axis)
            self.block = (b0, b1, values)
        return self._steps(self.block, t0, t1)

    def _steps(self, block: tuple[int, int, np.ndarray], t0: int, t1: int) -> np.ndarray:
        """Steps ``[t0, t1)`` of ``block`` (a view)."""
        b0, _, values = block
        index = tuple(slice(t0 - b0, t1 - b0) if a == self.time_axis else slice(None) for a in range(values.ndim))
        return values[index]

    def decode_into(self, raw: np.ndarray, out: np.ndarray) -> None:
        """Write ``raw`` (file order) into ``out`` ``(T, nlat, nlon)`` float32: NaN at missing values,
        ``scale_factor``/``add_offset`` applied.

        The same values as netCDF4's automatic masking and scaling, without its masked-array copies.
        """
        raw = np.transpose(raw, self.order).reshape(out.shape)
        out[...] = raw
        if self.scale is not None:
            out *= np.float32(self.scale)
        if self.offset is not None:
            out += np.float32(self.offset)
        for fill in self.fills:
            invalid = raw == fill
            if invalid.any():
                out[invalid] = np.nan


class _ZarrVariable:
    """One variable of a :class:`ZarrSource`, with the netCDF4 variable interface the readers use."""

    def __init__(self, var: Any) -> None:
        self._var = var
        self.dimensions, self.shape = tuple(var.dims), tuple(var.shape)
        self.dtype = var.dtype.newbyteorder("=") if var.dtype.isnative else var.dtype  # '<f8' as netCDF4's 'f8'
        self.ndim = len(self.shape)
        self._attrs = dict(var.attrs)
        if "_FillValue" not in self._attrs and var.encoding.get("_FillValue") is not None:
            self._attrs["_FillValue"] = var.encoding["_FillValue"]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_attrs"][name]
        except KeyError:
            raise AttributeError(name) from None

    def ncattrs(self) -> list[str]:
        return list(self._attrs)

    def getncattr(self, name: str) -> Any:
        return self._attrs[name]

    def set_auto_maskandscale(self, flag: bool) -> None:
        """Values are always raw (opened with ``mask_and_scale=False``)."""

    def set_var_chunk_cache(self, **kwargs: Any) -> None:
        """No HDF5 chunk cache."""

    def chunking(self) -> Any:
        chunks = self._var.encoding.get("chunks") or self._var.encoding.get("preferred_chunks")
        if isinstance(chunks, dict):
            chunks = [chunks.get(d, n) for d, n in zip(self.dimensions, self.shape)]
        return list(chunks) if chunks else "contiguous"

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(self._var[index].values)


class _Dimension:
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def isunlimited(self) -> bool:
        return False


class ZarrSource:
    """A Zarr store with the read-only netCDF4 ``Dataset`` interface of :class:`FileReader` and the output writer.

    Opened with xarray (``decode_times=False``, ``mask_and_scale=False``, no Dask): raw values and CF
    attributes, read lazily, only the chunks a slice needs.

    Parameters
    ----------
    path : path-like
        The store (a folder).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import xarray as xr

        with warnings.catch_warnings():  # a store without consolidated metadata is fine
            warnings.filterwarnings("ignore", message=".*consolidated metadata", category=RuntimeWarning)
            self._ds = xr.open_zarr(path, consolidated=None, decode_times=False, mask_and_scale=False, chunks=None)
        self.variables = {name: _ZarrVariable(var) for name, var in self._ds.variables.items()}
        self.dimensions = {name: _Dimension(size) for name, size in self._ds.sizes.items()}

    def __getitem__(self, name: str) -> _ZarrVariable:
        return self.variables[name]

    def close(self) -> None:
        self._ds.close()

    def __enter__(self) -> ZarrSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_source(path: str | os.PathLike) -> Any:
    """The input ``path`` open for reading: a ``netCDF4.Dataset``, or a :class:`ZarrSource` for a Zarr store."""
    if is_zarr(path):
        return ZarrSource(path)
    import netCDF4

    return netCDF4.Dataset(path, "r")


def _open(path: Path, verify: bool) -> Any:
    """The file as an open ``netCDF4.Dataset``.

    With ``verify``, a file that ends with the SHA-256 trailer of files written by meshcnn
    before issue 21 is checked first (:func:`meshcnn.data.climate.verify_checksum_trailer`):
    a damaged one is a :class:`ClimateFileError` before HDF5 parses it. Files without one
    (every other file, and those meshcnn writes now) rely on HDF5's own checks, such as
    the Fletcher-32 checksums of meshcnn's files.
    """
    import netCDF4

    if is_zarr(path):
        try:
            return ZarrSource(path)
        except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise ClimateFileError(path, f"unreadable Zarr store ({exc})") from exc
    if not path.is_file():
        raise ClimateFileError(path, "no such file")
    if verify:
        verify_checksum_trailer(path)
    try:
        return netCDF4.Dataset(path, "r")
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
    return {
        "lat": lat,
        "lon": lon,
        "lat_name": lat_name,
        "lon_name": lon_name,
        "lat_dim": ds[lat_name].dimensions[0],
        "lon_dim": ds[lon_name].dimensions[0],
    }


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


def nan_message(name: str, missing: int, points: int) -> str:
    """Why a variable with ``missing`` of its ``points`` values NaN or missing is refused (without ``--allow-nan``).

    Parameters
    ----------
    name : str
        The variable.
    missing, points : int
        Missing values and all values read.

    Returns
    -------
    str
        The count and fraction, and what to do: ``--allow-nan`` for scattered gaps; for a
        variable missing everywhere, that the model would only see the training mean.
    """
    text = f"variable {name!r} contains NaN or missing values ({missing} points, {missing / points:.1%} of those read)"
    if missing == points:
        return (
            f"{text}: it is missing everywhere, so there is nothing to predict from; --allow-nan would "
            "fill all of it with the training mean, which it does only with --max-nan-fraction 1"
        )
    return (
        f"{text}; use --allow-nan to regrid from the valid points only (it refuses a variable missing on more "
        "than --max-nan-fraction of the globe)"
    )


class FileReader:
    """One netCDF input, open, read in chunks of time steps (:meth:`read`); close it with :meth:`close`.

    The file's variables, dimensions and grid are checked when it is opened. Each
    variable keeps one block of raw values in memory: the whole HDF5 chunks along time
    that hold the steps last asked for, extended by whole chunks while all the blocks
    together stay within ``read_ahead_bytes``; steps inside the block are sliced from
    it. Memory is therefore bounded by the steps asked for, their HDF5 chunks and
    ``read_ahead_bytes``, not by the length of the file.

    Parameters
    ----------
    path : path-like
        The netCDF file.
    variables : sequence of str
        The variables to read, in channel order.
    allow_nan : bool
        Accept NaN and missing values (else :meth:`read` raises).
    verify : bool
        Check the SHA-256 trailer of files written by meshcnn before issue 21, if there.
    read_ahead_bytes : int
        See :data:`READ_AHEAD_BYTES`.

    Attributes
    ----------
    header : dict
        ``lat``, ``lon`` (degrees, file order), ``lat_name``, ``lon_name``, ``time_name``
        (``None`` without a time dimension, then one step) and ``num_steps``.

    Raises
    ------
    ClimateFileError
        Naming the file: unreadable, missing variables (all named), a variable not on the
        ``(lat, lon)`` grid, more than one extra dimension, or unequal numbers of steps.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        variables: Sequence[str],
        *,
        allow_nan: bool = False,
        verify: bool = True,
        read_ahead_bytes: int = READ_AHEAD_BYTES,
    ) -> None:
        self.path, self.names, self.allow_nan = Path(path), list(variables), allow_nan
        self.read_ahead_bytes = read_ahead_bytes
        self.ds = _open(self.path, verify)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        path, ds = self.path, self.ds
        try:
            grid = _grid(ds, path, self.names)
            time_name, num_steps, self.vars = None, None, []
            for name in self.names:
                var = ds[name]
                time_dim = _time_dimension(var, name, grid, time_name, path)
                time_name = time_name or time_dim
                n = var.shape[var.dimensions.index(time_dim)] if time_dim else 1
                if num_steps is not None and n != num_steps:
                    raise ClimateFileError(path, f"variable {name!r} has {n} time steps, others {num_steps}")
                num_steps = n
                dims = var.dimensions
                order = ([dims.index(time_dim)] if time_dim else []) + [
                    dims.index(grid["lat_dim"]),
                    dims.index(grid["lon_dim"]),
                ]
                self.vars.append(_Variable(var, time_dim, order))
            self.time = None
            if time_name is not None and time_name in ds.variables:
                self.time = np.asarray(ds[time_name][:])
            if not num_steps:
                raise ClimateFileError(path, "no time steps")
        except (OSError, RuntimeError, IndexError, KeyError) as exc:
            raise ClimateFileError(path, f"unreadable netCDF file ({exc})") from exc
        self.header = {key: grid[key] for key in ("lat", "lon", "lat_name", "lon_name")}
        self.header.update(time_name=time_name, num_steps=num_steps)

    def read(self, steps: tuple[int, int] | None = None) -> dict[str, Any]:
        """The fields of time steps ``steps = (t0, t1)`` (all by default).

        Returns
        -------
        dict
            :attr:`header`, plus ``fields`` float32 ``(T, C, nlat, nlon)`` (file grid order,
            NaN where missing), ``time`` (the values of the steps read, or ``None``) and
            ``missing`` (``{variable: count}`` of the NaN or missing values, variables
            without any left out).

        Raises
        ------
        ClimateFileError
            Naming the file and variable: Inf, or NaN/missing values without ``allow_nan``
            (with their count and fraction), or a file HDF5 cannot read (a Fletcher-32
            checksum that does not match included).
        """
        n = self.header["num_steps"]
        t0, t1 = (0, n) if steps is None else (max(int(steps[0]), 0), min(int(steps[1]), n))
        if self.header["time_name"] is None:
            t0, t1 = 0, 1
        nlat, nlon = len(self.header["lat"]), len(self.header["lon"])
        fields = np.empty((t1 - t0, len(self.vars), nlat, nlon), dtype=np.float32)
        budget = self.read_ahead_bytes // max(len(self.vars), 1)
        missing = {}
        try:
            for c, (name, v) in enumerate(zip(self.names, self.vars)):
                out = fields[:, c]
                v.decode_into(v.raw(t0, t1, budget), out)
                if not np.isfinite(out).all():
                    if np.isinf(out).any():
                        raise ClimateFileError(self.path, f"variable {name!r} contains Inf")
                    missing[name] = int(np.count_nonzero(np.isnan(out)))
                    if not self.allow_nan:
                        raise ClimateFileError(self.path, nan_message(name, missing[name], out.size))
        except (OSError, RuntimeError, IndexError, KeyError) as exc:
            raise ClimateFileError(self.path, f"unreadable netCDF file ({exc})") from exc
        out = dict(self.header)
        out.update(fields=fields, missing=missing, time=self.time[t0:t1] if self.time is not None else None)
        return out

    def close(self) -> None:
        """Close the file and drop the blocks in memory."""
        self.vars = []
        ds, self.ds = getattr(self, "ds", None), None
        if ds is not None:
            try:
                ds.close()
            except (OSError, RuntimeError):
                pass  # only read from

    def __enter__(self) -> FileReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_fields(
    path: str | os.PathLike,
    variables: Sequence[str],
    *,
    allow_nan: bool = False,
    steps: tuple[int, int] | None = None,
    header_only: bool = False,
) -> dict[str, Any]:
    """Read the model's variables from one netCDF file on its own grid (one :class:`FileReader` call).

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
        with ``header_only``), ``missing`` (``{variable: count}`` of missing values; absent
        with ``header_only``), ``lat``, ``lon`` (degrees, file order), ``lat_name``,
        ``lon_name``, ``time_name`` (``None`` without a time dimension, then ``T = 1``),
        ``time`` (the values of the steps read, or ``None``) and ``num_steps`` (in the file).

    Raises
    ------
    ClimateFileError
        Naming the file: unreadable, missing variables (all named), a variable not on the ``(lat, lon)``
        grid, more than one extra dimension, Inf, or NaN/missing values without ``allow_nan``.
    """
    with FileReader(path, variables, allow_nan=allow_nan, verify=not header_only) as reader:
        if not header_only:
            return reader.read(steps)
        out = dict(reader.header)
        n = out["num_steps"]
        t0, t1 = (0, n) if steps is None else steps
        out["time"] = reader.time[t0:t1] if reader.time is not None else None
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
        with open_source(source) as ds:
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
