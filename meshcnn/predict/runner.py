r"""Segment new climate model output with a trained checkpoint: ``meshcnn predict``.

Everything the model needs comes from the checkpoint written by
``experiments/climate_segmentation/train.py`` (``extra``: the model ``config`` with
level, orientation and hemisphere flip, and the normalisation ``stats`` with the
variable names); nothing is re-derived from the new files.

Pipeline (one :class:`torch.utils.data.DataLoader` item per file, or per chunk of
``batch_size`` time steps of a long file, so memory stays flat in the number of files
and in their length):

1. *read* (worker): the required variables of one netCDF file on any global lat-lon
   grid the regridding accepts (either latitude order, ``0..360`` or ``-180..180``
   longitude, Gaussian or equiangular), with or without a time dimension of any length;
2. *regrid* (worker): bilinear to the icosphere (:mod:`meshcnn.grids.regrid`; with
   ``allow_nan`` missing values are skipped, ``skipna=True``, and vertices left
   without valid data get the training mean), then normalisation;
3. *model*: softmax class probabilities on the mesh, ``batch_size`` time steps at a time;
4. *regrid back*: the probabilities are interpolated to the file's grid (barycentric
   in the mesh triangles), then the argmax gives the labels, so labels follow the
   model's decision boundaries at the grid's resolution;
5. *write*: one netCDF per input, same name, in ``out`` (atomically: a temporary file,
   written chunk by chunk, renamed into place when complete, so a killed run never leaves
   a partial output); this stage also finds the events.

Output file
-----------
``LABELS`` (``int8``, dims ``(time, lat, lon)`` with the input's own dimension
names, coordinates, order and time axis, or ``(lat, lon)`` without time), with CF
``flag_values``/``flag_meanings``; with ``probabilities`` also ``PROBABILITIES``
``(time, class, lat, lon)`` float32. The mesh side is kept too, for event
statistics without re-running the model: ``MESH_LABELS`` ``(time, vertex)`` and
``mesh_lat``/``mesh_lon``, and the file's events as ``event_*`` variables along an
``event`` dimension (see :mod:`meshcnn.predict.events`). Global attributes:
``meshcnn_version``, ``checkpoint``, ``checkpoint_sha256``, ``mesh_level``,
``source_file``, ``meshcnn_complete = 1``.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import __version__
from ..grids import regrid
from .._progress import progress_bar
from ..data.climate.reader import CLASSES, VARIABLES, ClimateFileError
from .events import EVENT_COLUMNS, find_events, frequency_path, save_frequency
from ..geometry.mesh import icosphere

__all__ = ["PredictError", "Predictor", "load_predictor", "find_inputs", "predict_files", "read_fields",
           "file_sha256", "STAGES"]

log = logging.getLogger(__name__)

#: The timed stages, in pipeline order.
STAGES = ("read", "regrid", "model", "regrid_back", "write")
_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "longitude")
_EVENT_VARS = ("class", "time_index", "area_km2", "centroid_lat", "centroid_lon", "num_vertices", "min_psl", "max_tmq")


class PredictError(RuntimeError):
    """A problem that stops ``meshcnn predict`` (a bad checkpoint, output folder or input file)."""


# --------------------------------------------------------------------------------- checkpoint
def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Predictor:
    """A trained spherical segmentation model with everything needed to apply it."""

    model: torch.nn.Module
    level: int
    variables: tuple[str, ...]
    mean: np.ndarray  # (C,) float32
    std: np.ndarray  # (C,) float32
    class_names: tuple[str, ...]
    checkpoint: str
    sha256: str
    config: dict[str, Any] = field(default_factory=dict)


def load_predictor(path: str | os.PathLike, device: str | torch.device = "cpu") -> Predictor:
    """Load a checkpoint of ``experiments/climate_segmentation/train.py`` for prediction.

    Raises
    ------
    PredictError
        The file is missing, unreadable, not a meshcnn checkpoint, or not a spherical
        segmentation checkpoint (no model config or normalisation statistics, a planar model).
    """
    from ..tasks.segmentation import build_model
    from ..train.loop import load_checkpoint

    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise PredictError(f"{path}: no such checkpoint")
    try:
        ckpt = load_checkpoint(path)
    except (ValueError, FileNotFoundError) as exc:
        raise PredictError(f"{path}: not a meshcnn segmentation checkpoint ({exc})") from exc
    extra = ckpt.get("extra") or {}
    config, stats = extra.get("config"), extra.get("stats")
    if not isinstance(config, dict) or not isinstance(stats, dict) or "mean" not in stats or "kind" not in config:
        raise PredictError(f"{path}: not a meshcnn segmentation checkpoint (no model config and normalisation "
                           "statistics in its 'extra'; write it with experiments/climate_segmentation/train.py)")
    if config["kind"] != "spherical":
        raise PredictError(f"{path}: a {config['kind']!r} model; meshcnn predict runs spherical U-Nets only")
    variables = tuple(stats.get("variables") or VARIABLES)
    mean = np.asarray(stats["mean"], dtype=np.float32)
    std = np.asarray(stats["std"], dtype=np.float32)
    if mean.shape != (len(variables),) or std.shape != (len(variables),) or config.get("in_channels") != len(variables):
        raise PredictError(f"{path}: normalisation statistics do not match the model's {config.get('in_channels')} inputs")
    class_names = tuple(stats.get("classes") or CLASSES)
    try:
        model = build_model(config)
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise PredictError(f"{path}: the weights do not fit the model config ({exc})") from exc
    model.eval().to(device)
    return Predictor(model=model, level=int(config["level"]), variables=variables, mean=mean, std=std,
                     class_names=class_names, checkpoint=str(path), sha256=file_sha256(path), config=config)


# ------------------------------------------------------------------------------------ inputs
def find_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The netCDF files named or inside the given folders (``*.nc``, sorted per folder, recursively).

    Raises :class:`PredictError` for a path that does not exist, an empty selection,
    and two inputs with the same file name (their outputs would collide).
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


def _find_name(ds: Any, names: Sequence[str], path: Path, what: str) -> str:
    for n in names:
        if n in ds.variables:
            return n
    raise ClimateFileError(path, f"no {what} coordinate variable (looked for {', '.join(names)})")


def _read_variable(var: Any, index: tuple = (slice(None),)) -> np.ndarray:
    """A netCDF variable as float32 with NaN at missing values (``_FillValue``, ``missing_value``, or the
    default fill value when neither is set) and ``scale_factor``/``add_offset`` applied.

    The same values as netCDF4's automatic masking and scaling, without its masked-array
    copies (about half the read time of a 768 x 1152 field).
    """
    import netCDF4

    var.set_auto_maskandscale(False)
    raw = np.asarray(var[index])
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
    values = raw.astype(np.float32, copy=False)
    scale, offset = getattr(var, "scale_factor", None), getattr(var, "add_offset", None)
    if scale is not None or offset is not None:
        values = values * np.float32(1.0 if scale is None else scale) + np.float32(0.0 if offset is None else offset)
    if invalid is not None and invalid.any():
        values = np.array(values, copy=True) if np.shares_memory(values, raw) else values
        values[invalid] = np.nan
    return values


def _verified_content(path: Path) -> bytes | None:
    """The file's bytes, checked, when it ends with meshcnn's SHA-256 trailer (files written by
    :mod:`meshcnn.data.climate.synth`); ``None`` for any other file (read by netCDF4 directly).

    A damaged file with a trailer is a :class:`ClimateFileError` instead of being parsed by
    HDF5 (which can hang or read fill values on damaged chunk addresses).
    """
    try:
        from ..data.climate.reader import _TRAILER_SIZE, _strip_checksum_trailer
    except ImportError:  # pragma: no cover - an older reader without trailers
        return None
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(size - _TRAILER_SIZE, 0))
        if b"\nmeshcnn-sha256:" not in f.read():
            return None
        f.seek(0)
        content = f.read()
    return _strip_checksum_trailer(path, content)


def read_fields(path: str | os.PathLike, variables: Sequence[str], *, allow_nan: bool = False,
                steps: tuple[int, int] | None = None, header_only: bool = False) -> dict[str, Any]:
    """Read the model's variables from one netCDF file on its own grid.

    Parameters
    ----------
    path : the netCDF file
    variables : the variables to read, in channel order
    allow_nan : accept NaN and missing values (else an error)
    steps : read only the time steps ``[t0, t1)`` (all by default): a long file is
        processed in chunks, so memory does not grow with its length
    header_only : check the variables, dimensions and grid, read no field values

    Returns
    -------
    dict with ``fields`` float32 ``(T, C, nlat, nlon)`` (file order, NaN where missing;
    absent with ``header_only``), ``lat``, ``lon`` (degrees, file order), ``lat_name``,
    ``lon_name``, ``time_name`` (``None`` without a time dimension, then ``T = 1``),
    ``time`` (the values of the steps read, or ``None``) and ``num_steps`` (in the file).

    Raises
    ------
    ClimateFileError
        Unreadable file, missing variables (all named), a variable not on the
        ``(lat, lon)`` grid, more than one extra dimension, Inf, or NaN/missing
        values without ``allow_nan``. The message names the file.
    """
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise ClimateFileError(path, "no such file")
    try:
        content = _verified_content(path) if not header_only else None
        ds = netCDF4.Dataset(path.name, "r", memory=content) if content is not None else netCDF4.Dataset(path, "r")
    except ClimateFileError:
        raise
    except (OSError, RuntimeError, ValueError, TypeError, UnicodeError, MemoryError) as exc:
        raise ClimateFileError(path, f"unreadable netCDF file ({exc})") from exc
    try:
        missing = [v for v in variables if v not in ds.variables]
        if missing:
            raise ClimateFileError(path, f"missing variables the checkpoint needs: {', '.join(missing)}")
        lat_name = _find_name(ds, _LAT_NAMES, path, "latitude")
        lon_name = _find_name(ds, _LON_NAMES, path, "longitude")
        lat = np.asarray(ds[lat_name][:], dtype=np.float64)
        lon = np.asarray(ds[lon_name][:], dtype=np.float64)
        if lat.ndim != 1 or lon.ndim != 1:
            raise ClimateFileError(path, f"latitude/longitude must be 1-D coordinates, got shapes {lat.shape}, {lon.shape}")
        lat_dim, lon_dim = ds[lat_name].dimensions[0], ds[lon_name].dimensions[0]
        time_name = None
        arrays = []
        num_steps = None
        for name in variables:
            var = ds[name]
            dims = var.dimensions
            if lat_dim not in dims or lon_dim not in dims:
                raise ClimateFileError(path, f"variable {name!r} has dimensions {dims}, not on the "
                                             f"({lat_dim}, {lon_dim}) grid")
            extra = [d for d in dims if d not in (lat_dim, lon_dim)]
            if len(extra) > 1:
                raise ClimateFileError(path, f"variable {name!r} has dimensions {dims}: one time dimension at most")
            if extra:
                if time_name is None:
                    time_name = extra[0]
                elif extra[0] != time_name:
                    raise ClimateFileError(path, f"variable {name!r} has time dimension {extra[0]!r}, "
                                                 f"others {time_name!r}")
            if tuple(var.shape[dims.index(d)] for d in (lat_dim, lon_dim)) != (len(lat), len(lon)):
                raise ClimateFileError(path, f"variable {name!r} has shape {var.shape}, the grid is "
                                             f"{len(lat)} x {len(lon)}")
            n = var.shape[dims.index(extra[0])] if extra else 1
            if num_steps is not None and n != num_steps:
                raise ClimateFileError(path, f"variable {name!r} has {n} time steps, others {num_steps}")
            num_steps = n
            if header_only:
                continue
            index = tuple(slice(*steps) if (d in extra and steps is not None) else slice(None) for d in dims)
            values = _read_variable(var, index)
            order = [dims.index(d) for d in extra] + [dims.index(lat_dim), dims.index(lon_dim)]
            values = np.transpose(values, order).reshape(-1, len(lat), len(lon))
            if np.isinf(values).any():
                raise ClimateFileError(path, f"variable {name!r} contains Inf")
            if not allow_nan and np.isnan(values).any():
                bad = int(np.count_nonzero(np.isnan(values)))
                raise ClimateFileError(path, f"variable {name!r} contains NaN or missing values ({bad} points); "
                                             "use --allow-nan to regrid from the valid points only")
            arrays.append(values)
        time_values = None
        if time_name is not None and time_name in ds.variables:
            time_values = np.asarray(ds[time_name][slice(*steps) if steps is not None else slice(None)])
        if not num_steps:
            raise ClimateFileError(path, "no time steps")
    except (OSError, RuntimeError, IndexError, KeyError) as exc:
        raise ClimateFileError(path, f"unreadable netCDF file ({exc})") from exc
    finally:
        ds.close()
    out = {"lat": lat, "lon": lon, "lat_name": lat_name, "lon_name": lon_name, "time_name": time_name,
           "time": time_values, "num_steps": num_steps}
    if not header_only:
        out["fields"] = np.stack(arrays, axis=1)
    return out


class _PredictDataset(Dataset):
    """One item per chunk of time steps of an input file: read, validate, regrid to the mesh
    and normalise (in a worker).

    Errors are returned, not raised, as ``{"file", "error"}`` so the main process decides
    whether to stop or skip.
    """

    def __init__(self, files: Sequence[Path], chunks: Sequence[tuple[int, int, int]], predictor: Predictor,
                 allow_nan: bool) -> None:
        self.files = list(files)
        self.chunks = list(chunks)  # (file index, t0, t1)
        self.level = predictor.level
        self.variables = predictor.variables
        self.mean, self.std = predictor.mean, predictor.std
        self.allow_nan = allow_nan

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: int) -> dict[str, Any]:
        file_index, t0, t1 = self.chunks[index]
        path = self.files[file_index]
        base = {"file": file_index, "t0": t0, "t1": t1}
        try:
            start = time.perf_counter()
            item = read_fields(path, self.variables, allow_nan=self.allow_nan, steps=(t0, t1))
            t_read = time.perf_counter()
            lat, lon = item["lat"], item["lon"]
            try:
                matrix = regrid.latlon_to_mesh(lat, lon, self.level, "bilinear")
            except ValueError as exc:
                raise ClimateFileError(path, f"grid not usable: {exc}") from exc
            fields = item.pop("fields")
            mesh = regrid.apply(matrix, fields, skipna=self.allow_nan, na_thresh=0.5)  # (T, C, V) float32
            del fields
            raw = {}
            for name in ("PSL", "TMQ"):
                if name in self.variables:
                    raw[name] = mesh[:, self.variables.index(name)].copy()
            x = (mesh - self.mean[None, :, None]) / self.std[None, :, None]
            np.nan_to_num(x, copy=False, nan=0.0)  # with allow_nan: vertices without valid data -> training mean
            item.update(base, x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), raw=raw,
                        t_read=t_read - start, t_regrid=time.perf_counter() - t_read)
            return item
        except (ClimateFileError, FileNotFoundError) as exc:
            return {**base, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - anything else a broken file may raise
            return {**base, "error": f"{path}: {type(exc).__name__}: {exc}"}


def _identity(item: Any) -> Any:
    return item


# ------------------------------------------------------------------------------------ output
def _output_complete(path: Path, sha256: str) -> bool:
    """An output written by this checkpoint, complete (outputs are renamed into place only when done)."""
    if not path.is_file():
        return False
    import netCDF4

    try:
        with netCDF4.Dataset(path, "r") as ds:
            return (getattr(ds, "meshcnn_complete", 0) == 1 and getattr(ds, "checkpoint_sha256", "") == sha256
                    and "LABELS" in ds.variables and "MESH_LABELS" in ds.variables)
    except (OSError, RuntimeError):
        return False


def _time_strings(source: Path, time_name: str | None, steps: int) -> list[str]:
    """ISO dates of the file's time axis when it has CF units, else the raw values, else ''."""
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


def _copy_var(src: Any, dst: Any, name: str) -> None:
    var = src[name]
    fill = getattr(var, "_FillValue", None)
    out = dst.createVariable(name, var.dtype, var.dimensions, fill_value=fill)
    out.setncatts({k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"})
    var.set_auto_maskandscale(False)
    out.set_auto_maskandscale(False)
    out[:] = var[:]


class _OutputWriter:
    """One output file, written chunk by chunk into a temporary file and renamed into place
    by :meth:`finish` (after an fsync); :meth:`abort` removes the temporary file."""

    def __init__(self, path: Path, source: Path, header: dict[str, Any], predictor: Predictor,
                 probabilities: bool) -> None:
        import netCDF4

        self.path, self.source, self.predictor = path, source, predictor
        self.has_time = header["time_name"] is not None
        self.events: list[dict[str, Any]] = []
        fd, self.tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            self.ds = netCDF4.Dataset(self.tmp, "w", format="NETCDF4")
            self._define(header, probabilities)
        except BaseException:
            self.abort()
            raise

    def _define(self, header: dict[str, Any], probabilities: bool) -> None:
        import netCDF4

        dst, predictor = self.ds, self.predictor
        k = len(predictor.class_names)
        flags = {"flag_values": np.arange(k, dtype=np.int8), "flag_meanings": " ".join(predictor.class_names)}
        with netCDF4.Dataset(self.source, "r") as src:
            lat_name, lon_name, time_name = header["lat_name"], header["lon_name"], header["time_name"]
            lat_dim, lon_dim = src[lat_name].dimensions[0], src[lon_name].dimensions[0]
            grid_dims: tuple[str, ...] = (lat_dim, lon_dim)
            dst.createDimension(lat_dim, len(header["lat"]))
            dst.createDimension(lon_dim, len(header["lon"]))
            if time_name is not None:
                dst.createDimension(time_name, None if src.dimensions[time_name].isunlimited() else header["num_steps"])
                grid_dims = (time_name,) + grid_dims
            for name in (lat_name, lon_name) + ((time_name,) if time_name and time_name in src.variables else ()):
                _copy_var(src, dst, name)
                bounds = getattr(src[name], "bounds", None)
                if bounds and bounds in src.variables:
                    for d in src[bounds].dimensions:
                        if d not in dst.dimensions:
                            dst.createDimension(d, len(src.dimensions[d]))
                    _copy_var(src, dst, bounds)
        chunks = ((1,) if time_name is not None else ()) + (len(header["lat"]), len(header["lon"]))  # a step
        self.labels = dst.createVariable("LABELS", "i1", grid_dims, zlib=True, complevel=1, chunksizes=chunks)
        self.labels.setncatts({"long_name": "predicted class", **flags,
                               "comment": "argmax of the class probabilities interpolated from the icosphere "
                                          f"(level {predictor.level}) to this grid"})
        self.probs = None
        if probabilities:
            dst.createDimension("class", k)
            pdims = grid_dims[:-2] + ("class",) + grid_dims[-2:]
            self.probs = dst.createVariable("PROBABILITIES", "f4", pdims, zlib=True, complevel=1)
            self.probs.setncatts({"long_name": "class probability", "units": "1",
                                  "classes": " ".join(predictor.class_names)})
        mesh = icosphere(predictor.level)
        dst.createDimension("vertex", mesh.num_vertices)
        mdims = ((time_name,) if time_name is not None else ()) + ("vertex",)
        self.mesh_labels = dst.createVariable("MESH_LABELS", "i1", mdims, zlib=True, complevel=1)
        self.mesh_labels.setncatts({"long_name": f"predicted class on the icosphere vertices (level {predictor.level})",
                                    **flags, "coordinates": "mesh_lat mesh_lon"})
        for name, values in (("mesh_lat", mesh.lat), ("mesh_lon", mesh.lon)):
            v = dst.createVariable(name, "f8", ("vertex",))
            v.units = "degrees_north" if name == "mesh_lat" else "degrees_east"
            v[:] = np.rad2deg(values)

    def write(self, t0: int, labels: np.ndarray, probs: np.ndarray | None, mesh_labels: np.ndarray,
              events: list[dict[str, Any]]) -> None:
        """Write time steps ``[t0, t0 + T)``: ``labels (T, nlat, nlon)``, ``probs (T, K, nlat, nlon)``,
        ``mesh_labels (T, V)``, and their events."""
        t1 = t0 + labels.shape[0]
        if self.has_time:
            self.labels[t0:t1] = labels
            self.mesh_labels[t0:t1] = mesh_labels
            if self.probs is not None:
                self.probs[t0:t1] = probs
        else:
            self.labels[:] = labels[0]
            self.mesh_labels[:] = mesh_labels[0]
            if self.probs is not None:
                self.probs[:] = probs[0]
        self.events.extend(events)

    def finish(self) -> None:
        """Write the events and global attributes, close, fsync and rename into place."""
        dst, predictor, events = self.ds, self.predictor, self.events
        try:
            k = len(predictor.class_names)
            dst.createDimension("event", len(events))
            for name in _EVENT_VARS:
                if name == "class":
                    v = dst.createVariable("event_class", "i1", ("event",))
                    v.flag_values = np.arange(k, dtype=np.int8)
                    v.flag_meanings = " ".join(predictor.class_names)
                    v[:] = np.array([e["class_index"] for e in events], dtype=np.int8)
                    continue
                integer = name in ("time_index", "num_vertices")
                v = dst.createVariable(f"event_{name}", "i4" if integer else "f8", ("event",),
                                       fill_value=None if integer else np.nan)
                v[:] = np.array([np.nan if e[name] is None else e[name] for e in events],
                                dtype=np.int32 if integer else np.float64)
            dst.setncatts({
                "Conventions": "CF-1.8",
                "title": "meshcnn segmentation (tropical cyclones, atmospheric rivers)",
                "source_file": str(self.source),
                "meshcnn_version": __version__,
                "checkpoint": str(predictor.checkpoint),
                "checkpoint_sha256": predictor.sha256,
                "mesh_level": np.int32(predictor.level),
                "model_orientation": str(predictor.config.get("orientation", "fixed")),
                "variables": " ".join(predictor.variables),
                "regridding": "bilinear to the mesh; probabilities barycentric back to the grid, then argmax",
                "meshcnn_complete": np.int32(1),
            })
            dst.close()
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close and remove the temporary file; the output path is untouched."""
        with contextlib.suppress(Exception):
            if getattr(self, "ds", None) is not None and self.ds.isopen():
                self.ds.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def _read_done(path: Path) -> tuple[np.ndarray, list[dict[str, Any]], list[str]]:
    """Mesh labels ``(T, V)``, events and time strings of a complete output (for ``resume``)."""
    import netCDF4

    with netCDF4.Dataset(path, "r") as ds:
        ml = np.asarray(ds["MESH_LABELS"][:])
        has_time = ml.ndim == 2
        ml = ml.reshape(-1, ml.shape[-1])
        names = str(ds["MESH_LABELS"].flag_meanings).split()
        ev = {name: np.asarray(ds[f"event_{name}"][:]) for name in _EVENT_VARS}
        time_name = ds["MESH_LABELS"].dimensions[0] if has_time else None
    events = []
    counters: dict[tuple[int, int], int] = {}
    for i in range(len(ev["class"])):
        k, t = int(ev["class"][i]), int(ev["time_index"][i])
        n = counters.get((t, k), 0)
        counters[(t, k)] = n + 1
        row = {"class": names[k], "class_index": k, "time_index": t, "event": n}
        for name in ("area_km2", "centroid_lat", "centroid_lon", "min_psl", "max_tmq"):
            value = float(ev[name][i])
            row[name] = None if np.isnan(value) else value
        row["num_vertices"] = int(ev["num_vertices"][i])
        events.append(row)
    return ml, events, _time_strings(path, time_name, ml.shape[0])


# ----------------------------------------------------------------------------------- predict
def _prebuild_matrices(files: Sequence[Path], level: int) -> None:
    """Build (and cache) the regridding matrices of the first file's grid in this process.

    DataLoader workers are forked from it, so they inherit the cache instead of each
    building the matrices again (seconds for a 0.25-degree grid). Errors are left
    for the file's own turn, where they are reported with its name.
    """
    import netCDF4

    for path in files:
        try:
            with netCDF4.Dataset(path, "r") as ds:
                lat_name = next(n for n in _LAT_NAMES if n in ds.variables)
                lon_name = next(n for n in _LON_NAMES if n in ds.variables)
                lat, lon = np.asarray(ds[lat_name][:], dtype=np.float64), np.asarray(ds[lon_name][:], dtype=np.float64)
            regrid.latlon_to_mesh(lat, lon, level, "bilinear")
            regrid.mesh_to_latlon(level, lat, lon, "bilinear")
        except Exception:  # noqa: BLE001 - reported later, naming the file
            pass


def _argmax_classes(probs: np.ndarray) -> np.ndarray:
    """``argmax`` over axis 1 of ``(T, K, N)`` as int8 (first maximum on ties), one pass per class
    (several times faster than ``numpy.argmax`` along a middle axis)."""
    best = probs[:, 0].copy()
    labels = np.zeros(best.shape, dtype=np.int8)
    for k in range(1, probs.shape[1]):
        better = probs[:, k] > best
        labels[better] = k
        np.maximum(best, probs[:, k], out=best)
    return labels


def _fmt(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.6g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.6e}"
    return str(x)


def predict_files(inputs: Sequence[str | os.PathLike], checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                  events: str | os.PathLike | None = None, probabilities: bool = False, resume: bool = False,
                  device: str = "cpu", batch_size: int = 4, num_workers: int = 0, allow_nan: bool = False,
                  skip_bad: bool = False, progress: bool = True,
                  log_fn: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Segment every input file with a trained checkpoint (the library side of ``meshcnn predict``).

    Parameters
    ----------
    inputs : netCDF files or folders (searched recursively for ``*.nc``)
    checkpoint : ``RUN/checkpoint.pt`` (or the run folder)
    out : output folder (created); one file per input, same name
    events : path of an events CSV to write (one row per event, see
        :data:`meshcnn.predict.EVENT_COLUMNS`), plus ``<stem>.frequency.npz`` beside it
        (per-vertex event counts, for ``meshcnn events summary``)
    probabilities : also write the class probabilities
    resume : skip inputs whose output is complete and from the same checkpoint
    device : where the model runs
    batch_size : time steps per DataLoader item and forward pass (a file with many time
        steps is read, regridded and written in chunks of this many, so memory does not
        grow with its length)
    num_workers : DataLoader worker processes reading and regridding (0: in this process)
    allow_nan : accept NaN/missing values in the fields (regridded from the valid points)
    skip_bad : log and skip inputs that cannot be used, instead of stopping
    progress : tqdm bar over files
    log_fn : where messages go (default: the module logger)

    Returns
    -------
    ``{"files": n, "written": n, "skipped_complete": n, "bad": [(path, message)], "events": n,
    "time_steps": n, "seconds": {stage: s}, "wall_s": s, "files_per_s": x}``

    Raises
    ------
    PredictError
        Bad checkpoint, an output folder that is an existing file, duplicate input file
        names, or (without ``skip_bad``) a bad input file; the message names the file.
        Outputs of the files before it are complete; nothing is written for it.
    """
    say = log_fn or log.info
    if batch_size < 1 or num_workers < 0:
        raise PredictError("--batch-size must be >= 1 and --num-workers >= 0")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PredictError(f"--out {out}: exists and is a file, not a folder")
    if events is not None and Path(events).is_dir():
        raise PredictError(f"--events {events}: is a folder; give a CSV file name")
    files = find_inputs(inputs)
    predictor = load_predictor(checkpoint, device)
    out.mkdir(parents=True, exist_ok=True)
    for f in files:  # temporary files of a killed run
        for stale in out.glob(f".{f.name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    # the plan: per file, complete already (resume), bad header, or chunks of time steps
    plan: list[tuple[str, Any]] = []
    chunks: list[tuple[int, int, int]] = []
    for i, f in enumerate(files):
        if resume and _output_complete(out / f.name, predictor.sha256):
            plan.append(("done", None))
            continue
        try:
            header = read_fields(f, predictor.variables, header_only=True)
        except ClimateFileError as exc:
            plan.append(("error", str(exc)))
            continue
        n = header["num_steps"]
        plan.append(("predict", header))
        chunks.extend((i, t0, min(t0 + batch_size, n)) for t0 in range(0, n, batch_size))

    mesh = icosphere(predictor.level)
    counts = np.zeros((len(predictor.class_names), mesh.num_vertices), dtype=np.int64)
    seconds = dict.fromkeys(STAGES, 0.0)
    done = sum(kind == "done" for kind, _ in plan)
    result: dict[str, Any] = {"files": len(files), "written": 0, "skipped_complete": done, "bad": [], "events": 0,
                              "time_steps": 0}
    if done:
        say(f"resume: {done} of {len(files)} outputs complete, skipped")

    _prebuild_matrices([files[c[0]] for c in chunks[:1]], predictor.level)
    dataset = _PredictDataset(files, chunks, predictor, allow_nan)
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_identity,
                        persistent_workers=False, prefetch_factor=2 if num_workers > 0 else None)
    items = iter(loader)
    events_tmp = None
    writer = None
    if events is not None:
        events = Path(events)
        events.parent.mkdir(parents=True, exist_ok=True)
        fd, events_tmp = tempfile.mkstemp(dir=events.parent, prefix=f".{events.name}.", suffix=".tmp")
        events_file = os.fdopen(fd, "w", newline="")
        writer = csv.writer(events_file)
        writer.writerow(EVENT_COLUMNS)

    def record(source: Path, mesh_labels: np.ndarray, file_events: list[dict[str, Any]], times: list[str]) -> None:
        result["time_steps"] += mesh_labels.shape[0]
        result["events"] += len(file_events)
        for t in range(mesh_labels.shape[0]):
            counts[mesh_labels[t].astype(np.int64), np.arange(mesh.num_vertices)] += 1
        if writer is not None:
            for e in file_events:
                writer.writerow([source.name, e["time_index"], times[e["time_index"]], e["class"], e["event"],
                                 *(_fmt(e[c]) for c in EVENT_COLUMNS[5:])])

    def bad(source: Path, message: str) -> None:
        if not skip_bad:
            raise PredictError(message)
        result["bad"].append((str(source), message))
        say(f"skipping bad file: {message}")

    back_matrices: dict[tuple[bytes, bytes], Any] = {}
    wall0 = time.perf_counter()
    bar = progress_bar(enabled=progress, total=len(files), desc="predict", unit="file")
    try:
        for i, (kind, info) in enumerate(plan):
            source = files[i]
            target = out / source.name
            if kind == "done":
                mesh_labels, file_events, times = _read_done(target)
                record(source, mesh_labels, file_events, times)
                bar.update(1)
                continue
            if kind == "error":
                bad(source, info)
                bar.update(1)
                continue
            n = info["num_steps"]
            output: _OutputWriter | None = None
            all_mesh_labels = []
            failed = None
            try:
                for t0 in range(0, n, batch_size):
                    item = next(items)
                    if failed is not None:
                        continue  # drain the chunks of a bad file
                    if "error" in item:
                        failed = item["error"]
                        continue
                    seconds["read"] += item["t_read"]
                    seconds["regrid"] += item["t_regrid"]
                    start = time.perf_counter()
                    x = item["x"]
                    with torch.no_grad():
                        probs = torch.cat([torch.softmax(predictor.model(x[j:j + batch_size].to(device)).float(), 1)
                                           .cpu() for j in range(0, x.shape[0], batch_size)]).numpy()  # (T, K, V)
                    t_model = time.perf_counter()
                    seconds["model"] += t_model - start
                    mesh_labels = probs.argmax(1).astype(np.int8)
                    key = (item["lat"].tobytes(), item["lon"].tobytes())
                    if key not in back_matrices:
                        back_matrices.clear()  # one grid at a time
                        back_matrices[key] = regrid.mesh_to_latlon(predictor.level, item["lat"], item["lon"],
                                                                   "bilinear").astype(np.float32)
                        back_matrices[key].grid_shape = (len(item["lat"]), len(item["lon"]))
                    grid_probs = regrid.apply(back_matrices[key], probs)  # (T, K, nlat * nlon) float32
                    shape = (probs.shape[0], len(item["lat"]), len(item["lon"]))
                    labels = _argmax_classes(grid_probs).reshape(shape)
                    grid_probs = grid_probs.reshape(shape[:1] + (probs.shape[1],) + shape[1:]) if probabilities \
                        else None
                    t_back = time.perf_counter()
                    seconds["regrid_back"] += t_back - t_model
                    chunk_events = []
                    for t in range(mesh_labels.shape[0]):
                        found = find_events(mesh_labels[t], mesh, predictor.class_names,
                                            fields={k: v[t] for k, v in item["raw"].items()})
                        for e in found:
                            e["time_index"] = item["t0"] + t
                        chunk_events.extend(found)
                    if output is None:
                        output = _OutputWriter(target, source, info, predictor, probabilities)
                    output.write(item["t0"], labels, grid_probs, mesh_labels, chunk_events)
                    all_mesh_labels.append(mesh_labels)
                    seconds["write"] += time.perf_counter() - t_back
                if failed is not None:
                    if output is not None:
                        output.abort()
                        output = None
                    bad(source, failed)
                    bar.update(1)
                    continue
                start = time.perf_counter()
                output.finish()
                seconds["write"] += time.perf_counter() - start
                file_events, output = output.events, None
            finally:
                if output is not None:
                    output.abort()
            record(source, np.concatenate(all_mesh_labels), file_events,
                   _time_strings(source, info["time_name"], n))
            result["written"] += 1
            bar.update(1)
        if writer is not None:
            events_file.flush()
            os.fsync(events_file.fileno())
            events_file.close()
            os.chmod(events_tmp, 0o644)
            os.replace(events_tmp, events)
            events_tmp = None
            save_frequency(frequency_path(events), counts, result["time_steps"], predictor.level,
                           predictor.class_names)
    finally:
        bar.close()
        if events_tmp is not None:
            with contextlib.suppress(Exception):
                events_file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(events_tmp)
    wall = time.perf_counter() - wall0
    result.update(seconds=seconds, wall_s=wall, files_per_s=(result["written"] / wall) if wall > 0 else None,
                  level=predictor.level, checkpoint_sha256=predictor.sha256)
    return result
