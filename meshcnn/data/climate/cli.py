"""``python -m meshcnn.data.climate {synth,verify,check,to-ugscnn}``: the climate data tools.

Command line::

    python -m meshcnn.data.climate synth --out DIR --num 200 --nlat 192 --nlon 288 --seed 0 [--overwrite]
    python -m meshcnn.data.climate verify DIR        # measured TC rotation, AR shape, class balance
    python -m meshcnn.data.climate check FILE_OR_DIR ...
    python -m meshcnn.data.climate to-ugscnn --data DIR --out DIR --level 5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..._progress import progress_bar
from ._format import CLASSES, NUM_CLASSES, ClimateFileError
from .files import find_files, split_files, write_split_lists
from .reader import read_climatenet, read_latlon, write_ugscnn
from .synth import generate_synthetic
from .verify import verify_synthetic

__all__ = ["main"]


def _cmd_synth(args: argparse.Namespace) -> None:
    try:
        files = generate_synthetic(
            args.out, args.num, args.nlat, args.nlon, args.seed, workers=args.workers, overwrite=args.overwrite
        )
    except (FileExistsError, ClimateFileError) as exc:
        raise SystemExit(f"synth: {exc}") from None
    with open(Path(args.out) / "synth.json") as f:
        summary = json.load(f)
    frac = summary["class_fraction_mean"]
    print(f"wrote {len(files)} files to {args.out}")
    print("area fraction: " + ", ".join(f"{c} {100 * x:.2f}%" for c, x in zip(CLASSES, frac)))
    print(
        f"{summary['num_tropical_cyclones']} tropical cyclones, {summary['num_atmospheric_rivers']} atmospheric rivers"
    )


def _cmd_verify(args: argparse.Namespace) -> None:
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
    parser = argparse.ArgumentParser(
        prog="python -m meshcnn.data.climate",
        description="ClimateNet data tools: synthetic generator, checks, conversion.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="write synthetic ClimateNet-format netCDF files")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=int, default=200, help="number of time steps (files), default 200")
    p.add_argument("--nlat", type=int, default=192, help="latitudes, -90..90 inclusive (real data: 768)")
    p.add_argument("--nlon", type=int, default=288, help="longitudes from 0 (real data: 1152)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty folder, first removing exactly the files a previous 'synth' "
        "wrote there (as its synth.json lists them); without it a non-empty folder is refused",
    )
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
