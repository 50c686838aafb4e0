"""Native grids: a SphericalUNet segments weather given on ICON-like and MPAS-like grid files, no regridding.

For each grid, the script writes the grid file into ``--out``
(:func:`meshcnn.grids.write_icon_grid`: cells = the triangles of an icosphere, centres their
circumcentres; :func:`meshcnn.grids.write_mpas_grid`: cells = the Voronoi cells of an
icosphere's vertices), reads it back as a :class:`meshcnn.grids.UnstructuredGrid`, evaluates
synthetic labelled samples (:mod:`synthetic`: tropical cyclones, atmospheric rivers,
distractors) analytically at its cell centres, and trains a
:class:`meshcnn.models.SphericalUNet` on ``grid.hierarchy(--levels)``: the native mesh of
cell centres first, then icospheres of decreasing level (computed restriction and
prolongation). Training is :func:`meshcnn.train.fit`; the held-out test split is scored
with the area-weighted IoU per class (:func:`meshcnn.metrics.segmentation_report`, cells
weighted by the file's cell areas).

Example::

    python experiments/native_grids/train.py --out runs/native_grids

Writes into ``--out``: ``icon_grid.nc`` and ``mpas_grid.nc``; per grid a run folder
(``icon/``, ``mpas/``: ``checkpoint.pt``, ``metrics.json``) and ``<grid>_test.png`` (the
fields, labels and prediction of the first test sample); ``results.json`` (the test IoUs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic

from meshcnn import metrics
from meshcnn.cli import HELP_FORMATTER, apply_threads, run_options, seed_option, training_options
from meshcnn.grids import UnstructuredGrid, write_icon_grid, write_mpas_grid
from meshcnn.io import save_json
from meshcnn.models import SphericalUNet
from meshcnn.tasks.segmentation import flat_metrics
from meshcnn.train import fit, predict, seed_everything

WRITERS = {"icon": write_icon_grid, "mpas": write_mpas_grid}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parents = [
        training_options(epochs=12, batch_size=4, lr=3e-3, lr_help="Adam learning rate (cosine decay to 0)"),
        seed_option(),
        run_options(resume=False, workers=False),
    ]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER, parents=parents)
    p.add_argument("--out", type=Path, default=Path("runs/native_grids"), help="output folder")
    p.add_argument("--grids", nargs="+", choices=tuple(WRITERS), default=list(WRITERS))
    p.add_argument(
        "--icon-level",
        type=int,
        default=5,
        help="icosphere level of the ICON-like grid: 20 * 4**level cells (its triangles)",
    )
    p.add_argument(
        "--mpas-level",
        type=int,
        default=5,
        help="icosphere level of the MPAS-like grid: 10 * 4**level + 2 cells (its vertices)",
    )
    p.add_argument("--levels", type=int, default=4, help="meshes in the U-Net's hierarchy, the native one included")
    p.add_argument("--width", type=int, default=8, help="channels on the native mesh")
    p.add_argument("--train", type=int, default=96, help="training samples")
    p.add_argument("--val", type=int, default=8, help="validation samples (scored after every epoch)")
    p.add_argument("--test", type=int, default=16, help="held-out test samples")
    return p.parse_args(argv)


def make_split(grid: UnstructuredGrid, seed: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``start .. start + count - 1`` at the grid's cell centres: ``(count, 4, N)``, ``(count, N)``."""
    pairs = [synthetic.make_sample(grid.points(), seed, start + k) for k in range(count)]
    return np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs])


def report(grid: UnstructuredGrid, logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """Area-weighted metrics (cells weighted by :attr:`UnstructuredGrid.cell_weights`)."""
    return metrics.segmentation_report(
        torch.softmax(logits, 1),
        targets,
        len(synthetic.CLASSES),
        weights=grid.cell_weights,
        lat=grid.mesh.lat,
        class_names=synthetic.CLASSES,
    )


def run_grid(kind: str, level: int, args: argparse.Namespace) -> dict:
    """Write the grid file, make the data on it, train, test, plot; the test results."""
    start = time.perf_counter()
    path = WRITERS[kind](args.out / f"{kind}_grid.nc", level)
    grid = UnstructuredGrid.from_file(path)
    hierarchy = grid.hierarchy(args.levels)
    print(f"{kind}: {path.name}: {grid.shape[0]} cells; hierarchy {[m.num_vertices for m in hierarchy.meshes]}")
    splits = {}
    offset = 0
    for name, count in (("train", args.train), ("val", args.val), ("test", args.test)):
        splits[name] = make_split(grid, args.seed, offset, count)  # the same samples on every grid
        offset += count
    x_train, y_train = splits["train"]
    w = grid.cell_weights
    mean = np.einsum("ncv,v->c", x_train, w) / len(x_train)
    std = np.sqrt(np.einsum("ncv,v->c", (x_train - mean[None, :, None]) ** 2, w) / len(x_train))

    def dataset(split: str) -> TensorDataset:
        x, y = splits[split]
        return TensorDataset(
            torch.from_numpy(((x - mean[None, :, None]) / std[None, :, None]).astype(np.float32)), torch.from_numpy(y)
        )

    train_set, val_set, test_set = dataset("train"), dataset("val"), dataset("test")
    frequency = np.bincount(y_train.reshape(-1), minlength=len(synthetic.CLASSES)) / y_train.size
    class_weight = torch.tensor(1.0 / np.sqrt(np.maximum(frequency, 1e-4)), dtype=torch.float32)
    loss = torch.nn.CrossEntropyLoss(weight=class_weight / class_weight.mean())

    def evaluate(model: torch.nn.Module, data: TensorDataset, device: torch.device) -> dict:
        logits, targets = predict(model, data, batch_size=args.batch_size, device=device)
        return flat_metrics(report(grid, logits, targets))

    seed_everything(args.seed)
    model = SphericalUNet(len(synthetic.CHANNELS), len(synthetic.CLASSES), hierarchy=hierarchy, width=args.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    fit(
        model,
        train_set,
        optimizer=optimizer,
        loss_fn=loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        run_dir=args.out / kind,
        val_set=val_set,
        evaluate=evaluate,
        scheduler=scheduler,
        device=args.device,
        seed=args.seed,
        progress=not args.no_progress,
        extra_state={"mean": mean, "std": std},
    )
    logits, targets = predict(model, test_set, batch_size=args.batch_size, device=args.device)
    test = report(grid, logits, targets)
    from meshcnn.plot import plot_fields_labels_predictions

    png = plot_fields_labels_predictions(
        splits["test"][0][0],
        targets[0],
        logits[0].argmax(0),
        grid.mesh,
        args.out / f"{kind}_test.png",
        field_names=synthetic.CHANNELS,
        class_names=synthetic.CLASSES,
        title=f"{kind}: {grid.shape[0]} cells",
    )
    seconds = time.perf_counter() - start
    print(
        f"{kind}: test IoU "
        + ", ".join(f"{n} {v:.3f}" for n, v in test["iou"].items())
        + f"; mean {test['mean_iou']:.3f} ({seconds:.0f} s) -> {png.name}"
    )
    return {
        "cells": grid.shape[0],
        "hierarchy": [m.num_vertices for m in hierarchy.meshes],
        "unmatched_edges": len(grid.unmatched_edges),
        "iou": test["iou"],
        "mean_iou": test["mean_iou"],
        "overall_accuracy": test["overall_accuracy"],
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    apply_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    levels = {"icon": args.icon_level, "mpas": args.mpas_level}
    results = {kind: run_grid(kind, levels[kind], args) for kind in args.grids}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    save_json(args.out / "results.json", {"settings": settings, "results": results})
    return results


if __name__ == "__main__":
    main()
