r"""The output side of ``meshcnn predict``: one netCDF file per input, and the events CSV rows.

Output file
-----------
``LABELS`` (``int8``, dims ``(time, lat, lon)`` with the input's own dimension
names, coordinates, order and time axis, or ``(lat, lon)`` without time), with CF
``flag_values``/``flag_meanings``; with ``probabilities`` also ``PROBABILITIES``
``(time, class, lat, lon)`` float32. The mesh side is kept too, for event
statistics without re-running the model: ``MESH_LABELS`` ``(time, vertex)`` and
``mesh_lat``/``mesh_lon``, and the file's events as ``event_*`` variables along an
``event`` dimension (see :mod:`meshcnn.predict.events`). Global attributes:
``meshcnn_version``, ``checkpoint``, ``checkpoint_sha256``, ``mesh_level``, ``mesh_grid``,
``source_file``, ``meshcnn_complete = 1``.

With ``--allow-nan`` the output says what was missing and what was invented:
``max_nan_fraction`` (the limit in use), ``nan_variables`` (the input variables with
NaN or missing values, space-separated, ``""`` for none) and per such variable
``nan_fraction_<variable>`` (the fraction of its values in the input that were
missing), ``nan_filled_fraction_<variable>`` and ``nan_filled_fraction_max_<variable>``
(the fraction of the globe, by mesh area, left without valid data and filled with the
training mean: mean over the time steps, and at the worst step);
``nan_filled_variables`` lists those with a fill.

The file is standard netCDF-4: other tools can open it for appending.

The file is written chunk by chunk into a temporary file beside its destination and
renamed into place only when complete (:class:`OutputWriter`), so a killed run never
leaves a partial output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..io import discard, publish, temporary_beside
from .events import EVENT_COLUMNS
from .inputs import open_source, time_strings
from .predictor import PredictError, Predictor

#: The per-event variables of an output file (``event_<name>``), in order.
EVENT_VARIABLES = (
    "class",
    "time_index",
    "area_km2",
    "centroid_lat",
    "centroid_lon",
    "num_vertices",
    "min_psl",
    "max_tmq",
)
_INTEGER_EVENT_VARIABLES = ("time_index", "num_vertices")
_FLOAT_EVENT_COLUMNS = ("area_km2", "centroid_lat", "centroid_lon", "min_psl", "max_tmq")


def output_complete(path: Path, sha256: str) -> bool:
    """Whether ``path`` is a complete output written with the checkpoint of SHA-256 ``sha256``.

    Outputs are renamed into place only when done, so any such file is complete.

    Parameters
    ----------
    path : Path
        A possible output file.
    sha256 : str
        SHA-256 of the checkpoint in use.

    Returns
    -------
    bool
        False also for a missing or unreadable file.
    """
    if not path.is_file():
        return False
    import netCDF4

    try:
        with netCDF4.Dataset(path, "r") as ds:
            return (
                getattr(ds, "meshcnn_complete", 0) == 1
                and getattr(ds, "checkpoint_sha256", "") == sha256
                and "LABELS" in ds.variables
                and "MESH_LABELS" in ds.variables
            )
    except (OSError, RuntimeError):
        return False


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are the same file: the same real path, or the same existing file (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _copy_var(src: Any, dst: Any, name: str) -> None:
    """Copy variable ``name`` (raw values, attributes, fill value) from dataset ``src`` to ``dst``."""
    var = src[name]
    fill = getattr(var, "_FillValue", None)
    out = dst.createVariable(name, var.dtype, var.dimensions, fill_value=fill)
    out.setncatts({k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"})
    var.set_auto_maskandscale(False)
    out.set_auto_maskandscale(False)
    out[:] = var[:]


def _copy_grid(src: Any, dst: Any, header: dict[str, Any]) -> tuple[str, ...]:
    """Copy the input's grid (and time) dimensions, coordinates and their bounds; return the field dimensions."""
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
    return grid_dims


def _flags(class_names: tuple[str, ...]) -> dict[str, Any]:
    """CF ``flag_values`` and ``flag_meanings`` of the class indices."""
    return {"flag_values": np.arange(len(class_names), dtype=np.int8), "flag_meanings": " ".join(class_names)}


class OutputWriter:
    """One output file, written chunk by chunk into a temporary file.

    :meth:`finish` renames it into place (after an fsync); :meth:`abort` removes it.

    Parameters
    ----------
    path : Path
        The output file.
    source : Path
        The input file (its grid and time coordinates are copied).
    header : dict
        :func:`meshcnn.predict.inputs.read_fields` of ``source`` with ``header_only``.
    predictor : Predictor
    probabilities : bool
        Also write ``PROBABILITIES``.
    max_nan_fraction : float, optional
        The ``--max-nan-fraction`` in use with ``--allow-nan`` (``None`` without it): the
        ``nan_*`` attributes are written only with it.
    """

    def __init__(
        self,
        path: Path,
        source: Path,
        header: dict[str, Any],
        predictor: Predictor,
        probabilities: bool,
        *,
        max_nan_fraction: float | None = None,
    ) -> None:
        import netCDF4

        self.path, self.source, self.predictor = path, source, predictor
        self.has_time = header["time_name"] is not None
        self.events: list[dict[str, Any]] = []
        self.max_nan_fraction = max_nan_fraction
        self.steps, self.points = 0, 0
        self.missing: dict[str, list[float]] = {}  # variable -> [missing values, values, filled sum, filled max]
        self.tmp = temporary_beside(path)
        try:
            self.ds = netCDF4.Dataset(self.tmp, "w", format="NETCDF4")
            self._define(header, probabilities)
        except BaseException:
            self.abort()
            raise

    def _define(self, header: dict[str, Any], probabilities: bool) -> None:
        """Create the dimensions and variables (coordinates copied from the input)."""
        dst, predictor = self.ds, self.predictor
        with open_source(self.source) as src:
            grid_dims = _copy_grid(src, dst, header)
        chunks = ((1,) if self.has_time else ()) + (len(header["lat"]), len(header["lon"]))  # a step
        self.labels = dst.createVariable("LABELS", "i1", grid_dims, zlib=True, complevel=1, chunksizes=chunks)
        self.labels.setncatts(
            {
                "long_name": "predicted class",
                **_flags(predictor.class_names),
                "comment": "argmax of the class probabilities interpolated from the model's mesh "
                f"({predictor.grid.mesh.describe()}) to this grid",
            }
        )
        self.probs = None
        if probabilities:
            dst.createDimension("class", len(predictor.class_names))
            pdims = grid_dims[:-2] + ("class",) + grid_dims[-2:]
            self.probs = dst.createVariable("PROBABILITIES", "f4", pdims, zlib=True, complevel=1)
            self.probs.setncatts(
                {"long_name": "class probability", "units": "1", "classes": " ".join(predictor.class_names)}
            )
        self._define_mesh(grid_dims[:-2])

    def _define_mesh(self, time_dims: tuple[str, ...]) -> None:
        """``MESH_LABELS`` ``(time, vertex)`` and the vertices' ``mesh_lat``/``mesh_lon`` (degrees)."""
        dst, mesh = self.ds, self.predictor.grid.mesh
        dst.createDimension("vertex", mesh.num_vertices)
        self.mesh_labels = dst.createVariable("MESH_LABELS", "i1", time_dims + ("vertex",), zlib=True, complevel=1)
        self.mesh_labels.setncatts(
            {
                "long_name": f"predicted class on the mesh vertices ({mesh.describe()})",
                **_flags(self.predictor.class_names),
                "coordinates": "mesh_lat mesh_lon",
            }
        )
        for name, values in (("mesh_lat", mesh.lat), ("mesh_lon", mesh.lon)):
            v = dst.createVariable(name, "f8", ("vertex",))
            v.units = "degrees_north" if name == "mesh_lat" else "degrees_east"
            v[:] = np.rad2deg(values)

    def write(
        self,
        t0: int,
        labels: np.ndarray,
        probs: np.ndarray | None,
        mesh_labels: np.ndarray,
        events: list[dict[str, Any]],
    ) -> None:
        """Write time steps ``[t0, t0 + T)`` and keep their events for :meth:`finish`.

        Parameters
        ----------
        t0 : int
            Index of the first time step.
        labels : (T, nlat, nlon) array
        probs : (T, K, nlat, nlon) array or None
            Written only when the file has probabilities.
        mesh_labels : (T, V) array
        events : list of dict
            The events of these time steps.
        """
        t1 = t0 + labels.shape[0]
        self.steps += labels.shape[0]
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

    def record_missing(self, missing: dict[str, int], points: int, filled: dict[str, np.ndarray]) -> None:
        """Add a chunk's missing values and fills, for the ``nan_*`` attributes.

        Parameters
        ----------
        missing : dict
            ``{variable: count}`` of the chunk's NaN or missing input values.
        points : int
            Values read per variable in the chunk.
        filled : dict
            ``{variable: (T,) array}``: the fraction of the globe filled with the training
            mean at each of the chunk's steps.
        """
        for name, count in missing.items():
            record = self.missing.setdefault(name, [0, self.points, 0.0, 0.0])
            record[0] += count
            if name in filled and len(filled[name]):
                record[2] += float(np.sum(filled[name]))
                record[3] = max(record[3], float(np.max(filled[name])))
        self.points += points
        for record in self.missing.values():
            record[1] = self.points

    def _nan_attributes(self) -> dict[str, Any]:
        """The ``nan_*`` attributes (see the module docstring); none without ``--allow-nan``."""
        if self.max_nan_fraction is None:
            return {}
        names = [v for v in self.predictor.variables if v in self.missing]
        steps = max(self.steps, 1)
        attrs: dict[str, Any] = {
            "max_nan_fraction": np.float64(self.max_nan_fraction),
            "nan_variables": " ".join(names),
            "nan_filled_variables": " ".join(v for v in names if self.missing[v][3] > 0),
        }
        for name in names:
            count, points, filled_sum, filled_max = self.missing[name]
            attrs[f"nan_fraction_{name}"] = np.float64(count / points if points else 0.0)
            attrs[f"nan_filled_fraction_{name}"] = np.float64(filled_sum / steps)
            attrs[f"nan_filled_fraction_max_{name}"] = np.float64(filled_max)
        return attrs

    def _write_events(self) -> None:
        """The events as ``event_<name>`` variables along the ``event`` dimension."""
        dst, events = self.ds, self.events
        dst.createDimension("event", len(events))
        for name in EVENT_VARIABLES:
            if name == "class":
                v = dst.createVariable("event_class", "i1", ("event",))
                v.setncatts(_flags(self.predictor.class_names))
                v[:] = np.array([e["class_index"] for e in events], dtype=np.int8)
                continue
            integer = name in _INTEGER_EVENT_VARIABLES
            v = dst.createVariable(
                f"event_{name}", "i4" if integer else "f8", ("event",), fill_value=None if integer else np.nan
            )
            v[:] = np.array(
                [np.nan if e[name] is None else e[name] for e in events], dtype=np.int32 if integer else np.float64
            )

    def _global_attributes(self) -> dict[str, Any]:
        """Provenance (checkpoint, its SHA-256, version, source file), conventions and ``meshcnn_complete = 1``."""
        predictor = self.predictor
        return {
            "Conventions": "CF-1.8",
            "title": "meshcnn segmentation (tropical cyclones, atmospheric rivers)",
            "source_file": str(self.source),
            "meshcnn_version": __version__,
            "checkpoint": str(predictor.checkpoint),
            "checkpoint_sha256": predictor.sha256,
            "mesh_level": np.int32(predictor.level),
            "mesh_grid": str(predictor.config.get("grid", "icosphere")),
            "model_orientation": str(predictor.config.get("orientation", "fixed")),
            "variables": " ".join(predictor.variables),
            "regridding": "bilinear to the mesh; probabilities barycentric back to the grid, then argmax",
            **self._nan_attributes(),
            "meshcnn_complete": np.int32(1),
        }

    def finish(self) -> None:
        """Write the events and global attributes, close, fsync and rename into place.

        Raises
        ------
        PredictError
            If the output path is (now) the input file itself: it is never replaced.
        """
        try:
            self._write_events()
            self.ds.setncatts(self._global_attributes())
            self.ds.close()
            if _same_file(self.path, self.source):  # checked before the run too; the input is never replaced
                raise PredictError(f"{self.path}: is the input file {self.source}; not overwritten")
            publish(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close and remove the temporary file; the output path is untouched."""
        try:
            if getattr(self, "ds", None) is not None and self.ds.isopen():
                self.ds.close()
        except Exception:
            pass
        discard(self.tmp)


def read_complete(path: Path) -> tuple[np.ndarray, list[dict[str, Any]], list[str]]:
    """Mesh labels ``(T, V)``, events and time strings of a complete output (for ``resume``).

    The events are as :func:`meshcnn.predict.find_events` gives them (without
    ``vertices``), numbered per class and time step in file order.
    """
    import netCDF4

    with netCDF4.Dataset(path, "r") as ds:
        ml = np.asarray(ds["MESH_LABELS"][:])
        has_time = ml.ndim == 2
        ml = ml.reshape(-1, ml.shape[-1])
        names = str(ds["MESH_LABELS"].flag_meanings).split()
        ev = {name: np.asarray(ds[f"event_{name}"][:]) for name in EVENT_VARIABLES}
        time_name = ds["MESH_LABELS"].dimensions[0] if has_time else None
    events = []
    counters: dict[tuple[int, int], int] = {}
    for i in range(len(ev["class"])):
        k, t = int(ev["class"][i]), int(ev["time_index"][i])
        n = counters.get((t, k), 0)
        counters[(t, k)] = n + 1
        row = {"class": names[k], "class_index": k, "time_index": t, "event": n}
        for name in _FLOAT_EVENT_COLUMNS:
            value = float(ev[name][i])
            row[name] = None if np.isnan(value) else value
        row["num_vertices"] = int(ev["num_vertices"][i])
        events.append(row)
    return ml, events, time_strings(path, time_name, ml.shape[0])


def _csv_value(x: Any) -> str:
    """A CSV cell: ``""`` for ``None``, floats to 6 significant digits."""
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.6g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.6e}"
    return str(x)


def events_csv_row(file_name: str, event: dict[str, Any], time: str) -> list[str | int]:
    """One row of the events CSV (:data:`meshcnn.predict.EVENT_COLUMNS`) for ``event`` of ``file_name``.

    Parameters
    ----------
    file_name : str
        The input file's name.
    event : dict
        One event, with the keys of the columns.
    time : str
        The event's time step as text.

    Returns
    -------
    list
        The cells; floats to 6 significant digits, ``""`` for ``None``.
    """
    return [
        file_name,
        event["time_index"],
        time,
        event["class"],
        event["event"],
        *(_csv_value(event[c]) for c in EVENT_COLUMNS[5:]),
    ]
