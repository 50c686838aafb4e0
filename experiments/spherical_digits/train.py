"""Spherical digits benchmark: N/N, N/R and R/R accuracy of a SphericalResNet and a planar CNN.

Settings (train/test): N = digits projected on the northern hemisphere, not
rotated; R = each sample rotated by a uniform random rotation of SO(3) (fresh every
training epoch, fixed per test sample). The planar baseline
(:class:`meshcnn.baselines.PlanarCNN`) sees the original images for N and, for R,
the very same rotated spherical signals resampled back to a planar image by the
inverse projection (:class:`meshcnn.data.digits.PlanarDigits`).

Example::

    python experiments/spherical_digits/train.py --epochs 8
    python experiments/spherical_digits/train.py --mnist data/mnist.npz --level 5

Results (one table) are printed and written to ``<run-dir>/results.json``; each
training run has its own ``checkpoint.pt`` and ``metrics.json`` (``--resume``
continues them).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from meshcnn.baselines import PlanarCNN
from meshcnn.classification import count_parameters, train_and_test
from meshcnn.data.digits import DEFAULT_EXTENT, PROJECTIONS, PlanarDigits, SphericalDigits
from meshcnn.io import save_json
from meshcnn.models import SphericalResNet
from meshcnn.train import seed_everything

SETTINGS = ("N/N", "N/R", "R/R")
MODELS = ("sphere", "planar")


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
    p.add_argument("--seed", type=int, default=0, help="model initialisation, shuffling and rotations")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--mnist", type=Path, default=None,
                   help="MNIST .npz with x_train/y_train/x_test/y_test instead of scikit-learn's digits")
    p.add_argument("--projection", choices=PROJECTIONS, default="stereographic")
    p.add_argument("--extent", type=float, default=float(torch.tensor(DEFAULT_EXTENT).rad2deg()),
                   help="polar angle (degrees) from the north pole to the middle of the image's longer side")
    p.add_argument("--run-dir", type=Path, default=Path("runs/spherical_digits"))
    p.add_argument("--resume", action="store_true", help="continue the runs from their checkpoints")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--plot", type=Path, default=None,
                   help="only draw example test inputs (N and R, sphere and planar) to this PNG and exit")
    return p.parse_args(argv)


def make_dataset(kind: str, split: str, rotate: bool, args: argparse.Namespace):
    """Train rotations use ``seed``, test rotations ``seed + 1`` (one fixed rotation per test sample)."""
    cls = SphericalDigits if kind == "sphere" else PlanarDigits
    seed = args.seed if split == "train" else args.seed + 1
    return cls(split, args.level, rotate=rotate, seed=seed, mnist=args.mnist, projection=args.projection,
               extent=torch.tensor(args.extent).deg2rad().item())


def make_model(kind: str, args: argparse.Namespace) -> torch.nn.Module:
    seed_everything(args.seed)
    if kind == "sphere":
        return SphericalResNet(1, 10, level=args.level, width=args.width, depth=args.depth)
    return PlanarCNN(1, 10, width=args.width, depth=args.depth, circular=False)


def plot_samples(args: argparse.Namespace, path: Path, count: int = 5) -> None:
    """Test samples as the models see them: sphere N (northern hemisphere seen from above), sphere R
    (longitude-latitude map of the whole sphere), planar N and R (8x8 inputs of the planar CNN)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from meshcnn.io import atomic_write

    mesh = SphericalDigits("test", args.level).mesh
    lon, lat = np.degrees(mesh.lon), np.degrees(mesh.lat)
    rows = [("sphere, N", make_dataset("sphere", "test", False, args)),
            ("sphere, R", make_dataset("sphere", "test", True, args)),
            ("planar, N", make_dataset("planar", "test", False, args)),
            ("planar, R", make_dataset("planar", "test", True, args))]
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


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if args.plot is not None:
        plot_samples(args, args.plot)
        return []
    train_modes = sorted({s[0] for s in args.settings})  # "N" and/or "R"
    rows = []
    image_shape = (0, 0)
    for kind in args.models:
        for train_mode in train_modes:
            model = make_model(kind, args)
            train_set = make_dataset(kind, "train", train_mode == "R", args)
            image_shape = train_set.image_shape
            run_dir = args.run_dir / f"{kind}_{train_mode}"
            print(f"== {kind} model ({count_parameters(model)} parameters), training on {train_mode} -> {run_dir}")
            settings = [s for s in args.settings if s[0] == train_mode]
            tests = {s: make_dataset(kind, "test", s[2] == "R", args) for s in settings}
            results = train_and_test(
                model, train_set, tests, run_dir=run_dir, epochs=args.epochs, batch_size=args.batch_size,
                lr=args.lr, weight_decay=args.weight_decay, device=args.device, seed=args.seed, resume=args.resume,
                num_workers=args.num_workers, progress=not args.no_progress,
                extra_state={"args": {k: str(v) for k, v in vars(args).items()}})
            for row in results:
                rows.append({"model": kind, **row})
                print(f"   {row['setting']}: test accuracy {100 * row['accuracy']:.1f} %")

    names = {"sphere": f"SphericalResNet (level {args.level})", "planar": "PlanarCNN ({}x{})".format(*image_shape)}
    print("\n| model | setting (train/test) | test accuracy | parameters | training time |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {names[r['model']]} | {r['setting']} | {100 * r['accuracy']:.1f} % | {r['params']:,} "
              f"| {r['train_time_s']:.0f} s ({r['epochs']} epochs) |")
    save_json(args.run_dir / "results.json", {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
