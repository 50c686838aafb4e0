"""Train a spherical U-Net (or the planar U-Net baseline) to segment tropical cyclones and
atmospheric rivers in ClimateNet files.

    python experiments/climate_segmentation/train.py --data data/climate --out runs/climate
    python experiments/climate_segmentation/train.py --data data/climate --out runs/planar --model planar
    torchrun --nproc_per_node 2 experiments/climate_segmentation/train.py --data data/climate --out runs/ddp

``--data`` is a folder of ClimateNet netCDF files (split here, seeded) or of UGSCNN
``.npz`` samples with ``{train,val,test}_split.txt``. The run folder gets
``checkpoint.pt`` (model, optimizer, scheduler, epoch, RNG states and, in
``extra``, a :class:`meshcnn.tasks.SegmenterRun`: the model config, normalization stats,
class weights and the split file lists), ``metrics.json`` (per-epoch loss and validation IoU/AP),
``config.json`` and ``stats.json``. ``--resume`` continues a run exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from meshcnn.cli import (
    HELP_FORMATTER,
    apply_threads,
    grid_option,
    level_option,
    orientation_option,
    run_options,
    seed_option,
    training_options,
)
from meshcnn.data import climate
from meshcnn.data.climate.files import read_split_list
from meshcnn.io import save_json
from meshcnn.tasks import MODEL_KINDS, SegmenterConfig, SegmenterRun, build_model, count_parameters, segmentation
from meshcnn.train import fit, init_distributed
from meshcnn.train.settings import check_resume_settings

# settings that may differ on --resume: how it runs, the total of epochs (the step schedule does not
# depend on it), where caches and the run are
RESUME_MAY_CHANGE = ("resume", "no_progress", "num_workers", "device", "threads", "epochs", "cache_dir", "out")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parents = [
        level_option(5, "level of the data and the U-Net's top level on --grid (icosphere level, HEALPix order)"),
        grid_option(),
        orientation_option(help="MeshConv orientation of the spherical U-Net (meshcnn.ORIENTATIONS)"),
        training_options(epochs=30, batch_size=4, lr=1e-2),
        seed_option(),
        run_options(
            resume_may_change=RESUME_MAY_CHANGE,
            resume_help="continue from OUT/checkpoint.pt; refused if a setting differs from the "
            "run's except " + ", ".join("--" + s.replace("_", "-") for s in RESUME_MAY_CHANGE),
        ),
    ]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER, parents=parents)
    p.add_argument(
        "--data", required=True, help="folder of ClimateNet .nc files, or UGSCNN .npz samples with split lists"
    )
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, metrics.json, config.json, stats.json)")
    p.add_argument("--model", choices=MODEL_KINDS, default="spherical")
    p.add_argument("--min-level", type=int, default=0, help="coarsest U-Net level (on --grid)")
    p.add_argument("--width", type=int, default=8, help="spherical U-Net channels on the top level")
    p.add_argument(
        "--hemisphere-flip",
        choices=("auto", "on", "off"),
        default="auto",
        help="multiply the meridional winds (V850, VBOT) by sign(latitude) on the way in; "
        "auto: on with --orientation poleward",
    )
    p.add_argument("--planar-depth", type=int, default=4, help="planar U-Net downsamplings")
    p.add_argument(
        "--planar-width",
        type=int,
        default=None,
        help="planar U-Net width (default: the one matching the spherical U-Net's parameter count)",
    )
    p.add_argument(
        "--lr-step", type=int, default=10, help="multiply the learning rate by --lr-gamma every this many epochs"
    )
    p.add_argument("--lr-gamma", type=float, default=0.5)
    p.add_argument(
        "--class-weight-power",
        type=float,
        default=1.0,
        help="cross-entropy class weights ~ (training area fraction)^-power; 1 = inverse frequency, 0 = none",
    )
    p.add_argument(
        "--split",
        type=float,
        nargs=3,
        default=(0.7, 0.15, 0.15),
        metavar=("TRAIN", "VAL", "TEST"),
        help="split fractions for a folder of .nc files",
    )
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--contiguous-split", action="store_true", help="split by time blocks instead of at random")
    p.add_argument("--max-train", type=int, default=None, help="use only the first N training files")
    p.add_argument("--cache-dir", default=None, help="cache regridded samples here (.npz)")
    p.add_argument("--skip-bad", action="store_true", help="log and skip unreadable/invalid files instead of failing")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="mixed precision of the training steps (meshcnn.train.Trainer): bf16 on CPU or CUDA, "
        "fp16 (with a gradient scaler) on CUDA only",
    )
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be positive")
    return args


def resolve_splits(args: argparse.Namespace) -> dict[str, list[Path]]:
    """Train/val/test file lists: UGSCNN split lists if the folder has them, else a seeded split."""
    data = Path(args.data)
    if not data.is_dir():
        raise FileNotFoundError(f"--data {data}: no such folder")
    if (data / "train_split.txt").is_file():
        splits = {
            name: read_split_list(data / f"{name}_split.txt") if (data / f"{name}_split.txt").is_file() else []
            for name in ("train", "val", "test")
        }
    else:
        files = climate.find_files(data)  # .nc files, or UGSCNN .npz samples without split lists
        if not files:
            raise FileNotFoundError(f"--data {data}: no .nc or .npz files and no train_split.txt")
        splits = climate.split_files(files, args.split, seed=args.split_seed, contiguous=args.contiguous_split)
    if args.max_train is not None:
        splits["train"] = splits["train"][: args.max_train]
    if not splits["train"]:
        raise ValueError(f"--data {data}: the training split is empty")
    return splits


def make_evaluate(args: argparse.Namespace, val_targets: climate.ClimateNetDataset | None):
    """The per-epoch validation: area-weighted IoU/AP of the model on the val split, on mesh vertices."""

    def evaluate(model: nn.Module, val_set: climate.ClimateNetDataset, device: torch.device) -> dict[str, float]:
        latlon = val_set.latlon if args.model == "planar" else None
        targets_set = val_targets if val_targets is not None else val_set
        probs = segmentation.mesh_probabilities(
            model, val_set, targets_set.sphere_grid, latlon=latlon, device=device, batch_size=args.batch_size
        )
        targets = torch.stack([torch.from_numpy(targets_set.raw(i)[1]) for i in range(len(targets_set))])
        report = segmentation.segmentation_report(probs, targets, targets_set.sphere_grid, climate.CLASSES, bands=False)
        return segmentation.flat_metrics(report, "val_")

    return evaluate


def weighted_cross_entropy(weights: torch.Tensor):
    """Cross-entropy with class ``weights``, moved to the device of the outputs (the one fit() trains on)."""

    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(outputs, targets, weight=weights.to(outputs.device))

    return loss


def parameter_checksum(model: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of the trainable parameters, in registration order.

    Buffers are left out: DDP broadcasts BatchNorm running statistics from rank 0 at
    each forward pass, so after the last step each rank's still hold its own batch's.
    """
    digest = hashlib.sha256()
    for name, tensor in model.named_parameters():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_datasets(args: argparse.Namespace, splits: dict[str, list[Path]], say, progress: bool):
    """The training and validation sets on the model's grid, and (planar model) the validation labels on the
    sphere grid (``--grid``), where every model is scored."""
    grid = "latlon" if args.model == "planar" else args.grid
    common = dict(cache_dir=args.cache_dir, skip_bad=args.skip_bad, log=say, progress=progress)
    train_set = climate.ClimateNetDataset(splits["train"], args.level, grid=grid, **common)
    val_set = climate.ClimateNetDataset(splits["val"], args.level, grid=grid, **common) if splits["val"] else None
    if len(train_set) == 0:
        raise ValueError("no usable training files (all skipped as bad)")
    val_targets = None
    if val_set is not None and grid == "latlon":  # planar predictions are scored on the mesh labels
        val_targets = climate.ClimateNetDataset(val_set.files, args.level, grid=args.grid, cache_dir=args.cache_dir)
    say(
        f"{len(train_set)} training, {len(val_set) if val_set else 0} validation files; "
        f"{args.model} model on {args.grid + ' level ' + str(args.level) if grid != 'latlon' else 'the lat-lon grid'}"
    )
    return train_set, val_set, val_targets


def new_model_config(args: argparse.Namespace) -> dict[str, Any]:
    """The stored config of a new run's model; a planar U-Net gets the spherical one's parameter count."""
    flip = args.hemisphere_flip == "on" or (args.hemisphere_flip == "auto" and args.orientation == "poleward")
    spherical = SegmenterConfig(
        "spherical",
        len(climate.VARIABLES),
        climate.NUM_CLASSES,
        args.level,
        args.min_level,
        args.width,
        args.orientation,
        [climate.VARIABLES.index(v) for v in climate.NORTHWARD_VARIABLES] if flip else [],
        grid=args.grid,
    )
    if args.model != "planar":
        return spherical.to_dict()
    spherical_params = count_parameters(build_model(spherical))
    width = args.planar_width or segmentation.matching_planar_width(
        spherical_params, spherical.in_channels, spherical.num_classes, args.planar_depth
    )
    planar = SegmenterConfig(
        "planar",
        spherical.in_channels,
        spherical.num_classes,
        args.level,
        planar_width=width,
        planar_depth=args.planar_depth,
        grid=args.grid,
    )
    return {**planar.to_dict(), "spherical_reference_params": spherical_params}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    apply_threads(args.threads)
    rank, world_size = init_distributed(args.device)  # fit() resolves the device (this process's GPU under torchrun)
    say = print if rank == 0 else (lambda *a, **k: None)
    out = Path(args.out)
    t0 = time.perf_counter()
    # before reading any data: the run's stored settings must match (None: no checkpoint yet)
    resumed = check_resume_settings(out, args, may_change=RESUME_MAY_CHANGE, log=say) if args.resume else None

    splits = resolve_splits(args)
    train_set, val_set, val_targets = load_datasets(args, splits, say, progress=not args.no_progress and rank == 0)
    if resumed is not None:  # reuse the run's stats and config exactly
        stored = SegmenterRun.from_extra(resumed)
        stats, config = stored.stats, dict(stored.config)
        weights = torch.as_tensor(stored.class_weights, dtype=torch.float32)
    else:
        stats = climate.compute_stats(train_set, progress=not args.no_progress and rank == 0)
        weights = climate.class_weights(stats["class_fraction"], args.class_weight_power)
        config = new_model_config(args)
    for ds in (train_set, val_set):
        if ds is not None:
            ds.set_stats(stats)

    torch.manual_seed(args.seed)  # reproducible initialization
    model = build_model(config)
    config["num_params"] = count_parameters(model)
    say(
        f"model: {config['kind']} U-Net ({config.get('orientation', 'fixed')}, hemisphere flip of "
        f"{[climate.VARIABLES[c] for c in config.get('flip_channels', [])] or 'nothing'}), "
        f"{config['num_params']:,} parameters; class weights "
        + ", ".join(f"{c} {w:.3g}" for c, w in zip(climate.CLASSES, weights.tolist()))
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.lr_gamma)
    loss_fn = weighted_cross_entropy(weights)

    extra_state = SegmenterRun(
        config=config,
        stats=stats,
        class_weights=weights.tolist(),
        splits={k: [str(Path(f).resolve()) for f in v] for k, v in splits.items()},
        bad_files=[list(b) for ds in (train_set, val_set) if ds is not None for b in ds.bad_files],
        args={k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
    ).to_extra()
    if rank == 0:
        save_json(out / "config.json", {k: v for k, v in extra_state.items() if k != "stats"})
        save_json(out / "stats.json", stats)
    history = fit(
        model,
        train_set,
        optimizer=optimizer,
        loss_fn=loss_fn,
        epochs=args.epochs,
        batch_size=args.batch_size,
        run_dir=out,
        val_set=val_set,
        evaluate=make_evaluate(args, val_targets) if val_set is not None else None,
        scheduler=scheduler,
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        extra_state=extra_state,
        num_workers=args.num_workers,
        progress=not args.no_progress,
        log=say,
        precision=args.precision,
    )
    say(f"trained {len(history)} epochs in {time.perf_counter() - t0:.1f} s; run folder {out}")
    if world_size > 1:  # every rank reports, so a desynchronized replica shows
        print(f"rank {rank}/{world_size}: parameter checksum {parameter_checksum(model)}", flush=True)
        torch.distributed.destroy_process_group()
    return history


if __name__ == "__main__":
    main()
