r"""Measure how rotation-equivariant MeshConv layers are.

For an operator ``f`` (random weights), smooth random inputs ``x`` and rotations ``R``
it prints the relative equivariance error

.. math::  e = \frac{\lVert f(R x) - R f(x) \rVert}{\lVert f(x) \rVert}

(Euclidean norms over batch, channels and vertices), averaged over rotations
(the maximum in brackets), where ``R x`` is the signal rotated by ``R``:

* for rotations of SO(3) that do not map the mesh onto itself, re-interpolated on
  the mesh (:func:`meshcnn.geometry.rotate_signal`, linear in the containing
  triangle), so ``e`` includes the interpolation error;
* for the 60 rotations of the icosahedral group the mesh maps onto itself and
  ``R x`` is an exact vertex permutation (:func:`meshcnn.geometry.vertex_permutation`).

Each family is split into rotations about the polar (z) axis, which keep the
east/north directions, and all rotations; the last column is the equatorial mirror
``(lat, lon) -> (-lat, lon + 36°)``, a reflection that maps the icosphere onto itself
(exact permutation), the symmetry ``orientation="poleward"`` is built for. Every
orientation of :data:`meshcnn.ORIENTATIONS` is measured, a single layer and a stack
of three with ReLUs. The reference row "interpolation round
trip" is :math:`\lVert R^T (R x) - x \rVert / \lVert x \rVert`, the error of rotating
back and forth without any layer: the floor below which no interpolated
measurement can go.

Example::

    python experiments/spherical_digits/equivariance.py --levels 3 4 5
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from meshcnn.cli import HELP_FORMATTER, seed_option
from meshcnn.geometry import icosahedral_rotations, icosphere, random_rotation, rotate_signal, vertex_permutation
from meshcnn.io import save_json
from meshcnn.nn import ORIENTATIONS, MeshConv

Rotate = Callable[[torch.Tensor], torch.Tensor]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Equivariance error of MeshConv layers under rotations.",
        formatter_class=HELP_FORMATTER,
        parents=[seed_option()],
    )
    p.add_argument("--levels", type=int, nargs="+", default=[3, 4, 5])
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--rotations", type=int, default=8, help="random rotations per interpolated family")
    p.add_argument(
        "--input",
        choices=("smooth", "noise"),
        default="smooth",
        help="smooth: sums of random von Mises-Fisher bumps; noise: i.i.d. Gaussian per vertex",
    )
    p.add_argument("--orientations", nargs="+", choices=ORIENTATIONS, default=list(ORIENTATIONS))
    p.add_argument("--out", type=Path, default=None, help="also write the numbers to this JSON file")
    return p.parse_args(argv)


def smooth_inputs(
    vertices: np.ndarray, batch: int, channels: int, rng: np.random.Generator, bumps: int = 12, kappa: float = 8.0
) -> torch.Tensor:
    """``(batch, channels, V)``: each channel a sum of ``bumps`` signed bumps ``exp(kappa (c . p - 1))``."""
    centers = rng.standard_normal((batch, channels, bumps, 3))
    centers /= np.linalg.norm(centers, axis=-1, keepdims=True)
    signs = rng.choice([-1.0, 1.0], size=(batch, channels, bumps, 1))
    x = (signs * np.exp(kappa * (centers @ vertices.T - 1.0))).sum(axis=2)
    return torch.from_numpy(x)


def operators(level: int, channels: int, orientations: list[str]) -> dict[str, nn.Module]:
    """Per orientation, one MeshConv and a 3-layer stack with ReLUs; default (random uniform) initialisation."""
    ops: dict[str, nn.Module] = {}
    for orientation in orientations:
        ops[f"MeshConv, {orientation}"] = MeshConv(channels, channels, level, orientation=orientation)
        ops[f"stack (3 layers, ReLU), {orientation}"] = nn.Sequential(
            *[m for _ in range(3) for m in (MeshConv(channels, channels, level, orientation=orientation), nn.ReLU())][
                :-1
            ]
        )
    return ops


def rotation_families(level: int, count: int, rng: np.random.Generator) -> dict[str, list[tuple[Rotate, Rotate]]]:
    """Each family: list of ``(rotate, rotate_back)`` functions acting on ``(..., V)`` tensors."""

    def interpolated(r: np.ndarray) -> tuple[Rotate, Rotate]:
        return (lambda x: rotate_signal(x, level, r)), (lambda x: rotate_signal(x, level, r.T))

    def permuted(r: np.ndarray) -> tuple[Rotate, Rotate]:
        perm = torch.from_numpy(vertex_permutation(level, r))
        inverse = torch.argsort(perm)
        return (lambda x: x[..., inverse]), (lambda x: x[..., perm])  # (R x)[perm] = x

    def about_z(angle: float) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    ico = icosahedral_rotations()[1:]  # without the identity
    polar = np.isclose(ico[:, 2, 2], 1.0)
    # (lat, lon) -> (-lat, lon + 36 deg): z -> -z and a turn by 36 deg about z, a symmetry of the icosphere
    mirror = about_z(np.pi / 5) @ np.diag([1.0, 1.0, -1.0])
    return {
        "SO(3), about z (interp.)": [interpolated(about_z(a)) for a in rng.uniform(0, 2 * np.pi, count)],
        "SO(3), random (interp.)": [interpolated(random_rotation(rng)) for _ in range(count)],
        f"icosahedral, about z ({polar.sum()}, exact)": [permuted(r) for r in ico[polar]],
        f"icosahedral, all ({len(ico)}, exact)": [permuted(r) for r in ico],
        "equatorial mirror (exact)": [permuted(mirror)],
    }


def relative_error(a: torch.Tensor, b: torch.Tensor, ref: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(ref))


def measure(level: int, args: argparse.Namespace) -> dict[str, dict[str, tuple[float, float]]]:
    rng = np.random.default_rng([args.seed, level])
    torch.manual_seed(args.seed)
    mesh = icosphere(level)
    if args.input == "smooth":
        x = smooth_inputs(mesh.vertices, args.batch, args.channels, rng)
    else:
        x = torch.from_numpy(rng.standard_normal((args.batch, args.channels, mesh.num_vertices)))
    ops = operators(level, args.channels, args.orientations)
    families = rotation_families(level, args.rotations, rng)
    table: dict[str, dict[str, tuple[float, float]]] = {}
    with torch.no_grad():
        errors = {name: [relative_error(back(rot(x)), x, x) for rot, back in fam] for name, fam in families.items()}
        table["interpolation round trip R^T(R x) vs x"] = {
            k: (float(np.mean(v)), float(np.max(v))) for k, v in errors.items()
        }
        for op_name, op in ops.items():
            fx = op(x)
            row = {}
            for name, fam in families.items():
                e = [relative_error(op(rot(x)), rot(fx), fx) for rot, _ in fam]
                row[name] = (float(np.mean(e)), float(np.max(e)))
            table[op_name] = row
    return table


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_default_dtype(torch.float64)  # so that exact symmetries show as round-off, not float32 noise
    results = {}
    for level in args.levels:
        table = measure(level, args)
        results[level] = table
        columns = list(next(iter(table.values())))
        print(
            f"\nlevel {level} (V = {icosphere(level).num_vertices}), {args.input} inputs, "
            f"{args.batch}x{args.channels} channels; relative error mean (max)\n"
        )
        print("| operator | " + " | ".join(columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for op_name, row in table.items():
            print(f"| {op_name} | " + " | ".join(f"{m:.2e} ({M:.1e})" for m, M in row.values()) + " |")
    if args.out is not None:
        save_json(
            args.out,
            {"args": {k: str(v) for k, v in vars(args).items()}, "results": {str(k): v for k, v in results.items()}},
        )
    return results


if __name__ == "__main__":
    main()
