r"""ClimateNet data on the icosphere: reader, dataset, UGSCNN format, synthetic generator.

The real data (ClimateNet, CAM5 0.25-degree runs) is one netCDF file per time step
with 16 fields on a ``lat x lon`` grid (768 x 1152, with a time dimension of 1)
and a ``LABELS`` map (0 background, 1 tropical cyclone, 2 atmospheric river).
This module reads those files, regrids them onto the icosphere of a chosen level
(fields bilinearly, labels by nearest neighbour, with the matrices of
:mod:`meshcnn.regrid`) and serves them as a lazy :class:`torch.utils.data.Dataset`.

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

    python -m meshcnn.data.climate synth --out DIR --num 200 --nlat 192 --nlon 288 --seed 0
    python -m meshcnn.data.climate verify DIR        # measured TC rotation, AR shape, class balance
    python -m meshcnn.data.climate check FILE_OR_DIR ...
    python -m meshcnn.data.climate to-ugscnn --data DIR --out DIR --level 5
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import logging
import os
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io import atomic_write, save_json, save_npz
from ..mesh import EARTH_RADIUS_KM, check_level, icosphere, num_vertices_at

__all__ = [
    "VARIABLES", "CLASSES", "NUM_CLASSES", "UNITS", "ClimateFileError",
    "read_latlon", "read_climatenet", "read_ugscnn", "read_split_list", "write_split_lists",
    "split_files", "find_files", "ClimateNetDataset", "compute_stats", "class_weights",
    "synthesize_sample", "write_climatenet", "generate_synthetic", "verify_synthetic", "LatLonGrid",
]

log = logging.getLogger(__name__)

#: The 16 ClimateNet input fields, in channel order.
VARIABLES: tuple[str, ...] = (
    "TMQ", "U850", "V850", "UBOT", "VBOT", "QREFHT", "PS", "PSL",
    "T200", "T500", "PRECT", "TS", "TREFHT", "Z1000", "Z200", "ZBOT",
)
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
_CACHE_VERSION = 1


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
    if values.ndim != 1 or len(values) < 2:
        raise ClimateFileError(path, f"coordinate {name!r} must be 1-D with at least 2 points, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ClimateFileError(path, f"coordinate {name!r} contains NaN or Inf")
    step = np.diff(values)
    if not (np.all(step > 0) or (name == "lat" and np.all(step < 0))):
        order = "strictly increasing or decreasing" if name == "lat" else "strictly increasing"
        raise ClimateFileError(path, f"coordinate {name!r} is not monotonic ({order} expected)")
    if name == "lat" and (values.min() < -90 - 1e-6 or values.max() > 90 + 1e-6):
        raise ClimateFileError(path, f"latitude outside [-90, 90] degrees: {values.min()}..{values.max()}")
    if name == "lon" and values[-1] - values[0] >= 360:
        raise ClimateFileError(path, f"longitude spans {values[-1] - values[0]} >= 360 degrees (duplicate column?)")
    return values


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
        Unreadable file, missing variables (all named), NaN/Inf in a field (named),
        labels outside {0, 1, 2}, a non-monotonic grid or mismatched shapes.
    """
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ClimateNet file")
    try:
        ds = netCDF4.Dataset(path, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise ClimateFileError(path, f"unreadable netCDF file ({exc})") from exc
    try:
        ds.set_auto_mask(False)
        names = set(ds.variables)
        wanted = list(VARIABLES) + (["LABELS"] if labels else [])
        missing = [v for v in wanted + ["lat", "lon"] if v not in names]
        if missing:
            raise ClimateFileError(path, f"missing variables: {', '.join(missing)}")
        lat = _check_axis(path, "lat", ds["lat"][:])
        lon = _check_axis(path, "lon", ds["lon"][:])
        shape = (len(lat), len(lon))
        fields = np.empty((len(VARIABLES),) + shape, dtype=np.float32)
        for c, name in enumerate(VARIABLES):
            var = ds[name]
            values = _squeeze_time(path, name, var[:], shape).astype(np.float32)
            fill = getattr(var, "_FillValue", None)
            if fill is not None and np.any(values == np.float32(fill)):
                raise ClimateFileError(path, f"variable {name!r} contains missing values (_FillValue={fill})")
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
    except (OSError, RuntimeError, IndexError, KeyError) as exc:
        raise ClimateFileError(path, f"unreadable netCDF file ({exc})") from exc
    finally:
        ds.close()
    return fields, label_map, lat, lon


def regrid_sample(fields: np.ndarray, labels: np.ndarray | None, lat: np.ndarray, lon: np.ndarray,
                  level: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Lat-lon sample -> mesh sample: fields bilinear ``(16, V)`` float32, labels nearest ``(V,)`` int64.

    Uses the cached sparse matrices of :func:`meshcnn.regrid.latlon_to_mesh` (one product per sample).
    """
    from .. import regrid

    level = check_level(level)
    data = regrid.apply(regrid.latlon_to_mesh(lat, lon, level, "bilinear"), fields.astype(np.float64))
    mesh_labels = None
    if labels is not None:
        mesh_labels = regrid.apply(regrid.latlon_to_mesh(lat, lon, level, "nearest"), labels).astype(np.int64)
    return data.astype(np.float32), mesh_labels


def read_climatenet(path: str | os.PathLike, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a ClimateNet netCDF file onto the icosphere of ``level``.

    Fields are interpolated bilinearly, labels by nearest neighbour
    (:mod:`meshcnn.regrid`). Returns ``data`` float32 ``(16, V)`` in
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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such UGSCNN sample file")
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
def find_files(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Sorted ``.nc``/``.npz`` sample files from files and folders (folders are not recursed)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix in (".nc", ".npz") and not q.name.startswith("."))
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
        with latitude ascending (for planar baselines; netCDF files only, one shared grid).
    cache_dir : folder for ``.npz`` copies of regridded samples, keyed by file path,
        size, modification time, level and grid (a changed source file is re-read).
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
        from tqdm import tqdm

        good = []
        for f in tqdm(self.files, desc="checking files", unit="file", disable=not progress):
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
        return {"data": np.ascontiguousarray(fields), "labels": np.ascontiguousarray(labels),
                "lat": np.ascontiguousarray(lat), "lon": lon}

    def raw_file(self, path: str | os.PathLike) -> dict[str, np.ndarray]:
        """Un-normalized arrays of one file (``data``, ``labels``; ``lat``/``lon`` on the lat-lon grid)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such ClimateNet file")
        cache = self._cache_path(path)
        sample = None
        if cache is not None and cache.is_file():
            try:
                with np.load(cache, allow_pickle=False) as f:
                    sample = {k: f[k] for k in f.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                warnings.warn(f"cache file {cache} unreadable ({exc}); re-reading {path}", stacklevel=2)
        if sample is None:
            sample = self._read(path)
            if cache is not None:
                save_npz(cache, **sample)
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

    def weights(self) -> np.ndarray:
        """Per-point area weights of a sample, summing to 1: mesh vertex areas or ``cos(lat)`` cells."""
        if self.grid == "mesh":
            areas = icosphere(self.level).vertex_areas
            return areas / areas.sum()
        if self.latlon_grid is None:
            self.raw(0)
        return self.latlon_grid.cell_weights


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
    from tqdm import tqdm

    if not isinstance(dataset, ClimateNetDataset):
        dataset = ClimateNetDataset(dataset, 5 if level is None else level)
    if len(dataset) == 0:
        raise ValueError("compute_stats: the dataset is empty")
    weights = None
    s1 = np.zeros(len(VARIABLES))
    s2 = np.zeros(len(VARIABLES))
    shift = None
    counts = np.zeros(NUM_CLASSES)
    for i in tqdm(range(len(dataset)), desc="normalization stats", unit="file", disable=not progress):
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
# synthetic ClimateNet generator
# ---------------------------------------------------------------------------------------------
_OMEGA = 7.292e-5      # Earth's rotation rate, 1/s
_G = 9.81              # m/s^2
_RHO = 1.15            # near-surface air density, kg/m^3
_RD = 287.0            # dry-air gas constant, J/(kg K)
_KM_PER_RAD = EARTH_RADIUS_KM


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Unit vectors ``(..., 3)`` of latitude/longitude in radians."""
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


class _Grid:
    """Precomputed geometry of a lat-lon grid (radians)."""

    def __init__(self, lat_deg: np.ndarray, lon_deg: np.ndarray) -> None:
        self.lat_deg, self.lon_deg = lat_deg, lon_deg
        self.lat, self.lon = np.meshgrid(np.deg2rad(lat_deg), np.deg2rad(lon_deg), indexing="ij")
        self.xyz = _unit(self.lat, self.lon)
        self.east = np.stack([-np.sin(self.lon), np.cos(self.lon), np.zeros_like(self.lon)], -1)
        self.north = np.stack([-np.sin(self.lat) * np.cos(self.lon), -np.sin(self.lat) * np.sin(self.lon),
                               np.cos(self.lat)], -1)
        self.shape = self.lat.shape

    def distance_km(self, center: np.ndarray) -> np.ndarray:
        """Great-circle distance from a unit vector ``center`` to every grid point, km."""
        return np.arccos(np.clip(self.xyz @ center, -1.0, 1.0)) * _KM_PER_RAD

    def tangent_components(self, vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Eastward and northward components of a 3-D vector field ``(..., 3)``."""
        return np.einsum("...k,...k->...", vec, self.east), np.einsum("...k,...k->...", vec, self.north)

    def vortex_directions(self, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit outward radial ``a`` and counter-clockwise tangential ``p x a`` vectors around ``center``."""
        p = self.xyz
        a = p * (p @ center)[..., None] - center
        a /= np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
        return a, np.cross(p, a)


def _smooth_field(rng: np.random.Generator, grid: _Grid, terms: int = 12, max_m: int = 10) -> np.ndarray:
    """A random smooth field of unit-order amplitude: sum of products of zonal and meridional waves
    that are continuous across the poles (meridional factor built from ``cos(lat)`` powers)."""
    out = np.zeros(grid.shape)
    for _ in range(terms):
        m = int(rng.integers(0, max_m + 1))
        n = int(rng.integers(1, max_m + 1))
        phase, phase2 = rng.uniform(0, 2 * np.pi, 2)
        amp = rng.normal() / np.sqrt(terms) / (1 + 0.2 * (m + n))
        out += amp * np.cos(grid.lat) ** min(m, 4) * np.cos(m * grid.lon + phase) * np.cos(n * grid.lat + phase2)
    return out / max(np.abs(out).max(), 1e-12)


def _ddx_ddy(field: np.ndarray, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """Eastward and northward derivatives (per metre) by centred differences, periodic in longitude."""
    dlon = np.deg2rad(grid.lon_deg[1] - grid.lon_deg[0])
    radius = _KM_PER_RAD * 1000.0
    dx = (np.roll(field, -1, 1) - np.roll(field, 1, 1)) / (2 * dlon * radius * np.maximum(np.cos(grid.lat), 1e-3))
    dy = np.gradient(field, np.deg2rad(grid.lat_deg) * radius, axis=0)
    return dx, dy


def _sat_humidity(temp_k: np.ndarray, pressure_pa: np.ndarray) -> np.ndarray:
    """Saturation specific humidity (Bolton 1980), kg/kg."""
    es = 611.2 * np.exp(17.67 * (temp_k - 273.15) / (temp_k - 29.65))
    return 0.622 * es / np.maximum(pressure_pa - 0.378 * es, 1.0)


def _orography(seed: int, grid: _Grid) -> np.ndarray:
    """Fixed surface height (m) of the synthetic world: a few Gaussian mountain ranges, same for all samples."""
    rng = np.random.default_rng([seed, 7919])
    z = np.zeros(grid.shape)
    for _ in range(6):
        center = _unit(np.arcsin(rng.uniform(-0.8, 0.9)), rng.uniform(-np.pi, np.pi))
        d = grid.distance_km(center)
        z += rng.uniform(800, 3500) * np.exp(-(d / rng.uniform(400, 1200)) ** 2)
    return z


def _season(date: _dt.date) -> float:
    """Solar declination in degrees (positive in northern summer)."""
    day = date.timetuple().tm_yday
    return 23.44 * np.sin(2 * np.pi * (day - 80) / 365.25)


def synthesize_sample(seed: int, index: int, lat: np.ndarray, lon: np.ndarray,
                      date: _dt.date | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    r"""One synthetic ClimateNet time step, deterministic in ``(seed, index)``.

    Background: zonal means that depend on the season (surface temperature falling
    poleward from ~301 K, precipitable water following Clausius-Clapeyron, trade
    winds and mid-latitude westerlies, subtropical highs and subpolar lows around
    1013 hPa), fixed orography (``PS`` < ``PSL`` over mountains), mid-latitude
    Rossby waves in geostrophic balance and unlabeled extratropical cyclones and
    tropical convective clusters as distractors.

    Tropical cyclones (label 1): warm-core Holland vortices (central pressure drop
    15-70 hPa, radius of maximum wind 60-150 km) centred at 6-32 degrees latitude,
    counter-clockwise in the northern hemisphere and clockwise in the southern,
    with surface inflow, high TMQ/QREFHT/PRECT. The label is the disc where the
    gradient wind exceeds gale force (17 m/s), clipped to 250-700 km.

    Atmospheric rivers (label 2): moisture filaments 2500-8000 km long and
    400-900 km wide that start in the subtropics (15-32 degrees) and run poleward
    and eastward along a gently curving path, some into polar latitudes, with a
    low-level jet along the axis. The label is the filament's tapered core.

    Returns ``fields`` (name -> float32 ``(nlat, nlon)``), ``labels`` int64
    ``(nlat, nlon)`` and ``events`` (JSON-able description of the TCs and ARs).
    """
    rng = np.random.default_rng([seed, index])
    grid = _Grid(np.asarray(lat, np.float64), np.asarray(lon, np.float64))
    date = date or (_dt.date(2000, 1, 1) + _dt.timedelta(days=2 * index))
    decl = _season(date)
    phi = grid.lat
    sphi = np.sin(phi)
    abs_deg = np.abs(np.rad2deg(phi))
    itcz = np.deg2rad(0.3 * decl)
    topo = _orography(seed, grid)

    # ---- zonal-mean background ---------------------------------------------------------------
    ts = 301.0 - 48.0 * np.sin(phi - itcz) ** 2 + 8.0 * sphi * (decl / 23.44)
    ts += 2.0 * _smooth_field(rng, grid) - 0.0065 * topo
    t500 = 268.0 - 30.0 * np.sin(phi - itcz) ** 2 + 4.0 * sphi * (decl / 23.44) + 1.5 * _smooth_field(rng, grid)
    t200 = 213.0 + 9.0 * np.exp(-((abs_deg - 50.0) / 22.0) ** 2) + 1.0 * _smooth_field(rng, grid)
    winter = 1.0 - 0.35 * sphi * (decl / 23.44)  # stronger subpolar lows / jets in the winter hemisphere
    psl = (101325.0 + 900.0 * np.exp(-((abs_deg - 32.0) / 10.0) ** 2)
           - 1500.0 * winter * np.exp(-((abs_deg - 62.0) / 9.0) ** 2) - 400.0 * np.exp(-(np.rad2deg(phi - itcz) / 8.0) ** 2))
    u850 = (-7.0 * np.exp(-((abs_deg - 13.0) / 10.0) ** 2) + 11.0 * winter * np.exp(-((abs_deg - 46.0) / 11.0) ** 2))
    v850 = -2.5 * np.sin(2 * (phi - itcz)) * np.exp(-(np.rad2deg(phi - itcz) / 25.0) ** 2)  # Hadley inflow to the ITCZ
    rh = 0.78 - 0.25 * np.exp(-((abs_deg - 25.0) / 8.0) ** 2) + 0.08 * _smooth_field(rng, grid)
    prect = 4e-8 * (0.3 + 3.0 * np.exp(-(np.rad2deg(phi - itcz) / 7.0) ** 2)
                    + 1.0 * np.exp(-((abs_deg - 50.0) / 12.0) ** 2)) * np.exp(0.8 * _smooth_field(rng, grid))

    # ---- mid-latitude Rossby waves, geostrophic ---------------------------------------------
    z1000_wave = np.zeros(grid.shape)
    for hemi in (1, -1):
        jet = rng.uniform(40, 52)
        env = np.exp(-((hemi * np.rad2deg(phi) - jet) / 12.0) ** 2) * (hemi * phi > 0)
        for m in rng.choice(np.arange(3, 9), size=3, replace=False):
            z1000_wave += env * rng.uniform(30, 70) * np.cos(m * grid.lon - rng.uniform(0, 2 * np.pi)
                                                             + rng.uniform(-2, 2) * phi)
    f_cor = 2 * _OMEGA * np.sign(sphi) * np.maximum(np.abs(sphi), np.sin(np.deg2rad(20.0)))
    dzdx, dzdy = _ddx_ddy(z1000_wave, grid)
    ug, vg = -_G / f_cor * dzdy, _G / f_cor * dzdx
    u850 += 1.3 * ug
    v850 += 1.3 * vg
    psl += _RHO * _G * z1000_wave
    t500 += 0.03 * z1000_wave
    # poleward flow is moist and rainy (warm conveyor belts), equatorward flow is dry
    poleward = np.tanh(vg * np.sign(sphi) / 10.0)
    rh = np.clip(rh + 0.12 * poleward, 0.2, 0.95)
    prect *= np.exp(0.8 * poleward)

    fields = {
        "TS": ts, "T500": t500, "T200": t200, "PSL": psl, "U850": u850, "V850": v850,
        "PRECT": prect, "TMQ": np.zeros(grid.shape), "QREFHT": np.zeros(grid.shape),
        "Z200_anom": np.zeros(grid.shape), "UBOT_extra": np.zeros(grid.shape), "VBOT_extra": np.zeros(grid.shape),
    }
    tmq_extra = np.zeros(grid.shape)
    q_extra = np.zeros(grid.shape)
    labels = np.zeros(grid.shape, dtype=np.int64)
    events: dict[str, Any] = {"date": date.isoformat(), "declination_deg": round(float(decl), 3),
                              "tropical_cyclones": [], "atmospheric_rivers": [], "extratropical_cyclones": 0}

    def add_vortex(center: np.ndarray, hemi: float, dp: float, rmax: float, outer: float, bmod: float,
                   inflow_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """Holland vortex: adds to PSL and winds; returns (distance km, tangential wind m/s)."""
        r = np.maximum(grid.distance_km(center), 1.0)
        x = (rmax / r) ** bmod
        taper = np.exp(-(r / outer) ** 4)
        fields["PSL"] -= dp * (1 - np.exp(-x)) * taper
        vt = np.sqrt(bmod * dp / _RHO * x * np.exp(-x)) * taper
        radial, tangential = grid.vortex_directions(center)
        ue, vn = grid.tangent_components(hemi * tangential)   # cyclonic: ccw in NH, cw in SH
        re_, rn = grid.tangent_components(radial)
        fields["U850"] += 0.85 * vt * ue
        fields["V850"] += 0.85 * vt * vn
        alpha = np.deg2rad(inflow_deg)
        fields["UBOT_extra"] += vt * (np.cos(alpha) * ue - np.sin(alpha) * re_) - 0.7 * 0.85 * vt * ue
        fields["VBOT_extra"] += vt * (np.cos(alpha) * vn - np.sin(alpha) * rn) - 0.7 * 0.85 * vt * vn
        return r, vt

    # ---- extratropical cyclones (unlabeled distractors) --------------------------------------
    n_etc = int(rng.integers(2, 6))
    for _ in range(n_etc):
        hemi = rng.choice([-1.0, 1.0])
        center = _unit(np.deg2rad(hemi * rng.uniform(38, 68)), rng.uniform(-np.pi, np.pi))
        r, _ = add_vortex(center, hemi, rng.uniform(800, 2500), rng.uniform(300, 600), 1800.0, 1.0, 30.0)
        blob = np.exp(-(r / 900.0) ** 2)
        fields["T500"] -= rng.uniform(1, 4) * blob
        fields["PRECT"] += rng.uniform(5e-8, 2e-7) * np.exp(-(r / 500.0) ** 2)
        tmq_extra += rng.uniform(2, 6) * blob
    events["extratropical_cyclones"] = n_etc

    # ---- tropical convective clusters (unlabeled distractors) --------------------------------
    for _ in range(int(rng.integers(2, 7))):
        center = _unit(np.deg2rad(np.rad2deg(itcz) + rng.normal(0, 7)), rng.uniform(-np.pi, np.pi))
        r = grid.distance_km(center)
        size = rng.uniform(300, 800)
        tmq_extra += rng.uniform(5, 12) * np.exp(-(r / size) ** 2)
        fields["PRECT"] += rng.uniform(2e-7, 8e-7) * np.exp(-(r / (0.6 * size)) ** 2)

    # ---- atmospheric rivers (label 2) ---------------------------------------------------------
    n_ar = int(min(8, 2 + rng.poisson(2.5)))
    for _ in range(n_ar):
        hemi = 1.0 if rng.uniform() < 0.5 + 0.15 * (-decl / 23.44) else -1.0  # more in the winter hemisphere
        lat0 = np.deg2rad(hemi * rng.uniform(15, 32))
        lon0 = rng.uniform(-np.pi, np.pi)
        length = rng.uniform(2500, 8000)
        half_width = rng.uniform(200, 450)
        # bearing measured from north, clockwise: north-east in the NH, south-east in the SH
        bearing = np.deg2rad(rng.uniform(25, 65)) if hemi > 0 else np.deg2rad(rng.uniform(115, 155))
        turn = rng.normal(0, 0.25) / 1000.0  # rad per km of path
        step = 40.0
        pts, tangents = [], []
        p = _unit(lat0, lon0)
        for _k in range(int(length / step) + 1):
            lat_p, lon_p = np.arcsin(np.clip(p[2], -1, 1)), np.arctan2(p[1], p[0])
            east = np.array([-np.sin(lon_p), np.cos(lon_p), 0.0])
            north = np.array([-np.sin(lat_p) * np.cos(lon_p), -np.sin(lat_p) * np.sin(lon_p), np.cos(lat_p)])
            t = np.sin(bearing) * east + np.cos(bearing) * north
            pts.append(p)
            tangents.append(t)
            ang = step / _KM_PER_RAD
            p = np.cos(ang) * p + np.sin(ang) * t
            p /= np.linalg.norm(p)
            # turn gently, and bend eastward at high latitudes (they wrap around the lows)
            bearing += turn * step - hemi * 0.15 * step / 1000.0 * max(0.0, abs(np.rad2deg(lat_p)) - 45) / 20
        pts_a, tan_a = np.array(pts), np.array(tangents)
        s = np.linspace(0, 1, len(pts_a))
        width_along = half_width * np.sqrt(np.clip(np.sin(np.pi * s), 0, 1)) + 1e-3
        mid = pts_a[len(pts_a) // 2]
        near = grid.xyz @ mid > np.cos((length / 2 + 2 * half_width) / _KM_PER_RAD)
        idx = np.nonzero(near)
        cos_d = grid.xyz[idx] @ pts_a.T                               # (N, P)
        nearest = np.argmax(cos_d, axis=1)
        dist = np.arccos(np.clip(cos_d[np.arange(len(nearest)), nearest], -1, 1)) * _KM_PER_RAD
        rel = dist / width_along[nearest]
        profile = np.exp(-rel**2 * np.log(2) * 1.5) * np.sqrt(np.clip(np.sin(np.pi * s[nearest]), 0, 1))
        amp = rng.uniform(15, 30)
        moisture = np.zeros(grid.shape)
        moisture[idx] = profile
        tmq_extra += amp * moisture
        q_extra += 0.004 * moisture
        fields["PRECT"] += rng.uniform(1e-7, 5e-7) * moisture
        fields["T500"] += 1.5 * moisture
        jet = rng.uniform(10, 20) * profile
        axis = tan_a[nearest]                                         # (N, 3) path direction
        fields["U850"][idx] += jet * np.einsum("nk,nk->n", axis, grid.east[idx])
        fields["V850"][idx] += jet * np.einsum("nk,nk->n", axis, grid.north[idx])
        core = np.zeros(grid.shape, dtype=bool)
        core[idx] = (rel < 1.0) & (s[nearest] > 0.02) & (s[nearest] < 0.98)
        labels[core & (labels == 0)] = 2
        lats_path = np.rad2deg(np.arcsin(np.clip(pts_a[:, 2], -1, 1)))
        events["atmospheric_rivers"].append({
            "start_lat": round(float(lats_path[0]), 2), "end_lat": round(float(lats_path[-1]), 2),
            "max_abs_lat": round(float(np.abs(lats_path).max()), 2), "length_km": round(float(length), 1),
            "width_km": round(float(2 * half_width), 1)})

    # ---- tropical cyclones (label 1) ----------------------------------------------------------
    n_tc = int(min(6, rng.poisson(2.0)))
    centers: list[np.ndarray] = []
    for _ in range(n_tc):
        for _try in range(20):
            hemi = 1.0 if rng.uniform() < 0.5 + 0.35 * decl / 23.44 else -1.0  # summer hemisphere
            lat_c, lon_c = hemi * rng.uniform(6, 32), rng.uniform(-np.pi, np.pi)
            center = _unit(np.deg2rad(lat_c), lon_c)
            if all(np.arccos(np.clip(center @ c, -1, 1)) * _KM_PER_RAD > 1800 for c in centers):
                break
        else:
            continue
        centers.append(center)
        dp, rmax, bmod = rng.uniform(1500, 7000), rng.uniform(60, 150), rng.uniform(1.2, 1.8)
        r, vt = add_vortex(center, hemi, dp, rmax, 1200.0, bmod, 20.0)
        # label radius: where the gradient wind falls to gale force (17 m/s)
        radii = np.linspace(rmax, 1500, 2000)
        xr_ = (rmax / radii) ** bmod
        v_prof = np.sqrt(bmod * dp / _RHO * xr_ * np.exp(-xr_)) * np.exp(-(radii / 1200.0) ** 4)
        r_gale = float(radii[np.argmax(v_prof < 17.0)]) if np.any(v_prof < 17.0) else 700.0
        r_label = float(np.clip(r_gale, 250, 700))
        warm = rng.uniform(2, 6)
        fields["T500"] += warm * np.exp(-(r / (3 * rmax)) ** 2)
        fields["T200"] += 0.6 * warm * np.exp(-(r / (4 * rmax)) ** 2)
        fields["Z200_anom"] += 8.0 * warm * np.exp(-(r / (4 * rmax)) ** 2)
        fields["TS"] -= 1.0 * np.exp(-(r / 300.0) ** 2)  # cold wake
        tmq_extra += rng.uniform(18, 30) * np.exp(-(r / (0.8 * r_label)) ** 2)
        q_extra += 0.004 * np.exp(-(r / (0.8 * r_label)) ** 2)
        fields["PRECT"] += rng.uniform(1e-6, 4e-6) * np.exp(-(r / (2.5 * rmax)) ** 2)
        labels[r < r_label] = 1
        events["tropical_cyclones"].append({
            "lat": round(float(lat_c), 3), "lon": round(float(np.rad2deg(lon_c)) % 360.0, 3), "hemisphere": "N" if hemi > 0 else "S",
            "pressure_drop_hpa": round(float(dp / 100), 1), "rmax_km": round(float(rmax), 1),
            "label_radius_km": round(r_label, 1), "max_wind_ms": round(float(vt.max()), 1)})

    # ---- derived fields ----------------------------------------------------------------------
    psl = fields["PSL"]
    ts = fields["TS"]
    trefht = ts - 0.8 - 0.3 * _smooth_field(rng, grid)
    ps = psl * np.exp(-_G * topo / (_RD * (trefht + 0.00325 * topo)))
    qsat = _sat_humidity(trefht, ps)
    qrefht = rh * qsat + q_extra
    tmq = 52.0 * np.exp(0.07 * (ts - 301.0)) * (rh / 0.78) + tmq_extra
    z1000 = (psl - 100000.0) / (_RHO * _G)
    mean_t = 0.25 * trefht + 0.5 * fields["T500"] + 0.25 * fields["T200"]
    z200 = z1000 + _RD * mean_t / _G * np.log(1000.0 / 200.0) + fields["Z200_anom"]
    ubot = 0.7 * fields["U850"] + fields["UBOT_extra"]
    vbot = 0.7 * fields["V850"] + fields["VBOT_extra"]
    # friction turns the surface wind towards low pressure: counter-clockwise in the NH, clockwise in the SH
    alpha = np.deg2rad(15.0) * np.sign(sphi)
    ubot, vbot = ubot * np.cos(alpha) - vbot * np.sin(alpha), ubot * np.sin(alpha) + vbot * np.cos(alpha)
    zbot = _RD * trefht / _G * np.log(1.0 / 0.9925)
    out = {
        "TMQ": tmq, "U850": fields["U850"], "V850": fields["V850"], "UBOT": ubot, "VBOT": vbot,
        "QREFHT": qrefht, "PS": ps, "PSL": psl, "T200": fields["T200"], "T500": fields["T500"],
        "PRECT": np.maximum(fields["PRECT"], 0.0), "TS": ts, "TREFHT": trefht, "Z1000": z1000,
        "Z200": z200, "ZBOT": zbot,
    }
    return {k: v.astype(np.float32) for k, v in out.items()}, labels, events


def write_climatenet(path: str | os.PathLike, fields: dict[str, np.ndarray], labels: np.ndarray,
                     lat: np.ndarray, lon: np.ndarray, date: _dt.date | None = None,
                     attrs: dict[str, Any] | None = None) -> None:
    """Write one time step in the ClimateNet netCDF layout (atomically).

    Fields as ``float32 (time=1, lat, lon)`` with CAM5 units, ``LABELS`` as
    ``int64 (lat, lon)``, coordinates ``lat``/``lon`` in degrees and ``time``.
    """
    import netCDF4

    ds = netCDF4.Dataset("inmemory.nc", "w", format="NETCDF4", memory=1 << 20)
    ds.createDimension("time", 1)
    ds.createDimension("lat", len(lat))
    ds.createDimension("lon", len(lon))
    v = ds.createVariable("lat", "f8", ("lat",))
    v[:] = lat
    v.units, v.long_name = "degrees_north", "latitude"
    v = ds.createVariable("lon", "f8", ("lon",))
    v[:] = lon
    v.units, v.long_name = "degrees_east", "longitude"
    v = ds.createVariable("time", "f8", ("time",))
    v.units, v.calendar = "days since 2000-01-01 00:00:00", "noleap"
    v[:] = (date - _dt.date(2000, 1, 1)).days if date is not None else 0.0
    for name in VARIABLES:
        v = ds.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True, complevel=1)
        v.units, v.long_name = UNITS[name]
        v[0] = fields[name]
    v = ds.createVariable("LABELS", "i8", ("lat", "lon"), zlib=True, complevel=1)
    v.long_name = "0 background, 1 tropical cyclone, 2 atmospheric river"
    v[:] = labels
    for key, value in (attrs or {}).items():
        ds.setncattr(key, value)
    buf = ds.close()
    with atomic_write(path) as f:
        f.write(bytes(buf))


def default_grid(nlat: int, nlon: int) -> tuple[np.ndarray, np.ndarray]:
    """ClimateNet's grid layout: ``nlat`` latitudes from -90 to 90 inclusive, ``nlon`` longitudes from 0."""
    if nlat < 3 or nlon < 4:
        raise ValueError(f"grid too small: nlat={nlat}, nlon={nlon} (need nlat >= 3, nlon >= 4)")
    return np.linspace(-90.0, 90.0, nlat), np.arange(nlon) * (360.0 / nlon)


def _synth_one(args: tuple[int, int, int, int, str]) -> dict[str, Any]:
    seed, index, nlat, nlon, out = args
    lat, lon = default_grid(nlat, nlon)
    date = _dt.date(2000, 1, 1) + _dt.timedelta(days=2 * index)
    fields, labels, events = synthesize_sample(seed, index, lat, lon, date)
    name = f"data-{date.isoformat()}-01-1_{index}.nc"
    write_climatenet(Path(out) / name, fields, labels, lat, lon, date,
                     attrs={"source": "meshcnn synthetic ClimateNet generator", "seed": seed, "index": index})
    grid_w = np.cos(np.deg2rad(lat))[:, None] * np.ones(nlon)
    frac = np.bincount(labels.ravel(), weights=grid_w.ravel(), minlength=NUM_CLASSES) / grid_w.sum()
    return {"file": name, "class_fraction": frac.tolist(), **events}


def generate_synthetic(out: str | os.PathLike, num: int = 200, nlat: int = 192, nlon: int = 288, seed: int = 0,
                       progress: bool = True, workers: int = 1) -> list[Path]:
    """Write ``num`` synthetic ClimateNet files ``data-YYYY-MM-DD-01-1_<i>.nc`` (2 days apart from
    2000-01-01, so a set covers the seasons) and ``synth.json`` describing every event.
    Deterministic for ``seed``; file ``i`` depends only on ``(seed, i, nlat, nlon)``."""
    from tqdm import tqdm

    if num < 1:
        raise ValueError(f"num must be positive, got {num}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, i, nlat, nlon, str(out)) for i in range(num)]
    if workers > 1:
        from multiprocessing import Pool

        with Pool(workers) as pool:
            records = list(tqdm(pool.imap(_synth_one, jobs), total=num, desc="synthesizing", unit="file",
                                disable=not progress))
    else:
        records = [_synth_one(j) for j in tqdm(jobs, desc="synthesizing", unit="file", disable=not progress)]
    fractions = np.array([r["class_fraction"] for r in records])
    summary = {
        "seed": seed, "num": num, "nlat": nlat, "nlon": nlon,
        "class_fraction_mean": fractions.mean(0).tolist(),
        "num_tropical_cyclones": int(sum(len(r["tropical_cyclones"]) for r in records)),
        "num_atmospheric_rivers": int(sum(len(r["atmospheric_rivers"]) for r in records)),
        "files": records,
    }
    save_json(out / "synth.json", summary)
    return [out / r["file"] for r in records]


def verify_synthetic(folder: str | os.PathLike, progress: bool = True) -> dict[str, Any]:
    """Measure, from the files themselves, that a synthetic set has the intended physics.

    Reads ``folder/synth.json`` (written by :func:`generate_synthetic`) for the event
    positions and every file's fields and labels, and returns:

    * ``class_fraction``: area-weighted label fractions (background, TC, AR);
    * ``tc_cyclonic_fraction``: fraction of TCs whose mean 850 hPa relative vorticity
      :math:`\zeta = \partial_x v - \partial_y u` within 300 km of the centre has the
      hemisphere's cyclonic sign (positive north, negative south), with the mean
      vorticity per hemisphere; ``tc_warm_core_k``: mean T500 at the centre minus its
      mean 1500-2000 km away; ``tc_pressure_drop_hpa``: mean PSL drop over the same;
      ``tc_abs_lat_range``;
    * ``ar_length_km``/``ar_width_km`` ranges, ``ar_polar_fraction`` (ARs reaching
      beyond 60 degrees); ``tmq_ar_over_background``: mean TMQ on AR labels over mean
      TMQ of background points at 20-60 degrees.
    """
    from tqdm import tqdm

    folder = Path(folder)
    with open(folder / "synth.json") as f:
        summary = json.load(f)
    area_counts = np.zeros(NUM_CLASSES)
    vort = {"N": [], "S": []}
    warm, drop, tc_lats = [], [], []
    tmq_ar, tmq_bg = [], []
    grid = None
    for record in tqdm(summary["files"], desc="verifying", unit="file", disable=not progress):
        fields, labels, lat, lon = read_latlon(folder / record["file"])
        if grid is None:
            grid = _Grid(lat, lon)
            w = np.cos(np.deg2rad(lat))[:, None] * np.ones(len(lon))
        area_counts += np.bincount(labels.ravel(), weights=w.ravel(), minlength=NUM_CLASSES)
        u, v = fields[VARIABLES.index("U850")].astype(np.float64), fields[VARIABLES.index("V850")].astype(np.float64)
        dvdx, _ = _ddx_ddy(v, grid)
        _, dudy = _ddx_ddy(u, grid)
        zeta = dvdx - dudy
        for tc in record["tropical_cyclones"]:
            r = grid.distance_km(_unit(np.deg2rad(tc["lat"]), np.deg2rad(tc["lon"])))
            core, ring = r < 300, (r > 1500) & (r < 2000)
            vort[tc["hemisphere"]].append(float(zeta[core].mean()))
            t500, psl = fields[VARIABLES.index("T500")], fields[VARIABLES.index("PSL")]
            warm.append(float(t500[r < 150].mean() - t500[ring].mean()) if np.any(r < 150) else float("nan"))
            drop.append(float(psl[ring].mean() - psl[core].min()) / 100)
            tc_lats.append(abs(tc["lat"]))
        tmq = fields[VARIABLES.index("TMQ")]
        band = (np.abs(grid.lat_deg)[:, None] > 20) & (np.abs(grid.lat_deg)[:, None] < 60) & np.ones(len(lon), bool)
        if np.any(labels == 2):
            tmq_ar.append(float(tmq[labels == 2].mean()))
        tmq_bg.append(float(tmq[band & (labels == 0)].mean()))
    ars = [a for r in summary["files"] for a in r["atmospheric_rivers"]]
    signs = [z > 0 for z in vort["N"]] + [z < 0 for z in vort["S"]]
    return {
        "num_files": len(summary["files"]),
        "class_fraction": (area_counts / area_counts.sum()).tolist(),
        "num_tc": len(signs), "num_tc_north": len(vort["N"]), "num_tc_south": len(vort["S"]),
        "tc_cyclonic_fraction": float(np.mean(signs)) if signs else float("nan"),
        "tc_mean_vorticity_north": float(np.mean(vort["N"])) if vort["N"] else float("nan"),
        "tc_mean_vorticity_south": float(np.mean(vort["S"])) if vort["S"] else float("nan"),
        "tc_warm_core_k": float(np.nanmean(warm)) if warm else float("nan"),
        "tc_pressure_drop_hpa": float(np.mean(drop)) if drop else float("nan"),
        "tc_abs_lat_range": [float(min(tc_lats)), float(max(tc_lats))] if tc_lats else [],
        "num_ar": len(ars),
        "ar_length_km": [min(a["length_km"] for a in ars), max(a["length_km"] for a in ars)] if ars else [],
        "ar_width_km": [min(a["width_km"] for a in ars), max(a["width_km"] for a in ars)] if ars else [],
        "ar_start_abs_lat": [min(abs(a["start_lat"]) for a in ars), max(abs(a["start_lat"]) for a in ars)] if ars else [],
        "ar_polar_fraction": float(np.mean([a["max_abs_lat"] > 60 for a in ars])) if ars else float("nan"),
        "tmq_ar_over_background": float(np.mean(tmq_ar) / np.mean(tmq_bg)) if tmq_ar else float("nan"),
    }


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def _cmd_synth(args: argparse.Namespace) -> None:
    files = generate_synthetic(args.out, args.num, args.nlat, args.nlon, args.seed, workers=args.workers)
    with open(Path(args.out) / "synth.json") as f:
        summary = json.load(f)
    frac = summary["class_fraction_mean"]
    print(f"wrote {len(files)} files to {args.out}")
    print("area fraction: " + ", ".join(f"{c} {100 * x:.2f}%" for c, x in zip(CLASSES, frac)))
    print(f"{summary['num_tropical_cyclones']} tropical cyclones, {summary['num_atmospheric_rivers']} atmospheric rivers")


def _cmd_verify(args: argparse.Namespace) -> None:
    report = verify_synthetic(args.folder)
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
    from tqdm import tqdm

    files = [f for f in find_files(args.data) if f.suffix == ".nc"]
    out = Path(args.out)
    names = {}
    for f in tqdm(files, desc="regridding", unit="file"):
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


if __name__ == "__main__":
    main()
