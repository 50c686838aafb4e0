"""Train a 3-D shape classifier on spherical projections of ModelNet-layout OFF files.

The shapes under ``--data ROOT`` (``ROOT/<class>/{train,test}/*.off``: a real
ModelNet10/40 copy or the synthetic set of ``python -m meshcnn.data.shapes synth``)
are projected onto the icosphere of ``--level`` (6 channels: distance, |cos|, sin
for the shape and its convex hull; :mod:`meshcnn.geometry.project`) and classified by a
:class:`meshcnn.models.SphericalResNet` (``--model planar``: a
:class:`meshcnn.models.PlanarCNN` on the same projection sampled on a lat-lon
grid). Training uses the shared loop :func:`meshcnn.train.fit`: progress bars,
``RUN_DIR/checkpoint.pt`` every epoch, ``--resume``, ``RUN_DIR/metrics.json``
with the test accuracy per epoch.

Examples::

    python -m meshcnn.data.shapes synth --out data/synthshapes --per-class 60 --seed 0
    python experiments/shape_classification/train.py --data data/synthshapes --level 4 \\
        --epochs 15 --cache-dir data/cache/synthshapes --run-dir runs/shapes/s2_NR --rotate-train
    torchrun --nproc_per_node 2 experiments/shape_classification/train.py --data ... --run-dir ...

Then ``experiments/shape_classification/evaluate.py --run-dir RUN_DIR`` for
per-class accuracy and the confusion matrix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from meshcnn.cli import (
    HELP_FORMATTER,
    apply_threads,
    level_option,
    orientation_option,
    run_options,
    seed_option,
    training_options,
)
from meshcnn.data.shapes import ModelNet
from meshcnn.geometry.project import ray_engine
from meshcnn.io import save_json
from meshcnn.models.spherical import DOWNSAMPLE
from meshcnn.tasks import MODEL_KINDS, ClassifierConfig, build_model, count_parameters
from meshcnn.tasks.classification import accuracy_evaluator
from meshcnn.train import fit, init_distributed, seed_everything
from meshcnn.train.settings import check_resume_settings

# settings that may differ on --resume (how it runs, where caches are); not --epochs: the cosine
# schedule spans them
RESUME_MAY_CHANGE = (
    "resume",
    "no_progress",
    "num_workers",
    "device",
    "threads",
    "cache_dir",
    "mesh_cache",
    "mesh_dir",
    "run_dir",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parents = [
        level_option(4, "icosphere level of the projection (lat-lon grid of about as many points for --model planar)"),
        orientation_option(help="MeshConv orientation of the spherical model (meshcnn.ORIENTATIONS)"),
        training_options(epochs=15, batch_size=16, lr=2e-3, lr_help="Adam learning rate, cosine decay to 0"),
        seed_option(),
        run_options(resume_may_change=RESUME_MAY_CHANGE),
    ]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER, parents=parents)
    p.add_argument("--data", type=Path, required=True, help="ModelNet-layout root folder")
    p.add_argument("--run-dir", type=Path, required=True, help="checkpoint.pt, metrics.json, config.json go here")
    p.add_argument("--model", choices=MODEL_KINDS, default="spherical")
    p.add_argument("--width", type=int, default=16, help="channels after the stem")
    p.add_argument("--depth", type=int, default=3, help="number of stride-2 stages")
    p.add_argument(
        "--downsample",
        choices=DOWNSAMPLE,
        default="stride",
        help="stride-2 blocks of the spherical model: strided MeshConv, or MeshConv + 1-ring mean pool",
    )
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--rotate-train", action="store_true", help="train on random SO(3) rotations (fresh per epoch)")
    p.add_argument("--rotate-test", action="store_true", help="test on random SO(3) rotations (one per shape)")
    p.add_argument(
        "--cache-rotations",
        type=int,
        default=None,
        metavar="N",
        help="with --rotate-train: a cached bank of N rotations per shape instead of fresh ones",
    )
    p.add_argument(
        "--mesh-cache",
        type=int,
        default=2000,
        metavar="K",
        help="keep K parsed shapes (with hulls and ray structures) in memory for fresh rotations",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="per-file .npy projection cache (default: in memory, for this run only)",
    )
    p.add_argument("--skip-bad", action="store_true", help="log and skip unreadable or degenerate OFF files")
    p.add_argument("--triangulate", action="store_true", help="fan-triangulate polygon faces instead of failing")
    p.add_argument("--mesh-dir", type=Path, default=None, help="folder of icosphere files (python -m meshcnn.geometry)")
    args = p.parse_args(argv)
    if args.cache_rotations is not None and not args.rotate_train:
        p.error("--cache-rotations needs --rotate-train")
    return args


def make_datasets(args: argparse.Namespace, progress: bool = True) -> tuple[ModelNet, ModelNet]:
    """Train and test sets; test rotations are one fixed, cached rotation per shape (seed + 1)."""
    grid = "mesh" if args.model == "spherical" else "latlon"
    common = dict(
        cache_dir=args.cache_dir,
        skip_bad=args.skip_bad,
        grid=grid,
        triangulate=args.triangulate,
        mesh_cache=args.mesh_cache,
        progress=progress,
        log=print,
    )
    train = ModelNet(
        args.data,
        "train",
        args.level,
        rotate=args.rotate_train,
        cache_rotations=args.cache_rotations,
        seed=args.seed,
        **common,
    )
    test = ModelNet(
        args.data,
        "test",
        args.level,
        rotate=args.rotate_test,
        cache_rotations=1 if args.rotate_test else None,
        seed=args.seed + 1,
        **common,
    )
    if train.classes != test.classes:
        raise ValueError(f"{args.data}: train and test class lists differ")
    return train, test


def check_resume(args: argparse.Namespace) -> None:
    """``ValueError`` (:class:`meshcnn.train.ResumeSettingsError`) naming each setting if
    ``--resume`` would continue a run made with other settings than ``args``, except
    :data:`RESUME_MAY_CHANGE` (the cosine schedule spans ``--epochs``, so a different total
    would not continue the same run)."""
    if args.resume:
        check_resume_settings(args.run_dir, args, may_change=RESUME_MAY_CHANGE)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    apply_threads(args.threads)
    rank, world_size = init_distributed(args.device)
    progress = not args.no_progress and rank == 0
    check_resume(args)
    train_set, test_set = make_datasets(args, progress)
    if rank == 0:  # fill the projection cache once, before the other ranks read it
        print(f"ray engine: {ray_engine()}; {train_set}; {test_set}")
        train_set.precompute(progress)
        test_set.precompute(progress)
    if world_size > 1:
        dist.barrier()

    config = ClassifierConfig(
        args.model, 6, train_set.num_classes, args.level, args.width, args.depth, args.orientation, args.downsample
    )
    seed_everything(args.seed)
    model = build_model(config, args.mesh_dir)
    if rank == 0:
        print(f"{type(model).__name__}: {count_parameters(model):,} parameters; {world_size} process(es)")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    extra = {
        "config": config.to_dict(),
        "classes": train_set.classes,
        "grid": train_set.grid,
        "latlon": list(train_set.latlon),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    if rank == 0:
        save_json(args.run_dir / "config.json", extra)
    history = fit(
        model,
        train_set,
        optimizer=optimizer,
        loss_fn=F.cross_entropy,
        epochs=args.epochs,
        batch_size=args.batch_size,
        run_dir=args.run_dir,
        val_set=test_set,
        evaluate=accuracy_evaluator(4 * args.batch_size, "test_accuracy"),
        scheduler=scheduler,
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        extra_state=extra,
        num_workers=args.num_workers,
        progress=progress,
    )
    if rank == 0 and history:
        print(f"final test accuracy ({'R' if args.rotate_test else 'N'}): {history[-1]['test_accuracy']:.4f}")
    if world_size > 1:
        dist.destroy_process_group()
    return history


if __name__ == "__main__":
    main()
