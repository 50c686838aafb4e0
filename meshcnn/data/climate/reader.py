r"""ClimateNet data on the icosphere: reader, dataset, UGSCNN format, synthetic generator.

The real data (ClimateNet, CAM5 0.25-degree runs) is one netCDF file per time step
with 16 fields on a ``lat x lon`` grid (768 x 1152, with a time dimension of 1)
and a ``LABELS`` map (0 background, 1 tropical cyclone, 2 atmospheric river).
This module reads those files, regrids them onto the icosphere of a chosen level
(fields bilinearly, labels by nearest neighbour, with the matrices of
:mod:`meshcnn.grids.regrid`) and serves them as a lazy :class:`torch.utils.data.Dataset`.
It also reads UGSCNN's preprocessed ``.npz`` samples and split lists. Synthetic files
in the same layout come from :mod:`meshcnn.data.climate.synth` (its functions are
re-exported here).

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

Command line::

    python -m meshcnn.data.climate synth --out DIR --num 200 --nlat 192 --nlon 288 --seed 0 [--overwrite]
    python -m meshcnn.data.climate verify DIR        # measured TC rotation, AR shape, class balance
    python -m meshcnn.data.climate check FILE_OR_DIR ...
    python -m meshcnn.data.climate to-ugscnn --data DIR --out DIR --level 5
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..._progress import progress_bar
from ...io import atomic_write, save_npz
from ...geometry.mesh import _checksum, check_level, icosphere, num_vertices_at

__all__ = [
    "VARIABLES", "NORTHWARD_VARIABLES", "CLASSES", "NUM_CLASSES", "UNITS", "ClimateFileError",
    "read_latlon", "read_climatenet", "read_ugscnn", "read_split_list", "write_split_lists",
    "split_files", "find_files", "ClimateNetDataset", "compute_stats", "class_weights",
    "LatLonGrid", "synth_listed_files",
]

log = logging.getLogger(__name__)

#: The 16 ClimateNet input fields, in channel order.
VARIABLES: tuple[str, ...] = (
    "TMQ", "U850", "V850", "UBOT", "VBOT", "QREFHT", "PS", "PSL",
    "T200", "T500", "PRECT", "TS", "TREFHT", "Z1000", "Z200", "ZBOT",
)
#: The northward (meridional) wind components among :data:`VARIABLES`: what
#: :func:`meshcnn.hemisphere_flip` turns into poleward components.
NORTHWARD_VARIABLES: tuple[str, ...] = ("V850", "VBOT")
#: Label values: index = value of ``LABELS``.
CLASSES: tuple[str, ...] = ("background", "tropical_cyclone", "atmospheric_river")
NUM_CLASSES = len(CLASSES)
#: CAM5 units and long names (written by the synthetic generator, shown in plots).
UNITS: dict[str, tuple[str, str]] = {
    "TMQ": ("kg/m2", "total (vertically integrated) precipitable water"),
    "U850": ("m/s", "zonal wind at 850 mbar pressure surface"),
    "V850": ("m/s", "meridional wind at 850 mbar pressure surface"),
    "UBOT": ("m/s", "lowest level zonal wind"),
    "VBOT": ("m/s", "lowest model level meridional wind"),
    "QREFHT": ("kg/kg", "reference height humidity"),
    "PS": ("Pa", "surface pressure"),
    "PSL": ("Pa", "sea level pressure"),
    "T200": ("K", "temperature at 200 mbar pressure surface"),
    "T500": ("K", "temperature at 500 mbar pressure surface"),
    "PRECT": ("m/s", "total (convective and large-scale) precipitation rate (liq + ice)"),
    "TS": ("K", "surface temperature (radiative)"),
    "TREFHT": ("K", "reference height temperature"),
    "Z1000": ("m", "geopotential Z at 1000 mbar pressure surface"),
    "Z200": ("m", "geopotential Z at 200 mbar pressure surface"),
    "ZBOT": ("m", "lowest model level height"),
}
_CACHE_VERSION = 2  # 2: sample caches carry a SHA-256 checksum


class ClimateFileError(ValueError):
    """A data file that cannot be used; the message names the file (and variable)."""

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _check_axis(path: str | os.PathLike, name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2 and min(values.shape) > 1:
        raise ClimateFileError(
            path, f"coordinate {name!r} is 2-D {values.shape} (a curvilinear grid); the reader needs a regular "
            "lat-lon grid with 1-D 'lat' and 'lon' coordinates in degrees: regrid the file to one first")
    if values.ndim != 1 or len(values) < 2:
        raise ClimateFileError(path, f"coordinate {name!r} must be 1-D with at least 2 points, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ClimateFileError(path, f"coordinate {name!r} contains NaN or Inf")
    step = np.diff(values)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise ClimateFileError(path, f"coordinate {name!r} is not monotonic (strictly increasing or decreasing expected)")
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
        raise ClimateFileError(path, f"coordinate {name!r} has units {units!r}; degrees expected "
                               f"({'degrees_north' if name == 'lat' else 'degrees_east'})")


def _check_global(path: str | os.PathLike, lat: np.ndarray, lon: np.ndarray) -> None:
    """The grid must cover the sphere in degrees, as :mod:`meshcnn.grids.regrid` needs (checked here so that
    the error names the file and happens when the file is read, not when it is regridded)."""
    from ...grids import regrid

    if np.abs(lat).max() <= np.pi / 2 + 1e-9 and np.ptp(lon) <= 2 * np.pi + 1e-9:
        raise ClimateFileError(
            path, f"the grid spans only lat {lat.min():g}..{lat.max():g}, lon {lon.min():g}..{lon.max():g}: "
            "it looks like radians (degrees expected), or it is not global")
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
            path, f"variable {name!r} has shape {array.shape} but the (lat, lon) grid is {shape}"
            " (the reader expects one time step per file)")
    return array


def _netcdf4() -> Any:
    """The netCDF4 module, or an ImportError that names the optional extra."""
    try:
        import netCDF4
    except ImportError as exc:
        raise ImportError("reading ClimateNet netCDF files needs netCDF4; install the optional extra: "
                          "pip install 'meshcnn[climate]'") from exc
    return netCDF4


#: Files written by :func:`meshcnn.data.climate.write_climatenet` end with a trailer
#: ``b"\nmeshcnn-sha256:" + 64 hex digits + b"\n"`` after the HDF5 data (HDF5, netCDF4 and xarray
#: ignore bytes past the end of the file they describe): the SHA-256 of everything before it.
#: The reader checks it before netCDF4/HDF5 parse the file, so a damaged file is refused instead
#: of read wrongly (a damaged chunk address reads as fill values) or hanging inside HDF5.
_CHECKSUM_TRAILER = re.compile(rb"\nmeshcnn-sha256:([0-9a-f]{64})\n\Z")
_TRAILER_SIZE = 81


def _add_checksum_trailer(content: bytes) -> bytes:
    """``content`` followed by the checksum trailer (see :data:`_CHECKSUM_TRAILER`)."""
    return content + b"\nmeshcnn-sha256:" + hashlib.sha256(content).hexdigest().encode() + b"\n"


def _verified_content(path: Path) -> bytes | None:
    """The verified bytes (trailer removed) of a file with a checksum trailer; ``None`` for a file
    without one (it is then opened from disk, as before)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - _TRAILER_SIZE, 0))
            if _CHECKSUM_TRAILER.search(f.read()) is None:
                return None
            f.seek(0)
            content = f.read()
    except OSError as exc:
        raise ClimateFileError(path, f"unreadable file ({exc})") from exc
    return _strip_checksum_trailer(path, content)


def _strip_checksum_trailer(path: Path, content: bytes) -> bytes:
    """The file's bytes without its checksum trailer, verified (files without a trailer are returned as is)."""
    match = _CHECKSUM_TRAILER.search(content, max(len(content) - _TRAILER_SIZE, 0))
    if match is None:
        return content
    body = content[:match.start()]
    if hashlib.sha256(body).hexdigest().encode() != match.group(1):
        raise ClimateFileError(path, "damaged file: its SHA-256 checksum does not match (altered since it was "
                                     "written)")
    return body


def _existing_file(path: str | os.PathLike, what: str = "ClimateNet file") -> Path:
    """``Path(path)`` if it is a file; ``FileNotFoundError`` if nothing is there, ``ClimateFileError`` for a folder."""
    path = Path(path)
    if path.is_dir():
        raise ClimateFileError(path, f"is a folder, not a {what}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    return path


def read_latlon(path: str | os.PathLike, *, labels: bool = True
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
    content = _verified_content(path)
    try:
        ds = netCDF4.Dataset(path, "r") if content is None else netCDF4.Dataset(path.name, "r", memory=content)
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
            var = ds[name]
            values = _squeeze_time(path, name, var[:], shape).astype(np.float32)
            for attr in ("_FillValue", "missing_value", None):  # None: netCDF's default fill value
                fill = getattr(var, attr, None) if attr else netCDF4.default_fillvals.get(var.dtype.str[1:])
                fill = np.ravel(np.asarray(fill, dtype=np.float64)) if fill is not None else ()
                if any(np.any(values == np.float32(f)) for f in fill if np.isfinite(f)):
                    raise ClimateFileError(path, f"variable {name!r} contains missing values "
                                                 f"({attr or 'netCDF default fill value'}={fill[0]:g})")
            if not np.all(np.isfinite(values)):
                bad = int(np.count_nonzero(~np.isfinite(values)))
                raise ClimateFileError(path, f"variable {name!r} contains NaN or Inf ({bad} points)")
            fields[c] = values
        label_map = None
        if labels:
            raw = _squeeze_time(path, "LABELS", ds["LABELS"][:], shape)
            if not np.all(np.isfinite(raw)):
                raise ClimateFileError(path, "variable 'LABELS' contains NaN or Inf")
            bad = ~np.isin(raw, np.arange(NUM_CLASSES))
            if np.any(bad):
                values = np.unique(raw[bad])[:5]
                raise ClimateFileError(
                    path, f"variable 'LABELS' has values outside {{0, 1, 2}}: {values.tolist()}")
            label_map = raw.astype(np.int64)
    except ClimateFileError:
        raise
    except (OSError, RuntimeError, IndexError, KeyError, ValueError, TypeError, UnicodeError, OverflowError,
            MemoryError) as exc:  # a damaged file fails inside netCDF4/HDF5 in many ways
        raise ClimateFileError(path, f"unreadable netCDF file ({type(exc).__name__}: {exc})") from exc
    finally:
        try:
            ds.close()
        except (OSError, RuntimeError):
            pass  # nothing was written; the read above already succeeded or raised
    return fields, label_map, lat, lon


def regrid_sample(fields: np.ndarray, labels: np.ndarray | None, lat: np.ndarray, lon: np.ndarray,
                  level: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Lat-lon sample -> mesh sample: fields bilinear ``(16, V)`` float32, labels nearest ``(V,)`` int64.

    Uses the cached sparse matrices of :func:`meshcnn.grids.latlon_to_mesh` (one product per sample).
    """
    from ...grids import regrid

    level = check_level(level)
    data = regrid.apply(regrid.latlon_to_mesh(lat, lon, level, "bilinear"), fields.astype(np.float64))
    mesh_labels = None
    if labels is not None:
        mesh_labels = regrid.apply(regrid.latlon_to_mesh(lat, lon, level, "nearest"), labels).astype(np.int64)
    return data.astype(np.float32), mesh_labels


def read_climatenet(path: str | os.PathLike, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a ClimateNet netCDF file onto the icosphere of ``level``.

    Fields are interpolated bilinearly, labels by nearest neighbour
    (:mod:`meshcnn.grids.regrid`). Returns ``data`` float32 ``(16, V)`` in
    :data:`VARIABLES` order and file units (un-normalized) and ``labels``
    int64 ``(V,)`` in {0, 1, 2}. Errors as in :func:`read_latlon`.
    """
    level = check_level(level)
    fields, labels, lat, lon = read_latlon(path)
    data, mesh_labels = regrid_sample(fields, labels, lat, lon, level)
    return data, mesh_labels


def read_ugscnn(path: str | os.PathLike, level: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Read one UGSCNN preprocessed sample: ``data`` (16, V) float32 and one-hot ``labels`` (3, V).

    Returns ``(data float32 (16, V), labels int64 (V,))`` like :func:`read_climatenet`.
    UGSCNN's files are on level 5; ``level`` must match the file's vertex count.
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
    """Write a sample in the UGSCNN format (``data`` float32 (16, V), ``labels`` one-hot (3, V))."""
    onehot = np.zeros((NUM_CLASSES, len(labels)), dtype=np.float32)
    onehot[labels, np.arange(len(labels))] = 1
    save_npz(path, data=np.asarray(data, dtype=np.float32), labels=onehot)


# ---------------------------------------------------------------------------------------------
# files and splits
# ---------------------------------------------------------------------------------------------
def synth_listed_files(folder: str | os.PathLike) -> list[Path] | None:
    """The files that ``synth`` wrote into ``folder``, as its ``synth.json`` lists them (``None`` without one).

    Raises :class:`ClimateFileError` naming ``synth.json`` if it is unreadable or
    malformed (a listed name that is not a plain file name included).
    """
    summary = Path(folder) / "synth.json"
    if not summary.is_file():
        return None
    try:
        with open(summary, encoding="utf-8") as f:
            records = json.load(f)["files"]
        names = [r["file"] for r in records]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClimateFileError(summary, f"unreadable synthetic-set description ({type(exc).__name__}: {exc})") from exc
    bad = [n for n in names if not isinstance(n, str) or not n or Path(n).name != n or n in (".", "..")]
    if bad:
        raise ClimateFileError(summary, f"lists names that are not plain file names: {bad[:3]}")
    return [Path(folder) / n for n in names]


def find_files(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Sorted ``.nc``/``.npz`` sample files from files and folders (folders are not recursed).

    A folder with a ``synth.json`` (written by ``synth``) gives exactly the files it
    lists (``FileNotFoundError`` naming it if one is missing); other sample files in
    that folder are left out, with a warning.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in (".nc", ".npz") and not q.name.startswith("."))
            listed = synth_listed_files(p)
            if listed is not None:
                missing = [str(q) for q in listed if not q.exists()]
                if missing:
                    raise FileNotFoundError(f"{p / 'synth.json'}: {len(missing)} listed files do not exist, "
                                            f"e.g. {missing[:3]}")
                extra = sorted(set(found) - set(listed))
                if extra:
                    warnings.warn(f"{p}: using the {len(listed)} files that synth.json lists; ignoring "
                                  f"{len(extra)} other sample files there, e.g. {extra[0].name}", stacklevel=2)
                found = sorted(listed)
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def split_files(files: Sequence[str | os.PathLike], fractions: Sequence[float] = (0.7, 0.15, 0.15),
                seed: int = 0, contiguous: bool = False) -> dict[str, list[Path]]:
    """Split files into ``train``/``val``/``test``, deterministically.

    Files are sorted by name first, so the result does not depend on the input
    order. ``contiguous=False`` shuffles with ``numpy.random.default_rng(seed)``;
    ``contiguous=True`` keeps time order (ClimateNet names sort by date) and cuts
    it into consecutive blocks, which avoids leaking neighbouring, correlated time
    steps between splits. Every split with a positive fraction gets at least one
    file when there are enough files.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.shape != (3,) or np.any(fractions < 0) or fractions.sum() <= 0:
        raise ValueError(f"fractions must be three non-negative numbers (train, val, test), got {fractions.tolist()}")
    files = sorted(Path(f) for f in files)
    n = len(files)
    order = np.arange(n) if contiguous else np.random.default_rng(seed).permutation(n)
    counts = np.floor(fractions / fractions.sum() * n).astype(int)
    for i in np.argsort(-fractions):  # distribute the remainder, largest fraction first
        if counts.sum() < n:
            counts[i] += 1
    for i in (1, 2):  # val/test get one file if asked for and train can spare it
        if fractions[i] > 0 and counts[i] == 0 and counts[0] > 1:
            counts[i], counts[0] = 1, counts[0] - 1
    bounds = np.cumsum(counts)
    parts = np.split(order, bounds[:2])
    return {name: [files[i] for i in sorted(part)] for name, part in zip(("train", "val", "test"), parts)}


def write_split_lists(splits: dict[str, Sequence[str | os.PathLike]], folder: str | os.PathLike) -> None:
    """Write UGSCNN-style ``{train,val,test}_split.txt`` (file names relative to ``folder``)."""
    folder = Path(folder)
    for name, files in splits.items():
        lines = [os.path.relpath(Path(f).resolve(), folder.resolve()) for f in files]
        with atomic_write(folder / f"{name}_split.txt", "w") as f:
            f.write("".join(line + "\n" for line in lines))


def read_split_list(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Read a UGSCNN split list (one file name per line, relative to ``data_dir``,
    default: the list's folder). Missing listed files raise ``FileNotFoundError`` naming them."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such split list")
    base = Path(data_dir) if data_dir is not None else path.parent
    files = [base / line.strip() for line in path.read_text().splitlines() if line.strip()]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"{path}: {len(missing)} listed files do not exist, e.g. {missing[:3]}")
    return files


# ---------------------------------------------------------------------------------------------
# dataset
# ---------------------------------------------------------------------------------------------
class LatLonGrid:
    """The lat-lon grid of a dataset in ``grid="latlon"`` mode: ascending ``lat``, ``lon`` degrees."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        self.lat, self.lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)

    @property
    def cell_weights(self) -> np.ndarray:
        """``(nlat, nlon)`` weights proportional to ``cos(lat)`` (cell area), summing to 1."""
        w = np.clip(np.cos(np.deg2rad(self.lat)), 0, None)
        if w.sum() == 0:
            w = np.ones_like(w)
        w = np.repeat(w[:, None], len(self.lon), axis=1)
        return w / w.sum()

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LatLonGrid) and self.lat.shape == other.lat.shape
                and self.lon.shape == other.lon.shape and np.allclose(self.lat, other.lat)
                and np.allclose(self.lon, other.lon))


def _load_cache(cache: Path, source: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a sample cache file, or ``None`` (with a warning naming it) if it is unreadable,
    incomplete or fails its SHA-256 checksum; the caller then re-reads ``source``."""
    try:
        with np.load(cache, allow_pickle=False) as f:
            sample = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        warnings.warn(f"cache file {cache} unreadable ({exc}); re-reading {source}", stacklevel=3)
        return None
    checksum = sample.pop("checksum", None)
    if checksum is None or checksum.shape != () or str(checksum) != _checksum(sample) \
            or not {"data", "labels"} <= set(sample):
        warnings.warn(f"cache file {cache} fails its checksum (corrupt or incomplete); re-reading {source}",
                      stacklevel=3)
        return None
    return sample


def _as_stats(stats: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray] | None:
    if stats is None:
        return None
    mean = np.asarray(stats["mean"], dtype=np.float32).reshape(-1)
    std = np.asarray(stats["std"], dtype=np.float32).reshape(-1)
    if mean.shape != (len(VARIABLES),) or std.shape != (len(VARIABLES),):
        raise ValueError(f"normalization stats must have 16 means and stds, got {mean.shape} and {std.shape}")
    if np.any(~np.isfinite(std)) or np.any(std <= 0):
        raise ValueError(f"normalization std must be positive and finite, got {std.tolist()}")
    return mean, std


class ClimateNetDataset(Dataset):
    r"""Lazy dataset of ClimateNet samples, ``(data, labels)`` per file.

    Parameters
    ----------
    files : paths of ClimateNet netCDF files (``.nc``) or UGSCNN samples (``.npz``)
    level : icosphere level of the samples (UGSCNN files must match it; they are level 5)
    stats : ``{"mean": (16,), "std": (16,)}`` from :func:`compute_stats` on the
        training split; ``None`` returns un-normalized fields. Normalization is
        :math:`(x_c - \mu_c) / \sigma_c` per channel.
    grid : ``"mesh"`` -> ``data`` float32 ``(16, V)``, ``labels`` int64 ``(V,)``;
        ``"latlon"`` -> ``(16, nlat, nlon)`` and ``(nlat, nlon)`` on the files' own grid
        with latitude and longitude ascending and without a duplicated periodic longitude
        column (for planar baselines; netCDF files only, one shared grid).
    cache_dir : folder for ``.npz`` copies of regridded samples, keyed by file path,
        size, modification time, level and grid (a changed source file is re-read), each
        with a SHA-256 checksum of its arrays: a cache file that is unreadable or fails the
        checksum is re-read from the source file, with a warning naming it.
    skip_bad : read every file once now (through the cache) and drop, with a log
        message, those that fail; they are listed in :attr:`bad_files`. Without it a
        bad file raises :class:`ClimateFileError` naming it when it is read.
    log : where ``skip_bad`` messages go (default ``warnings.warn``).
    """

    def __init__(self, files: Sequence[str | os.PathLike], level: int = 5, *,
                 stats: dict[str, Any] | None = None, grid: str = "mesh",
                 cache_dir: str | os.PathLike | None = None, skip_bad: bool = False,
                 log: Callable[[str], Any] | None = None, progress: bool = False) -> None:
        self.level = check_level(level)
        if grid not in ("mesh", "latlon"):
            raise ValueError(f"grid must be 'mesh' or 'latlon', got {grid!r}")
        self.grid = grid
        self.files = [Path(f) for f in files]
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._stats = _as_stats(stats)
        self.stats = stats
        self.bad_files: list[tuple[str, str]] = []
        self.latlon_grid: LatLonGrid | None = None
        self._log = log or (lambda msg: warnings.warn(msg, stacklevel=3))
        if grid == "latlon":
            npz = [f for f in self.files if f.suffix == ".npz"]
            if npz:
                raise ValueError(f"grid='latlon' needs netCDF files; UGSCNN samples are on the mesh: {npz[0]}")
        if skip_bad:
            self._scan(progress)

    def _scan(self, progress: bool) -> None:
        good = []
        for f in progress_bar(self.files, enabled=progress, desc="checking files", unit="file"):
            try:
                self.raw_file(f)
                good.append(f)
            except (ClimateFileError, FileNotFoundError) as exc:
                self.bad_files.append((str(f), str(exc)))
                self._log(f"skipping bad file: {exc}")
        self.files = good

    def set_stats(self, stats: dict[str, Any] | None) -> None:
        """Set (or remove) the normalization statistics."""
        self._stats = _as_stats(stats)
        self.stats = stats

    def __len__(self) -> int:
        return len(self.files)

    # -- raw samples ------------------------------------------------------------------------
    def _cache_path(self, path: Path) -> Path | None:
        if self.cache_dir is None:
            return None
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.level}|{self.grid}|{_CACHE_VERSION}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.cache_dir / f"{path.stem}.L{self.level}.{self.grid}.{digest}.npz"

    def _read(self, path: Path) -> dict[str, np.ndarray]:
        if path.suffix == ".npz":
            data, labels = read_ugscnn(path, self.level)
            return {"data": data, "labels": labels}
        fields, labels, lat, lon = read_latlon(path)
        if self.grid == "mesh":
            data, mesh_labels = regrid_sample(fields, labels, lat, lon, self.level)
            return {"data": data, "labels": mesh_labels}
        if lat[0] > lat[-1]:
            fields, labels, lat = fields[:, ::-1], labels[::-1], lat[::-1]
        if lon[0] > lon[-1]:  # longitude ascending too
            fields, labels, lon = fields[..., ::-1], labels[:, ::-1], lon[::-1]
        if np.isclose(lon[-1] - lon[0], 360.0, rtol=0, atol=1e-6):  # drop a duplicated periodic column
            fields, labels, lon = fields[..., :-1], labels[:, :-1], lon[:-1]
        return {"data": np.ascontiguousarray(fields), "labels": np.ascontiguousarray(labels),
                "lat": np.ascontiguousarray(lat), "lon": lon}

    def raw_file(self, path: str | os.PathLike) -> dict[str, np.ndarray]:
        """Un-normalized arrays of one file (``data``, ``labels``; ``lat``/``lon`` on the lat-lon grid)."""
        path = _existing_file(path)
        cache = self._cache_path(path)
        sample = None
        if cache is not None and cache.is_file():
            sample = _load_cache(cache, path)
        if sample is None:
            sample = self._read(path)
            if cache is not None:
                save_npz(cache, checksum=np.array(_checksum(sample)), **sample)
        if self.grid == "latlon":
            grid = LatLonGrid(sample["lat"], sample["lon"])
            if self.latlon_grid is None:
                self.latlon_grid = grid
            elif grid != self.latlon_grid:
                raise ClimateFileError(path, "lat-lon grid differs from the dataset's other files")
        return sample

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Un-normalized ``(data, labels)`` numpy arrays of sample ``index``."""
        sample = self.raw_file(self.files[index])
        return sample["data"], sample["labels"]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        data, labels = self.raw(index)
        if self._stats is not None:
            mean, std = self._stats
            shape = (-1,) + (1,) * (data.ndim - 1)
            data = (data - mean.reshape(shape)) / std.reshape(shape)
        return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)), torch.from_numpy(labels.astype(np.int64))

    @property
    def latlon(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lat, lon)`` degrees of the images in ``grid="latlon"`` mode (latitude ascending)."""
        if self.grid != "latlon":
            raise ValueError("latlon is defined for grid='latlon' datasets only")
        if self.latlon_grid is None:
            if not self.files:
                raise ValueError("empty dataset has no grid")
            self.raw(0)
        return self.latlon_grid.lat, self.latlon_grid.lon

    def weights(self) -> np.ndarray:
        """Per-point area weights of a sample, summing to 1: mesh vertex areas or ``cos(lat)`` cells."""
        if self.grid == "mesh":
            areas = icosphere(self.level).vertex_areas
            return areas / areas.sum()
        return LatLonGrid(*self.latlon).cell_weights


def compute_stats(dataset: ClimateNetDataset | Sequence[str | os.PathLike], level: int | None = None,
                  progress: bool = True) -> dict[str, Any]:
    r"""Per-channel mean/std and class area fractions of a (training) split.

    Area-weighted over the sphere (mesh vertex areas, or ``cos(lat)`` on a lat-lon
    grid), pooled over all samples:
    :math:`\mu_c = \sum_{s,v} a_v x_{s,c,v} / (S \sum_v a_v)`,
    :math:`\sigma_c^2 = \sum_{s,v} a_v (x_{s,c,v} - \mu_c)^2 / (S \sum_v a_v)`.
    Returns a JSON-able dict ``{"mean": [16], "std": [16], "class_fraction": [3],
    "variables": [...], "num_samples": S}``. A channel with zero variance gets
    ``std = 1`` (so normalizing only centres it).
    """
    if not isinstance(dataset, ClimateNetDataset):
        dataset = ClimateNetDataset(dataset, 5 if level is None else level)
    if len(dataset) == 0:
        raise ValueError("compute_stats: the dataset is empty")
    weights = None
    s1 = np.zeros(len(VARIABLES))
    s2 = np.zeros(len(VARIABLES))
    shift = None
    counts = np.zeros(NUM_CLASSES)
    for i in progress_bar(range(len(dataset)), enabled=progress, desc="normalization stats", unit="file"):
        data, labels = dataset.raw(i)
        if weights is None:
            weights = dataset.weights().reshape(-1)
        x = data.reshape(len(VARIABLES), -1).astype(np.float64)
        if shift is None:  # shifted sums for numerical stability (PS ~ 1e5, PRECT ~ 1e-8)
            shift = x @ weights
        x = x - shift[:, None]
        s1 += x @ weights
        s2 += (x * x) @ weights
        counts += np.bincount(labels.reshape(-1), weights=weights, minlength=NUM_CLASSES)
    n = len(dataset)
    mean = s1 / n
    var = np.maximum(s2 / n - mean**2, 0.0)
    std = np.sqrt(var)
    std[std <= 1e-12 * np.maximum(np.abs(mean + shift), 1e-30)] = 1.0
    return {
        "variables": list(VARIABLES),
        "mean": (mean + shift).tolist(),
        "std": std.tolist(),
        "class_fraction": (counts / counts.sum()).tolist(),
        "classes": list(CLASSES),
        "num_samples": n,
    }


def class_weights(class_fraction: Sequence[float], power: float = 1.0) -> torch.Tensor:
    r"""Class-balanced cross-entropy weights :math:`w_k \propto f_k^{-p}`, normalized to
    :math:`\sum_k f_k w_k = 1` (so the loss keeps the scale of the unweighted one).

    ``power=1`` is inverse frequency (UGSCNN's choice), ``0.5`` its square root, ``0`` unweighted.
    A class absent from the training split gets weight 0 (it cannot be learned anyway).
    """
    f = np.asarray(class_fraction, dtype=np.float64)
    w = np.where(f > 0, np.maximum(f, 1e-12) ** -power, 0.0)
    w = w / max(float((f * w).sum()), 1e-30)
    return torch.tensor(w, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def _cmd_synth(args: argparse.Namespace) -> None:
    from .synth import generate_synthetic

    try:
        files = generate_synthetic(args.out, args.num, args.nlat, args.nlon, args.seed, workers=args.workers,
                                   overwrite=args.overwrite)
    except (FileExistsError, ClimateFileError) as exc:
        raise SystemExit(f"synth: {exc}") from None
    with open(Path(args.out) / "synth.json") as f:
        summary = json.load(f)
    frac = summary["class_fraction_mean"]
    print(f"wrote {len(files)} files to {args.out}")
    print("area fraction: " + ", ".join(f"{c} {100 * x:.2f}%" for c, x in zip(CLASSES, frac)))
    print(f"{summary['num_tropical_cyclones']} tropical cyclones, {summary['num_atmospheric_rivers']} atmospheric rivers")


def _cmd_verify(args: argparse.Namespace) -> None:
    from .synth import verify_synthetic

    try:
        report = verify_synthetic(args.folder)
    except (FileNotFoundError, ClimateFileError) as exc:
        raise SystemExit(f"verify: {exc}") from None
    print(json.dumps(report, indent=2))


def _cmd_check(args: argparse.Namespace) -> None:
    bad = 0
    for f in find_files(args.paths):
        if f.suffix == ".npz":
            continue
        try:
            fields, labels, lat, lon = read_latlon(f)
            frac = np.bincount(labels.ravel(), minlength=NUM_CLASSES) / labels.size
            print(f"ok   {f}  grid {len(lat)}x{len(lon)}  labels " + " ".join(f"{x:.4f}" for x in frac))
        except (ClimateFileError, FileNotFoundError) as exc:
            bad += 1
            print(f"BAD  {exc}")
    if bad:
        raise SystemExit(f"{bad} bad files")


def _cmd_to_ugscnn(args: argparse.Namespace) -> None:
    files = [f for f in find_files(args.data) if f.suffix == ".nc"]
    out = Path(args.out)
    names = {}
    for f in progress_bar(files, desc="regridding", unit="file"):
        data, labels = read_climatenet(f, args.level)
        target = out / (f.stem + ".npz")
        write_ugscnn(target, data, labels)
        names[f] = target
    splits = split_files(files, seed=args.seed)
    write_split_lists({k: [names[f] for f in v] for k, v in splits.items()}, out)
    print(f"wrote {len(files)} samples (level {args.level}) and train/val/test_split.txt to {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m meshcnn.data.climate",
                                     description="ClimateNet data tools: synthetic generator, checks, conversion.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="write synthetic ClimateNet-format netCDF files")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, default=200, help="number of time steps (files), default 200")
    p.add_argument("--nlat", type=int, default=192, help="latitudes, -90..90 inclusive (real data: 768)")
    p.add_argument("--nlon", type=int, default=288, help="longitudes from 0 (real data: 1152)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty folder, first removing exactly the files a previous 'synth' "
                        "wrote there (as its synth.json lists them); without it a non-empty folder is refused")
    p.set_defaults(func=_cmd_synth)
    p = sub.add_parser("verify", help="measure the physics of a synthetic set (TC rotation, AR shape, balance)")
    p.add_argument("folder", help="folder written by 'synth'")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("check", help="validate ClimateNet files and print their label fractions")
    p.add_argument("paths", nargs="+", help="files or folders")
    p.set_defaults(func=_cmd_check)
    p = sub.add_parser("to-ugscnn", help="regrid netCDF files to UGSCNN .npz samples with split lists")
    p.add_argument("--data", required=True, help="folder of ClimateNet .nc files")
    p.add_argument("--out", required=True)
    p.add_argument("--level", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.set_defaults(func=_cmd_to_ugscnn)
    args = parser.parse_args(argv)
    args.func(args)
