"""Draw what the classifier sees: the spherical projection of one shape per class, upright and rotated.

One row per class: the shape's distance channel, its |cos| channel and the
hull's distance channel (Mollweide maps of the icosphere signal), then the
shape's distance channel after a random SO(3) rotation.

Example::

    python experiments/shape_classification/show_projection.py --data data/synthshapes --level 4 \\
        --out runs/shape_projections.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from meshcnn.cli import HELP_FORMATTER, level_option, seed_option
from meshcnn.data.shapes import ModelNet, read_off
from meshcnn.geometry import ShapeProjector, random_rotation
from meshcnn.geometry.project import CHANNELS, MISS_DISTANCE
from meshcnn.plot import plot_mesh_signal, save_figure


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=HELP_FORMATTER,
        parents=[level_option(4), seed_option(help="for the rotation")],
    )
    p.add_argument("--data", type=Path, default=Path("data/synthshapes"))
    p.add_argument("--split", choices=("train", "test"), default="train")
    p.add_argument("--classes", nargs="+", default=None, help="class names (default: up to 6 of them)")
    p.add_argument("--out", type=Path, default=Path("runs/shape_projections.png"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    data = ModelNet(args.data, args.split, args.level, progress=False)
    names = args.classes or data.classes[:6]
    unknown = sorted(set(names) - set(data.classes))
    if unknown:
        raise ValueError(f"{args.data}: no class folders {unknown}")
    from matplotlib.figure import Figure

    columns = [(0, "shape distance"), (1, "shape |cos|"), (3, "hull distance"), (0, "shape distance, rotated")]
    fig = Figure(figsize=(4.2 * len(columns), 2.3 * len(names)), layout="constrained")
    rng = np.random.default_rng(args.seed)
    for row, name in enumerate(names):
        path = data.files[data.targets.index(data.classes.index(name))]
        projector = ShapeProjector(read_off(path))
        upright = projector.icosphere(args.level)
        rotated = projector.icosphere(args.level, random_rotation(rng))
        for col, (channel, title) in enumerate(columns):
            signal = rotated if "rotated" in title else upright
            ax = fig.add_subplot(len(names), len(columns), row * len(columns) + col + 1, projection="mollweide")
            is_distance = CHANNELS[channel].endswith("distance")
            plot_mesh_signal(
                signal[channel],
                args.level,
                ax=ax,
                vmin=0.0,
                vmax=2.0 if is_distance else 1.0,
                cmap="magma" if is_distance else "viridis",
                title=f"{path.stem}: {title}" if col == 0 else title,
                colorbar=col in (1, len(columns) - 1),
            )
    fig.suptitle(f"level {args.level}; a ray that misses reads distance {MISS_DISTANCE:g}, |cos| 0")
    out = save_figure(fig, args.out)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
