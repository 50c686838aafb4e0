"""Rotation study: N/N, N/R and R/R test accuracy of a spherical and a planar shape classifier.

Settings (train/test): N = shapes in their canonical (upright) pose; R = each
shape turned by a uniform random rotation of SO(3) before projection (fresh
rotations every training epoch, or a cached bank of ``--cache-rotations N``; one
fixed rotation per test shape). Both models see the same 6-channel ray-cast
projection (:mod:`meshcnn.geometry.project`): the spherical
:class:`meshcnn.models.SphericalResNet` on the icosphere of ``--level``, the
planar :class:`meshcnn.models.PlanarCNN` (periodic in longitude) on an
equiangular lat-lon grid with about as many points
(:func:`meshcnn.geometry.project.latlon_shape`). Every training run goes through
:func:`meshcnn.train.fit` (checkpoints, ``--resume``).

Example (the synthetic shape set; run times in the README)::

    python -m meshcnn.data.shapes synth --out data/synthshapes --per-class 60 --seed 0
    python experiments/shape_classification/rotation_study.py --data data/synthshapes \\
        --level 3 --epochs 8 --width 8 --cache-dir data/cache/synthshapes

Prints one table (also ``RUN_DIR/results.json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
from meshcnn.geometry.project import latlon_shape, ray_engine
from meshcnn.models.spherical import DOWNSAMPLE
from meshcnn.tasks import (
    MODEL_KINDS,
    ClassifierConfig,
    RotationStudy,
    build_model,
    count_parameters,
    matched_width,
    run_rotation_study,
)
from meshcnn.tasks.rotation_study import SETTINGS, StudyVariant

# settings that may differ on --resume: how it runs, where caches are, and which runs (each run's
# seed, model and orientation are in its folder name); not --epochs: the cosine schedule spans them
RESUME_MAY_CHANGE = (
    "resume",
    "no_progress",
    "num_workers",
    "device",
    "threads",
    "cache_dir",
    "mesh_cache",
    "run_dir",
    "seed",
    "settings",
    "models",
    "orientation",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parents = [
        level_option(3, "icosphere level (lat-lon grid of as many points)"),
        training_options(epochs=8, batch_size=16, lr=2e-3, lr_help="Adam, cosine decay to 0"),
        seed_option(many=True),
        orientation_option(many=True),
        run_options(resume_may_change=RESUME_MAY_CHANGE),
    ]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER, parents=parents)
    p.add_argument("--data", type=Path, default=Path("data/synthshapes"), help="ModelNet-layout root folder")
    p.add_argument("--width", type=int, default=8, help="channels after the stem (both models)")
    p.add_argument("--depth", type=int, default=3, help="stride-2 stages (both models)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--models", nargs="+", choices=MODEL_KINDS, default=list(MODEL_KINDS))
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument(
        "--cache-rotations",
        type=int,
        default=None,
        metavar="N",
        help="R training from a cached bank of N rotations per shape (default: fresh every epoch)",
    )
    p.add_argument(
        "--mesh-cache",
        type=int,
        default=2000,
        metavar="K",
        help="keep K parsed shapes (with hulls and ray structures) in memory for fresh rotations",
    )
    p.add_argument("--cache-dir", type=Path, default=None, help="per-file projection cache (default: in memory)")
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument(
        "--downsample",
        choices=DOWNSAMPLE,
        default="stride",
        help="stride-2 blocks of the spherical model: strided MeshConv, or MeshConv + 1-ring mean pool",
    )
    p.add_argument(
        "--no-match-params",
        dest="match_params",
        action="store_false",
        help="use --width for every model instead of matching the parameter counts",
    )
    p.add_argument("--run-dir", type=Path, default=Path("runs/shape_rotation_study"))
    return p.parse_args(argv)


def dataset(kind: str, split: str, rotate: bool, args: argparse.Namespace, seed: int) -> ModelNet:
    """Train rotations: fresh (or a bank of ``--cache-rotations``); test rotations: one cached rotation per shape."""
    bank = (args.cache_rotations if split == "train" else 1) if rotate else None
    return ModelNet(
        args.data,
        split,
        args.level,
        rotate=rotate,
        cache_dir=args.cache_dir,
        cache_rotations=bank,
        skip_bad=args.skip_bad,
        grid="mesh" if kind == "spherical" else "latlon",
        seed=seed,
        mesh_cache=args.mesh_cache,
        progress=not args.no_progress,
        log=print,
    )


def configs(args: argparse.Namespace, in_channels: int, num_classes: int) -> dict[str, ClassifierConfig]:
    """One classifier config per model, named; widths matched to the fixed spherical model's parameter count."""

    def config(kind: str, width: int, orientation: str = "fixed") -> ClassifierConfig:
        return ClassifierConfig(
            kind, in_channels, num_classes, args.level, width, args.depth, orientation, args.downsample
        )

    variants = [("spherical", o) for o in args.orientation if "spherical" in args.models]
    variants += [("planar", "fixed")] if "planar" in args.models else []
    target = count_parameters(build_model(config("spherical", args.width)))
    out = {}
    for kind, orientation in variants:
        width = args.width
        if args.match_params:
            width = matched_width(lambda w, kind=kind, o=orientation: build_model(config(kind, w, o)), target)
        h, w = latlon_shape(args.level)
        name = (
            f"SphericalResNet, level {args.level}, {orientation}"
            if kind == "spherical"
            else f"PlanarCNN, lat-lon {h}x{w}"
        )
        out[name] = config(kind, width, orientation)
    return out


def study_variant(name: str, config: ClassifierConfig, args: argparse.Namespace) -> StudyVariant:
    """One model of the study; its runs are ``<run-dir>/<spherical-ORIENTATION|planar>_<N|R>_s<seed>``."""

    def train_or_test_set(split: str, rotated: bool, seed: int) -> ModelNet:
        data = dataset(config.kind, split, rotated, args, seed)
        if split == "train":
            data.precompute(not args.no_progress)
        return data

    def extra_state(train_set: ModelNet) -> dict:
        return {
            "config": config.to_dict(),
            "classes": train_set.classes,
            "grid": train_set.grid,
            "latlon": list(train_set.latlon),
        }

    tag = f"{config.kind}-{config.orientation}" if config.kind == "spherical" else config.kind
    return StudyVariant(
        name,
        tag,
        build=lambda: build_model(config),
        dataset=train_or_test_set,
        row={"kind": config.kind, "orientation": config.orientation, "width": config.width},
        extra_state=extra_state,
    )


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    apply_threads(args.threads)
    print(f"ray engine: {ray_engine()}")
    probe = dataset("planar" if "spherical" not in args.models else "spherical", "train", False, args, args.seed[0])
    variants = [study_variant(name, config, args) for name, config in configs(args, 6, probe.num_classes).items()]
    study = RotationStudy(
        args.run_dir,
        args.seed,
        args.settings,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        device=args.device,
        num_workers=args.num_workers,
        progress=not args.no_progress,
        resume=args.resume,
        args=args,
        may_change=RESUME_MAY_CHANGE,
    )
    return run_rotation_study(study, variants)


if __name__ == "__main__":
    main()
