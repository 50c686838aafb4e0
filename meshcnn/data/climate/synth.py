r"""Synthetic ClimateNet data: physically plausible fields with labels from the generating process.

The real ClimateNet data (CAM5 0.25-degree runs, tens of GB) cannot be downloaded
everywhere; this module writes files in exactly its netCDF layout so the whole
pipeline (:mod:`meshcnn.data.climate`, the climate segmentation experiment) runs
end to end on them. One sample comes from :func:`~meshcnn.data.climate.sample.synthesize_sample`;
:func:`~meshcnn.data.climate.verify.verify_synthetic` measures that a set looks like what
it claims. Use it through ``python -m meshcnn.data.climate synth``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..._progress import progress_bar
from ...grids import LatLonGrid
from ...io import discard, publish, save_json, temporary_beside
from ._format import NUM_CLASSES, UNITS, VARIABLES, _netcdf4
from .files import synth_listed_files
from .sample import synthesize_sample
from .verify import verify_synthetic

__all__ = [
    "synthesize_sample",
    "write_climatenet",
    "default_grid",
    "generate_synthetic",
    "remove_synthetic",
    "ensure_synthetic",
    "verify_synthetic",
]


def write_climatenet(
    path: str | os.PathLike,
    fields: dict[str, np.ndarray],
    labels: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    date: _dt.date | None = None,
    attrs: dict[str, Any] | None = None,
) -> None:
    """Write one time step in the ClimateNet netCDF layout (atomically).

    Fields as ``float32 (time=1, lat, lon)`` with CAM5 units, ``LABELS`` as
    ``int64 (lat, lon)``, coordinates ``lat``/``lon`` in degrees and ``time``. The file
    is standard netCDF-4 (other tools can open it for appending); every variable has
    an HDF5 Fletcher-32 checksum, so damaged data fails to read
    (:class:`ClimateFileError`) instead of giving wrong values.

    Parameters
    ----------
    path : str or path-like
    fields : dict of str to (lat, lon) array
        One field per name of :data:`VARIABLES`.
    labels : (lat, lon) int array
        0 background, 1 tropical cyclone, 2 atmospheric river.
    lat, lon : 1-D arrays
        Degrees.
    date : datetime.date, optional
        The time step; default: 2000-01-01 (``time`` 0).
    attrs : dict, optional
        Global attributes of the file.
    """
    netCDF4 = _netcdf4()

    tmp = temporary_beside(path)  # written on disk: an in-memory HDF5 image cannot be opened for appending
    try:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as ds:
            _define_climatenet(ds, fields, labels, lat, lon, date, attrs)
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def _define_climatenet(
    ds: Any,
    fields: dict[str, np.ndarray],
    labels: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    date: _dt.date | None,
    attrs: dict[str, Any] | None,
) -> None:
    """Create and fill the variables of :func:`write_climatenet` in the open dataset ``ds``."""
    ds.createDimension("time", 1)
    ds.createDimension("lat", len(lat))
    ds.createDimension("lon", len(lon))
    v = ds.createVariable("lat", "f8", ("lat",), fletcher32=True)
    v[:] = lat
    v.units, v.long_name = "degrees_north", "latitude"
    v = ds.createVariable("lon", "f8", ("lon",), fletcher32=True)
    v[:] = lon
    v.units, v.long_name = "degrees_east", "longitude"
    v = ds.createVariable("time", "f8", ("time",), fletcher32=True)
    v.units, v.calendar = "days since 2000-01-01 00:00:00", "noleap"
    v[:] = (date - _dt.date(2000, 1, 1)).days if date is not None else 0.0
    for name in VARIABLES:
        v = ds.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True, complevel=1, fletcher32=True)
        v.units, v.long_name = UNITS[name]
        v[0] = fields[name]
    v = ds.createVariable("LABELS", "i8", ("lat", "lon"), zlib=True, complevel=1, fletcher32=True)
    v.long_name = "0 background, 1 tropical cyclone, 2 atmospheric river"
    v[:] = labels
    for key, value in (attrs or {}).items():
        ds.setncattr(key, value)


def default_grid(nlat: int, nlon: int) -> tuple[np.ndarray, np.ndarray]:
    """ClimateNet's grid layout: ``nlat`` latitudes from -90 to 90 inclusive, ``nlon`` longitudes from 0.

    Parameters
    ----------
    nlat, nlon : int
        At least 3 and 4 (``ValueError`` otherwise).

    Returns
    -------
    lat, lon : 1-D float64 arrays
        Degrees; longitudes ``k * 360 / nlon``.
    """
    if nlat < 3 or nlon < 4:
        raise ValueError(f"grid too small: nlat={nlat}, nlon={nlon} (need nlat >= 3, nlon >= 4)")
    return np.linspace(-90.0, 90.0, nlat), np.arange(nlon) * (360.0 / nlon)


def _synth_one(args: tuple[int, int, int, int, str]) -> dict[str, Any]:
    seed, index, nlat, nlon, out = args
    lat, lon = default_grid(nlat, nlon)
    date = _dt.date(2000, 1, 1) + _dt.timedelta(days=2 * index)
    fields, labels, events = synthesize_sample(seed, index, lat, lon, date)
    name = f"data-{date.isoformat()}-01-1_{index}.nc"
    write_climatenet(
        Path(out) / name,
        fields,
        labels,
        lat,
        lon,
        date,
        attrs={"source": "meshcnn synthetic ClimateNet generator", "seed": seed, "index": index},
    )
    weights = LatLonGrid(lat, lon).cell_weights
    frac = np.bincount(labels.ravel(), weights=weights.ravel(), minlength=NUM_CLASSES) / weights.sum()
    return {"file": name, "class_fraction": frac.tolist(), **events}


def remove_synthetic(out: str | os.PathLike) -> list[Path]:
    """Remove exactly the files a previous :func:`generate_synthetic` wrote into ``out`` (as its
    ``synth.json`` lists them) and ``synth.json`` itself; other files are kept. Returns the removed paths."""
    out = Path(out)
    listed = synth_listed_files(out)
    if listed is None:
        return []
    removed = []
    for path in listed + [out / "synth.json"]:
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def generate_synthetic(
    out: str | os.PathLike,
    num: int = 200,
    nlat: int = 192,
    nlon: int = 288,
    seed: int = 0,
    progress: bool = True,
    workers: int = 1,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``num`` synthetic ClimateNet files ``data-YYYY-MM-DD-01-1_<i>.nc`` (2 days apart from
    2000-01-01, so a set covers the seasons) and ``synth.json`` describing every event.
    Deterministic for ``seed``; file ``i`` depends only on ``(seed, i, nlat, nlon)``.

    ``out`` must be empty or new (``FileExistsError`` otherwise), so that no stale
    files mix with the new set; ``overwrite=True`` first removes exactly the files a
    previous call wrote there (:func:`remove_synthetic`, from its ``synth.json``).

    Parameters
    ----------
    out : str or path-like
        The output folder.
    num : int
        Number of files, positive (default 200).
    nlat, nlon : int
        Grid size (:func:`default_grid`; default 192 x 288).
    seed : int
        Default 0.
    progress : bool
        Show a progress bar (default ``True``).
    workers : int
        Processes writing files (default 1).
    overwrite : bool
        Default ``False``.

    Returns
    -------
    list of pathlib.Path
        The files written, in index order.
    """
    if num < 1:
        raise ValueError(f"num must be positive, got {num}")
    default_grid(nlat, nlon)  # validates the size
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if overwrite:
        remove_synthetic(out)
    elif out.is_dir() and any(out.iterdir()):
        entries = sorted(p.name for p in out.iterdir())
        raise FileExistsError(
            f"{out}: output folder is not empty ({len(entries)} entries, e.g. {entries[0]!r}); choose an empty "
            "folder, or pass --overwrite (overwrite=True) to replace the files of a previous synthetic set"
        )
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, i, nlat, nlon, str(out)) for i in range(num)]
    if workers > 1:
        from multiprocessing import Pool

        with Pool(workers) as pool:
            records = list(
                progress_bar(pool.imap(_synth_one, jobs), enabled=progress, total=num, desc="synthesizing", unit="file")
            )
    else:
        records = [_synth_one(j) for j in progress_bar(jobs, enabled=progress, desc="synthesizing", unit="file")]
    fractions = np.array([r["class_fraction"] for r in records])
    summary = {
        "seed": seed,
        "num": num,
        "nlat": nlat,
        "nlon": nlon,
        "class_fraction_mean": fractions.mean(0).tolist(),
        "num_tropical_cyclones": int(sum(len(r["tropical_cyclones"]) for r in records)),
        "num_atmospheric_rivers": int(sum(len(r["atmospheric_rivers"]) for r in records)),
        "files": records,
    }
    save_json(out / "synth.json", summary)
    return [out / r["file"] for r in records]


def ensure_synthetic(
    out: str | os.PathLike,
    num: int = 200,
    nlat: int = 192,
    nlon: int = 288,
    seed: int = 0,
    progress: bool = True,
    workers: int = 1,
) -> bool:
    """:func:`generate_synthetic` unless ``out/synth.json`` already describes a set of these
    ``num, nlat, nlon, seed``; returns whether it wrote the set.

    Parameters
    ----------
    out, num, nlat, nlon, seed, progress, workers
        As in :func:`generate_synthetic` (an existing set is overwritten).

    Returns
    -------
    bool
    """
    wanted = {"seed": seed, "num": num, "nlat": nlat, "nlon": nlon}
    summary = Path(out) / "synth.json"
    if summary.is_file():
        with open(summary) as f:
            if {k: v for k, v in json.load(f).items() if k in wanted} == wanted:
                return False
    generate_synthetic(out, num, nlat, nlon, seed, progress=progress, workers=workers, overwrite=summary.is_file())
    return True
