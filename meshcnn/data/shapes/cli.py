"""The command line of :mod:`meshcnn.data.shapes`: ``synth`` (write the synthetic set), ``project`` (fill a cache).

python -m meshcnn.data.shapes synth --out data/synthshapes --per-class 60 --seed 0
python -m meshcnn.data.shapes project --root data/synthshapes --cache-dir data/cache --level 4
"""

from __future__ import annotations

import argparse

from .dataset import _GRID_ALIASES, GRIDS, SPLITS, ModelNet
from .synthetic import SYNTH_CLASSES, make_synthetic

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m meshcnn.data.shapes", description="Shape data in the ModelNet layout."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth", help="write the offline synthetic shape set")
    synth.add_argument("--out", required=True, help="output root folder")
    synth.add_argument("--per-class", type=int, default=60, help="shapes per class, train + test (default 60)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--test-fraction", type=float, default=0.2, help="fraction of each class in test/ (0.2)")
    synth.add_argument("--classes", nargs="+", choices=SYNTH_CLASSES, default=None, help="subset of classes")
    synth.add_argument(
        "--quirk-fraction",
        type=float,
        default=0.1,
        help="fraction of files written with the one-line 'OFFnv nf ne' header (0.1)",
    )
    pre = sub.add_parser("project", help="project and cache a ModelNet-layout folder")
    pre.add_argument("--root", required=True)
    pre.add_argument("--cache-dir", required=True)
    pre.add_argument("--level", type=int, default=5)
    pre.add_argument("--split", choices=SPLITS + ("both",), default="both")
    pre.add_argument("--grid", choices=GRIDS + tuple(_GRID_ALIASES), default="mesh")
    pre.add_argument("--skip-bad", action="store_true")
    pre.add_argument("--triangulate", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "synth":
        info = make_synthetic(
            args.out, args.per_class, args.seed, args.test_fraction, args.classes, args.quirk_fraction
        )
        print(
            f"wrote {len(info['classes'])} classes x {info['per_class']} shapes "
            f"({info['train_per_class']} train + {info['test_per_class']} test) to {args.out}"
        )
    else:
        for split in SPLITS if args.split == "both" else (args.split,):
            data = ModelNet(
                args.root,
                split,
                args.level,
                cache_dir=args.cache_dir,
                skip_bad=args.skip_bad,
                grid=args.grid,
                triangulate=args.triangulate,
                log=print,
            )
            data.precompute()
            print(f"{data}: cached under {args.cache_dir}")
