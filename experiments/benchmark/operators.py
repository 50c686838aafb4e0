r"""Operator accuracy on any spherical grid (issue 18): the Laplacian and the derivative taps
of :class:`meshcnn.geometry.Mesh` on spherical harmonics, per grid family and resolution.

Command (the table of ``experiments/benchmark/RESULTS.md``)::

    .venv/bin/python experiments/benchmark/operators.py --out runs/benchmark/operators.json

``--families icosphere,healpix,icon,random`` picks the families (default: all four);
``--quick`` runs the two smallest sizes of each (what the test does).

Families and sizes (``size`` column):

* ``icosphere``: :func:`meshcnn.geometry.icosphere`, levels 2-6 (V = 162 .. 40962);
* ``healpix``: :class:`meshcnn.grids.HealpixGrid` ``(nside).mesh``, nside 8, 16, 32, 64
  (V = 12 nside^2 = 768 .. 49152), the Delaunay triangulation of the pixel centres;
* ``icon``: an ICON-like grid of level L (data on triangle centres, V = 20 * 4^L = 80 .. 20480
  for L = 1..5): written by :func:`meshcnn.grids.unstructured.write_icon_grid` and read back
  by ``UnstructuredGrid.from_file`` (its ``mesh`` is the Delaunay triangulation of the
  normalised circumcentres of the faces of ``icosphere(L)``); if that module is not
  importable the same point set is built here and the row says ``(built here)``;
* ``random``: 2000, 8000, 32000 points uniform on the sphere (normalised Gaussian vectors,
  seed 0), :meth:`Mesh.from_points`.

Test functions: the real orthonormal spherical harmonics :math:`Y_{lm}` of degree
l = 1..4, all 2l+1 orders (:func:`real_harmonics`), with :math:`\Delta Y = -l(l+1) Y`.
Every "relative RMS" is area weighted with the mesh's lumped vertex areas ``M``
(:math:`\|u\|^2 = \sum_v M_v u_v^2`), pooled over the 2l+1 orders of one degree; each
column is the **maximum over l = 1..4** (the JSON has every degree).

Columns:

* ``V``: vertices; ``h``: :attr:`Mesh.mean_edge_length` (mean chord length, unit sphere);
* ``lap pointwise``: :math:`\|M^{-1} L Y + l(l+1) Y\| / \|l(l+1) Y\|`. The lumped cotangent
  Laplacian is **not** pointwise consistent on irregular triangulations (only on meshes
  with symmetric, e.g. subdivision-regular, neighbourhoods), so this column need not fall
  with resolution on Delaunay meshes of scattered or HEALPix points: a known property of
  the operator (Xu 2004; Wardetzky et al. 2007), not a bug;
* ``lap rayleigh``: :math:`|Y^T (-L) Y / Y^T M Y - l(l+1)| / l(l+1)` (weak form; the
  largest over the orders m);
* ``lap eigen``: the 24 smallest non-zero generalized eigenvalues of :math:`-L v = \lambda M v`
  (``scipy.sparse.linalg.eigsh``, shift-invert) against l(l+1) with multiplicity 2l+1,
  relative RMS per degree. **The convergence criterion for the Laplacian** (a
  finite-element eigenvalue: converges on any shape-regular-enough triangulation);
* ``grad ew/ns``: the MeshConv taps, :math:`(D_{ew} Y, D_{ns} Y)/h` (``grad_ew``, ``grad_ns``)
  against the exact east and north derivatives :math:`(e\cdot\nabla Y, n\cdot\nabla Y)`,
  relative RMS of the 2-vector over all vertices (nothing excluded). The exact frame is
  :func:`meshcnn.geometry.operators.vertex_frames` (:func:`~meshcnn.geometry.coords.east_north`, which is NaN
  on the polar axis, completed there by the fixed frame ``e = x``, ``n = p x x``). The taps
  project each face's gradient on that face's own east/north before averaging, so at a
  vertex on the polar axis (the icosphere has one at each pole) they are not the
  derivative in any one frame, and in the first rings around it the face frames turn
  by O(1) (by ~h/rho at a distance rho from the axis): an O(1) error on O(h^2) area, i.e.
  an O(h) term in the RMS, whatever the grid;
* ``grad ew/ns off-pole``: the same, leaving out the vertices within ``5 h`` of the polar
  axis (a diagnostic of the polar term above, not a claim; ``nan`` where ``5 h > 1`` leaves
  no vertex);
* ``grad tangent``: the same for :attr:`Mesh.grad_tangent` (the gradient on the one
  vertex frame, :func:`~meshcnn.geometry.operators.tangent_gradient`), which has no polar defect.

After the table: a check that ``lap eigen``, ``grad ew/ns`` and ``grad tangent`` fall at
every step of every family (the exit status is 1 if one does not), the observed
convergence orders (least-squares slope of log error against log h, per family), and a
second table pairing each non-icosphere grid with the icosphere level of nearest V.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.polynomial import legendre

from meshcnn.geometry import Mesh, icosphere
from meshcnn.geometry.operators import vertex_frames

DEGREES = (1, 2, 3, 4)
SIZES = {
    "icosphere": (2, 3, 4, 5, 6),
    "healpix": (8, 16, 32, 64),
    "icon": (1, 2, 3, 4, 5),
    "random": (2000, 8000, 32000),
}
FAMILIES = tuple(SIZES)
SEED = 0
#: The columns checked to fall with resolution on every family.
CONVERGING = ("lap_eigen", "grad_ewns", "grad_tangent")
COLUMNS = ("lap_pointwise", "lap_rayleigh", "lap_eigen", "grad_ewns", "grad_ewns_offpole", "grad_tangent")
#: ``grad ew/ns off-pole`` leaves out the vertices within this many ``h`` of the polar axis.
POLAR_CAP = 5.0


# ---------------------------------------------------------------------------------------------- harmonics
def _complex_power(x: np.ndarray, y: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``Re`` and ``Im`` of :math:`(x + i y)^m` (``m >= 0``; 1, 0 for ``m = 0``)."""
    w = (x + 1j * y) ** m if m > 0 else np.ones_like(x, dtype=complex)
    return w.real, w.imag


def real_harmonics(points: np.ndarray, l: int, gradient: bool = False):
    r"""The 2l+1 real orthonormal spherical harmonics of degree ``l`` at unit vectors.

    Written as polynomials in x, y, z: with :math:`Q_{lm} = d^m P_l / dz^m` (Legendre
    :math:`P_l`) and :math:`\rho^m \cos m\lambda = \mathrm{Re}(x+iy)^m`,

    .. math:: Y_{l0} = N_{l0} P_l(z), \quad
              Y_{l,\pm m} = \sqrt2\, N_{lm}\, Q_{lm}(z)\,\{\mathrm{Re}, \mathrm{Im}\}(x+iy)^m,
              \quad N_{lm} = \sqrt{\tfrac{2l+1}{4\pi}\tfrac{(l-m)!}{(l+m)!}},

    orders ``m = -l..l`` in the rows (negative m the sine ones). Orthonormal on the unit
    sphere (no Condon-Shortley sign), :math:`\Delta Y = -l(l+1)Y`.

    Parameters
    ----------
    points : (V, 3) array of unit vectors
    l : int
    gradient : bool
        Also return the 3-D gradient of the polynomial, ``(2l+1, V, 3)``; its tangential
        part is the surface gradient of :math:`Y` (any extension off the sphere gives the same).

    Returns
    -------
    Y : (2l+1, V) array, and the gradient if asked
    """
    x, y, z = (np.asarray(points, dtype=np.float64)[:, k] for k in range(3))
    values, grads = [], []
    for m in range(-l, l + 1):
        a = abs(m)
        norm = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - a) / math.factorial(l + a))
        norm *= math.sqrt(2.0) if m else 1.0
        q = legendre.Legendre.basis(l).deriv(a)
        qz, dqz = q(z), q.deriv()(z)
        c, s = _complex_power(x, y, a)
        values.append(norm * qz * (c if m >= 0 else s))
        if gradient:
            c1, s1 = _complex_power(x, y, a - 1) if a else (np.zeros_like(x), np.zeros_like(x))
            if m >= 0:  # d/dx Re w^a = a Re w^(a-1), d/dy Re w^a = -a Im w^(a-1)
                gx, gy, gz = a * c1, -a * s1, dqz * c
            else:  # d/dx Im w^a = a Im w^(a-1), d/dy Im w^a = a Re w^(a-1)
                gx, gy, gz = a * s1, a * c1, dqz * s
            grads.append(norm * np.stack([qz * gx, qz * gy, gz], axis=-1))
    if gradient:
        return np.stack(values), np.stack(grads)
    return np.stack(values)


# ---------------------------------------------------------------------------------------------- meshes
def random_points(n: int, seed: int = SEED) -> np.ndarray:
    """``n`` points uniform on the unit sphere: normalised standard Gaussian vectors."""
    p = np.random.default_rng(seed).standard_normal((n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def icon_circumcentres(level: int) -> np.ndarray:
    """Normalised circumcentres of the faces of ``icosphere(level)`` (the ICON cell centres)."""
    mesh = icosphere(level)
    a, b, c = (mesh.vertices[mesh.faces[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def build_mesh(family: str, size: int) -> tuple[Mesh, str]:
    """The mesh of one (family, size) and a note on how it was made ('' if nothing to say)."""
    if family == "icosphere":
        return icosphere(size), ""
    if family == "healpix":
        from meshcnn.grids.healpix import HealpixGrid

        return HealpixGrid(size).mesh, ""
    if family == "icon":
        try:
            from meshcnn.grids.unstructured import UnstructuredGrid, write_icon_grid
        except ImportError:
            return Mesh.from_points(icon_circumcentres(size), name=f"icon{size}"), "built here"
        with tempfile.TemporaryDirectory() as tmp:
            path = write_icon_grid(Path(tmp) / f"icon{size}.nc", size)
            mesh = UnstructuredGrid.from_file(path).mesh
        return mesh, ""
    if family == "random":
        return Mesh.from_points(random_points(size), name=f"random{size}"), ""
    raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")


# ---------------------------------------------------------------------------------------------- errors
def _rel(diff2: float, ref2: float) -> float:
    """``sqrt(diff2 / ref2)``; NaN if nothing is left to compare (``ref2 == 0``)."""
    return float(math.sqrt(diff2 / ref2)) if ref2 > 0 else float("nan")


def generalized_eigenvalues(mesh: Mesh, count: int = 24) -> np.ndarray:
    r"""The ``count`` smallest non-zero eigenvalues of :math:`-L v = \lambda M v` (ascending).

    Shift-invert ``eigsh`` about :math:`\sigma = -1` (``-L + M`` is positive definite); the
    ``count + 1`` nearest include the constant's 0, which is dropped.
    """
    stiffness = sp.csc_matrix(-mesh.laplacian)
    mass = sp.diags(mesh.vertex_areas).tocsc()
    start = np.random.default_rng(SEED).standard_normal(mesh.num_vertices)
    values = spla.eigsh(stiffness, k=count + 1, M=mass, sigma=-1.0, which="LM", v0=start, return_eigenvectors=False)
    values = np.sort(values)
    if abs(values[0]) > 1e-8 * max(1.0, abs(values[1])):
        raise RuntimeError(f"the smallest generalized eigenvalue is {values[0]:.3g}, not 0")
    return values[1:]


def operator_errors(mesh: Mesh, degrees: tuple[int, ...] = DEGREES, eigen: bool = True) -> dict:
    """Every error of the module docstring for one mesh, per degree and as the max over degrees."""
    areas = mesh.vertex_areas
    h = float(mesh.mean_edge_length)
    east, north = vertex_frames(mesh.vertices)
    d1, d2 = mesh.grad_tangent
    off = np.hypot(mesh.vertices[:, 0], mesh.vertices[:, 1]) > POLAR_CAP * h  # away from the polar axis
    per_degree = {}
    for l in degrees:
        lam = l * (l + 1)
        Y, G = real_harmonics(mesh.vertices, l, gradient=True)  # (2l+1, V), (2l+1, V, 3)
        de = np.einsum("mvk,vk->mv", G, east)
        dn = np.einsum("mvk,vk->mv", G, north)
        LY = (mesh.laplacian @ Y.T).T  # (2l+1, V)
        pointwise = _rel((areas * (LY / areas + lam * Y) ** 2).sum(), (areas * (lam * Y) ** 2).sum())
        rayleigh = np.abs(-(Y * LY).sum(axis=1) / (areas * Y * Y).sum(axis=1) - lam) / lam
        ref2 = (areas * (de**2 + dn**2)).sum()
        ge, gn = (mesh.grad_ew @ Y.T).T / h, (mesh.grad_ns @ Y.T).T / h
        ewns = _rel((areas * ((ge - de) ** 2 + (gn - dn) ** 2)).sum(), ref2)
        ewns_off = _rel((off * areas * ((ge - de) ** 2 + (gn - dn) ** 2)).sum(), (off * areas * (de**2 + dn**2)).sum())
        te, tn = (d1 @ Y.T).T / h, (d2 @ Y.T).T / h
        tangent = _rel((areas * ((te - de) ** 2 + (tn - dn) ** 2)).sum(), ref2)
        per_degree[l] = {
            "lap_pointwise": pointwise,
            "lap_rayleigh": float(rayleigh.max()),
            "grad_ewns": ewns,
            "grad_ewns_offpole": ewns_off,
            "grad_tangent": tangent,
        }
    if eigen:
        exact = np.concatenate([np.full(2 * l + 1, l * (l + 1.0)) for l in degrees])
        computed = generalized_eigenvalues(mesh, len(exact))
        start = 0
        for l in degrees:
            k = slice(start, start + 2 * l + 1)
            per_degree[l]["lap_eigen"] = float(np.sqrt(np.mean(((computed[k] - exact[k]) / exact[k]) ** 2)))
            per_degree[l]["eigenvalues"] = computed[k].tolist()
            start += 2 * l + 1
    columns = [c for c in COLUMNS if c in per_degree[degrees[0]]]
    result = {c: max(per_degree[l][c] for l in degrees) for c in columns}
    result["per_degree"] = {str(l): v for l, v in per_degree.items()}
    return result


def evaluate(family: str, size: int, eigen: bool = True) -> dict:
    """One row: the mesh of (family, size) and its errors (:func:`operator_errors`), with timings."""
    t0 = time.perf_counter()
    mesh, note = build_mesh(family, size)
    t1 = time.perf_counter()
    row = {
        "family": family,
        "size": size,
        "V": mesh.num_vertices,
        "h": float(mesh.mean_edge_length),
        "note": note,
        **operator_errors(mesh, eigen=eigen),
    }
    row["build_s"], row["errors_s"] = t1 - t0, time.perf_counter() - t1
    return row


def run(families=FAMILIES, quick: bool = False, eigen: bool = True, log=None) -> list[dict]:
    """Rows for the ``families`` (all sizes, or the two smallest with ``quick``), family by family."""
    rows = []
    for family in families:
        for size in SIZES[family][:2] if quick else SIZES[family]:
            row = evaluate(family, size, eigen=eigen)
            rows.append(row)
            if log:
                log(f"{family} {size}: V={row['V']} build {row['build_s']:.1f} s, errors {row['errors_s']:.1f} s")
    return rows


# ---------------------------------------------------------------------------------------------- analysis
def falls(rows: list[dict], columns=CONVERGING) -> dict[str, dict[str, bool]]:
    """For each family and column: whether the error falls at every step of increasing V."""
    out = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        rs = sorted((r for r in rows if r["family"] == family), key=lambda r: r["V"])
        out[family] = {c: all(b[c] < a[c] for a, b in zip(rs, rs[1:])) for c in columns if c in rs[0]}
    return out


def orders(rows: list[dict], columns=COLUMNS, last: int | None = None) -> dict[str, dict[str, float]]:
    """Per family and column: the least-squares slope of log(error) against log(h) (over the
    ``last`` finest sizes if given)."""
    out = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        rs = sorted((r for r in rows if r["family"] == family), key=lambda r: r["V"])[-(last or 0) :]
        if len(rs) < 2:
            continue
        out[family] = {}
        for c in columns:
            pts = [(math.log(r["h"]), math.log(r[c])) for r in rs if c in r and r[c] > 0]  # NaN > 0 is False
            out[family][c] = float(np.polyfit(*zip(*pts), 1)[0]) if len(pts) >= 2 else float("nan")
    return out


def _e(x: float) -> str:
    return f"{x:.2e}"


def markdown(rows: list[dict]) -> str:
    """The full table, the falls check, the orders and the table paired with the icosphere."""
    cols = [c for c in COLUMNS if c in rows[0]]
    names = {
        "lap_pointwise": "lap pointwise",
        "lap_rayleigh": "lap rayleigh",
        "lap_eigen": "lap eigen",
        "grad_ewns": "grad ew/ns",
        "grad_ewns_offpole": "grad ew/ns off-pole",
        "grad_tangent": "grad tangent",
    }
    lines = [
        "| family | size | V | h | " + " | ".join(names[c] for c in cols) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(cols),
    ]
    for r in rows:
        size = f"{r['size']}" + (f" ({r['note']})" if r["note"] else "")
        lines.append(
            f"| {r['family']} | {size} | {r['V']} | {r['h']:.4f} | " + " | ".join(_e(r[c]) for c in cols) + " |"
        )
    lines += ["", "Falls at every step of V (" + ", ".join(names[c] for c in CONVERGING if c in cols) + "):", ""]
    check = falls(rows)
    for family, ok in check.items():
        lines.append(f"- {family}: " + ", ".join(f"{names[c]} {'yes' if v else 'NO'}" for c, v in ok.items()))
    lines += [
        "",
        "Observed order (slope of log error vs log h; all sizes / finest two):",
        "",
        "| family | " + " | ".join(names[c] for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    every, finest = orders(rows, cols), orders(rows, cols, last=2)
    for family in every:
        lines.append(
            f"| {family} | " + " | ".join(f"{every[family][c]:.2f} / {finest[family][c]:.2f}" for c in cols) + " |"
        )
    ico = [r for r in rows if r["family"] == "icosphere"]
    others = [r for r in rows if r["family"] != "icosphere"]
    if ico and others:
        lines += [
            "",
            "Beside the icosphere of nearest V:",
            "",
            "| grid | V | lap eigen | grad ew/ns | grad tangent "
            "| icosphere level | V | lap eigen | grad ew/ns | grad tangent |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in others:
            i = min(ico, key=lambda q: abs(math.log(q["V"] / r["V"])))
            lines.append(
                f"| {r['family']} {r['size']} | {r['V']} | "
                + " | ".join(_e(r.get(c, float("nan"))) for c in CONVERGING)
                + f" | {i['size']} | {i['V']} | "
                + " | ".join(_e(i.get(c, float("nan"))) for c in CONVERGING)
                + " |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated, of {', '.join(FAMILIES)} (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="only the two smallest sizes of each family")
    parser.add_argument("--no-eigen", action="store_true", help="skip the generalized eigenvalues (eigsh)")
    parser.add_argument("--out", help="write the rows (every degree) as JSON here")
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in SIZES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    started = datetime.datetime.now(datetime.timezone.utc)
    rows = run(families, quick=args.quick, eigen=not args.no_eigen, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(
        f"Date {started:%Y-%m-%d %H:%M} UTC; numpy {np.__version__}, scipy {scipy.__version__}, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the start\n"
    )
    print(markdown(rows))
    ok = all(all(v.values()) for v in falls(rows).values())
    print(
        f"\nCheck (lap eigen and both gradient errors fall at every step on every family): {'PASS' if ok else 'FAIL'}"
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"date": started.isoformat(), "rows": rows}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
