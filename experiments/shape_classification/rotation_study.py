"""Rotation study: N/N, N/R and R/R test accuracy of a spherical and a planar shape classifier.

Settings (train/test): N = shapes in their canonical (upright) pose; R = each
shape turned by a uniform random rotation of SO(3) before projection (fresh
rotations every training epoch, or a cached bank of ``--cache-rotations N``; one
fixed rotation per test shape). Both models see the same 6-channel ray-cast
projection (:mod:`meshcnn.geometry.project`): the spherical
:class:`meshcnn.models.SphericalResNet` on the icosphere of ``--level``, the
planar :class:`meshcnn.models.PlanarCNN` (periodic in longitude) on an
equiangular lat-lon grid with about as many points
(:func:`meshcnn.geometry.latlon_shape`). Every training run goes through
:func:`meshcnn.train.fit` (checkpoints, ``--resume``).

Example (the synthetic shape set; about 15 minutes on 2 CPU cores)::

    python -m meshcnn.data.shapes synth --out data/synthshapes --per-class 60 --seed 0
    python experiments/shape_classification/rotation_study.py --data data/synthshapes \\
        --level 3 --epochs 8 --width 8 --cache-dir data/cache/synthshapes

Prints one table (also ``RUN_DIR/results.json``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from meshcnn.tasks import (KINDS, build_classifier, classifier_config, count_parameters, matched_width,
                                    summarize_rows, train_and_test)
from meshcnn.data.shapes import ModelNet
from meshcnn.io import save_json
from meshcnn.nn import ORIENTATIONS
from meshcnn.models import DOWNSAMPLE
from meshcnn.geometry import latlon_shape, ray_engine
from meshcnn.train import check_resume_settings, seed_everything

SETTINGS = ("N/N", "N/R", "R/R")
# settings that may differ on --resume: how it runs, where caches are, and which runs (each run's
# seed, model and orientation are in its folder name); not --epochs: the cosine schedule spans them
RESUME_MAY_CHANGE = ("resume", "no_progress", "num_workers", "device", "threads", "cache_dir", "mesh_cache",
                     "run_dir", "seed", "settings", "models", "orientation")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("data/synthshapes"), help="ModelNet-layout root folder")
    p.add_argument("--level", type=int, default=3, help="icosphere level (lat-lon grid of as many points)")
    p.add_argument("--width", type=int, default=8, help="channels after the stem (both models)")
    p.add_argument("--depth", type=int, default=3, help="stride-2 stages (both models)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3, help="Adam, cosine decay to 0")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--models", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--cache-rotations", type=int, default=None, metavar="N",
                   help="R training from a cached bank of N rotations per shape (default: fresh every epoch)")
    p.add_argument("--mesh-cache", type=int, default=2000, metavar="K",
                   help="keep K parsed shapes (with hulls and ray structures) in memory for fresh rotations")
    p.add_argument("--cache-dir", type=Path, default=None, help="per-file projection cache (default: in memory)")
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more seeds; one run each")
    p.add_argument("--orientation", nargs="+", choices=ORIENTATIONS, default=["fixed"],
                   help="MeshConv orientation(s) of the spherical model; one model each")
    p.add_argument("--downsample", choices=DOWNSAMPLE, default="stride",
                   help="stride-2 blocks of the spherical model: strided MeshConv, or MeshConv + 1-ring mean pool")
    p.add_argument("--no-match-params", dest="match_params", action="store_false",
                   help="use --width for every model instead of matching the parameter counts")
    p.add_argument("--run-dir", type=Path, default=Path("runs/shape_rotation_study"))
    p.add_argument("--resume", action="store_true",
                   help="continue each run from its checkpoint; refused if a setting differs from the runs' except "
                        + ", ".join("--" + s.replace("_", "-") for s in RESUME_MAY_CHANGE))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: torch's default; 1 is much faster on a machine shared with other jobs)")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def dataset(kind: str, split: str, rotate: bool, args: argparse.Namespace, seed: int) -> ModelNet:
    """Train rotations: fresh (or a bank), seed; test rotations: one cached rotation per shape, seed + 1."""
    if split == "train":
        bank = args.cache_rotations if rotate else None
    else:
        bank, seed = (1 if rotate else None), seed + 1
    return ModelNet(args.data, split, args.level, rotate=rotate, cache_dir=args.cache_dir, cache_rotations=bank,
                    skip_bad=args.skip_bad, grid="ico" if kind == "spherical" else "latlon", seed=seed,
                    mesh_cache=args.mesh_cache, progress=not args.no_progress, log=print)


def configs(args: argparse.Namespace, in_channels: int, num_classes: int) -> dict[str, dict]:
    """One classifier config per model, named; widths matched to the fixed spherical model's parameter count."""
    def config(kind: str, width: int, orientation: str = "fixed") -> dict:
        return classifier_config(kind, in_channels, num_classes, args.level, width, args.depth, orientation,
                                 args.downsample)

    variants = [("spherical", o) for o in args.orientation if "spherical" in args.models]
    variants += [("planar", "fixed")] if "planar" in args.models else []
    target = count_parameters(build_classifier(config("spherical", args.width)))
    out = {}
    for kind, orientation in variants:
        width = args.width
        if args.match_params:
            width = matched_width(lambda w: build_classifier(config(kind, w, orientation)), target)
        h, w = latlon_shape(args.level)
        name = (f"SphericalResNet, level {args.level}, {orientation}" if kind == "spherical"
                else f"PlanarCNN, lat-lon {h}x{w}")
        out[name] = config(kind, width, orientation)
    return out


def run_folder(config: dict, train_mode: str, seed: int, args: argparse.Namespace) -> Path:
    """``<run-dir>/<model>_<N|R>_s<seed>``: one training run's checkpoint and metrics."""
    tag = f"{config['kind']}-{config['orientation']}" if config["kind"] == "spherical" else config["kind"]
    return args.run_dir / f"{tag}_{train_mode}_s{seed}"


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"ray engine: {ray_engine()}")
    rows: list[dict] = []
    probe = dataset("planar" if "spherical" not in args.models else "spherical", "train", False, args, args.seed[0])
    models = configs(args, 6, probe.num_classes)
    train_modes = sorted({s[0] for s in args.settings})
    if args.resume:  # before any training: every run to continue was made with these settings
        for seed in args.seed:
            for config in models.values():
                for train_mode in train_modes:
                    check_resume_settings(run_folder(config, train_mode, seed, args), args,
                                          may_change=RESUME_MAY_CHANGE)
    for seed in args.seed:
        for name, config in models.items():
            kind = config["kind"]
            for train_mode in train_modes:
                train_set = dataset(kind, "train", train_mode == "R", args, seed)
                train_set.precompute(not args.no_progress)
                seed_everything(seed)
                model = build_classifier(config)
                run_dir = run_folder(config, train_mode, seed, args)
                print(f"== {name}, width {config['width']} ({count_parameters(model):,} parameters), seed {seed}, "
                      f"trained on {train_mode} -> {run_dir}")
                settings = [s for s in args.settings if s[0] == train_mode]
                tests = {s: dataset(kind, "test", s[2] == "R", args, seed) for s in settings}
                results = train_and_test(
                    model, train_set, tests, run_dir=run_dir, epochs=args.epochs, batch_size=args.batch_size,
                    lr=args.lr, weight_decay=args.weight_decay, device=args.device, seed=seed,
                    resume=args.resume, num_workers=args.num_workers, progress=not args.no_progress,
                    extra_state={"config": config, "classes": train_set.classes, "grid": train_set.grid,
                                 "latlon": list(train_set.latlon),
                                 "args": {k: str(v) for k, v in vars(args).items()}})
                for row in results:
                    rows.append({"model": name, "kind": kind, "orientation": config["orientation"],
                                 "width": config["width"], "seed": seed, **row})
                    print(f"   {row['setting']}: test accuracy {100 * row['accuracy']:.1f} %")

    lines = summarize_rows(rows, [s for s in SETTINGS if s in args.settings])
    print("\ntest accuracy, %: mean ± standard deviation over seeds\n")
    print("\n".join(lines))
    save_json(args.run_dir / "results.json", {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                              "table": lines})
    return rows


if __name__ == "__main__":
    main()
