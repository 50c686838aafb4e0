"""Orientation and grid study: U-Nets of several orientations and sphere grids, several seeds.

    python experiments/climate_segmentation/orientation_study.py --out runs/climate_orientation \\
        --orientation fixed poleward invariant --seed 0 1 2
    python experiments/climate_segmentation/orientation_study.py --out runs/climate_grids \\
        --grid icosphere healpix --orientation fixed --seed 0 1 2

One synthetic ClimateNet-format set (written once to ``OUT/data``, as ``main.py``
does) and one split; for each grid, orientation and seed, ``train.py`` then ``evaluate.py``
in ``OUT/<orientation>_s<seed>`` (icosphere) or ``OUT/<grid>_<orientation>_s<seed>``
(reused when its ``eval/test_metrics.json`` exists). The table gives, as mean ± standard
deviation over seeds, the test IoU of tropical cyclones in each hemisphere and overall,
of atmospheric rivers, the mean IoU and AP, and the training time per epoch; it is printed
and written to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from meshcnn.cli import (
    HELP_FORMATTER,
    grid_option,
    level_option,
    orientation_option,
    run_options,
    seed_option,
    training_options,
)
from meshcnn.data.climate.synth import ensure_synthetic
from meshcnn.io import save_json
from meshcnn.metrics import mean_std

HERE = Path(__file__).resolve().parent
COLUMNS = (
    ("TC IoU, north", ("iou_by_hemisphere", "north", "iou", "tropical_cyclone")),
    ("TC IoU, south", ("iou_by_hemisphere", "south", "iou", "tropical_cyclone")),
    ("TC IoU", ("iou", "tropical_cyclone")),
    ("AR IoU", ("iou", "atmospheric_river")),
    ("mean IoU", ("mean_iou",)),
    ("mean AP", ("mean_ap",)),
    ("s / epoch", ("time_per_epoch_s",)),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parents = [
        orientation_option(many=True, default=["fixed", "poleward", "invariant"]),
        seed_option(many=True, default=[0, 1, 2], help="training seeds (the data seed is 0)"),
        level_option(5),
        grid_option(many=True),
        training_options(epochs=15, batch_size=None, lr=None),
        run_options(resume=False, workers=False, device=False),
    ]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER, parents=parents)
    p.add_argument("--out", type=Path, default=Path("runs/climate_orientation"))
    p.add_argument("--num", type=int, default=100, help="synthetic time steps (files)")
    p.add_argument("--nlat", type=int, default=96)
    p.add_argument("--nlon", type=int, default=144)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--lr-step", type=int, default=5)
    p.add_argument("--class-weight-power", type=float, default=0.5)
    return p.parse_args(argv)


def _get(report: dict, path: tuple[str, ...]) -> float | None:
    for key in path:
        report = report.get(key) if isinstance(report, dict) else None
    return report  # type: ignore[return-value]


def table(results: dict[str, list[dict]], what: str = "orientation") -> list[str]:
    """Markdown rows: mean ± std over seeds of each column, per orientation (or grid and orientation)."""
    lines = [
        f"| {what} | " + " | ".join(name for name, _ in COLUMNS) + " | seeds |",
        "|---|" + "---|" * len(COLUMNS) + "---|",
    ]
    for row, reports in results.items():
        cells = [mean_std([v for v in (_get(r, path) for r in reports) if v is not None]) for _, path in COLUMNS]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {len(reports)} |")
    return lines


def time_per_epoch(run: Path) -> float | None:
    """Mean training time per epoch of a run, seconds (``time_s`` of each epoch in ``metrics.json``)."""
    path = run / "metrics.json"
    if not path.is_file():
        return None
    times = [epoch["time_s"] for epoch in json.loads(path.read_text()) if "time_s" in epoch]
    return sum(times) / len(times) if times else None


def run_step(name: str, cmd: list[str]) -> None:
    print(f"\n== {name}: {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    data = args.out / "data"
    ensure_synthetic(data, num=args.num, nlat=args.nlat, nlon=args.nlon, seed=0, progress=not args.no_progress)
    quiet = ["--no-progress"] if args.no_progress else []
    results: dict[str, list[dict]] = {}
    several_grids = len(args.grid) > 1
    for grid, orientation in ((g, o) for g in args.grid for o in args.orientation):
        row = f"{grid}, {orientation}" if several_grids else orientation
        for seed in args.seed:
            run = args.out / (f"{orientation}_s{seed}" if grid == "icosphere" else f"{grid}_{orientation}_s{seed}")
            metrics = run / "eval" / "test_metrics.json"
            if not metrics.is_file():
                run_step(
                    f"training {row}, seed {seed}",
                    [
                        sys.executable,
                        str(HERE / "train.py"),
                        "--data",
                        str(data),
                        "--out",
                        str(run),
                        "--level",
                        str(args.level),
                        "--grid",
                        grid,
                        "--width",
                        str(args.width),
                        "--orientation",
                        orientation,
                        "--epochs",
                        str(args.epochs),
                        "--lr-step",
                        str(args.lr_step),
                        "--class-weight-power",
                        str(args.class_weight_power),
                        "--seed",
                        str(seed),
                        "--threads",
                        str(args.threads),
                        "--resume",
                        *quiet,
                    ],
                )
                run_step(
                    f"evaluating {row}, seed {seed}",
                    [
                        sys.executable,
                        str(HERE / "evaluate.py"),
                        "--run",
                        str(run),
                        "--threads",
                        str(args.threads),
                        "--num-maps",
                        "0",
                        *quiet,
                    ],
                )
            report = json.loads(metrics.read_text())
            report["time_per_epoch_s"] = time_per_epoch(run)
            results.setdefault(row, []).append(report)
            print("\n".join(table(results, "grid, orientation" if several_grids else "orientation")), flush=True)
    lines = table(results, "grid, orientation" if several_grids else "orientation")
    save_json(
        args.out / "results.json",
        {"args": {k: str(v) for k, v in vars(args).items()}, "table": lines, "reports": results},
    )
    print("\n" + "\n".join(lines))
    return results


if __name__ == "__main__":
    main()
