"""Test accuracy of a trained spherical digits model under chosen rotations: where invariance breaks.

    python experiments/spherical_digits/robustness.py --checkpoint runs/spherical_digits/sphere-invariant_N_s0 \\
        --level 3 --width 8 --depth 3 --orientation invariant --downsample pool

The test digits are projected with each rotation applied analytically (no mesh
interpolation, :func:`meshcnn.data.digits.projection.projection_matrix`), so every difference
comes from the model. Rotations: the identity; three of the icosahedral group (exact
symmetries of the mesh: an ``"isotropic"`` or ``"invariant"`` model gives exactly its
N/N accuracy); turns about the polar axis (the digit stays on the pole, turned in its
plane); tilts about the x axis (the digit leaves the pole); and uniform random
rotations (the N/R setting). Prints a markdown table (also ``--out`` JSON).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from meshcnn.cli import HELP_FORMATTER, level_option, orientation_option
from meshcnn.data.digits import SphericalDigits
from meshcnn.data.digits.projection import projection_matrix
from meshcnn.geometry import icosahedral_rotations, random_rotation, rotation_about_axis, rotation_about_z
from meshcnn.io import save_json
from meshcnn.models import SphericalResNet
from meshcnn.models.spherical import DOWNSAMPLE
from meshcnn.train import load_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=HELP_FORMATTER,
        parents=[level_option(3), orientation_option()],
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="a run folder of train.py (or its checkpoint.pt)")
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--downsample", choices=DOWNSAMPLE, default="stride")
    p.add_argument("--random", type=int, default=4, help="uniform random rotations (each applied to all digits)")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def rotations(count: int) -> list[tuple[str, np.ndarray]]:
    ico = icosahedral_rotations()
    out = [("identity", np.eye(3))]
    out += [(f"icosahedral #{i} (exact symmetry)", ico[i]) for i in (5, 17, 33)]
    out += [(f"about the pole, {a}°", rotation_about_z(np.deg2rad(a))) for a in (5, 15, 30, 90, 180)]
    out += [(f"tilt {a}°", rotation_about_axis([1.0, 0.0, 0.0], np.deg2rad(a))) for a in (2, 5, 10, 20, 45, 90)]
    rng = np.random.default_rng(0)
    out += [(f"random SO(3) #{i}", random_rotation(rng)) for i in range(count)]
    return out


@torch.no_grad()
def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    path = args.checkpoint / "checkpoint.pt" if args.checkpoint.is_dir() else args.checkpoint
    model = SphericalResNet(
        1,
        10,
        level=args.level,
        width=args.width,
        depth=args.depth,
        orientation=args.orientation,
        downsample=args.downsample,
    )
    model.load_state_dict(load_checkpoint(path)["model"])
    model.eval()
    test = SphericalDigits("test", args.level)
    images = np.stack([test.image(i).ravel() for i in range(len(test))])
    labels = torch.as_tensor(test.labels)
    rows = []
    for name, rotation in rotations(args.random):
        matrix = projection_matrix(test.image_shape, test.mesh, rotation)
        x = torch.from_numpy((matrix @ images.T).T.astype(np.float32))[:, None]
        accuracy = float((model(x).argmax(1) == labels).double().mean())
        rows.append({"rotation": name, "accuracy": accuracy})
    print(f"{path}: {args.orientation}, downsample {args.downsample}, level {args.level}\n")
    print("| rotation of the test digits | test accuracy |\n|---|---|")
    for r in rows:
        print(f"| {r['rotation']} | {100 * r['accuracy']:.1f} % |")
    if args.out is not None:
        save_json(args.out, {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
