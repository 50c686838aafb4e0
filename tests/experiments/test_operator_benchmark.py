"""The operator-accuracy benchmark (experiments/benchmark/operators.py, issue 18) on its smallest sizes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _helpers import load_script

from meshcnn.geometry import icosphere

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "benchmark" / "operators.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)


def test_harmonics_are_orthonormal(bench):
    mesh = icosphere(5)
    Y = np.concatenate([bench.real_harmonics(mesh.vertices, l) for l in bench.DEGREES])
    assert Y.shape == (24, mesh.num_vertices)
    gram = (Y * mesh.vertex_areas) @ Y.T * (4 * math.pi / mesh.vertex_areas.sum())
    np.testing.assert_allclose(gram, np.eye(24), atol=5e-4)


def test_harmonic_gradient_is_the_derivative(bench):
    points = bench.random_points(7, seed=1)
    eps = 1e-6
    for l in bench.DEGREES:
        _, grad = bench.real_harmonics(points, l, gradient=True)
        for k in range(3):
            step = np.zeros(3)
            step[k] = eps
            fd = (bench.real_harmonics(points + step, l) - bench.real_harmonics(points - step, l)) / (2 * eps)
            np.testing.assert_allclose(grad[..., k], fd, atol=1e-7)


def test_errors_fall_on_the_two_smallest_sizes(bench):
    rows = bench.run(quick=True)
    assert [r["family"] for r in rows] == [f for f in bench.FAMILIES for _ in range(2)]
    for family, ok in bench.falls(rows).items():
        assert all(ok.values()), (family, ok)
    for r in rows:  # Rayleigh quotients and eigenvalues near l(l+1) already on the coarsest meshes
        assert r["lap_eigen"] < 0.2 and r["lap_rayleigh"] < 0.2, r
    table = bench.markdown(rows)
    assert "| healpix | 16 | 3072 |" in table and "Beside the icosphere of nearest V" in table
