"""Differential operators against analytic answers on the sphere."""

import numpy as np
import pytest
import scipy.sparse as sp

from meshcnn import icosphere

LEVELS = range(1, 6)


def _xyz(m):
    return m.vertices.T


# Real spherical harmonics as harmonic homogeneous polynomials restricted to the sphere:
# on the unit sphere their Laplace-Beltrami eigenvalue is -l(l+1).
HARMONICS = {
    "Y2_xy": (2, lambda x, y, z: x * y),
    "Y2_zonal": (2, lambda x, y, z: 3 * z**2 - 1),
    "Y4_sectoral": (4, lambda x, y, z: x**4 - 6 * x**2 * y**2 + y**4),
    "Y4_zonal": (4, lambda x, y, z: 35 * z**4 - 30 * z**2 + 3),
}


def _weighted_rms(err, weights):
    return np.sqrt(np.sum(weights * err**2) / np.sum(weights))


@pytest.mark.parametrize("level", range(0, 6))
def test_laplacian_structure(level):
    m = icosphere(level)
    L = m.laplacian
    assert sp.issparse(L) and L.shape == (m.num_vertices,) * 2
    np.testing.assert_allclose(L @ np.ones(m.num_vertices), 0, atol=1e-12)
    assert abs(L - L.T).max() < 1e-14
    eigs = np.linalg.eigvalsh(L.toarray()) if level <= 3 else None
    if eigs is not None:
        assert eigs.max() < 1e-10  # negative semi-definite
        assert np.sum(np.abs(eigs) < 1e-10) == 1  # constants are the only kernel
    assert np.diff(L.indptr).max() <= 7  # a 1-ring stencil


@pytest.mark.parametrize("name", HARMONICS)
def test_laplacian_converges_to_laplace_beltrami(name):
    l, f = HARMONICS[name]
    errors = []
    for level in LEVELS:
        m = icosphere(level)
        u = f(*_xyz(m))
        approx = (m.laplacian @ u) / m.vertex_areas
        exact = -l * (l + 1) * u
        errors.append(_weighted_rms(approx - exact, m.vertex_areas) / _weighted_rms(exact, m.vertex_areas))
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.05 * errors[0] or errors[-1] < 0.01, errors


def _gradient_errors(field, d_ew, d_ns, levels=LEVELS, max_lat_deg=90.0):
    """Max errors of ``D u / h`` against the exact derivatives, for |lat| < max_lat_deg."""
    errs = []
    for level in levels:
        m = icosphere(level)
        u = field(*_xyz(m))
        h = m.mean_edge_length
        keep = np.abs(np.degrees(m.lat)) < max_lat_deg - 1e-9 if max_lat_deg < 90 else slice(None)
        ew, ns = (m.grad_ew @ u) / h, (m.grad_ns @ u) / h
        errs.append((np.abs(ew - d_ew(m))[keep].max(), np.abs(ns - d_ns(m))[keep].max()))
    return np.array(errs)


def test_gradient_of_z():
    errs = _gradient_errors(lambda x, y, z: z, lambda m: 0.0, lambda m: np.cos(m.lat))
    # O(h) everywhere, poles included: the NS error halves with each level, the EW error shrinks
    assert np.all(errs[1:, 1] < 0.55 * errs[:-1, 1]), errs
    assert np.all(errs[1:, 0] < errs[:-1, 0]), errs
    assert errs[-1, 0] < 1e-3 and errs[-1, 1] < 0.03, errs


def test_gradient_of_x():
    # x = cos(lat) cos(lon): d/d(east) = -sin(lon), d/d(north) = -sin(lat) cos(lon). The east/north
    # frame is singular at the poles, so compare away from them.
    errs = _gradient_errors(
        lambda x, y, z: x,
        lambda m: -np.sin(m.lon),
        lambda m: -np.sin(m.lat) * np.cos(m.lon),
        levels=range(2, 7),
        max_lat_deg=80,
    )
    assert np.all(errs[1:] < 0.75 * errs[:-1]), errs
    assert np.all(errs[-1] < 0.005), errs


def test_taps_are_dimension_free():
    """The four taps have comparable magnitude at every level (no growth like 1/h or 1/h^2)."""
    norms = []
    for level in range(1, 7):
        m = icosphere(level)
        rng = np.random.default_rng(0)
        u = rng.normal(size=m.num_vertices)
        norms.append([np.linalg.norm(S @ u) / np.linalg.norm(u) for S in (m.laplacian, m.grad_ew, m.grad_ns)])
    norms = np.array(norms)
    assert np.all(norms.max(0) / norms.min(0) < 1.5), norms
    assert np.all((norms > 0.1) & (norms < 10)), norms
