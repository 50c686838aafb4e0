r"""Point location on a sphere mesh (the icosphere or any other): the one locator the regridders and rotations use.

A point ``q`` (a unit vector) lies in the spherical triangle ``(a, b, c)`` of the mesh
for which its gnomonic barycentric coordinates

.. math:: \beta_a = \frac{\det(q, b, c)}{D}, \quad \beta_b = \frac{\det(a, q, c)}{D}, \quad
          \beta_c = \frac{\det(a, b, q)}{D}, \qquad D = \text{their sum},

are all non-negative (with a positive sum): they are the barycentric coordinates, on
the flat triangle, of the point where the ray through ``q`` meets it (central
projection). Interpolating with them reproduces constants and vertex values exactly.

Candidate faces come from a k-d tree of the (normalised) face centroids, cached per
mesh with :func:`meshcnn._cache.memoize`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from .._cache import memoize
from .mesh import Mesh, as_mesh

__all__ = ["locate", "barycentric_interpolation", "nearest_vertex", "face_tree", "vertex_tree"]

_INSIDE_TOL = 1e-9  # a coordinate this far below 0 still counts as inside (round-off on edges)


@memoize(maxsize=4, copy=False)  # keyed by the Mesh object (hashed by identity); trees are read only
def face_tree(mesh: Mesh) -> cKDTree:
    """k-d tree of the mesh's face centroids, projected on the unit sphere, ``F`` points."""
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    return cKDTree(centroids / np.linalg.norm(centroids, axis=1, keepdims=True))


@memoize(maxsize=4, copy=False)
def vertex_tree(mesh: Mesh) -> cKDTree:
    """k-d tree of the mesh's vertices, ``V`` points."""
    return cKDTree(mesh.vertices)


def nearest_vertex(mesh: Mesh | int, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest vertex (chord distance, hence great-circle distance) of each point.

    Parameters
    ----------
    mesh : Mesh or int
    points : ndarray, shape ``(P, 3)``
        Unit vectors.

    Returns
    -------
    distance : ndarray, shape ``(P,)``
        Chord distance to the nearest vertex.
    index : ndarray, shape ``(P,)``, int
        That vertex.
    """
    return vertex_tree(as_mesh(mesh)).query(np.asarray(points, dtype=np.float64))


def _coordinates(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric coordinates ``(n, k, 3)`` of ``points`` ``(n, 3)`` in candidate faces ``(n, k)``,
    and whether each point is inside each candidate ``(n, k)``."""
    v = vertices[faces[candidates]]  # (n, k, 3 corners, 3)
    p = points[:, None, :]
    d = np.stack(
        [
            np.einsum("nkc,nkc->nk", p, np.cross(v[:, :, 1], v[:, :, 2])),
            np.einsum("nkc,nkc->nk", v[:, :, 0], np.cross(p, v[:, :, 2])),
            np.einsum("nkc,nkc->nk", v[:, :, 0], np.cross(v[:, :, 1], p)),
        ],
        axis=-1,
    )
    total = d.sum(-1, keepdims=True)
    bary = d / np.where(total > 0, total, 1.0)
    return bary, (total[..., 0] > 0) & np.all(bary >= -_INSIDE_TOL, axis=-1)


def _search(
    mesh: Mesh,
    points: np.ndarray,
    todo: np.ndarray,
    k: int | None,
    chunk: int,
    found_face: np.ndarray,
    bary: np.ndarray,
) -> np.ndarray:
    """Search the ``k`` nearest faces (``None``: every face) of the points ``todo``; fill the
    ones found (the first containing candidate, nearest first) and return the others."""
    remaining = []
    step = chunk if k is not None else max(1, chunk // mesh.num_faces)
    for start in range(0, len(todo), step):
        sel = todo[start : start + step]
        if k is None:
            cand = np.broadcast_to(np.arange(mesh.num_faces), (len(sel), mesh.num_faces))
        else:
            cand = face_tree(mesh).query(points[sel], k=k)[1].reshape(len(sel), k)
        b, ok = _coordinates(mesh.vertices, mesh.faces, points[sel], cand)
        hit = ok.any(axis=1)
        first = np.argmax(ok, axis=1)
        rows = np.nonzero(hit)[0]
        found_face[sel[rows]] = cand[rows, first[rows]]
        bb = np.clip(b[rows, first[rows]], 0.0, None)
        bary[sel[rows]] = bb / bb.sum(-1, keepdims=True)
        remaining.append(sel[~hit])
    return np.concatenate(remaining) if remaining else todo[:0]


def locate(
    mesh: Mesh | int, points: np.ndarray, chunk: int = 65536, candidates: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """The face of ``mesh`` containing each point, and the point's barycentric coordinates in it.

    Parameters
    ----------
    mesh : Mesh or int
    points : ndarray, shape ``(P, 3)``
        Unit vectors.
    chunk : int
        Points processed at once (bounds the memory of the candidate arrays).
    candidates : int
        Nearest faces tried first; widened to ``3x`` and ``12x`` that, then to every face,
        for the points not found.

    Returns
    -------
    faces : ndarray, shape ``(P,)``, int64
        Index into ``mesh.faces``.
    bary : ndarray, shape ``(P, 3)``, float64
        Gnomonic barycentric coordinates (see the module docstring) with respect to the
        corners ``mesh.faces[face]``, clipped to be non-negative and summing to 1.
    """
    mesh = as_mesh(mesh)
    points = np.asarray(points, dtype=np.float64)
    found_face = np.full(len(points), -1, dtype=np.int64)
    bary = np.zeros((len(points), 3))
    todo = np.arange(len(points))
    for k in (candidates, 3 * candidates, 12 * candidates, None):
        if todo.size == 0:
            break
        todo = _search(mesh, points, todo, None if k is None or k >= mesh.num_faces else k, chunk, found_face, bary)
    if todo.size:
        raise RuntimeError(f"could not locate {todo.size} points in the mesh of {mesh.describe()}")
    return found_face, bary


def barycentric_interpolation(
    mesh: Mesh | int, points: np.ndarray, candidates: int = 4, *, normalize: bool = True
) -> sp.csr_matrix:
    r"""Sparse matrix that linearly interpolates a vertex signal at ``points``.

    Parameters
    ----------
    mesh : Mesh or int
    points : ndarray, shape ``(N, 3)``
        Directions (finite, non-zero; normalised here).
    candidates : int
        Nearest faces searched first (see :func:`locate`).
    normalize : bool
        Divide the points by their norms first; ``False`` for points that are unit
        vectors already (the weights are then computed from them as given).

    Returns
    -------
    scipy.sparse.csr_matrix, shape ``(N, V)``
        Row ``n`` holds the barycentric weights of point ``n`` on the corners of its face
        (:func:`locate`): every row sums to 1, and a point on a vertex gets weight 1 on
        that vertex (up to round-off), so constants and vertex values are reproduced.
    """
    mesh = as_mesh(mesh)
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {points.shape}")
    norms = np.linalg.norm(points, axis=1, keepdims=True)
    if not np.all(np.isfinite(points)) or np.any(norms == 0):
        raise ValueError("points must be finite and nonzero")
    face, bary = locate(mesh, points / norms if normalize else points, candidates=candidates)
    rows = np.repeat(np.arange(len(points)), 3)
    cols = mesh.faces[face].reshape(-1)
    vals = bary.reshape(-1)
    keep = vals != 0.0
    out = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(len(points), mesh.num_vertices))
    out.sum_duplicates()
    return out
