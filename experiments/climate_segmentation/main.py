"""The README main job: synthetic ClimateNet set -> spherical U-Net on CPU -> test IoU/AP and maps.

    python experiments/climate_segmentation/main.py --out runs/main

1. writes a small synthetic ClimateNet-format set (netCDF, the real files' layout)
   to ``OUT/data`` with :mod:`meshcnn.data.climate` (reused if it is already there);
2. trains a spherical U-Net on it with ``train.py`` (checkpoint and ``metrics.json``
   in ``OUT``);
3. evaluates it on the test split with ``evaluate.py`` (``OUT/eval``: metrics,
   confusion matrix, PNG maps) and prints test IoU/AP.

The defaults are sized for a laptop-class CPU (run times in the README); every
step's time goes to ``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
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
from meshcnn.io import save_json

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parents = [
        seed_option(help="data and training seed"),
        level_option(5),
        grid_option(),
        orientation_option(help="MeshConv orientation of the spherical U-Net (poleward also flips V850/VBOT)"),
        training_options(epochs=15, batch_size=4, lr=None),
        run_options(workers=False, resume_help="continue an interrupted run in OUT"),
    ]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER, parents=parents)
    p.add_argument("--out", default="runs/main", help="run folder")
    p.add_argument("--num", type=int, default=100, help="synthetic time steps (files)")
    p.add_argument("--nlat", type=int, default=96, help="synthetic grid latitudes")
    p.add_argument("--nlon", type=int, default=144, help="synthetic grid longitudes")
    p.add_argument("--model", choices=("spherical", "planar"), default="spherical")
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--lr-step", type=int, default=5)
    p.add_argument("--class-weight-power", type=float, default=0.5)
    p.add_argument("--num-maps", type=int, default=3, help="test samples drawn as PNG maps")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="mixed precision of training (train.py --precision; fp16 on CUDA only)",
    )
    return p.parse_args(argv)


def run_step(name: str, cmd: list[str]) -> float:
    print(f"\n== {name}: {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    data = out / "data"
    times: dict[str, float] = {}
    start = time.perf_counter()

    wanted = {"seed": args.seed, "num": args.num, "nlat": args.nlat, "nlon": args.nlon}
    existing = data / "synth.json"
    have = {}
    if existing.is_file():
        with open(existing) as f:
            have = {k: v for k, v in json.load(f).items() if k in wanted}
    if have == wanted:
        print(f"reusing the synthetic set in {data}")
        times["data_s"] = 0.0
    else:
        times["data_s"] = run_step(
            "synthetic data",
            [
                sys.executable,
                "-m",
                "meshcnn.data.climate",
                "synth",
                "--out",
                str(data),
                "--num",
                str(args.num),
                "--nlat",
                str(args.nlat),
                "--nlon",
                str(args.nlon),
                "--seed",
                str(args.seed),
                *(["--overwrite"] if existing.is_file() else []),
            ],
        )  # replaces exactly the files of the earlier set
    quiet = ["--no-progress"] if args.no_progress else []
    times["train_s"] = run_step(
        "training",
        [
            sys.executable,
            str(HERE / "train.py"),
            "--data",
            str(data),
            "--out",
            str(out),
            "--model",
            args.model,
            "--level",
            str(args.level),
            "--grid",
            args.grid,
            "--width",
            str(args.width),
            "--orientation",
            args.orientation,
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
            "--lr-step",
            str(args.lr_step),
            "--class-weight-power",
            str(args.class_weight_power),
            "--seed",
            str(args.seed),
            "--device",
            args.device,
            "--threads",
            str(args.threads),
            "--precision",
            args.precision,
            *(["--resume"] if args.resume else []),
            *quiet,
        ],
    )
    times["eval_s"] = run_step(
        "evaluation",
        [
            sys.executable,
            str(HERE / "evaluate.py"),
            "--run",
            str(out),
            "--device",
            args.device,
            "--threads",
            str(args.threads),
            "--num-maps",
            str(args.num_maps),
            *quiet,
        ],
    )
    times["total_s"] = time.perf_counter() - start

    with open(out / "eval" / "test_metrics.json") as f:
        report = json.load(f)
    summary = {
        "args": vars(args),
        "times": times,
        "test_mean_iou": report["mean_iou"],
        "test_mean_ap": report["mean_ap"],
        "test_iou": report["iou"],
        "test_ap": report["ap"],
        "maps": report["maps"],
        "test_iou_by_hemisphere": report.get("iou_by_hemisphere"),
    }
    save_json(out / "summary.json", summary)
    print(
        f"\n== done in {times['total_s']:.0f} s (data {times['data_s']:.0f} s, training {times['train_s']:.0f} s, "
        f"evaluation {times['eval_s']:.0f} s)"
    )
    print(
        "test IoU: "
        + ", ".join(f"{k} {v:.3f}" for k, v in report["iou"].items() if v is not None)
        + f"; mean {report['mean_iou']:.3f}"
    )
    print(
        "test AP:  "
        + ", ".join(f"{k} {v:.3f}" for k, v in report["ap"].items() if v is not None)
        + f"; mean {report['mean_ap']:.3f}"
    )
    print(
        f"run folder {out}: checkpoint.pt, metrics.json, eval/test_metrics.json, eval/confusion_matrix.png, "
        f"maps: {', '.join(report['maps'])}"
    )
    return summary


if __name__ == "__main__":
    main()
