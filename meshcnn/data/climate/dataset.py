"""The lazy ClimateNet datasets (one file per sample, or an archive opened with xarray and Dask, read a
time window at a time), their normalization statistics and class weights."""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..._optional import optional_import
from ..._progress import progress_bar
from ...geometry.mesh import check_level
from ...grids import HealpixGrid, IcosphereGrid, LatLonGrid, sphere_grid
from ...io import array_checksum, save_npz
from ._format import CLASSES, NUM_CLASSES, VARIABLES, ClimateFileError, _existing_file
from .reader import read_latlon, read_ugscnn, regrid_sample

__all__ = ["ClimateNetDataset", "LazyClimateDataset", "compute_stats", "class_weights"]

_CACHE_VERSION = 2  # 2: sample caches carry a SHA-256 checksum


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
    if (
        checksum is None
        or checksum.shape != ()
        or str(checksum) != array_checksum(sample)
        or not {"data", "labels"} <= set(sample)
    ):
        warnings.warn(
            f"cache file {cache} fails its checksum (corrupt or incomplete); re-reading {source}", stacklevel=3
        )
        return None
    return sample


def _cache_file(cache_dir: Path, path: Path, level: int, grid: str) -> Path:
    """The cache file of a source file: keyed by its path, size, modification time, level and grid."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{level}|{grid}|{_CACHE_VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{path.stem}.L{level}.{grid}.{digest}.npz"


def _ascending_latlon(
    fields: np.ndarray, labels: np.ndarray, lat: np.ndarray, lon: np.ndarray
) -> dict[str, np.ndarray]:
    """A lat-lon sample with latitude and longitude ascending and no duplicated periodic column."""
    if lat[0] > lat[-1]:
        fields, labels, lat = fields[:, ::-1], labels[::-1], lat[::-1]
    if lon[0] > lon[-1]:
        fields, labels, lon = fields[..., ::-1], labels[:, ::-1], lon[::-1]
    if np.isclose(lon[-1] - lon[0], 360.0, rtol=0, atol=1e-6):
        fields, labels, lon = fields[..., :-1], labels[:, :-1], lon[:-1]
    return {
        "data": np.ascontiguousarray(fields),
        "labels": np.ascontiguousarray(labels),
        "lat": np.ascontiguousarray(lat),
        "lon": lon,
    }


SAMPLE_GRIDS = {"mesh": "icosphere", "healpix": "healpix", "latlon": None}  # dataset grid -> sphere grid family
_ALIASES = {"icosphere": "mesh"}  # the family's name for the icosphere samples


def _read_sample(path: Path, level: int, grid: str) -> dict[str, np.ndarray]:
    """The arrays of one source file: on the sphere grid of ``level`` (``grid="mesh"``: the icosphere,
    ``"healpix"``) or on its own lat-lon grid (``"latlon"``)."""
    if path.suffix == ".npz":
        data, labels = read_ugscnn(path, level)
        return {"data": data, "labels": labels}
    fields, labels, lat, lon = read_latlon(path)
    if SAMPLE_GRIDS[grid] is not None:
        data, mesh_labels = regrid_sample(fields, labels, lat, lon, sphere_grid(SAMPLE_GRIDS[grid], level))
        return {"data": data, "labels": mesh_labels}
    return _ascending_latlon(fields, labels, lat, lon)


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
    grid : ``"mesh"`` or ``"icosphere"`` (the icosphere of ``level``) or ``"healpix"`` (HEALPix of order ``level``,
        ``nside = 2**level``, NESTED) -> ``data`` float32 ``(16, V)``, ``labels`` int64 ``(V,)``;
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

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        level: int = 5,
        *,
        stats: dict[str, Any] | None = None,
        grid: str = "mesh",
        cache_dir: str | os.PathLike | None = None,
        skip_bad: bool = False,
        log: Callable[[str], Any] | None = None,
        progress: bool = False,
    ) -> None:
        self.level = check_level(level)
        grid = _ALIASES.get(grid, grid)
        if grid not in SAMPLE_GRIDS:
            raise ValueError(f"grid must be one of 'mesh' (or 'icosphere'), 'healpix', 'latlon', got {grid!r}")
        self.grid = grid
        self.files = [Path(f) for f in files]
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._stats = _as_stats(stats)
        self.stats = stats
        self.bad_files: list[tuple[str, str]] = []
        self.latlon_grid: LatLonGrid | None = None
        self._log = log or (lambda msg: warnings.warn(msg, stacklevel=3))
        if grid != "mesh":
            npz = [f for f in self.files if f.suffix == ".npz"]
            if npz:
                raise ValueError(f"grid={grid!r} needs netCDF files; UGSCNN samples are on the icosphere: {npz[0]}")
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
    def raw_file(self, path: str | os.PathLike) -> dict[str, np.ndarray]:
        """Un-normalized arrays of one file (``data``, ``labels``; ``lat``/``lon`` on the lat-lon grid)."""
        path = _existing_file(path)
        cache = None if self.cache_dir is None else _cache_file(self.cache_dir, path, self.level, self.grid)
        sample = None
        if cache is not None and cache.is_file():
            sample = _load_cache(cache, path)
        if sample is None:
            sample = _read_sample(path, self.level, self.grid)
            if cache is not None:
                save_npz(cache, checksum=np.array(array_checksum(sample)), **sample)
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
        """Per-point area weights of a sample, summing to 1: the ``cell_weights`` of the sample's grid
        (:mod:`meshcnn.grids.base`), mesh vertex areas or exact lat-lon cell areas, normalised."""
        return (LatLonGrid(*self.latlon) if self.grid == "latlon" else self.sphere_grid).cell_weights

    @property
    def sphere_grid(self) -> IcosphereGrid | HealpixGrid:
        """The sphere grid of the samples (:func:`meshcnn.grids.sphere_grid`); ``ValueError`` for ``grid="latlon"``."""
        if SAMPLE_GRIDS[self.grid] is None:
            raise ValueError("a grid='latlon' dataset has no sphere grid")
        return sphere_grid(SAMPLE_GRIDS[self.grid], self.level)


def _open_archive(source: Any, time_dim: str) -> Any:
    """An xarray Dataset of ``source``: itself, or a Zarr store / netCDF files opened lazily (Dask)."""
    from ...grids.regridder import import_dask

    xr = optional_import("xarray", "LazyClimateDataset needs xarray", "climate")
    if isinstance(source, xr.Dataset):
        return source
    import_dask()
    paths = [Path(p) for p in ([source] if isinstance(source, (str, os.PathLike)) else source)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no such archive")
    if len(paths) == 1 and (paths[0].is_dir() or paths[0].suffix == ".zarr"):
        return xr.open_zarr(paths[0], consolidated=None)
    return xr.open_mfdataset(
        paths,
        combine="nested",
        concat_dim=time_dim,
        data_vars="minimal",
        coords="minimal",
        compat="override",
        decode_times=False,
    )


class LazyClimateDataset(Dataset):
    r"""Samples of an archive of many time steps, read a time window at a time: train on more than fits in memory.

    The archive is an ``xarray.Dataset`` (Dask-backed or not), a Zarr store, or netCDF files
    concatenated along time (opened lazily with Dask, the extra ``meshcnn[dask]``), with the
    variables on one global lat-lon grid ``(time, lat, lon)`` (grid dimensions found as by
    :class:`~meshcnn.grids.Regridder`). Item ``t`` is time step ``t``: its fields bilinear and its labels
    nearest on the sphere grid, exactly as :class:`ClimateNetDataset` regrids a file (the same
    values). Only the window of ``window`` steps holding ``t`` is read and regridded
    (one :class:`~meshcnn.grids.Regridder` call); it is kept for the next items of the same window.
    Memory is therefore one window, whatever the archive's length.

    Parameters
    ----------
    source : xarray.Dataset, path of a Zarr store, or netCDF path(s)
    level : int
        Level of the sphere grid.
    grid : ``"mesh"``/``"icosphere"`` or ``"healpix"``
        The sphere grid family (as :class:`ClimateNetDataset`).
    variables : sequence of str
        Input channels, in order (default the 16 ClimateNet variables).
    labels : str or None
        The label variable (integer classes); ``None``: items are the fields only.
    stats : dict, optional
        ``{"mean": (C,), "std": (C,)}``: items are normalised :math:`(x_c - \mu_c) / \sigma_c`.
    window : int, optional
        Time steps read at once; default: the archive's time chunk (1 for an in-memory Dataset).
    time_dim : str
        The time dimension (default ``"time"``).

    Raises
    ------
    ValueError
        A variable missing, or not on ``(time, lat, lon)``.
    """

    def __init__(
        self,
        source: Any,
        level: int = 5,
        *,
        grid: str = "mesh",
        variables: Sequence[str] = VARIABLES,
        labels: str | None = "LABELS",
        stats: dict[str, Any] | None = None,
        window: int | None = None,
        time_dim: str = "time",
    ) -> None:
        from ...grids import Regridder, latlon_dims

        self.level = check_level(level)
        grid = _ALIASES.get(grid, grid)
        if grid not in SAMPLE_GRIDS or SAMPLE_GRIDS[grid] is None:
            raise ValueError(f"grid must be 'mesh' (or 'icosphere') or 'healpix', got {grid!r}")
        self.grid = grid
        self.archive = _open_archive(source, time_dim)
        self.variables, self.labels, self.time_dim = list(variables), labels, time_dim
        names = self.variables + ([labels] if labels is not None else [])
        missing = [n for n in names if n not in self.archive.variables]
        if missing:
            raise ValueError(f"the archive has no variable {', '.join(map(repr, missing))}")
        lat_dim, lon_dim = latlon_dims(self.archive)
        for name in names:
            if set(self.archive[name].dims) != {time_dim, lat_dim, lon_dim}:
                raise ValueError(
                    f"variable {name!r} has dimensions {self.archive[name].dims}, not "
                    f"({time_dim}, {lat_dim}, {lon_dim})"
                )
        self._dims = (time_dim, lat_dim, lon_dim)
        lat = np.asarray(self.archive[lat_dim].values, dtype=np.float64)
        lon = np.asarray(self.archive[lon_dim].values, dtype=np.float64)
        self.latlon_grid = LatLonGrid(lat, lon)
        self._fields = Regridder(self.latlon_grid, self.sphere_grid, "bilinear")
        self._labels = Regridder(self.latlon_grid, self.sphere_grid, "nearest")
        self.num_steps = int(self.archive.sizes[time_dim])
        if window is None:
            chunks = self.archive[self.variables[0]].chunks
            window = chunks[self.archive[self.variables[0]].dims.index(time_dim)][0] if chunks else 1
        if int(window) < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = int(window)
        self.set_stats(stats)
        self._block: tuple[int, np.ndarray, np.ndarray | None] | None = None

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers start without a window in memory
        return {**self.__dict__, "_block": None}

    def set_stats(self, stats: dict[str, Any] | None) -> None:
        """Set (or remove) the normalization statistics."""
        self.stats = stats
        self._stats = None
        if stats is not None:
            mean = np.asarray(stats["mean"], dtype=np.float32).reshape(-1)
            std = np.asarray(stats["std"], dtype=np.float32).reshape(-1)
            if mean.shape != (len(self.variables),) or std.shape != (len(self.variables),):
                raise ValueError(f"normalization stats must have {len(self.variables)} means and stds")
            self._stats = (mean, std)

    def __len__(self) -> int:
        return self.num_steps

    @property
    def sphere_grid(self) -> IcosphereGrid | HealpixGrid:
        """The sphere grid of the samples (:func:`meshcnn.grids.sphere_grid`)."""
        return sphere_grid(SAMPLE_GRIDS[self.grid], self.level)

    def weights(self) -> np.ndarray:
        """Per-vertex area weights summing to 1 (the sphere grid's ``cell_weights``)."""
        return self.sphere_grid.cell_weights

    def _window(self, start: int) -> tuple[int, np.ndarray, np.ndarray | None]:
        """Read and regrid steps ``[start, start + window)``: ``(start, data (T, C, V) float32, labels (T, V))``."""
        stop = min(start + self.window, self.num_steps)
        part = self.archive[self.variables + ([self.labels] if self.labels else [])].isel(
            {self.time_dim: slice(start, stop)}
        )
        fields = np.stack(
            [np.asarray(part[n].transpose(*self._dims).values, dtype=np.float32) for n in self.variables], axis=1
        )  # (T, C, nlat, nlon), as the file reader
        if not np.all(np.isfinite(fields)):
            raise ValueError(f"NaN or Inf in the fields of steps {start}..{stop - 1}")
        data = self._fields(fields.astype(np.float64)).astype(np.float32)
        labels = None
        if self.labels is not None:
            raw = np.asarray(part[self.labels].transpose(*self._dims).values)
            labels = self._labels(raw).astype(np.int64)
        return start, data, labels

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Un-normalized ``data (C, V)`` float32 and ``labels (V,)`` int64 (``None`` without labels) of step
        ``index``."""
        if not 0 <= index < self.num_steps:
            raise IndexError(f"step {index} outside 0..{self.num_steps - 1}")
        start = index // self.window * self.window
        if self._block is None or self._block[0] != start:
            self._block = None  # free the previous window first
            self._block = self._window(start)
        _, data, labels = self._block
        return data[index - start], (labels[index - start] if labels is not None else None)

    def __getitem__(self, index: int) -> Any:
        data, labels = self.raw(index)
        if self._stats is not None:
            mean, std = self._stats
            data = (data - mean[:, None]) / std[:, None]
        x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        return x if labels is None else (x, torch.from_numpy(labels))


def compute_stats(
    dataset: ClimateNetDataset | Sequence[str | os.PathLike], level: int | None = None, progress: bool = True
) -> dict[str, Any]:
    r"""Per-channel mean/std and class area fractions of a (training) split.

    Area-weighted over the sphere (:meth:`ClimateNetDataset.weights`: mesh vertex areas,
    or exact cell areas on a lat-lon grid), pooled over all samples:
    :math:`\mu_c = \sum_{s,v} a_v x_{s,c,v} / (S \sum_v a_v)`,
    :math:`\sigma_c^2 = \sum_{s,v} a_v (x_{s,c,v} - \mu_c)^2 / (S \sum_v a_v)`.
    A channel with zero variance gets ``std = 1`` (so normalizing only centres it).

    Parameters
    ----------
    dataset : ClimateNetDataset, LazyClimateDataset or sequence of paths
        The samples; files are read as a :class:`ClimateNetDataset` of ``level``.
    level : int, optional
        Icosphere level for a sequence of files (default 5).
    progress : bool
        Show a progress bar (default ``True``).

    Returns
    -------
    dict
        JSON-able: ``{"mean": [16], "std": [16], "class_fraction": [3],
        "variables": [...], "classes": [...], "num_samples": S}``.

    Raises
    ------
    ValueError
        If the dataset is empty.
    """
    if not isinstance(dataset, (ClimateNetDataset, LazyClimateDataset)):
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

    Parameters
    ----------
    class_fraction : sequence of float
        Area fraction :math:`f_k` of each class (as :func:`compute_stats` returns).
    power : float
        :math:`p` (default 1).

    Returns
    -------
    (C,) float32 tensor
    """
    f = np.asarray(class_fraction, dtype=np.float64)
    w = np.where(f > 0, np.maximum(f, 1e-12) ** -power, 0.0)
    w = w / max(float((f * w).sum()), 1e-30)
    return torch.tensor(w, dtype=torch.float32)
