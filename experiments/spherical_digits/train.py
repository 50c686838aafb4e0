"""Spherical digits benchmark: N/N, N/R and R/R accuracy of SphericalResNets and planar CNNs.

Settings (train/test): N = digits projected on the northern hemisphere, not
rotated; R = each sample rotated by a uniform random rotation of SO(3) (fresh every
training epoch, fixed per test sample). Models:

* ``sphere``: :class:`meshcnn.models.SphericalResNet`, one per ``--orientation``;
* ``planar``: :class:`meshcnn.models.PlanarCNN` on the original image for N and,
  for R, the rotated spherical signal resampled back to a planar image by the
  inverse projection (:class:`meshcnn.data.digits.PlanarDigits`);
* ``planar-unprojected``: the same planar CNN, fed the spherical signal resampled
  back for N too: exactly the information the spherical model has.

With ``--match-params`` (default) every model's width is chosen so that its parameter
count is closest to that of the ``fixed`` SphericalResNet of ``--width``.

Example::

    python experiments/spherical_digits/train.py --epochs 8
    python experiments/spherical_digits/train.py --orientation fixed invariant --seed 0 1 2 --level 3

Results (one table, mean ± std over seeds) are printed and written to
``<run-dir>/results.json``; each training run has its own ``checkpoint.pt`` and
``metrics.json`` in ``<run-dir>/<model>_<N|R>_s<seed>`` (``--resume`` continues them,
and skips finished ones).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from meshcnn.models import PlanarCNN
from meshcnn.tasks import count_parameters, matched_width, summarize_rows, train_and_test
from meshcnn.data.digits import DEFAULT_EXTENT, JITTER_DEGREES, PROJECTIONS, PlanarDigits, SphericalDigits
from meshcnn.io import save_json
from meshcnn.nn import ORIENTATIONS
from meshcnn.models import DOWNSAMPLE, SphericalResNet
from meshcnn.train import check_resume_settings, seed_everything

SETTINGS = ("N/N", "N/R", "R/R")
MODELS = ("sphere", "planar", "planar-unprojected")
# settings that may differ on --resume: how it runs, and which runs (each run's seed, model and
# orientation are in its folder name); not --epochs, since the cosine schedule spans them
RESUME_MAY_CHANGE = ("resume", "no_progress", "num_workers", "device", "threads", "run_dir", "plot", "seed",
                     "settings", "models", "orientation")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--level", type=int, default=4, help="icosphere level of the input signals (>= 2)")
    p.add_argument("--width", type=int, default=8, help="channels after the stem (both models)")
    p.add_argument("--depth", type=int, default=3, help="number of stride-2 stages (both models)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (cosine decay to 0)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="one or more seeds (model initialisation, shuffling and rotations); one run each")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--models", nargs="+", choices=MODELS, default=["sphere", "planar"])
    p.add_argument("--orientation", nargs="+", choices=ORIENTATIONS, default=["fixed"],
                   help="MeshConv orientation(s) of the sphere model; one model each")
    p.add_argument("--no-match-params", dest="match_params", action="store_false",
                   help="use --width for every model instead of matching the parameter counts")
    p.add_argument("--augment", choices=("none", "z", "jitter", "z+jitter"), default="none",
                   help="N training: 'z' turns every training sample by a random rotation about the polar "
                        "axis (the digit stays on the pole), 'jitter' by a small random rotation (up to "
                        "--jitter degrees), 'z+jitter' both, for all models alike")
    p.add_argument("--jitter", type=float, default=JITTER_DEGREES, help="largest jitter angle, degrees")
    p.add_argument("--downsample", choices=DOWNSAMPLE, default="stride",
                   help="stride-2 blocks of the sphere model: strided MeshConv, or MeshConv + 1-ring mean pool")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--mnist", type=Path, default=None,
                   help="MNIST .npz with x_train/y_train/x_test/y_test instead of scikit-learn's digits")
    p.add_argument("--projection", choices=PROJECTIONS, default="stereographic")
    p.add_argument("--extent", type=float, default=float(torch.tensor(DEFAULT_EXTENT).rad2deg()),
                   help="polar angle (degrees) from the north pole to the middle of the image's longer side")
    p.add_argument("--run-dir", type=Path, default=Path("runs/spherical_digits"))
    p.add_argument("--resume", action="store_true",
                   help="continue the runs from their checkpoints; refused if a setting differs from the runs' "
                        "except " + ", ".join("--" + s.replace("_", "-") for s in RESUME_MAY_CHANGE))
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--plot", type=Path, default=None,
                   help="only draw example test inputs (N and R, sphere and planar) to this PNG and exit")
    return p.parse_args(argv)


def make_dataset(kind: str, split: str, rotate: bool | str, args: argparse.Namespace, seed: int = 0):
    """Train rotations use ``seed``, test rotations ``seed + 1`` (one fixed rotation per test sample)."""
    seed = seed if split == "train" else seed + 1
    common = dict(mnist=args.mnist, projection=args.projection, extent=torch.tensor(args.extent).deg2rad().item(),
                  jitter=args.jitter)
    if kind == "sphere":
        return SphericalDigits(split, args.level, rotate=rotate, seed=seed, **common)
    return PlanarDigits(split, args.level, rotate=rotate, seed=seed, unproject=kind == "planar-unprojected",
                        **common)


def make_model(kind: str, width: int, args: argparse.Namespace, orientation: str = "fixed") -> torch.nn.Module:
    if kind == "sphere":
        return SphericalResNet(1, 10, level=args.level, width=width, depth=args.depth, orientation=orientation,
                               downsample=args.downsample)
    return PlanarCNN(1, 10, width=width, depth=args.depth, circular=False)


def model_widths(args: argparse.Namespace) -> dict[tuple[str, str], int]:
    """Width of each ``(kind, orientation)`` (orientation ``"-"`` for planar models)."""
    variants = [("sphere", o) for o in args.orientation if "sphere" in args.models]
    variants += [(kind, "-") for kind in args.models if kind != "sphere"]
    if not args.match_params:
        return {v: args.width for v in variants}
    target = count_parameters(make_model("sphere", args.width, args))
    return {(kind, o): matched_width(lambda w: make_model(kind, w, args, o if o != "-" else "fixed"), target)
            for kind, o in variants}


def plot_samples(args: argparse.Namespace, path: Path, count: int = 5) -> None:
    """Test samples as the models see them: sphere N (northern hemisphere seen from above), sphere R
    (longitude-latitude map of the whole sphere), planar N and R (8x8 inputs of the planar CNN)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from meshcnn.io import atomic_write

    mesh = SphericalDigits("test", args.level).mesh
    seed = args.seed[0]
    lon, lat = np.degrees(mesh.lon), np.degrees(mesh.lat)
    rows = [("sphere, N", make_dataset("sphere", "test", False, args, seed)),
            ("sphere, R", make_dataset("sphere", "test", True, args, seed)),
            ("planar, N", make_dataset("planar", "test", False, args, seed)),
            ("planar unprojected, N", make_dataset("planar-unprojected", "test", False, args, seed)),
            ("planar, R", make_dataset("planar", "test", True, args, seed))]
    fig, axes = plt.subplots(len(rows), count, figsize=(3 * count, 2.2 * len(rows)), squeeze=False)
    for (title, dataset), row in zip(rows, axes):
        for i, ax in enumerate(row):
            x, label = dataset[i]
            if x.dim() == 2 and not dataset.rotate:  # northern hemisphere seen from above the pole
                north = mesh.vertices[:, 2] > 0
                ax.scatter(*mesh.vertices[north, :2].T, c=x[0, north].numpy(), s=4, cmap="gray_r", vmin=0, vmax=1)
                ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal", xticks=[], yticks=[])
            elif x.dim() == 2:  # the whole sphere, longitude-latitude (degrees)
                ax.scatter(lon, lat, c=x[0].numpy(), s=4, cmap="gray_r", vmin=0, vmax=1)
                ax.set(xlim=(-180, 180), ylim=(-90, 90), aspect="equal")
                ax.set_xticks([-180, 0, 180])
                ax.set_yticks([-90, 0, 90])
            else:
                ax.imshow(x[0].numpy(), cmap="gray_r", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            ax.set_title(f"{title}: label {label}", fontsize=9)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=80)
    plt.close(fig)
    print(f"wrote {path}")


def run_folder(kind: str, orientation: str, train_mode: str, seed: int, args: argparse.Namespace) -> Path:
    """``<run-dir>/<model>_<N|R>_s<seed>``: one training run's checkpoint and metrics."""
    tag = f"{kind}-{orientation}" if kind == "sphere" else kind
    return args.run_dir / f"{tag}_{train_mode}_s{seed}"


def model_name(kind: str, orientation: str, args: argparse.Namespace, image_shape: tuple[int, int]) -> str:
    if kind == "sphere":
        return f"SphericalResNet (level {args.level}, {orientation})"
    source = "original image" if kind == "planar" else "unprojected spherical signal"
    return "PlanarCNN ({}x{}, {})".format(*image_shape, source)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if args.plot is not None:
        plot_samples(args, args.plot)
        return []
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    train_modes = sorted({s[0] for s in args.settings})  # "N" and/or "R"
    widths = model_widths(args)
    if args.resume:  # before any training: every run to continue was made with these settings
        for seed in args.seed:
            for kind, orientation in widths:
                for train_mode in train_modes:
                    check_resume_settings(run_folder(kind, orientation, train_mode, seed, args), args,
                                          may_change=RESUME_MAY_CHANGE)
    rows = []
    for seed in args.seed:
        for (kind, orientation), width in widths.items():
            for train_mode in train_modes:
                seed_everything(seed)
                model = make_model(kind, width, args, orientation if kind == "sphere" else "fixed")
                rotate = True if train_mode == "R" else (False if args.augment == "none" else args.augment)
                train_set = make_dataset(kind, "train", rotate, args, seed)
                name = model_name(kind, orientation, args, train_set.image_shape)
                run_dir = run_folder(kind, orientation, train_mode, seed, args)
                print(f"== {name}, width {width} ({count_parameters(model):,} parameters), seed {seed}, "
                      f"training on {train_mode} -> {run_dir}")
                settings = [s for s in args.settings if s[0] == train_mode]
                tests = {s: make_dataset(kind, "test", s[2] == "R", args, seed) for s in settings}
                results = train_and_test(
                    model, train_set, tests, run_dir=run_dir, epochs=args.epochs, batch_size=args.batch_size,
                    lr=args.lr, weight_decay=args.weight_decay, device=args.device, seed=seed, resume=args.resume,
                    num_workers=args.num_workers, progress=not args.no_progress,
                    extra_state={"args": {k: str(v) for k, v in vars(args).items()}})
                for row in results:
                    rows.append({"model": name, "kind": kind, "orientation": orientation, "width": width,
                                 "seed": seed, **row})
                    print(f"   {row['setting']}: test accuracy {100 * row['accuracy']:.1f} %")

    table = summarize_rows(rows, [s for s in SETTINGS if s in args.settings])
    print("\ntest accuracy, %: mean ± standard deviation over seeds\n")
    print("\n".join(table))
    save_json(args.run_dir / "results.json", {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                              "table": table})
    return rows


if __name__ == "__main__":
    main()
