"""Evaluate a climate segmentation run on its test split: metrics, confusion matrix, maps.

    python experiments/climate_segmentation/evaluate.py --run runs/climate

Reads ``RUN/checkpoint.pt`` (model config, normalization stats and split lists
come from it), scores the model on the mesh vertices with area weights (planar
models' probabilities are interpolated to the vertices first) and writes to
``--out`` (default ``RUN/eval``): ``test_metrics.json`` (per-class IoU, accuracy,
AP, their means, the confusion matrix and IoU by latitude band), written first,
then the plots ``confusion_matrix.png`` and ``maps/sample_<i>.png`` (fields,
labels and prediction on Mollweide maps) for a few test samples. Plots need
matplotlib (``pip install 'meshcnn[plot]'``); without it, or with ``--no-plots``,
only the metrics are written (and a message says why).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshcnn.cli import HELP_FORMATTER, apply_threads, run_options
from meshcnn.data import climate
from meshcnn.io import save_json
from meshcnn.tasks import SegmenterRun, build_model, segmentation
from meshcnn.train import load_checkpoint

#: Fields drawn on the maps, with a display transform (scale, unit) and colour map.
MAP_FIELDS = {"TMQ": (1.0, "kg/m2", "viridis"), "PSL": (0.01, "hPa", "RdBu_r"), "U850": (1.0, "m/s", "PuOr")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=HELP_FORMATTER,
        parents=[run_options(resume=False, workers=False)],
    )
    p.add_argument("--run", required=True, help="run folder with checkpoint.pt")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--data", default=None, help="folder the split's files are in now (if they moved since training)")
    p.add_argument("--out", default=None, help="output folder (default RUN/eval)")
    p.add_argument("--num-maps", type=int, default=3, help="samples to draw as maps")
    p.add_argument(
        "--no-plots",
        action="store_true",
        help="write the metrics only (no confusion-matrix plot or maps; no matplotlib needed)",
    )
    p.add_argument("--projection", choices=("mollweide", "equirectangular"), default="mollweide")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--skip-bad", action="store_true", help="log and skip invalid files instead of failing")
    return p.parse_args(argv)


def format_report(report: dict[str, Any]) -> str:
    """A small text table of a segmentation report."""

    def f(x: Any) -> str:
        return "  n/a" if x is None else f"{x:.3f}"

    names = report["class_names"]
    lines = [f"{'class':<20}{'IoU':>8}{'AP':>8}{'recall':>8}"]
    for n in names:
        lines.append(f"{n:<20}{f(report['iou'][n]):>8}{f(report['ap'][n]):>8}{f(report['accuracy'][n]):>8}")
    lines.append(f"{'mean':<20}{f(report['mean_iou']):>8}{f(report['mean_ap']):>8}{f(report['mean_accuracy']):>8}")
    if "iou_by_band" in report:
        lines.append(f"{'IoU by latitude band':<30}" + "".join(f"{n:>20}" for n in names))
        for band, b in report["iou_by_band"].items():
            lines.append(
                f"  {band:<12} ({100 * b['area_fraction']:4.1f}% of area)"
                + "".join(f"{f(b['iou'][n]):>20}" for n in names)
            )
    if "iou_by_hemisphere" in report:
        lines.append(f"{'IoU by hemisphere':<30}" + "".join(f"{n:>20}" for n in names))
        for hemi, b in report["iou_by_hemisphere"].items():
            lines.append(
                f"  {hemi:<12} ({100 * b['area_fraction']:4.1f}% of area)"
                + "".join(f"{f(b['iou'][n]):>20}" for n in names)
            )
    return "\n".join(lines)


def draw_plots(
    report: dict[str, Any],
    probs: torch.Tensor,
    targets: torch.Tensor,
    targets_set,
    config: dict[str, Any],
    args: argparse.Namespace,
    out: Path,
) -> list[str]:
    """The confusion matrix and maps of the samples with the most labelled area; returns the maps' paths."""
    from meshcnn.plot import plot_confusion_matrix, plot_fields_labels_predictions

    plot_confusion_matrix(
        report["confusion_matrix"],
        climate.CLASSES,
        out / "confusion_matrix.png",
        title=f"{config['kind']} U-Net, {args.split} split (area-weighted, row-normalized)",
    )
    # draw the samples with the most labelled area (TC counted 5x: they are small)
    pred = probs.argmax(1)
    interest = [(targets[i] == 1).sum().item() * 5 + (targets[i] == 2).sum().item() for i in range(len(targets))]
    maps = []
    for i in sorted(np.argsort(interest)[::-1][: max(args.num_maps, 0)].tolist()):
        data, _ = targets_set.raw(i)
        shown = {
            f"{name} ({unit})": data[climate.VARIABLES.index(name)] * scale
            for name, (scale, unit, _) in MAP_FIELDS.items()
        }
        cmaps = {f"{name} ({unit})": cmap for name, (_, unit, cmap) in MAP_FIELDS.items()}
        path = plot_fields_labels_predictions(
            shown,
            targets[i].numpy(),
            pred[i].numpy(),
            targets_set.sphere_grid.mesh,
            out / "maps" / f"sample_{i}.png",
            class_names=("background", "tropical cyclone", "atmospheric river"),
            projection=args.projection,
            title=f"{Path(targets_set.files[i]).name}: {config['kind']} U-Net",
            cmaps=cmaps,
        )
        maps.append(str(path))
    return maps


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    apply_threads(args.threads)
    t0 = time.perf_counter()
    run = Path(args.run)
    out = Path(args.out) if args.out else run / "eval"
    ckpt = load_checkpoint(run / "checkpoint.pt")
    stored = SegmenterRun.from_extra(ckpt["extra"])
    config, stats = stored.config, stored.stats
    level = int(config["level"])
    files = [Path(f) for f in stored.splits.get(args.split, [])]
    if args.data is not None:
        files = [Path(args.data) / f.name for f in files]
    if not files:
        raise ValueError(f"{run}: the {args.split} split is empty")

    model = build_model(config)
    model.load_state_dict(ckpt["model"])
    planar = config["kind"] == "planar"
    progress = not args.no_progress
    sphere = config.get("grid", "icosphere")
    inputs = climate.ClimateNetDataset(
        files,
        level,
        grid="latlon" if planar else sphere,
        stats=stats,
        skip_bad=args.skip_bad,
        log=print,
        progress=progress,
    )
    targets_set = climate.ClimateNetDataset(inputs.files, level, grid=sphere) if planar else inputs
    grid = targets_set.sphere_grid
    probs = segmentation.mesh_probabilities(
        model,
        inputs,
        grid,
        latlon=inputs.latlon if planar else None,
        device=args.device,
        batch_size=args.batch_size,
        progress=progress,
    )
    targets = torch.stack([torch.from_numpy(targets_set.raw(i)[1]) for i in range(len(targets_set))])
    report = segmentation.segmentation_report(probs, targets, grid, climate.CLASSES)
    report.update(
        {
            "split": args.split,
            "num_samples": len(inputs),
            "level": level,
            "grid": config.get("grid", "icosphere"),
            "model": config,
            "epochs_trained": int(ckpt["epoch"]),
            "bad_files": [list(b) for b in inputs.bad_files],
        }
    )

    report["maps"] = []
    report["time_s"] = time.perf_counter() - t0
    save_json(out / "test_metrics.json", report)  # the metrics first: plotting may fail or be unavailable
    print(
        f"{config['kind']} U-Net ({config.get('num_params', 0):,} parameters, {report['epochs_trained']} epochs), "
        f"{args.split} split: {len(inputs)} samples on {config.get('grid', 'icosphere')} level {level}"
    )
    print(format_report(report))
    print(f"wrote {out / 'test_metrics.json'}")
    if args.no_plots:
        return report
    try:
        import matplotlib  # noqa: F401 - imported only to probe the installation
    except ImportError:
        print(
            "plots skipped: they need matplotlib; install the optional extra: pip install 'meshcnn[plot]' "
            "(or pass --no-plots)"
        )
        return report

    report["maps"] = draw_plots(report, probs, targets, targets_set, config, args, out)
    report["time_s"] = time.perf_counter() - t0
    save_json(out / "test_metrics.json", report)
    print(f"wrote {out / 'confusion_matrix.png'} and {len(report['maps'])} maps in {out / 'maps'}")
    return report


if __name__ == "__main__":
    main()
