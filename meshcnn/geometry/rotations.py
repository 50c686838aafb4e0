r"""Rotations of the sphere and how they act on mesh signals.

Conventions: a rotation is a ``(3, 3)`` float64 matrix ``R`` acting on column
vectors, ``p' = R p``. Rotating a signal ``f`` by ``R`` gives
:math:`(R f)(p) = f(R^{-1} p)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._cache import memoize
from .locate import barycentric_interpolation, nearest_vertex
from .mesh import Mesh, as_mesh, icosphere

__all__ = [
    "random_rotation",
    "rotation_about_z",
    "rotation_about_axis",
    "icosahedral_rotations",
    "vertex_permutation",
    "barycentric_interpolation",
    "rotation_matrix_on_mesh",
    "rotate_signal",
    "check_rotation",
]


def check_rotation(rotation: np.ndarray, name: str = "rotation", *, proper: bool = True) -> np.ndarray:
    """Validate a rotation matrix: the one check every module uses.

    Parameters
    ----------
    rotation : array_like, shape ``(3, 3)``
    name : str
        What to call it in the error message.
    proper : bool
        Require ``det R = +1``; ``False`` also accepts reflections (orthogonal, ``det R = -1``).

    Returns
    -------
    ndarray, shape ``(3, 3)``, float64

    Raises
    ------
    ValueError
        If it is not a finite ``(3, 3)`` matrix, or not orthogonal (``R R^T = I`` to
        ``1e-6``), or (with ``proper``) ``det R < 0``.
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3) or not np.all(np.isfinite(rotation)):
        raise ValueError(f"{name} must be a finite (3, 3) matrix, got shape {rotation.shape}")
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or (proper and np.linalg.det(rotation) < 0):
        raise ValueError(f"{name} must be a proper rotation matrix (orthogonal, det +1)")
    return rotation


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation drawn uniformly (Haar measure) from SO(3).

    A normalized 4-D Gaussian vector is a uniform unit quaternion, and unit
    quaternions cover SO(3) twice, uniformly.

    Parameters
    ----------
    rng : numpy.random.Generator
        Four standard normal draws are taken from it.

    Returns
    -------
    ndarray, shape ``(3, 3)``, float64
    """
    w, x, y, z = (q := rng.standard_normal(4)) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotation_about_axis(axis: np.ndarray, angle: float) -> np.ndarray:
    r"""The rotation by ``angle`` about ``axis``: Rodrigues' formula.

    .. math:: R = I + \sin\theta\, K + (1 - \cos\theta) K^2,

    ``K`` the cross-product matrix of the unit axis.

    Parameters
    ----------
    axis : array_like, shape ``(3,)``
        Any non-zero vector (normalised here).
    angle : float
        Radians, right-handed about ``axis``.

    Returns
    -------
    ndarray, shape ``(3, 3)``, float64
    """
    axis = np.asarray(axis, dtype=np.float64)
    norm = np.linalg.norm(axis)
    if axis.shape != (3,) or not norm > 0:
        raise ValueError(f"axis must be a non-zero 3-vector, got {axis!r}")
    x, y, z = axis / norm
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def rotation_about_z(angle: float) -> np.ndarray:
    """The rotation about the polar axis by which longitudes grow by ``angle``.

    Parameters
    ----------
    angle : float
        Radians, counter-clockwise seen from above the north pole.

    Returns
    -------
    ndarray, shape ``(3, 3)``, float64
    """
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@memoize(maxsize=1)
def _icosahedral_rotations() -> np.ndarray:
    base = icosphere(0)
    v = base.vertices

    def frame(a: int, b: int) -> np.ndarray:
        return np.stack([v[a], v[b], np.cross(v[a], v[b])], axis=1)

    ref = np.linalg.inv(frame(0, int(base.neighbors[0, 0])))
    rotations = [frame(a, int(b)) @ ref for a in range(12) for b in base.neighbors[a] if b >= 0]
    return np.stack(rotations)


def icosahedral_rotations() -> np.ndarray:
    """The 60 rotations that map the icosahedron (hence every icosphere level) onto itself.

    Each is fixed by where it sends vertex 0 (12 choices) and one of its
    neighbours (5 choices).

    Returns
    -------
    ndarray, shape ``(60, 3, 3)``, float64
        The first one is the identity.
    """
    return _icosahedral_rotations()


def vertex_permutation(mesh: Mesh | int, rotation: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """The permutation of the vertices by a symmetry of the mesh.

    Parameters
    ----------
    mesh : Mesh or int
    rotation : array_like, shape ``(3, 3)``
        A rotation, or a reflection (orthogonal, ``det = -1``), that maps the mesh onto itself.
    tol : float
        Largest distance between a mapped vertex and the vertex it lands on.

    Returns
    -------
    perm : ndarray, shape ``(V,)``, int64
        ``vertices[perm] == vertices @ rotation.T``: ``perm[i]`` is the vertex at ``R v_i``,
        and the rotated signal is ``(R f)[perm] = f``, i.e.
        ``rotated = empty_like(f); rotated[..., perm] = f``.

    Raises
    ------
    ValueError
        If ``rotation`` does not map the mesh onto itself.
    """
    mesh = as_mesh(mesh)
    rotation = check_rotation(rotation, proper=False)
    distance, perm = nearest_vertex(mesh, mesh.vertices @ rotation.T)
    if distance.max() > tol or len(np.unique(perm)) != len(perm):
        raise ValueError("rotation does not map the mesh's vertices onto themselves")
    return perm.astype(np.int64)


def rotation_matrix_on_mesh(mesh: Mesh | int, rotation: np.ndarray) -> sp.csr_matrix:
    r"""The operator that rotates a vertex signal by ``R``.

    Built with :func:`barycentric_interpolation` at the points ``R^T v_i``. For a
    rotation of the icosahedral group it is the permutation of
    :func:`vertex_permutation` (up to round-off); otherwise it is linear
    interpolation, which smooths the signal slightly (error ``O(h^2)`` for a
    smooth signal, ``h`` the edge length).

    Parameters
    ----------
    mesh : Mesh or int
    rotation : array_like, shape ``(3, 3)``
        A proper rotation (:func:`check_rotation`).

    Returns
    -------
    scipy.sparse.csr_matrix, shape ``(V, V)``
        ``P_R`` with :math:`(P_R f)_i \approx f(R^T v_i)`.
    """
    mesh = as_mesh(mesh)
    rotation = check_rotation(rotation)
    return barycentric_interpolation(mesh, mesh.vertices @ rotation)  # row i: R^T v_i


def rotate_signal(signal: Any, level: Mesh | int, rotation: np.ndarray) -> Any:
    r"""Rotate a vertex signal by ``R``, re-interpolated on the mesh.

    ``f(R^T v_i)`` is evaluated by linear interpolation in the mesh triangle
    containing ``R^T v_i`` (:func:`barycentric_interpolation`), so for the 60
    rotations of :func:`icosahedral_rotations` the result is exactly the vertex
    permutation, and for other rotations it is an ``O(h^2)`` approximation.
    Convention as in this module: :math:`(R f)(p) = f(R^{-1} p)`.

    Parameters
    ----------
    signal : ndarray or torch.Tensor, shape ``(..., V)``
        E.g. ``(B, C, V)``.
    level : Mesh or int
    rotation : array_like, shape ``(3, 3)``

    Returns
    -------
    ndarray or torch.Tensor, shape ``(..., V)``
        ``out[..., i] = f(R^T v_i)``, of the type, dtype (and, for a tensor, device) of
        ``signal``; gradients flow through it.
    """
    mesh = as_mesh(level)
    v = mesh.num_vertices
    if signal.shape[-1] != v:
        raise ValueError(f"signal has {signal.shape[-1]} values on its last axis, level {mesh.level} has V={v}")
    op = rotation_matrix_on_mesh(mesh, rotation)
    if isinstance(signal, np.ndarray):
        flat = signal.reshape(-1, v)
        return np.asarray(op @ flat.T).T.reshape(signal.shape).astype(signal.dtype, copy=False)
    import torch

    coo = op.tocoo()
    indices = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    matrix = torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data), (v, v), check_invariants=False)
    matrix = matrix.to(dtype=signal.dtype, device=signal.device)
    flat = signal.reshape(-1, v)
    return torch.sparse.mm(matrix, flat.T).T.reshape(signal.shape)
