r"""Operators made exactly equivariant to the rotations about the polar axis that map a point set onto itself.

A point set such as the HEALPix pixel centres is mapped onto itself by the rotation
:math:`R` by :math:`2\pi/k` about the polar axis, but its Delaunay triangulation need not
be: cocircular points (the four pixels around each pole, for one) have several Delaunay
triangulations, and any one choice breaks the symmetry, and with it the exact
equivariance of the operators built on it. With :math:`G` the vertex permutation of
:math:`R` (``(G f)[perm[i]] = f[i]``), an operator :math:`A` that commutes with the
rotation up to the triangulation's choice (the Laplacian, the vertex areas, the derivatives
along east and north, which a rotation about the axis carries onto themselves) is replaced
by its average over the group,

.. math:: \bar A = \frac1k \sum_{j=0}^{k-1} G^{-j} A\, G^{j},

which commutes with :math:`G` exactly and differs from :math:`A` only where the
triangulation broke the symmetry. Points on the axis (whose east and north are a fixed
frame, not carried by the rotation) are refused.

Private module: :meth:`meshcnn.geometry.Mesh.from_points` (``polar_symmetry=``) uses it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

__all__ = ["polar_permutation", "symmetrize", "symmetrize_areas"]

_MATCH_TOL = 1e-9  # chord distance within which a rotated point is taken as a point of the set


def polar_permutation(vertices: np.ndarray, order: int) -> np.ndarray:
    """``perm`` with ``vertices[perm[i]] = R vertices[i]``, ``R`` the rotation by ``2 pi / order`` about ``z``.

    Raises
    ------
    ValueError
        If the rotation does not map the points onto themselves, or a point lies on the axis.
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 2:
        raise ValueError(f"polar_symmetry must be an integer >= 2 (the order of the rotation group), got {order!r}")
    if np.hypot(vertices[:, 0], vertices[:, 1]).min() < 1e-12:
        raise ValueError(
            "polar_symmetry: a point lies on the polar axis, where east and north are not carried "
            "by the rotation; build the mesh without polar_symmetry"
        )
    angle = 2 * np.pi / order
    c, s = np.cos(angle), np.sin(angle)
    rotated = vertices @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T
    distance, perm = cKDTree(vertices).query(rotated)
    if distance.max() > _MATCH_TOL or len(np.unique(perm)) != len(perm):
        raise ValueError(
            f"polar_symmetry={order}: the rotation by 360/{order} degrees about the polar axis does not "
            f"map the points onto themselves (a point lands {distance.max():.3g} from the nearest)"
        )
    return perm.astype(np.int64)


def _permutation_matrix(perm: np.ndarray) -> sp.csr_matrix:
    n = len(perm)
    return sp.csr_matrix((np.ones(n), (perm, np.arange(n))), shape=(n, n))  # (G f)[perm[i]] = f[i]


def symmetrize(matrix: sp.spmatrix, perm: np.ndarray, order: int, col_perm: np.ndarray | None = None) -> sp.csr_matrix:
    r""":math:`\frac1k \sum_j G^{-j} A\, H^j` for the operator ``A`` (module docstring).

    ``G`` permutes the rows' points (``perm``), ``H`` the columns' (``col_perm``, default ``perm``):
    a square operator on one mesh, or a rectangular one between two meshes with the same symmetry.
    """
    g, h = _permutation_matrix(perm), _permutation_matrix(perm if col_perm is None else col_perm)
    g_power = sp.identity(g.shape[0], format="csr")
    h_power = sp.identity(h.shape[0], format="csr")
    total = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    for _ in range(order - 1):
        g_power, h_power = sp.csr_matrix(g @ g_power), sp.csr_matrix(h @ h_power)
        total = total + g_power.T @ matrix @ h_power
    out = sp.csr_matrix(total / order)
    out.sort_indices()
    return out


def symmetrize_areas(areas: np.ndarray, perm: np.ndarray, order: int) -> np.ndarray:
    r"""The diagonal operator's average :math:`\bar a = \frac1k \sum_j G^{-j} a`: each area averaged over its orbit."""
    total = areas.astype(np.float64, copy=True)
    moved = areas
    for _ in range(order - 1):
        nxt = np.empty_like(moved)
        nxt[perm] = moved
        moved = nxt
        total += moved
    return total / order
