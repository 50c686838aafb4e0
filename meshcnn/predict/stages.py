"""The stages of ``meshcnn predict`` applied to one chunk of time steps of one file.

1. *read* and 2. *regrid* (in a ``DataLoader`` worker, :class:`ChunkDataset`): the
   fields of the chunk (a :class:`meshcnn.predict.inputs.FileReader`, kept open for the
   file's next chunk), bilinear to the model's sphere grid (a :class:`meshcnn.grids.Regridder`; with
   ``allow_nan`` missing values are skipped, ``skipna=True``, and vertices left without
   valid data get the training mean, unless that is more than ``max_nan_fraction`` of
   the globe for a variable and time step: the file is then refused), then normalised;
3. *model* (:func:`meshcnn.tasks.mesh_probabilities`): softmax class probabilities on the mesh;
4. *regrid back* (:func:`grid_labels`): the probabilities interpolated to the file's
   grid (barycentric in the mesh triangles), then the argmax gives the labels, so
   labels follow the model's decision boundaries at the grid's resolution;
5. the events of each time step (:func:`chunk_events`), found with the *write* stage.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._cache import memoize
from ..data.climate import ClimateFileError
from ..geometry.mesh import Mesh
from ..grids import Regridder, regrid
from ..grids.base import Grid
from .events import find_events
from .inputs import LAT_NAMES, LON_NAMES, FileReader, open_source
from .predictor import Predictor

#: Variables whose regridded values (file units) are kept for the events' extremes.
EXTREME_VARIABLES = ("PSL", "TMQ")

#: Default of ``--max-nan-fraction``: the largest fraction of the globe (per variable and time
#: step) that ``--allow-nan`` fills with the training mean; a variable missing on more stops the
#: file. Scattered missing points leave few vertices, if any, without valid data; a variable
#: missing everywhere (or over a region) is not replaced by its training mean without asking.
MAX_NAN_FRACTION = 0.05


class ChunkDataset(Dataset):
    """One item per chunk of time steps of an input file: read, validated, regridded to the
    mesh and normalised (in a worker).

    Parameters
    ----------
    files : sequence of Path
        The input files.
    chunks : sequence of tuple of int
        ``(file index, t0, t1)``: the time steps ``[t0, t1)`` of one file.
    predictor : Predictor
        Gives the level, the variables and the normalisation statistics.
    allow_nan : bool
        Accept missing values (see :func:`meshcnn.predict.inputs.read_fields`).
    max_nan_fraction : float
        With ``allow_nan``: the largest fraction of the globe (mesh area) per variable and
        time step that may be filled with the training mean (:data:`MAX_NAN_FRACTION`).

    Notes
    -----
    An item is the dict of :func:`meshcnn.predict.inputs.read_fields` without ``fields``,
    plus ``file``, ``t0``, ``t1``, ``x`` (float32 tensor ``(T, C, V)``, normalised),
    ``raw`` (``{"PSL", "TMQ"}``: ``(T, V)`` in file units, those of the variables
    present), ``filled`` (``{variable: (T,) float64}``: the fraction of the globe
    filled with the training mean at each step, variables with missing values only),
    ``points`` (the values read per variable) and the seconds ``t_read`` and
    ``t_regrid``. Errors are returned, not raised, as ``{"file", "t0", "t1", "error"}``
    so the main process decides whether to stop or skip.

    The file of the last item stays open (its reader keeps the HDF5 chunks it read) for
    the next chunk of the same file, in each worker; :meth:`close` closes it.
    """

    def __init__(
        self,
        files: Sequence[Path],
        chunks: Sequence[tuple[int, int, int]],
        predictor: Predictor,
        allow_nan: bool,
        max_nan_fraction: float = MAX_NAN_FRACTION,
    ) -> None:
        self.files = list(files)
        self.chunks = list(chunks)
        self.grid = predictor.grid
        self.variables = predictor.variables
        self.mean, self.std = predictor.mean, predictor.std
        self.allow_nan = allow_nan
        self.max_nan_fraction = float(max_nan_fraction)
        self._reader: tuple[int, FileReader] | None = None
        self._failed: tuple[int, str] | None = None  # (file index, error) of the last bad file

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: int) -> dict[str, Any]:
        file_index, t0, t1 = self.chunks[index]
        path = self.files[file_index]
        base = {"file": file_index, "t0": t0, "t1": t1}
        if self._failed is not None and self._failed[0] == file_index:  # the rest of a bad file: not read again
            return {**base, "error": self._failed[1]}
        try:
            start = time.perf_counter()
            item = self._file(file_index).read((t0, t1))
            t_read = time.perf_counter()
            x, raw, filled = self._to_mesh(path, item, t0)
            item.update(base, x=x, raw=raw, filled=filled, t_read=t_read - start, t_regrid=time.perf_counter() - t_read)
            return item
        except (ClimateFileError, FileNotFoundError) as exc:
            return self._error(base, str(exc))
        except Exception as exc:
            return self._error(base, f"{path}: {type(exc).__name__}: {exc}")

    def _error(self, base: dict[str, Any], message: str) -> dict[str, Any]:
        """The error item of a chunk; the file is closed and its later chunks get the same error."""
        self.close()
        self._failed = (base["file"], message)
        return {**base, "error": message}

    def _file(self, file_index: int) -> FileReader:
        """The open reader of file ``file_index`` (the previous file's is closed)."""
        if self._reader is None or self._reader[0] != file_index:
            self.close()
            reader = FileReader(self.files[file_index], self.variables, allow_nan=self.allow_nan)
            self._reader = (file_index, reader)
        return self._reader[1]

    def close(self) -> None:
        """Close the open input file, if any."""
        if self._reader is not None:
            self._reader[1].close()
            self._reader = None

    def __getstate__(self) -> dict[str, Any]:  # a worker (spawned, not forked) starts without an open file
        return {**self.__dict__, "_reader": None}

    def _to_mesh(
        self, path: Path, item: dict[str, Any], t0: int
    ) -> tuple[torch.Tensor, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Pop ``item["fields"]``; return the normalised mesh fields, the raw ones of :data:`EXTREME_VARIABLES`
        and the fraction of the globe filled with the training mean per variable with missing values and step.

        Raises
        ------
        ClimateFileError
            A variable left without valid data on more than ``max_nan_fraction`` of the
            globe at a time step (file, variable, step and fraction named).
        """
        try:
            regridder = to_mesh_regridder(self.grid, item["lat"], item["lon"])
        except ValueError as exc:
            raise ClimateFileError(path, f"grid not usable: {exc}") from exc
        fields = item.pop("fields")
        item["points"] = fields[:, 0].size
        mesh = regridder(fields, skipna=self.allow_nan, na_thres=0.5)  # (T, C, V) float32
        del fields
        filled = self._filled(path, mesh, item["missing"], t0)
        raw = {name: mesh[:, self.variables.index(name)].copy() for name in EXTREME_VARIABLES if name in self.variables}
        x = (mesh - self.mean[None, :, None]) / self.std[None, :, None]
        np.nan_to_num(x, copy=False, nan=0.0)  # with allow_nan: vertices without valid data -> training mean
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), raw, filled

    def _filled(self, path: Path, mesh: np.ndarray, missing: dict[str, int], t0: int) -> dict[str, np.ndarray]:
        """Per variable with missing values: the area fraction of the vertices without valid data, per step."""
        filled = {}
        weights = self.grid.cell_weights
        for name in missing:
            c = self.variables.index(name)
            fraction = np.isnan(mesh[:, c]) @ weights  # (T,)
            worst = int(np.argmax(fraction))
            if fraction[worst] > self.max_nan_fraction:
                raise ClimateFileError(
                    path,
                    f"variable {name!r} is missing on {fraction[worst]:.1%} of the globe at time step "
                    f"{t0 + worst}: more than --max-nan-fraction {self.max_nan_fraction:g} would be filled with "
                    "the training mean (raise --max-nan-fraction, up to 1, to accept that)",
                )
            filled[name] = fraction
        return filled


def identity(item: Any) -> Any:
    """The ``DataLoader`` collate function of :class:`ChunkDataset` (items are not batched)."""
    return item


def prebuild_matrices(files: Sequence[Path], grid: Grid) -> None:
    """Build (and cache) the regridding matrices of the first file's grid in this process.

    ``DataLoader`` workers are forked from it, so they inherit the cache instead of each
    building the matrices again (their cost: ``experiments/benchmark/RESULTS.md``, "Moved
    from docstrings: training and prediction"). Errors are left for the file's own turn, where they
    are reported with its name.

    Parameters
    ----------
    files : sequence of Path
        The input files.
    grid : IcosphereGrid or HealpixGrid
        The model's sphere grid (:attr:`Predictor.grid`).
    """
    for path in files:
        try:
            with open_source(path) as ds:
                lat_name = next(n for n in LAT_NAMES if n in ds.variables)
                lon_name = next(n for n in LON_NAMES if n in ds.variables)
                lat, lon = np.asarray(ds[lat_name][:], dtype=np.float64), np.asarray(ds[lon_name][:], dtype=np.float64)
            to_mesh_regridder(grid, lat, lon)
            back_regridder(grid, lat, lon)
        except Exception:
            pass


@memoize(maxsize=2, copy=False)  # a regridder is only read (called), never modified
def to_mesh_regridder(grid: Grid, lat: np.ndarray, lon: np.ndarray) -> Regridder:
    """The bilinear :class:`~meshcnn.grids.Regridder` from the file's grid ``(lat, lon)`` to the model's ``grid``."""
    return Regridder(regrid.latlon_grid(lat, lon), grid, "bilinear")


@memoize(maxsize=2, copy=False)  # a regridder is only read (called), never modified
def back_regridder(grid: Grid, lat: np.ndarray, lon: np.ndarray) -> Regridder:
    """The bilinear :class:`~meshcnn.grids.Regridder` from the model's ``grid`` back to the file's grid."""
    return Regridder(grid, regrid.latlon_grid(lat, lon), "bilinear")


def argmax_classes(probs: np.ndarray) -> np.ndarray:
    """``argmax`` over axis 1 of ``(T, K, N)`` as int8, the first maximum on ties.

    One pass per class instead of ``numpy.argmax`` along a middle axis (the speed-up is
    in ``experiments/benchmark/RESULTS.md``, "Moved from docstrings: training and prediction").
    """
    best = probs[:, 0].copy()
    labels = np.zeros(best.shape, dtype=np.int8)
    for k in range(1, probs.shape[1]):
        better = probs[:, k] > best
        labels[better] = k
        np.maximum(best, probs[:, k], out=best)
    return labels


def grid_labels(
    probs: np.ndarray, grid: Grid, lat: np.ndarray, lon: np.ndarray, probabilities: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mesh probabilities ``(T, K, V)`` on the file's grid: labels and (when asked) probabilities.

    Parameters
    ----------
    probs : (T, K, V) array
        Class probabilities on the mesh, float32.
    grid : IcosphereGrid or HealpixGrid
        The model's sphere grid (:attr:`Predictor.grid`).
    lat, lon : array
        The grid's latitudes ``(nlat,)`` and longitudes ``(nlon,)``; the mesh -> grid
        matrix is bilinear and cached for one grid at a time.
    probabilities : bool
        Whether to return the interpolated probabilities too.

    Returns
    -------
    tuple
        ``labels`` int8 ``(T, nlat, nlon)``, the argmax of the interpolated probabilities,
        and those probabilities ``(T, K, nlat, nlon)`` float32 with ``probabilities``, else ``None``.
    """
    grid_probs = back_regridder(grid, lat, lon)(probs)  # (T, K, nlat, nlon) float32 (float32 weights)
    labels = argmax_classes(grid_probs)
    if not probabilities:
        return labels, None
    return labels, grid_probs


def chunk_events(
    mesh_labels: np.ndarray, mesh: Mesh, class_names: Sequence[str], raw: dict[str, np.ndarray], t0: int
) -> list[dict[str, Any]]:
    """The events (:func:`meshcnn.predict.find_events`) of each time step of a chunk starting at step ``t0``.

    Parameters
    ----------
    mesh_labels : np.ndarray
        ``(T, V)`` class per vertex.
    mesh : Mesh
    class_names : sequence of str
    raw : dict
        ``{name: (T, V)}`` fields in file units, for the events' extremes.
    t0 : int
        Time index of the chunk's first step in its file; each event gets ``time_index``.
    """
    events = []
    for t in range(mesh_labels.shape[0]):
        found = find_events(mesh_labels[t], mesh, class_names, fields={k: v[t] for k, v in raw.items()})
        for e in found:
            e["time_index"] = t0 + t
        events.extend(found)
    return events
