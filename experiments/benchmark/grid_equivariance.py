r"""Equivariance on HEALPix (issue 18): exact under quarter turns, within the interpolation floor under any rotation.

For a randomly initialised float64 :class:`meshcnn.MeshConv` of each orientation (and a small
:class:`meshcnn.models.SphericalUNet` of each orientation on the grid's hierarchy), on HEALPix
``nside`` 16 and 32 and, for comparison, on the icosphere of the nearest size (levels 4 and 5):

* ``exact``: the error under the grid's exact symmetry, :func:`meshcnn.testing.equivariance_error`
  with the vertex permutation of the quarter turn about the polar axis (HEALPix), or of an
  icosahedral rotation (icosphere; ``fixed``/``poleward`` are not equivariant to those);
* ``rot``: for ``--rotations`` random rotations ``R`` (:func:`meshcnn.geometry.random_rotation`,
  seed 0) and a smooth band-limited input ``x`` (a random combination of the real spherical
  harmonics of degree 0..``--degree`` (6), 4 channels, evaluated at the vertices), the
  equivariance error :math:`\|f(P_R x) - P_R f(x)\| / \|f(x)\|` with :math:`P_R` the barycentric
  re-interpolation of :func:`meshcnn.geometry.rotate_signal`;
* ``floor in``: the interpolation floor of the input, :math:`\|P_R x - x_R\| / \|x\|`, with
  :math:`x_R` the exactly rotated harmonics evaluated at the vertices (:math:`x_R(v) = x(R^T v)`);
* ``floor out``: the same with the input rotated exactly, :math:`\|f(x_R) - P_R f(x)\| / \|f(x)\|`:
  what the output's re-interpolation and ``f``'s own discretisation leave. For an equivariant ``f``
  it is the output's floor; for ``fixed`` and ``poleward`` it also holds their non-equivariance
  (it is then about ``rot``), so it is no floor for them;
* ``rot / floor in``: the headline ratio. "Within the interpolation floor" is a ratio of order 1;
  ``fixed`` and ``poleward`` (east/north and poleward derivatives, which do not rotate with the
  signal) show how large a rotation-dependent layer's error is.

Each error is the mean over the rotations (norms are Frobenius over batch, channels and vertices).
Prints a Markdown table.

Usage::

    .venv/bin/python experiments/benchmark/grid_equivariance.py --threads 1
    .venv/bin/python experiments/benchmark/grid_equivariance.py --nsides 8 --rotations 2 --no-unet
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from numpy.polynomial import legendre

import meshcnn
from meshcnn.geometry import (
    Mesh,
    icosahedral_rotations,
    icosphere,
    random_rotation,
    rotate_signal,
    rotation_about_z,
    vertex_permutation,
)
from meshcnn.grids import HealpixGrid
from meshcnn.testing import equivariance_error

ORIENTATIONS = tuple(meshcnn.ORIENTATIONS)
CHANNELS = 4
SEED = 0


# ----------------------------------------------------------------------------- the input
def real_harmonics(points: np.ndarray, l: int) -> np.ndarray:
    r"""The 2l+1 real orthonormal spherical harmonics of degree ``l`` at unit vectors ``(V, 3)``, ``(2l+1, V)``.

    Polynomials in x, y, z (as ``experiments/benchmark/operators.py``): :math:`N_{lm} P_l^{(m)}(z)\,
    \{\mathrm{Re},\mathrm{Im}\}(x + i y)^m`, so they can be evaluated at any point, a rotated one included.
    """
    x, y, z = (np.asarray(points, dtype=np.float64)[:, k] for k in range(3))
    w = x + 1j * y
    rows = []
    for m in range(-l, l + 1):
        a = abs(m)
        norm = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - a) / math.factorial(l + a))
        norm *= math.sqrt(2.0) if m else 1.0
        q = legendre.Legendre.basis(l).deriv(a)(z)
        power = w**a
        rows.append(norm * q * (power.real if m >= 0 else power.imag))
    return np.stack(rows)


class SmoothSignal:
    """A random combination of the real spherical harmonics of degree 0..``degree``, ``channels`` of them.

    Coefficients are Gaussian with variance ``1 / (2l+1)`` per degree (a flat power spectrum up to
    ``degree``); :meth:`at` evaluates the signal at any unit vectors, ``(1, channels, V)`` float64.
    """

    def __init__(self, degree: int, channels: int, seed: int = SEED) -> None:
        rng = np.random.default_rng(seed)
        self.degree = degree
        self.coeffs = [rng.standard_normal((channels, 2 * l + 1)) / math.sqrt(2 * l + 1) for l in range(degree + 1)]

    def at(self, points: np.ndarray) -> torch.Tensor:
        values = sum(c @ real_harmonics(points, l) for l, c in enumerate(self.coeffs))
        return torch.from_numpy(values[None]).to(torch.float64)


# ----------------------------------------------------------------------------- the grids and models
def grids(nsides: list[int]) -> list[dict]:
    """Each HEALPix grid, followed by the icosphere of the nearest vertex count."""
    out = []
    for nside in nsides:
        grid = HealpixGrid(nside)
        v = grid.npix
        level = min(range(9), key=lambda l: abs(math.log((10 * 4**l + 2) / v)))
        out.append(
            {
                "name": f"HEALPix nside {nside}",
                "mesh": grid.mesh,
                "healpix": grid,
                "hierarchy": grid.hierarchy(min_nside=max(1, nside // 4)),
            }
        )
        out.append(
            {
                "name": f"icosphere level {level}",
                "mesh": icosphere(level),
                "healpix": None,
                "hierarchy": meshcnn.geometry.MeshHierarchy.icosphere(level, max(0, level - 2)),
            }
        )
    return out


def make_model(kind: str, grid: dict, orientation: str, seed: int = SEED) -> Callable[[torch.Tensor], torch.Tensor]:
    """A randomly initialised float64 model in eval mode: ``conv`` = one MeshConv, ``unet`` = a
    SphericalUNet (width 4, three levels) on the grid's hierarchy."""
    torch.manual_seed(seed)
    if kind == "conv":
        model = meshcnn.MeshConv(CHANNELS, CHANNELS, mesh=grid["mesh"], orientation=orientation)
    elif kind == "unet":
        model = meshcnn.models.SphericalUNet(
            CHANNELS, CHANNELS, width=4, orientation=orientation, hierarchy=grid["hierarchy"]
        )
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return model.double().eval()


def exact_symmetry(grid: dict) -> tuple[str, np.ndarray]:
    """The permutation of the grid's exact symmetry used for ``exact``: the quarter turn about the polar
    axis (HEALPix) or an icosahedral rotation by 72° (icosphere, the first of
    :func:`meshcnn.geometry.icosahedral_rotations` whose axis is off the pole)."""
    if grid["healpix"] is not None:
        return "quarter turn", vertex_permutation(grid["mesh"], rotation_about_z(np.pi / 2))
    fifth_turn = 1 + 2 * math.cos(2 * math.pi / 5)  # the trace of a rotation by 72 degrees
    rot = next(r for r in icosahedral_rotations() if abs(np.trace(r) - fifth_turn) < 1e-9 and r[2, 2] < 0.99)
    return "icosahedral 72°", vertex_permutation(grid["mesh"], rot)


def _rel(a: torch.Tensor, b: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a - b).norm() / ref.norm())


def measure(
    fn: Callable[[torch.Tensor], torch.Tensor],
    mesh: Mesh,
    signal: SmoothSignal,
    rotations: list[np.ndarray],
    perm: np.ndarray,
) -> dict:
    """``exact``, ``rot``, ``floor_in``, ``floor_out`` (means over the rotations) of ``fn`` on ``mesh``."""
    x = signal.at(mesh.vertices)
    rot, floor_in, floor_out = [], [], []
    with torch.no_grad():
        y = fn(x)
        for r in rotations:
            x_exact = signal.at(mesh.vertices @ r)  # x(R^T v_i): row i is (R^T v_i)^T = v_i^T R
            x_interp = rotate_signal(x, mesh, r)
            y_interp = rotate_signal(y, mesh, r)
            rot.append(_rel(fn(x_interp), y_interp, y))
            floor_in.append(_rel(x_interp, x_exact, x))
            floor_out.append(_rel(fn(x_exact), y_interp, y))
    result = {
        "exact": equivariance_error(fn, x, perm),
        "rot": statistics.fmean(rot),
        "floor_in": statistics.fmean(floor_in),
        "floor_out": statistics.fmean(floor_out),
    }
    result["ratio"] = result["rot"] / result["floor_in"]
    return result


def run(nsides: list[int], num_rotations: int, degree: int, models: list[str], log=print) -> list[dict]:
    rng = np.random.default_rng(SEED)
    rotations = [random_rotation(rng) for _ in range(num_rotations)]
    signal = SmoothSignal(degree, CHANNELS)
    rows = []
    for grid in grids(nsides):
        symmetry, perm = exact_symmetry(grid)
        for kind in models:
            for orientation in ORIENTATIONS:
                t0 = time.perf_counter()
                fn = make_model(kind, grid, orientation)
                mesh = grid["mesh"]
                row = {
                    "grid": grid["name"],
                    "V": mesh.num_vertices,
                    "h": mesh.mean_edge_length,
                    "model": kind,
                    "orientation": orientation,
                    "symmetry": symmetry,
                    **measure(fn, mesh, signal, rotations, perm),
                }
                row["seconds"] = time.perf_counter() - t0
                rows.append(row)
                if log:
                    log(
                        f"  {row['grid']:<20} {kind:<5} {orientation:<10} exact {row['exact']:.1e}  "
                        f"rot {row['rot']:.2e}  floor in {row['floor_in']:.2e} out {row['floor_out']:.2e}  "
                        f"ratio {row['ratio']:.2f}  ({row['seconds']:.1f} s)",
                        flush=True,
                    )
    return rows


def markdown(rows: list[dict]) -> str:
    head = (
        "| grid | V | model | orientation | exact symmetry | exact error | rot error | floor in | floor out "
        "| rot / floor in |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['grid']} | {r['V']} | {r['model']} | {r['orientation']} | {r['symmetry']} | "
            f"{r['exact']:.1e} | {r['rot']:.2e} | {r['floor_in']:.2e} | {r['floor_out']:.2e} | "
            f"{r['ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nsides", type=int, nargs="+", default=[16, 32], help="HEALPix nsides (default 16 32)")
    parser.add_argument("--rotations", type=int, default=10, help="random rotations (default 10)")
    parser.add_argument("--degree", type=int, default=6, help="largest harmonic degree of the input (default 6)")
    parser.add_argument("--no-unet", action="store_true", help="MeshConv only")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) first")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    models = ["conv"] + ([] if args.no_unet else ["unet"])
    print(
        f"# float64, {CHANNELS} -> {CHANNELS} channels, input: harmonics of degree 0..{args.degree}, "
        f"{args.rotations} random rotations (seed {SEED}), errors averaged over them; torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    rows = run(args.nsides, args.rotations, args.degree, models)
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
