r"""Rotations of the sphere and how they act on mesh signals.

Conventions: a rotation is a ``(3, 3)`` float64 matrix ``R`` acting on column
vectors, ``p' = R p``. Rotating a signal ``f`` by ``R`` gives
:math:`(R f)(p) = f(R^{-1} p)`.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy.spatial import cKDTree

from .mesh import Mesh, icosphere

__all__ = ["random_rotation", "icosahedral_rotations", "vertex_permutation"]


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation drawn uniformly (Haar measure) from SO(3), ``(3, 3)`` float64.

    A normalized 4-D Gaussian vector is a uniform unit quaternion, and unit
    quaternions cover SO(3) twice, uniformly.
    """
    w, x, y, z = (q := rng.standard_normal(4)) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@functools.lru_cache(maxsize=1)
def _icosahedral_rotations() -> np.ndarray:
    base = icosphere(0)
    v = base.vertices

    def frame(a: int, b: int) -> np.ndarray:
        return np.stack([v[a], v[b], np.cross(v[a], v[b])], axis=1)

    ref = np.linalg.inv(frame(0, int(base.neighbors[0, 0])))
    rotations = [frame(a, int(b)) @ ref for a in range(12) for b in base.neighbors[a] if b >= 0]
    return np.stack(rotations)


def icosahedral_rotations() -> np.ndarray:
    """The 60 rotations ``(60, 3, 3)`` that map the icosahedron (hence every icosphere level) onto itself.

    Each is fixed by where it sends vertex 0 (12 choices) and one of its
    neighbours (5 choices). The first one is the identity.
    """
    return _icosahedral_rotations().copy()


def vertex_permutation(mesh: Mesh | int, rotation: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Permutation ``perm`` ``(V,)`` with ``vertices[perm] == vertices @ rotation.T``.

    So ``perm[i]`` is the vertex at ``R v_i``, and the rotated signal is
    ``(R f)[perm] = f``, i.e. ``rotated = empty_like(f); rotated[..., perm] = f``.
    Raises ``ValueError`` if ``rotation`` does not map the mesh onto itself.
    """
    if isinstance(mesh, (int, np.integer)):
        mesh = icosphere(int(mesh))
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3):
        raise ValueError(f"rotation must be (3, 3), got {rotation.shape}")
    distance, perm = cKDTree(mesh.vertices).query(mesh.vertices @ rotation.T)
    if distance.max() > tol or len(np.unique(perm)) != len(perm):
        raise ValueError("rotation does not map the mesh's vertices onto themselves")
    return perm.astype(np.int64)
