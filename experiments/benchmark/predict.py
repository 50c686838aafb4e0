"""Throughput of ``meshcnn predict`` on full-size ClimateNet files (768 x 1152) at level 5.

    python experiments/benchmark/predict.py --out /tmp/bench_predict --num 8 --threads 1 --workers 0 1 --uncompressed

1. writes ``--num`` synthetic 768 x 1152 ClimateNet-format files (reused if there);
2. takes ``--checkpoint``, or trains a level-5 spherical U-Net (width 8, the climate
   main job's model) for one epoch on a few small synthetic files: the weights do not
   change the speed;
3. builds the regridding matrices once (timed as ``setup``: once per grid, cached and
   inherited by the DataLoader workers) and runs :func:`meshcnn.predict.predict_files`
   over the files for each ``--workers`` value, reporting files/s and the time per
   stage per file: read, regrid, model, regrid back, write. With workers, read and
   regrid overlap the model, so the stages add up to more than the wall time. ``write``
   includes finding the events. ``--uncompressed`` also times uncompressed copies
   (the synthetic files are zlib-compressed with checksums; reading them is mostly
   decompression).

``--read-stage`` times only the *read* stage instead (issue 21), against a plain
``netCDF4`` read of the same file (open, every variable whole, close):

    python experiments/benchmark/predict.py --read-stage --out /tmp/bench_read --threads 1

It writes multi-step files of the 16 fields (zlib level 1 with shuffle; reused if
there) in two layouts: ``step`` (an unlimited time dimension with one time step per
HDF5 chunk, as model history files are written) and ``default`` (a fixed time
dimension and netCDF-C's default chunks, as ``xarray.to_netcdf`` with ``zlib`` writes
them, which span many time steps), on the issue's 48 x 72 grid (300 steps), a 1-degree
grid and a 0.25-degree-like 768 x 1152 grid (a few steps). The read stage is the sum of
``t_read`` of :class:`meshcnn.predict.stages.ChunkDataset` over the file's chunks of
``--batch-size`` steps: exactly what ``meshcnn predict`` reports as ``read``. Run it
against an older tree with ``PYTHONPATH=/path/to/old/tree`` to compare.

Results: ``experiments/benchmark/RESULTS.md``, "meshcnn predict throughput" and
"Predict reading at disk speed (issue 21)".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from meshcnn.cli import HELP_FORMATTER, apply_threads, level_option, run_options
from meshcnn.data.climate import ensure_synthetic
from meshcnn.grids import regrid
from meshcnn.predict import predict_files
from meshcnn.predict.inputs import read_fields
from meshcnn.predict.runner import STAGES

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=HELP_FORMATTER,
        parents=[run_options(resume=False, workers=False), level_option(default=5)],
    )
    p.add_argument("--out", default="/tmp/bench_predict", help="work folder (data, run, outputs)")
    p.add_argument("--num", type=int, default=8, help="files to predict")
    p.add_argument("--nlat", type=int, default=768)
    p.add_argument("--nlon", type=int, default=1152)
    p.add_argument("--checkpoint", default=None, help="a level-LEVEL checkpoint (default: train a 1-epoch one)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="DataLoader workers to time")
    p.add_argument("--batch-size", type=int, default=4, help="time steps per forward pass")
    p.add_argument("--events", action="store_true", help="also write the events CSV")
    p.add_argument(
        "--uncompressed",
        action="store_true",
        help="also time uncompressed copies of the files (the synthetic ones are zlib-compressed)",
    )
    p.add_argument(
        "--read-stage",
        action="store_true",
        help="time only the read stage against a plain netCDF4 read, on multi-step files (issue 21)",
    )
    p.add_argument(
        "--cases",
        nargs="+",
        default=list(READ_CASES),
        choices=list(READ_CASES),
        help="with --read-stage: the files to time",
    )
    p.add_argument("--repeats", type=int, default=3, help="with --read-stage: best of this many runs")
    return p.parse_args(argv)


#: ``--read-stage`` files: name -> (nlat, nlon, time steps, layout).
READ_CASES = {
    "48x72_default": (48, 72, 300, "default"),
    "48x72_step": (48, 72, 300, "step"),
    "1deg_default": (181, 360, 64, "default"),
    "1deg_step": (181, 360, 64, "step"),
    "025deg_default": (768, 1152, 6, "default"),
    "025deg_step": (768, 1152, 6, "step"),
}


def multistep_file(path: Path, nlat: int, nlon: int, steps: int, layout: str) -> Path:
    """A netCDF file of the 16 fields over ``steps`` time steps (4 synthetic samples, repeated), written once.

    ``layout`` ``"step"``: unlimited time, one step per HDF5 chunk; ``"default"``: fixed
    time, netCDF-C's default chunks. Both zlib level 1 with shuffle.
    """
    import netCDF4
    import numpy as np

    from meshcnn.data.climate import UNITS, VARIABLES
    from meshcnn.data.climate.synth import default_grid, synthesize_sample

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    lat, lon = default_grid(nlat, nlon)
    samples = [synthesize_sample(0, i, lat, lon)[0] for i in range(min(steps, 4))]
    tmp = path.with_name(f".{path.name}.tmp")
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None if layout == "step" else steps)
        ds.createDimension("lat", nlat)
        ds.createDimension("lon", nlon)
        for name, values, units in (
            ("lat", lat, "degrees_north"),
            ("lon", lon, "degrees_east"),
            ("time", np.arange(steps) * 3.0, "hours since 2000-01-01"),
        ):
            v = ds.createVariable(name, "f8", (name,))
            v.units = units
            v[:] = values
        for name in VARIABLES:
            chunks = {"chunksizes": (1, nlat, nlon)} if layout == "step" else {}
            v = ds.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True, complevel=1, shuffle=True, **chunks)
            v.units, v.long_name = UNITS[name]
            for t in range(steps):
                v[t] = samples[t % len(samples)][name]
    tmp.rename(path)
    return path


def plain_read_s(path: Path) -> float:
    """Seconds to open the file, read every one of the 16 fields whole with netCDF4 and close it."""
    import netCDF4

    from meshcnn.data.climate import VARIABLES

    start = time.perf_counter()
    with netCDF4.Dataset(path, "r") as ds:
        for name in VARIABLES:
            ds[name][:]
    return time.perf_counter() - start


def read_stage_s(path: Path, batch_size: int) -> float:
    """The ``read`` stage of ``meshcnn predict`` for one file: the sum of ``t_read`` over its chunks."""
    import types

    import numpy as np

    from meshcnn.data.climate import VARIABLES
    from meshcnn.predict.stages import ChunkDataset

    n = read_fields(path, VARIABLES, header_only=True)["num_steps"]
    chunks = [(0, t0, min(t0 + batch_size, n)) for t0 in range(0, n, batch_size)]
    predictor = types.SimpleNamespace(
        level=2, variables=VARIABLES, mean=np.zeros(len(VARIABLES), np.float32), std=np.ones(len(VARIABLES), np.float32)
    )
    dataset = ChunkDataset([path], chunks, predictor, False)
    total = 0.0
    for i in range(len(dataset)):
        item = dataset[i]
        if "error" in item:
            raise RuntimeError(item["error"])
        total += item["t_read"]
    getattr(dataset, "close", lambda: None)()
    return total


def read_benchmark(args: argparse.Namespace) -> dict:
    """``--read-stage``: one table row per case, best of ``--repeats`` (plain read and read stage interleaved)."""
    import meshcnn

    work = Path(args.out)
    files = {name: multistep_file(work / f"{name}.nc", *READ_CASES[name]) for name in args.cases}
    print(
        f"read stage of meshcnn predict ({Path(meshcnn.__file__).parent}), batch size {args.batch_size}, "
        f"best of {args.repeats}; {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}"
    )
    print("| file | grid | steps | HDF5 chunk (steps) | MB on disk | plain netCDF4 read (s) | read stage (s) | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for name, path in files.items():
        import netCDF4

        with netCDF4.Dataset(path) as ds:
            chunking = ds["TMQ"].chunking()
        nlat, nlon, steps, _ = READ_CASES[name]
        plain, stage = [], []
        for _ in range(args.repeats):
            plain.append(plain_read_s(path))
            stage.append(read_stage_s(path, args.batch_size))
        row = {"file": name, "plain_s": min(plain), "read_stage_s": min(stage), "ratio": min(stage) / min(plain)}
        print(
            f"| {name} | {nlat} x {nlon} | {steps} | {chunking[0]} | {path.stat().st_size / 1e6:.1f} | "
            f"{row['plain_s']:.3f} | {row['read_stage_s']:.3f} | {row['ratio']:.1f} |",
            flush=True,
        )
        rows.append(row)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return {"args": vars(args), "rows": rows}


def make_checkpoint(work: Path, level: int) -> Path:
    """A level-``level`` width-8 checkpoint trained for one epoch on six small synthetic files (made once)."""
    run = work / "run"
    if (run / "checkpoint.pt").is_file():
        return run / "checkpoint.pt"
    small = work / "small"
    ensure_synthetic(small, num=6, nlat=48, nlon=72, seed=0, progress=False)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "climate_segmentation" / "train.py"),
            "--data",
            str(small),
            "--out",
            str(run),
            "--level",
            str(level),
            "--width",
            "8",
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--threads",
            "1",
            "--no-progress",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return run / "checkpoint.pt"


def uncompressed_copies(files: list[Path], out: Path) -> list[Path]:
    """The files rewritten without zlib/shuffle/checksums (netCDF4, contiguous), once."""
    import netCDF4

    out.mkdir(parents=True, exist_ok=True)
    copies = []
    for f in files:
        target = out / f.name
        if not target.is_file():
            tmp = out / f".{f.name}.tmp"
            with netCDF4.Dataset(f) as src, netCDF4.Dataset(tmp, "w", format="NETCDF4") as dst:
                for name, dim in src.dimensions.items():
                    dst.createDimension(name, None if dim.isunlimited() else len(dim))
                for name, var in src.variables.items():
                    v = dst.createVariable(name, var.dtype, var.dimensions)
                    v.setncatts({k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"})
                    v[:] = var[:]
                dst.setncatts({k: src.getncattr(k) for k in src.ncattrs()})
            tmp.rename(target)
        copies.append(target)
    return copies


def time_setup(path: Path, level: int) -> dict[str, float]:
    """Seconds to build (and cache) the regridding matrices of the file's grid, each way."""
    first = read_fields(path, ["TMQ"])
    t0 = time.perf_counter()
    regrid.latlon_to_mesh(first["lat"], first["lon"], level, "bilinear")
    t1 = time.perf_counter()
    regrid.mesh_to_latlon(level, first["lat"], first["lon"], "bilinear")
    return {"latlon_to_mesh_s": t1 - t0, "mesh_to_latlon_s": time.perf_counter() - t1}


def time_predict(
    inputs: list[Path], checkpoint: Path, work: Path, label: str, workers: int, args: argparse.Namespace
) -> dict:
    """One table row: :func:`predict_files` over ``inputs`` with ``workers`` DataLoader workers."""
    out = work / f"pred_{label}_w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    with contextlib.redirect_stderr(io.StringIO()):
        result = predict_files(
            inputs,
            checkpoint,
            out,
            num_workers=workers,
            batch_size=args.batch_size,
            device=args.device,
            progress=False,
            events=(work / f"events_{label}_w{workers}.csv") if args.events else None,
        )
    n = result["written"]
    per = {s: result["seconds"][s] / n for s in STAGES}
    largest = max(per, key=per.get)
    print(
        f"| {label} | {workers} | {result['files_per_s']:.3f} | {result['wall_s'] / n:.2f} | "
        + " | ".join(f"{per[s]:.2f}" for s in STAGES)
        + f" | {largest} |",
        flush=True,
    )
    return {
        "compression": label,
        "workers": workers,
        "files_per_s": result["files_per_s"],
        "wall_s": result["wall_s"],
        "per_file_s": per,
        "largest": largest,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    apply_threads(args.threads)
    if args.read_stage:
        return read_benchmark(args)
    work = Path(args.out)
    data = work / f"data_{args.nlat}x{args.nlon}"
    t0 = time.perf_counter()
    if ensure_synthetic(data, num=args.num, nlat=args.nlat, nlon=args.nlon, seed=0, progress=False):
        print(f"wrote {args.num} files {args.nlat} x {args.nlon} in {time.perf_counter() - t0:.0f} s")
    files = sorted(data.glob("*.nc"))
    checkpoint = Path(args.checkpoint) if args.checkpoint else make_checkpoint(work, args.level)
    setup = time_setup(files[0], args.level)
    size_mb = sum(f.stat().st_size for f in files) / len(files) / 2**20
    print(
        f"{len(files)} files {args.nlat} x {args.nlon} ({size_mb:.0f} MB each, 16 fields), level {args.level}, "
        f"torch threads {args.threads}, batch size {args.batch_size}; {os.cpu_count()} CPU cores, "
        f"load average {os.getloadavg()[0]:.1f}, {platform.processor() or platform.machine()}"
    )
    print(
        f"setup (once per grid, cached): lat-lon -> mesh matrix {setup['latlon_to_mesh_s']:.1f} s, "
        f"mesh -> lat-lon matrix {setup['mesh_to_latlon_s']:.1f} s"
    )
    print(
        "| file compression | workers | files/s | s/file (wall) | "
        + " | ".join(f"{s} (s/file)" for s in STAGES)
        + " | largest |"
    )
    print("|" + "---|" * (len(STAGES) + 5))
    sets = [("zlib", files)]
    if args.uncompressed:
        sets.append(("none", uncompressed_copies(files, work / f"uncompressed_{args.nlat}x{args.nlon}")))
    rows = [
        time_predict(inputs, checkpoint, work, label, workers, args)
        for label, inputs in sets
        for workers in args.workers
    ]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the main process {peak:.0f} MiB; load average at the end {os.getloadavg()[0]:.1f}")
    report = {"args": vars(args), "setup": setup, "rows": rows, "load_average": os.getloadavg(), "peak_rss_mib": peak}
    (work / "benchmark.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
