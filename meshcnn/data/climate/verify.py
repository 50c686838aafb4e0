"""Measure a synthetic set's physics from its files: :func:`verify_synthetic`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..._progress import progress_bar
from ...geometry.coords import EARTH_RADIUS_KM, latlon_to_xyz
from ...grids import LatLonGrid
from ._format import NUM_CLASSES, VARIABLES, ClimateFileError
from .reader import read_latlon
from .weather import _ddx_ddy

__all__ = ["verify_synthetic"]


def _region_shapes(mask: np.ndarray, grid: LatLonGrid, max_points: int = 400) -> list[tuple[float, float]]:
    """``(length, mean width)`` in km of each connected region of a lat-lon mask (periodic in longitude),
    ignoring fragments under 2.5 grid spacings.

    Length: the largest great-circle distance between two of its grid points (a
    subsample of ``max_points``); mean width: area / length.
    """
    from scipy import ndimage

    regions, n = ndimage.label(mask)
    if n == 0:
        return []
    parent = np.arange(n + 1)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(regions[:, 0], regions[:, -1]):  # join regions across the dateline
        if a and b:
            parent[find(a)] = find(b)
    roots = np.array([find(i) for i in range(n + 1)])
    regions = roots[regions]
    dlat = np.deg2rad(np.abs(np.gradient(grid.lat)))[:, None]
    dlon = np.deg2rad(360.0 / grid.shape[1])
    cell_km2 = EARTH_RADIUS_KM**2 * np.cos(grid.lat_rad) * dlat * dlon
    rng = np.random.default_rng(0)
    min_km = 2.5 * float(np.deg2rad(np.abs(np.diff(grid.lat)).max())) * EARTH_RADIUS_KM
    shapes = []
    for r in np.unique(regions[regions > 0]):
        idx = np.nonzero(regions == r)
        pts = grid.xyz[idx]
        if len(pts) > max_points:
            pts = pts[rng.choice(len(pts), max_points, replace=False)]
        length = float(np.arccos(np.clip(pts @ pts.T, -1, 1)).max() * EARTH_RADIUS_KM)
        if length > min_km:  # skip fragments of a cell or two (e.g. a tip cut off by the pole row)
            shapes.append((length, float(cell_km2[idx].sum()) / length))
    return shapes


def _nanmean(values: list[float]) -> float:
    """Mean of the finite values, NaN (without a warning) if there are none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _read_summary(folder: Path) -> dict[str, Any]:
    """``folder/synth.json``, checked to describe every file and its events."""
    summary_path = folder / "synth.json"
    if not summary_path.is_file():
        raise FileNotFoundError(
            f"{summary_path}: not found; verify measures a set written by "
            f"'python -m meshcnn.data.climate synth --out {folder}'"
        )
    try:
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        for record in summary["files"]:
            record["file"], record["tropical_cyclones"], record["atmospheric_rivers"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClimateFileError(
            summary_path, f"unreadable synthetic-set description ({type(exc).__name__}: {exc})"
        ) from exc
    return summary


def _measure_cyclone(
    grid: LatLonGrid, tc: dict[str, Any], zeta: np.ndarray, t500: np.ndarray, psl: np.ndarray
) -> tuple[float, float, float]:
    """Mean core vorticity (1/s), warm core (K) and pressure drop (hPa) of one recorded cyclone."""
    r = grid.distance_km(latlon_to_xyz(np.deg2rad(tc["lat"]), np.deg2rad(tc["lon"])))
    # the core: within 300 km, or the nearest grid point(s) on a grid coarser than that
    core, ring = r <= max(300.0, float(r.min())), (r > 1500) & (r < 2000)
    warm = float(t500[r < 150].mean() - t500[ring].mean()) if np.any(r < 150) and np.any(ring) else float("nan")
    drop = float(psl[ring].mean() - psl[core].min()) / 100 if np.any(ring) else float("nan")
    return float(zeta[core].mean()), warm, drop


def verify_synthetic(folder: str | os.PathLike, progress: bool = True) -> dict[str, Any]:
    r"""Measure, from the files themselves, that a synthetic set has the intended physics.

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
      beyond 60 degrees) and ``ar_poleward_fraction`` (ending poleward of their start, same
      hemisphere) as drawn by the generator; ``ar_label_length_km_p10_p50_p90`` and
      ``ar_label_width_km_p10_p50_p90`` measured on the connected AR label regions
      (length = largest extent, width = area / length; touching rivers merge into one
      region); ``tmq_ar_over_background``: mean TMQ on AR labels over mean
      TMQ of background points at 20-60 degrees.

    Any grid :func:`generate_synthetic` accepts works: on a grid coarser than the
    300 km TC core the nearest grid point stands for the core, and a measure that
    has no points to measure on is NaN.

    Parameters
    ----------
    folder : str or path-like
        A set written by :func:`generate_synthetic`.
    progress : bool
        Show a progress bar (default ``True``).

    Returns
    -------
    dict
        The measures above.

    Raises
    ------
    FileNotFoundError
        Without ``synth.json`` (naming it).
    ClimateFileError
        For a malformed ``synth.json`` or a bad file.
    """
    folder = Path(folder)
    summary = _read_summary(folder)
    area_counts = np.zeros(NUM_CLASSES)
    vort = {"N": [], "S": []}
    warm, drop, tc_lats = [], [], []
    tmq_ar, tmq_bg = [], []
    ar_shapes: list[tuple[float, float]] = []
    grid = None
    for record in progress_bar(summary["files"], enabled=progress, desc="verifying", unit="file"):
        fields, labels, lat, lon = read_latlon(folder / record["file"])
        if grid is None:
            grid = LatLonGrid(lat, lon)
            w = grid.cell_weights
        area_counts += np.bincount(labels.ravel(), weights=w.ravel(), minlength=NUM_CLASSES)
        u, v = fields[VARIABLES.index("U850")].astype(np.float64), fields[VARIABLES.index("V850")].astype(np.float64)
        dvdx, _ = _ddx_ddy(v, grid)
        _, dudy = _ddx_ddy(u, grid)
        zeta = dvdx - dudy
        t500, psl = fields[VARIABLES.index("T500")], fields[VARIABLES.index("PSL")]
        for tc in record["tropical_cyclones"]:
            zeta_core, warm_core, pressure_drop = _measure_cyclone(grid, tc, zeta, t500, psl)
            vort[tc["hemisphere"]].append(zeta_core)
            warm.append(warm_core)
            drop.append(pressure_drop)
            tc_lats.append(abs(tc["lat"]))
        tmq = fields[VARIABLES.index("TMQ")]
        band = (np.abs(grid.lat)[:, None] > 20) & (np.abs(grid.lat)[:, None] < 60) & np.ones(len(lon), bool)
        if np.any(labels == 2):
            tmq_ar.append(float(tmq[labels == 2].mean()))
            ar_shapes += _region_shapes(labels == 2, grid)
        if np.any(band & (labels == 0)):
            tmq_bg.append(float(tmq[band & (labels == 0)].mean()))
    return _report(summary, area_counts, vort, warm, drop, tc_lats, tmq_ar, tmq_bg, ar_shapes)


def _report(
    summary: dict[str, Any],
    area_counts: np.ndarray,
    vort: dict[str, list[float]],
    warm: list[float],
    drop: list[float],
    tc_lats: list[float],
    tmq_ar: list[float],
    tmq_bg: list[float],
    ar_shapes: list[tuple[float, float]],
) -> dict[str, Any]:
    """The dictionary :func:`verify_synthetic` returns, from its measurements."""
    ars = [a for r in summary["files"] for a in r["atmospheric_rivers"]]
    signs = [z > 0 for z in vort["N"]] + [z < 0 for z in vort["S"]]
    return {
        "num_files": len(summary["files"]),
        "class_fraction": (area_counts / area_counts.sum()).tolist(),
        "num_tc": len(signs),
        "num_tc_north": len(vort["N"]),
        "num_tc_south": len(vort["S"]),
        "tc_cyclonic_fraction": float(np.mean(signs)) if signs else float("nan"),
        "tc_mean_vorticity_north": float(np.mean(vort["N"])) if vort["N"] else float("nan"),
        "tc_mean_vorticity_south": float(np.mean(vort["S"])) if vort["S"] else float("nan"),
        "tc_warm_core_k": _nanmean(warm),
        "tc_pressure_drop_hpa": _nanmean(drop),
        "tc_abs_lat_range": [float(min(tc_lats)), float(max(tc_lats))] if tc_lats else [],
        "num_ar": len(ars),
        "ar_length_km": [min(a["length_km"] for a in ars), max(a["length_km"] for a in ars)] if ars else [],
        "ar_width_km": [min(a["width_km"] for a in ars), max(a["width_km"] for a in ars)] if ars else [],
        "ar_start_abs_lat": [min(abs(a["start_lat"]) for a in ars), max(abs(a["start_lat"]) for a in ars)]
        if ars
        else [],
        "ar_polar_fraction": float(np.mean([a["max_abs_lat"] > 60 for a in ars])) if ars else float("nan"),
        "ar_poleward_fraction": float(
            np.mean([abs(a["end_lat"]) > abs(a["start_lat"]) and a["end_lat"] * a["start_lat"] > 0 for a in ars])
        )
        if ars
        else float("nan"),
        "tmq_ar_over_background": float(np.mean(tmq_ar) / np.mean(tmq_bg)) if tmq_ar and tmq_bg else float("nan"),
        "ar_label_regions": len(ar_shapes),
        "ar_label_length_km_p10_p50_p90": np.percentile([a for a, _ in ar_shapes], [10, 50, 90]).round(0).tolist()
        if ar_shapes
        else [],
        "ar_label_width_km_p10_p50_p90": np.percentile([b for _, b in ar_shapes], [10, 50, 90]).round(0).tolist()
        if ar_shapes
        else [],
    }
