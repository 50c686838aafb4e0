"""Regridder benchmarks (issue 20): method accuracy, lazy regridding of a large archive, predict --dask.

    python experiments/benchmark/regrid_dask.py accuracy
    python experiments/benchmark/regrid_dask.py lazy --out /tmp/bench_lazy
    python experiments/benchmark/regrid_dask.py predict --out /tmp/bench_predict_dask --workers 1 2

``accuracy``: a 1-degree grid (181 x 360, pole rows) -> icosphere level 6 -> the same grid,
for each method, of a sum of real spherical harmonics up to degree 5: the largest error over
the grid relative to the field's largest value, and the time to build both matrices.

``lazy``: a two-year archive of daily 1-degree float32 fields (730 x 181 x 360, one
variable, 10 Zarr chunks of 73 steps, written once) regridded bilinearly to level 6 and
written to a Zarr store, each mode in a fresh process: ``eager`` (the archive loaded, one
regridder call, written), ``lazy`` (``xr.open_zarr`` -> Regridder -> ``to_zarr``, Dask's
synchronous scheduler: one chunk at a time) and ``lazy-threads`` (Dask's threaded
scheduler, 2 threads). Reported: wall time, and the peak resident memory of the process
above what it held after the imports, the regridder and opening the store (``ru_maxrss``),
against the size of one input chunk and of the whole archive; and whether each lazy
output equals the eager one to the last bit.

``predict``: ``meshcnn predict`` on a synthetic set (``--num`` files of ``--nlat`` x
``--nlon``, a level-``--level`` width-8 checkpoint trained for one epoch; with
``--steps-per-file S`` joined into files of S steps, the set ``--repeat`` times over, predicted
in chunks of ``--batch-size`` steps), serial (the
command's default: one DataLoader worker) and with ``--dask --workers N`` for each N,
in fresh processes (``python -m meshcnn predict ... --threads 1``): the wall time of the
whole command (process and cluster start, model loading included) and of the prediction loop
alone (what the command reports: from the first chunk to the last output), files per second
of the loop (time steps per second); and whether every output file equals the serial run's (all variables, NaN equal
to NaN, and the attribute names).

Results: ``experiments/benchmark/RESULTS.md``, "Regridder, lazy regridding and predict --dask (issue 20)".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
STEPS, CHUNK = 730, 73
LAT, LON = np.linspace(-90.0, 90.0, 181), np.arange(0.0, 360.0, 1.0)


def harmonics(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Re/Im Y_l^m for (l, m) up to degree 5, weighted."""
    from scipy.special import sph_harm_y

    theta, phi = np.deg2rad(90.0 - lat_deg), np.deg2rad(lon_deg)
    out = np.zeros(np.broadcast(theta, phi).shape)
    for l, m, c in [(1, 1, 1.0), (2, 0, 0.7), (3, 2, 0.5), (4, -3, 0.3), (5, 4, 0.4), (5, -1, 0.3)]:
        y = sph_harm_y(l, abs(m), theta, phi)
        out += c * (y.real if m >= 0 else y.imag)
    return out


def accuracy() -> list[dict]:
    from meshcnn.grids import LatLonGrid, Regridder

    grid = LatLonGrid(LAT, LON)
    field = harmonics(*np.meshgrid(LAT, LON, indexing="ij"))
    rows = []
    print("| method | max error / max value | build both matrices (s) |\n|---|---|---|")
    for method in ("bilinear", "conservative", "patch", "nearest"):
        start = time.perf_counter()
        to_mesh, back = Regridder(grid, 6, method), Regridder(6, grid, method)
        build = time.perf_counter() - start
        err = np.abs(back(to_mesh(field)) - field).max() / np.abs(field).max()
        rows.append({"method": method, "error": err, "build_s": build})
        print(f"| {method} | {err:.2e} | {build:.1f} |", flush=True)
    return rows


def write_archive(path: Path) -> None:
    import xarray as xr

    if (path / "zarr.json").exists() or (path / ".zgroup").exists():
        return
    base = harmonics(*np.meshgrid(LAT, LON, indexing="ij")).astype(np.float32)
    ds = xr.Dataset(
        {"tas": (("time", "lat", "lon"), np.zeros((STEPS, 181, 360), np.float32), {"units": "K"})},
        coords={
            "time": np.arange(STEPS),
            "lat": ("lat", LAT, {"units": "degrees_north"}),
            "lon": ("lon", LON, {"units": "degrees_east"}),
        },
    )
    ds.chunk({"time": CHUNK}).to_zarr(path, mode="w", compute=False, consolidated=False)
    rng = np.random.default_rng(0)
    for i in range(0, STEPS, CHUNK):
        t = np.arange(i, i + CHUNK)
        block = (
            280.0
            + 10 * base[None] * np.cos(2 * np.pi * t / 365.0)[:, None, None]
            + rng.normal(size=(CHUNK, 181, 360)).astype(np.float32)
        )
        part = ds.isel(time=slice(i, i + CHUNK)).assign(tas=(("time", "lat", "lon"), block.astype(np.float32)))
        part.drop_vars(["lat", "lon"]).to_zarr(path, region={"time": slice(i, i + CHUNK)}, consolidated=False)


def lazy_mode(archive: Path, out: Path, mode: str) -> dict:
    """One mode in this (fresh) process: peak memory above the baseline after setup, wall time."""
    import dask
    import xarray as xr

    from meshcnn.grids import LatLonGrid, Regridder

    rg = Regridder(LatLonGrid(LAT, LON), 6, "bilinear")
    src = xr.open_zarr(archive, consolidated=False)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    if mode == "eager":
        result = rg(src.load())
        result.to_zarr(out, mode="w", consolidated=False)
    else:
        scheduler = "synchronous" if mode == "lazy" else "threads"
        with dask.config.set(scheduler=scheduler, num_workers=2):
            rg(src).to_zarr(out, mode="w", consolidated=False)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": mode, "wall_s": wall, "peak_above_baseline_mb": (peak - baseline) / 2**20}


def lazy(work: Path) -> list[dict]:
    import xarray as xr

    work.mkdir(parents=True, exist_ok=True)
    archive = work / "archive.zarr"
    write_archive(archive)
    chunk_mb = CHUNK * 181 * 360 * 4 / 2**20
    rows = []
    for mode in ("eager", "lazy", "lazy-threads"):
        proc = subprocess.run(
            [sys.executable, __file__, "lazy-mode", "--out", str(work), "--mode", mode],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    eager = xr.open_zarr(work / "out-eager.zarr", consolidated=False)["tas"]
    for row in rows:
        other = xr.open_zarr(work / f"out-{row['mode']}.zarr", consolidated=False)["tas"]
        row["equal_to_eager"] = all(
            np.array_equal(eager[i : i + CHUNK].values, other[i : i + CHUNK].values) for i in range(0, STEPS, CHUNK)
        )
    print(
        f"archive: {STEPS} x 181 x 360 float32 ({STEPS * 181 * 360 * 4 / 2**20:.0f} MiB), chunks of {CHUNK} steps "
        f"({chunk_mb:.1f} MiB); output level 6 ({STEPS * 40962 * 4 / 2**20:.0f} MiB, chunks "
        f"{CHUNK * 40962 * 4 / 2**20:.1f} MiB)"
    )
    print("| mode | wall (s) | peak memory above baseline (MiB) | equal to eager |\n|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['mode']} | {row['wall_s']:.1f} | {row['peak_above_baseline_mb']:.0f} | {row['equal_to_eager']} |"
        )
    return rows


def _same_outputs(a: Path, b: Path) -> bool:
    import xarray as xr

    for f in sorted(a.glob("*.nc")):
        with xr.open_dataset(f, decode_times=False) as x, xr.open_dataset(b / f.name, decode_times=False) as y:
            if set(x.variables) != set(y.variables) or x.attrs.keys() != y.attrs.keys():
                return False
            for v in x.variables:
                try:
                    np.testing.assert_array_equal(x[v].values, y[v].values)  # NaN equal to NaN
                except AssertionError:
                    return False
    return True


def predict(
    work: Path,
    num: int,
    nlat: int,
    nlon: int,
    level: int,
    workers: list[int],
    steps: int = 1,
    batch_size: int = 4,
    repeat: int = 1,
) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).parent))
    from predict import make_checkpoint

    from meshcnn.data.climate import ensure_synthetic

    work.mkdir(parents=True, exist_ok=True)
    data = work / f"data_{num}_{nlat}x{nlon}"
    ensure_synthetic(data, num=num, nlat=nlat, nlon=nlon, seed=1, progress=False)
    if steps > 1:  # the files joined along time, ``steps`` per file: chunks of one file spread over the workers
        import xarray as xr

        files = sorted(data.glob("*.nc")) * repeat
        data = work / f"data_{num}x{repeat}_{nlat}x{nlon}_steps{steps}"
        data.mkdir(exist_ok=True)
        for i in range(0, len(files), steps):
            if not (data / f"part{i // steps:03d}.nc").is_file():
                parts = [
                    xr.open_dataset(f, decode_times=False).drop_vars("LABELS").load() for f in files[i : i + steps]
                ]
                xr.concat(parts, dim="time", data_vars="minimal").to_netcdf(data / f"part{i // steps:03d}.nc")
    checkpoint = make_checkpoint(work / f"L{level}", level)
    runs = [("serial", [])] + [
        (f"dask {n} worker{'s' if n > 1 else ''}", ["--dask", "--workers", str(n)]) for n in workers
    ]
    rows = []
    for label, extra in runs:
        out = work / ("out_" + label.replace(" ", "_"))
        shutil.rmtree(out, ignore_errors=True)
        cmd = [
            sys.executable,
            "-m",
            "meshcnn",
            "predict",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            "--threads",
            "1",
            "--no-progress",
            "--batch-size",
            str(batch_size),
            *extra,
            str(data),
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        inner = float(re.search(r"time steps\) in ([0-9.]+) s", proc.stdout).group(1))  # predict_files' own wall
        total = num * repeat if steps > 1 else num
        rows.append({"run": label, "wall_s": wall, "predict_s": inner, "steps_per_s": total / inner, "out": str(out)})
    serial = Path(rows[0]["out"])
    print(
        f"{num * (repeat if steps > 1 else 1)} synthetic time steps {nlat} x {nlon} in files of {steps} step(s), "
        f"--batch-size {batch_size}, "
        f"level {level}, width 8; {os.cpu_count()} CPU cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        "| run | command wall (s) | predict loop (s) | time steps/s (loop) | outputs equal to serial |\n"
        "|---|---|---|---|---|"
    )
    for row in rows:
        row["equal_to_serial"] = _same_outputs(serial, Path(row["out"]))
        print(
            f"| {row['run']} | {row['wall_s']:.1f} | {row['predict_s']:.1f} | {row['steps_per_s']:.2f} | "
            f"{row['equal_to_serial']} |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("accuracy", "lazy", "lazy-mode", "predict"))
    p.add_argument("--out", default="/tmp/bench_regrid_dask")
    p.add_argument("--mode", default="eager")
    p.add_argument("--num", type=int, default=24)
    p.add_argument("--nlat", type=int, default=192)
    p.add_argument("--nlon", type=int, default=288)
    p.add_argument("--level", type=int, default=4)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps-per-file", type=int, default=1, help="predict: join the files, this many steps per file")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeat", type=int, default=1, help="with --steps-per-file: the set repeated this many times")
    args = p.parse_args(argv)
    print(f"# {platform.node()}, python {platform.python_version()}, {os.cpu_count()} cores", file=sys.stderr)
    if args.what == "accuracy":
        accuracy()
    elif args.what == "lazy":
        lazy(Path(args.out))
    elif args.what == "lazy-mode":
        work = Path(args.out)
        print(json.dumps(lazy_mode(work / "archive.zarr", work / f"out-{args.mode}.zarr", args.mode)))
    else:
        predict(
            Path(args.out),
            args.num,
            args.nlat,
            args.nlon,
            args.level,
            args.workers,
            args.steps_per_file,
            args.batch_size,
            args.repeat,
        )


if __name__ == "__main__":
    main()
