r"""Events: connected regions of a predicted class on the model's sphere mesh, and their statistics.

An *event* is a connected component of the vertices labelled with one class at one
time step, connectivity being the mesh's edges (:attr:`meshcnn.Mesh.edges`). The
sphere mesh has no seam, so an event that crosses the dateline or covers a pole is
one component, counted once.

Per event (:func:`find_events`):

* ``area_km2``: the sum of the vertex areas (:func:`meshcnn.grids.icosphere.mesh_cell_areas`,
  the vertex areas scaled to exactly :math:`4\pi`) times :math:`R^2`,
  :math:`R = 6371` km;
* ``centroid_lat`` / ``centroid_lon``: the spherical centroid, the area-weighted mean
  of the vertices' unit vectors, normalised (correct across the dateline; an event
  symmetric about the pole has its centroid at the pole), degrees, longitude in
  ``(-180, 180]``;
* ``num_vertices``;
* ``min_psl`` (tropical cyclones) and ``max_tmq`` (atmospheric rivers): the extreme
  of the field over the event's vertices, when the field is given.

:func:`summarize` turns an events CSV written by ``meshcnn predict --events`` into
per-class counts by hemisphere and latitude band (CSV and Markdown) and, from the
``.frequency.npz`` file written beside the CSV, a PNG map per class of the fraction
of time steps each place is inside an event.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..geometry.coords import EARTH_RADIUS_KM, xyz_to_latlon
from ..geometry.mesh import Mesh, as_mesh
from ..grids import sphere_grid
from ..grids.icosphere import mesh_cell_areas
from ..io import atomic_write, save_npz

__all__ = [
    "EARTH_RADIUS_KM",
    "EVENT_FIELDS",
    "EVENT_COLUMNS",
    "EVENT_LAT_BANDS",
    "find_events",
    "frequency_path",
    "read_events",
    "summarize",
]

#: Per class name: (field, reduction, column) of the extreme recorded inside each event.
EVENT_FIELDS: dict[str, tuple[str, str, str]] = {
    "tropical_cyclone": ("PSL", "min", "min_psl"),
    "atmospheric_river": ("TMQ", "max", "max_tmq"),
}
#: Columns of the events CSV, in order.
EVENT_COLUMNS: tuple[str, ...] = (
    "file",
    "time_index",
    "time",
    "class",
    "event",
    "area_km2",
    "centroid_lat",
    "centroid_lon",
    "num_vertices",
    "min_psl",
    "max_tmq",
)
#: The 15-degree latitude bands of the event counts of :func:`summarize`, by the absolute latitude of each
#: event's centroid in degrees: ``name -> (low, high)``, ``low <= |lat| < high`` (the last one includes the
#: poles). Not the climate zones of the segmentation metrics (:data:`meshcnn.metrics.LAT_ZONES`).
EVENT_LAT_BANDS: dict[str, tuple[float, float]] = {
    "0-15": (0.0, 15.0),
    "15-30": (15.0, 30.0),
    "30-45": (30.0, 45.0),
    "45-60": (45.0, 60.0),
    "60-90": (60.0, 90.01),
}


def _components(inside: np.ndarray, edges: np.ndarray) -> list[np.ndarray]:
    """The connected components of the vertices where ``inside``, along the mesh ``edges`` ``(E, 2)``.

    Returns
    -------
    list of np.ndarray
        int64 vertex indices of each component, ascending, in component order.
    """
    vid = np.nonzero(inside)[0]
    local = np.full(len(inside), -1, dtype=np.int64)
    local[vid] = np.arange(len(vid))
    keep = inside[edges[:, 0]] & inside[edges[:, 1]]
    e = local[edges[keep]]
    graph = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(vid), len(vid)))
    n, comp = connected_components(graph, directed=False)
    order = np.argsort(comp, kind="stable")
    bounds = np.searchsorted(comp[order], np.arange(n + 1))
    return [vid[order[bounds[c] : bounds[c + 1]]] for c in range(n)]


def _centroid(mesh: Mesh, verts: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Spherical centroid ``(lat, lon)`` in degrees: the normalised weighted mean of the unit vectors.

    NaN for a band around the whole sphere (a mean vector of zero length: no meaningful centroid).
    """
    centre = (weights[:, None] * mesh.vertices[verts]).sum(0)
    norm = np.linalg.norm(centre)
    if norm <= 1e-12:
        return float("nan"), float("nan")
    lat, lon = xyz_to_latlon(centre / norm)
    return float(np.rad2deg(lat)), float(np.rad2deg(lon))


def _extreme(name: str, verts: np.ndarray, fields: Mapping[str, np.ndarray]) -> tuple[str, float | None] | None:
    """``(column, value)`` of the class's :data:`EVENT_FIELDS` extreme over ``verts``; ``None`` without the field."""
    spec = EVENT_FIELDS.get(name)
    if spec is None or spec[0] not in fields:
        return None
    values = np.asarray(fields[spec[0]]).reshape(-1)[verts]
    if not np.any(np.isfinite(values)):
        return spec[2], None
    return spec[2], float(np.nanmin(values) if spec[1] == "min" else np.nanmax(values))


def find_events(
    labels: np.ndarray,
    mesh: Mesh | int,
    class_names: Sequence[str],
    *,
    fields: Mapping[str, np.ndarray] | None = None,
    skip: Sequence[int] = (0,),
) -> list[dict[str, Any]]:
    """Connected events of each class in one labelled time step.

    Parameters
    ----------
    labels : np.ndarray
        int ``(V,)`` class per vertex of ``mesh``.
    mesh : Mesh or int
        The mesh (or its icosphere level).
    class_names : sequence of str
        Name of each class index.
    fields : Mapping, optional
        ``{name: (V,)}`` in file units, e.g. ``PSL`` and ``TMQ``, for the per-class
        extremes of :data:`EVENT_FIELDS`.
    skip : sequence of int
        Class indices that are not events (the background).

    Returns
    -------
    list of dict
        One dict per event, ordered by class then by decreasing area, with keys
        ``class``, ``class_index``, ``event`` (0-based per class), ``area_km2``,
        ``centroid_lat``, ``centroid_lon``, ``num_vertices``, ``min_psl``, ``max_tmq``
        (``None`` where not applicable) and ``vertices`` (int64 indices).
    """
    mesh = as_mesh(mesh)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape != (mesh.num_vertices,):
        raise ValueError(f"labels must have shape ({mesh.num_vertices},) for {mesh.describe()}, got {labels.shape}")
    areas = mesh_cell_areas(mesh) * EARTH_RADIUS_KM**2
    fields = dict(fields or {})
    events: list[dict[str, Any]] = []
    for k in np.unique(labels):
        k = int(k)
        if k in skip:
            continue
        name = class_names[k] if k < len(class_names) else str(k)
        found = []
        for verts in _components(labels == k, mesh.edges):
            w = areas[verts]
            clat, clon = _centroid(mesh, verts, w)
            row: dict[str, Any] = {
                "class": name,
                "class_index": k,
                "area_km2": float(w.sum()),
                "centroid_lat": clat,
                "centroid_lon": clon,
                "num_vertices": int(len(verts)),
                "min_psl": None,
                "max_tmq": None,
                "vertices": verts,
            }
            extreme = _extreme(name, verts, fields)
            if extreme is not None:
                row[extreme[0]] = extreme[1]
            found.append(row)
        found.sort(key=lambda r: -r["area_km2"])
        for i, row in enumerate(found):
            row["event"] = i
        events.extend(found)
    return events


def frequency_path(events_csv: str | os.PathLike) -> Path:
    """The file beside an events CSV holding the per-vertex event counts: ``EVENTS.frequency.npz``."""
    p = Path(events_csv)
    return p.with_name(p.stem + ".frequency.npz")


def save_frequency(
    path: str | os.PathLike,
    counts: np.ndarray,
    num_steps: int,
    level: int,
    class_names: Sequence[str],
    grid: str = "icosphere",
) -> None:
    """Write the per-vertex event counts to an ``.npz`` file.

    Parameters
    ----------
    path : path-like
        The file to write (see :func:`frequency_path`).
    counts : (K, V) array
        Time steps each vertex is inside an event of each class; stored as int64.
    num_steps : int
        Time steps counted.
    level : int
        Level of the vertices on their sphere grid.
    class_names : sequence of str
        The ``K`` class names.
    grid : one of :data:`meshcnn.grids.GRID_FAMILIES`
        The sphere grid of the vertices.
    """
    save_npz(
        path,
        counts=np.asarray(counts, dtype=np.int64),
        num_steps=np.asarray(num_steps, dtype=np.int64),
        level=np.asarray(level, dtype=np.int64),
        class_names=np.asarray(list(class_names), dtype="U64"),
        grid=np.asarray(grid),
    )


def read_events(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read an events CSV written by ``meshcnn predict --events`` (numbers as floats/ints, '' as None)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such events file")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("class", "centroid_lat", "area_km2") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not an events CSV (missing columns {missing})")
        rows = []
        for r in reader:
            for key in ("area_km2", "centroid_lat", "centroid_lon", "min_psl", "max_tmq"):
                if key in r:
                    r[key] = float(r[key]) if r[key] not in ("", None) else None
            for key in ("time_index", "num_vertices", "event"):
                if key in r and r[key] not in ("", None):
                    r[key] = int(r[key])
            rows.append(r)
    return rows


def _band(lat: float) -> str | None:
    """The :data:`EVENT_LAT_BANDS` name of a latitude (degrees), by its absolute value."""
    for name, (lo, hi) in EVENT_LAT_BANDS.items():
        if lo <= abs(lat) < hi:
            return name
    return None


def _read_frequency(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a ``.frequency.npz`` file, or ``None`` when there is none."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _count_table(rows: list[dict[str, Any]], classes: list[str], num_steps: int | None) -> list[dict[str, Any]]:
    """Per class, hemisphere (``global``, ``north``, ``south``) and band (``all`` and :data:`EVENT_LAT_BANDS`):
    events, events per time step and mean area."""
    table = []
    for name in classes:
        mine = [r for r in rows if r["class"] == name]
        groups: list[tuple[str, str, list]] = [("global", "all", mine)]
        for band in EVENT_LAT_BANDS:
            groups.append(
                (
                    "global",
                    band,
                    [r for r in mine if r["centroid_lat"] is not None and _band(r["centroid_lat"]) == band],
                )
            )
        for hemi, sign in (("north", 1), ("south", -1)):
            in_hemi = [r for r in mine if r["centroid_lat"] is not None and np.sign(r["centroid_lat"]) == sign]
            groups.append((hemi, "all", in_hemi))
            for band in EVENT_LAT_BANDS:
                groups.append((hemi, band, [r for r in in_hemi if _band(r["centroid_lat"]) == band]))
        for hemi, band, sel in groups:
            table.append(
                {
                    "class": name,
                    "hemisphere": hemi,
                    "lat_band": band,
                    "events": len(sel),
                    "events_per_step": (len(sel) / num_steps) if num_steps else None,
                    "mean_area_km2": float(np.mean([r["area_km2"] for r in sel])) if sel else None,
                }
            )
    return table


def _write_counts_csv(path: Path, table: list[dict[str, Any]]) -> None:
    """The count table as CSV (floats to 6 significant digits, ``None`` as empty)."""
    cols = ("class", "hemisphere", "lat_band", "events", "events_per_step", "mean_area_km2")
    with atomic_write(path, "w") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in table:
            w.writerow(["" if r[c] is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]) for c in cols])


def _counts_markdown(
    title: str, table: list[dict[str, Any]], classes: list[str], num_events: int, num_steps: int | None
) -> str:
    """The count table as one Markdown table per class (rows: hemispheres; columns: bands)."""

    def fmt(x: Any, digits: str = ".3g") -> str:
        """A table cell.

        Parameters
        ----------
        x : Any
            The value; ``None`` gives ``""``.
        digits : str, default ".3g"
            Format spec for a float.

        Returns
        -------
        str
        """
        return "" if x is None else format(x, digits) if isinstance(x, float) else str(x)

    lines = [
        f"# Event counts from `{title}`",
        "",
        f"{num_events} events" + (f" in {num_steps} time steps" if num_steps else "") + ". "
        "Hemisphere and latitude band (|latitude| in degrees) of each event's centroid.",
        "",
    ]
    for name in classes:
        lines += [
            f"## {name}",
            "",
            "| hemisphere | " + " | ".join(["all", *EVENT_LAT_BANDS]) + " | mean area (km^2) |",
            "|---" * (len(EVENT_LAT_BANDS) + 3) + "|",
        ]
        for hemi in ("global", "north", "south"):
            sel = {r["lat_band"]: r for r in table if r["class"] == name and r["hemisphere"] == hemi}
            cells = [fmt(sel["all"]["events"])] + [fmt(sel[b]["events"]) if b in sel else "" for b in EVENT_LAT_BANDS]
            lines.append(f"| {hemi} | " + " | ".join(cells) + f" | {fmt(sel['all']['mean_area_km2'], '.4g')} |")
        lines.append("")
    return "\n".join(lines)


def _frequency_maps(freq: dict[str, np.ndarray], out: Path, projection: str) -> list[str]:
    """One PNG per event class: the fraction of time steps each place is inside an event of it."""
    from ..plot import plot_mesh_signal, save_figure

    num_steps = int(freq["num_steps"])
    grid = str(freq["grid"]) if "grid" in freq else "icosphere"  # files written before grids: the icosphere
    mesh = sphere_grid(grid, int(freq["level"])).mesh
    maps = []
    for k, name in enumerate(str(n) for n in freq["class_names"]):
        if k == 0:
            continue
        fraction = freq["counts"][k] / max(num_steps, 1)
        ax = plot_mesh_signal(
            fraction,
            mesh,
            projection=projection,
            cmap="magma_r",
            vmin=0.0,
            vmax=max(float(fraction.max()), 1e-6),
            title=f"{name.replace('_', ' ')}: fraction of {num_steps} time steps inside an event",
            label="frequency",
        )
        maps.append(str(save_figure(ax.figure, out / f"frequency_{name}.png")))
    return maps


def summarize(
    events_csv: str | os.PathLike,
    out: str | os.PathLike,
    *,
    projection: str = "mollweide",
    frequency: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Counts by class, hemisphere and latitude band, and a frequency map per class.

    Parameters
    ----------
    events_csv : path-like
        The CSV of ``meshcnn predict --events``.
    out : path-like
        Output folder: ``counts.csv`` (class, hemisphere, band, events, events per
        time step, mean area), ``counts.md`` (the same as Markdown tables) and
        ``frequency_<class>.png`` (fraction of time steps each place is inside an
        event of the class) when the frequency file exists.
    projection : str
        Map projection of :func:`meshcnn.plot.plot_mesh_signal`.
    frequency : path-like, optional
        The ``.frequency.npz`` file (default: beside the CSV).

    Returns
    -------
    dict
        ``{"counts": rows, "maps": [paths], "num_steps": int or None, "num_events": int}``
    """
    rows = read_events(events_csv)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    freq = _read_frequency(Path(frequency) if frequency is not None else frequency_path(events_csv))
    num_steps = int(freq["num_steps"]) if freq is not None else None
    classes = [str(c) for c in freq["class_names"][1:]] if freq is not None else sorted({r["class"] for r in rows})
    for c in sorted({r["class"] for r in rows}):
        if c not in classes:
            classes.append(c)
    table = _count_table(rows, classes, num_steps)
    _write_counts_csv(out / "counts.csv", table)
    with atomic_write(out / "counts.md", "w") as f:
        f.write(_counts_markdown(Path(events_csv).name, table, classes, len(rows), num_steps))
    maps = _frequency_maps(freq, out, projection) if freq is not None else []
    return {"counts": table, "maps": maps, "num_steps": num_steps, "num_events": len(rows)}
