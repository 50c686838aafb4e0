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

from meshcnn.cli import (
    HELP_FORMATTER,
    apply_threads,
    level_option,
    orientation_option,
    run_options,
    seed_option,
    training_options,
)
from meshcnn.data.digits import PROJECTIONS, PlanarDigits, SphericalDigits
from meshcnn.data.digits.dataset import JITTER_DEGREES
from meshcnn.data.digits.projection import DEFAULT_EXTENT
from meshcnn.models.spherical import DOWNSAMPLE
from meshcnn.tasks import (
    ClassifierConfig,
    RotationStudy,
    build_model,
    count_parameters,
    matched_width,
    run_rotation_study,
)
from meshcnn.tasks.rotation_study import SETTINGS, StudyVariant

VARIANTS = ("sphere", "planar", "planar-unprojected")  # the spherical model, and planar CNNs on two inputs
# settings that may differ on --resume: how it runs, and which runs (each run's seed, model and
# orientation are in its folder name); not --epochs, since the cosine schedule spans them
RESUME_MAY_CHANGE = (
    "resume",
    "no_progress",
    "num_workers",
    "device",
    "threads",
    "run_dir",
    "plot",
    "seed",
    "settings",
    "models",
    "orientation",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parents = [
        level_option(4, "icosphere level of the input signals (>= 2)"),
        training_options(epochs=8, batch_size=32, lr=3e-3, lr_help="Adam learning rate (cosine decay to 0)"),
        seed_option(many=True),
        orientation_option(many=True),
        run_options(resume_may_change=RESUME_MAY_CHANGE),
    ]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER, parents=parents)
    p.add_argument("--width", type=int, default=8, help="channels after the stem (both models)")
    p.add_argument("--depth", type=int, default=3, help="number of stride-2 stages (both models)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--models", nargs="+", choices=VARIANTS, default=["sphere", "planar"])
    p.add_argument(
        "--no-match-params",
        dest="match_params",
        action="store_false",
        help="use --width for every model instead of matching the parameter counts",
    )
    p.add_argument(
        "--augment",
        choices=("none", "z", "jitter", "z+jitter"),
        default="none",
        help="N training: 'z' turns every training sample by a random rotation about the polar "
        "axis (the digit stays on the pole), 'jitter' by a small random rotation (up to "
        "--jitter degrees), 'z+jitter' both, for all models alike",
    )
    p.add_argument("--jitter", type=float, default=JITTER_DEGREES, help="largest jitter angle, degrees")
    p.add_argument(
        "--downsample",
        choices=DOWNSAMPLE,
        default="stride",
        help="stride-2 blocks of the sphere model: strided MeshConv, or MeshConv + 1-ring mean pool",
    )
    p.add_argument(
        "--mnist",
        type=Path,
        default=None,
        help="MNIST .npz with x_train/y_train/x_test/y_test instead of scikit-learn's digits",
    )
    p.add_argument("--projection", choices=PROJECTIONS, default="stereographic")
    p.add_argument(
        "--extent",
        type=float,
        default=float(torch.tensor(DEFAULT_EXTENT).rad2deg()),
        help="polar angle (degrees) from the north pole to the middle of the image's longer side",
    )
    p.add_argument("--run-dir", type=Path, default=Path("runs/spherical_digits"))
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="only draw example test inputs (N and R, sphere and planar) to this PNG and exit",
    )
    return p.parse_args(argv)


def make_dataset(kind: str, split: str, rotate: bool | str, args: argparse.Namespace, seed: int = 0):
    """The ``split`` of ``kind`` (a :data:`VARIANTS` name); ``seed`` seeds its rotations as given."""
    common = dict(
        mnist=args.mnist,
        projection=args.projection,
        extent=torch.tensor(args.extent).deg2rad().item(),
        jitter=args.jitter,
    )
    if kind == "sphere":
        return SphericalDigits(split, args.level, rotate=rotate, seed=seed, **common)
    return PlanarDigits(split, args.level, rotate=rotate, seed=seed, unproject=kind == "planar-unprojected", **common)


def model_config(kind: str, width: int, args: argparse.Namespace, orientation: str = "fixed") -> ClassifierConfig:
    """The sphere variant is a SphericalResNet, the planar ones a PlanarCNN without periodic padding."""
    return ClassifierConfig(
        "spherical" if kind == "sphere" else "planar",
        1,
        10,
        args.level,
        width,
        args.depth,
        orientation,
        args.downsample,
        circular=False,
    )


def model_widths(args: argparse.Namespace) -> dict[tuple[str, str], int]:
    """Width of each ``(kind, orientation)`` (orientation ``"-"`` for planar models)."""
    variants = [("sphere", o) for o in args.orientation if "sphere" in args.models]
    variants += [(kind, "-") for kind in args.models if kind != "sphere"]
    if not args.match_params:
        return {v: args.width for v in variants}
    target = count_parameters(build_model(model_config("sphere", args.width, args)))
    return {
        (kind, o): matched_width(
            lambda w, kind=kind, o=o: build_model(model_config(kind, w, args, o if o != "-" else "fixed")), target
        )
        for kind, o in variants
    }


def plot_samples(args: argparse.Namespace, path: Path, count: int = 5) -> None:
    """Test samples as the models see them: sphere N (northern hemisphere seen from above), sphere R
    (longitude-latitude map of the whole sphere), planar N and R (8x8 inputs of the planar CNN)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from meshcnn.io import atomic_write

    mesh = SphericalDigits("test", args.level).mesh
    seed = args.seed[0] + 1  # the test rotations of the first seed's runs
    lon, lat = np.degrees(mesh.lon), np.degrees(mesh.lat)
    rows = [
        ("sphere, N", make_dataset("sphere", "test", False, args, seed)),
        ("sphere, R", make_dataset("sphere", "test", True, args, seed)),
        ("planar, N", make_dataset("planar", "test", False, args, seed)),
        ("planar unprojected, N", make_dataset("planar-unprojected", "test", False, args, seed)),
        ("planar, R", make_dataset("planar", "test", True, args, seed)),
    ]
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


def model_name(kind: str, orientation: str, args: argparse.Namespace, image_shape: tuple[int, int]) -> str:
    if kind == "sphere":
        return f"SphericalResNet (level {args.level}, {orientation})"
    source = "original image" if kind == "planar" else "unprojected spherical signal"
    return "PlanarCNN ({}x{}, {})".format(*image_shape, source)


def study_variant(
    kind: str, orientation: str, width: int, args: argparse.Namespace, image_shape: tuple[int, int]
) -> StudyVariant:
    """One model of the study.

    Its runs are ``<run-dir>/<sphere-ORIENTATION|planar|planar-unprojected>_<N|R>_s<seed>``.
    """
    config = model_config(kind, width, args, orientation if kind == "sphere" else "fixed")

    def dataset(split: str, rotated: bool, seed: int):
        rotate = rotated or (split == "train" and args.augment != "none" and args.augment)
        return make_dataset(kind, split, rotate, args, seed)

    return StudyVariant(
        name=model_name(kind, orientation, args, image_shape),
        tag=f"{kind}-{orientation}" if kind == "sphere" else kind,
        build=lambda: build_model(config),
        dataset=dataset,
        row={"kind": kind, "orientation": orientation, "width": width},
    )


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if args.plot is not None:
        plot_samples(args, args.plot)
        return []
    apply_threads(args.threads)
    image_shape = make_dataset("planar", "test", False, args).image_shape
    variants = [
        study_variant(kind, orientation, width, args, image_shape)
        for (kind, orientation), width in model_widths(args).items()
    ]
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
