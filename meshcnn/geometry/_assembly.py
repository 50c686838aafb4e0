r"""The operators of a closed spherical mesh assembled face by face into one shared sparse pattern.

Every operator of :class:`~meshcnn.geometry.Mesh` couples a vertex to itself and to its
1-ring, and each is a sum of per-face contributions. On a closed mesh this module finds,
once, where each face's nine (row, column) pairs
``(v_c, v_c), (v_c, v_{c+1}), (v_{c+1}, v_c)`` (``c = 0, 1, 2``, indices mod 3) sit in the
CSR data array of that pattern (two sorts of the half-edges); each operator is then one
weighted ``bincount`` of per-face values, with no sparse products and no sums of duplicate
entries. Of the time it takes, numpy releases the GIL for nearly all, so the independent
parts run in two threads.

The general functions of :mod:`meshcnn.geometry.operators` (libigl, any triangle mesh)
define the same operators; the tests check that the two agree to rounding.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .operators import tangent_frames

__all__ = ["FacePattern", "face_pattern", "assemble", "closed_mesh_operators"]


_NOT_CLOSED = "the mesh is not closed and consistently oriented: some half-edge is used twice or has no reverse"


@dataclass(frozen=True)
class FacePattern:
    """CSR pattern "each vertex and its 1-ring" of a closed mesh, and each face's place in it.

    Attributes
    ----------
    indptr : (V + 1,) int64
    indices : (nnz,) int64
        Columns, ascending within each row; ``nnz = V + 3 F`` (the diagonal and the half-edges).
    slots : (9, F) int64
        Positions in the data array of, for ``c = 0, 1, 2``: row ``c`` the diagonal entry
        ``(v_c, v_c)``, row ``3 + c`` the half-edge ``(v_c, v_{c+1})``, row ``6 + c`` its twin
        ``(v_{c+1}, v_c)``, with ``(v_0, v_1, v_2)`` the face's vertices.
    """

    indptr: np.ndarray
    indices: np.ndarray
    slots: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        v = len(self.indptr) - 1
        return v, v


def _stable_order(key: np.ndarray, num_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.argsort(key, kind="stable")`` and ``key`` in that order.

    Sorted as ``(key, position)`` packed into one unsigned integer when both fit in 64
    bits, several times faster than an argsort.
    """
    bits = max(int(len(key) - 1).bit_length(), 1)
    if int(num_keys).bit_length() + bits > 64:  # pragma: no cover - over ~2**40 half-edges
        order = np.argsort(key, kind="stable")
        return order, key[order]
    packed = key.astype(np.uint64)
    packed <<= np.uint64(bits)
    packed |= np.arange(len(key), dtype=np.uint64)
    packed.sort()
    order = np.bitwise_and(packed, np.uint64((1 << bits) - 1)).view(np.int64)  # below 2**63: the same values
    packed >>= np.uint64(bits)
    return order, packed.view(np.int64)


def _row_slots(key: np.ndarray, other: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Position in the CSR data of entry ``(key[i], other[i])`` for every ``i``.

    Rows are the keys; the columns of row ``k`` are the ``other`` values filed under
    ``k`` and ``k`` itself (the diagonal), ascending, each once.
    """
    num_vertices = len(indptr) - 1
    order, row = _stable_order(key, num_vertices)
    count = np.diff(indptr) - 1
    column = np.arange(len(key)) - (np.cumsum(count) - count).take(row)  # place in the row, before sorting
    value = other.take(order)
    cell = column * num_vertices + row  # flat index into (max count, V) tables
    table = np.full((int(count.max()), num_vertices), num_vertices, dtype=np.int64)  # padding sorts last
    table.reshape(-1)[cell] = value
    rank = np.zeros_like(table)
    for k in range(len(table)):
        for j in range(len(table)):
            if j != k:
                rank[k] += table[j] < table[k]
    slot = np.empty(len(key), dtype=np.int64)
    slot[order] = indptr.take(row) + rank.reshape(-1).take(cell) + (row < value)
    return slot


def face_pattern(faces: np.ndarray, num_vertices: int) -> FacePattern:
    """The :class:`FacePattern` of a closed, consistently oriented triangle mesh.

    Parameters
    ----------
    faces : (F, 3) int array
        Each undirected edge shared by exactly two faces that traverse it in opposite
        directions; every vertex in ``0..num_vertices - 1`` in some face.
    num_vertices : int

    Raises
    ------
    ValueError
        If a vertex is in no face, or the mesh is not closed and consistently oriented
        (a half-edge used twice, or without its reverse).
    """
    corners = np.ascontiguousarray(np.asarray(faces, dtype=np.int64).T)  # (3, F)
    tail = corners.reshape(-1)  # half-edge c F + f runs v_c -> v_{c+1} of face f
    head = corners[[1, 2, 0]].reshape(-1)
    degree = np.bincount(tail, minlength=num_vertices)
    if len(degree) != num_vertices or degree.min() == 0:
        raise ValueError(f"faces must use every vertex 0..{num_vertices - 1} and no other")
    if not np.array_equal(degree, np.bincount(head, minlength=num_vertices)):
        raise ValueError(_NOT_CLOSED)
    indptr = np.zeros(num_vertices + 1, dtype=np.int64)
    np.cumsum(degree + 1, out=indptr[1:])
    forward = _row_slots(tail, head, indptr)
    twin = _row_slots(head, tail, indptr)
    indices = np.full(indptr[-1], -1, dtype=np.int64)
    indices[forward] = head
    diagonal = np.flatnonzero(indices < 0)
    if len(diagonal) != num_vertices or not np.array_equal(indices.take(twin), tail):
        raise ValueError(_NOT_CLOSED)
    indices[diagonal] = np.arange(num_vertices)
    slots = np.concatenate([diagonal.take(corners), forward.reshape(3, -1), twin.reshape(3, -1)])
    return FacePattern(indptr=indptr, indices=indices, slots=slots)


def assemble(pattern: FacePattern, weights: np.ndarray, row_scale: np.ndarray | None = None) -> sp.csr_matrix:
    """The ``(V, V)`` matrix whose entry at ``pattern.slots[k, f]`` sums ``weights[k, f]`` over faces.

    Parameters
    ----------
    pattern : FacePattern
    weights : (9, F) float64
        Per-face contributions, in the row order of :attr:`FacePattern.slots`.
    row_scale : (V,) float64, optional
        Multiplies each row of the sum.

    Returns
    -------
    scipy.sparse.csr_matrix
        Sorted indices, explicit zeros dropped.
    """
    data = np.bincount(pattern.slots.reshape(-1), weights.reshape(-1), minlength=len(pattern.indices))
    if row_scale is not None:
        data *= np.repeat(row_scale, np.diff(pattern.indptr))
    out = sp.csr_matrix((data, pattern.indices.copy(), pattern.indptr.copy()), shape=pattern.shape)
    out.has_sorted_indices = True
    out.eliminate_zeros()
    return out


@dataclass(frozen=True)
class MeshOperators:
    """What :meth:`meshcnn.geometry.Mesh.build` stores besides the geometry (see :class:`Mesh`)."""

    vertex_areas: np.ndarray
    laplacian: sp.csr_matrix
    grad_ew: sp.csr_matrix
    grad_ns: sp.csr_matrix
    mean_edge_length: float


Vector = tuple[np.ndarray, np.ndarray, np.ndarray]  # x, y, z components, each (N,)


def _dot(a: Vector, b: Vector) -> np.ndarray:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vector, b: Vector) -> Vector:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def _minus(a: Vector, b: Vector) -> Vector:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def closed_mesh_operators(vertices: np.ndarray, faces: np.ndarray) -> MeshOperators:
    r"""Vertex areas, cotangent Laplacian and the two derivative taps of a closed mesh.

    On a face with corners :math:`p_0, p_1, p_2` (counter-clockwise), opposite edges
    :math:`e_c = p_{c+2} - p_{c+1}` and unit normal :math:`n = e_1 \times e_2 / 2|f|`:

    * Laplacian: the angle :math:`\theta_c` at corner ``c`` adds
      :math:`\tfrac12 \cot\theta_c` to the two entries of edge :math:`e_c` and subtracts it
      from the diagonal entries of its ends, as :func:`~meshcnn.geometry.operators.cotangent_laplacian`;
    * vertex areas: the mixed-Voronoi split of :math:`|f|` among the corners, as
      :func:`~meshcnn.geometry.operators.vertex_areas`;
    * derivative along a unit tangent :math:`d` (east or north at the centroid):
      :math:`|f|\, d \cdot \nabla\varphi_c = \tfrac12\, (d \times n) \cdot e_c` for the hat
      function :math:`\varphi_c`, summed over the faces around each vertex, divided by their
      total area and multiplied by ``h``, as :func:`~meshcnn.geometry.operators.directional_derivatives`;
    * ``h``: the mean length of the half-edges, which on a closed mesh is the mean edge length.

    Parameters
    ----------
    vertices : (V, 3) float64
    faces : (F, 3) int64
        Closed and consistently oriented, counter-clockwise seen from outside.

    Returns
    -------
    MeshOperators
    """
    num_vertices = len(vertices)
    with ThreadPoolExecutor(max_workers=2) as pool:  # numpy releases the GIL in all of the heavy steps
        pattern = pool.submit(face_pattern, faces, num_vertices)
        frames = pool.submit(tangent_frames, vertices, faces)
        corners = np.ascontiguousarray(faces.T)
        coords = np.ascontiguousarray(vertices.T)
        p = [tuple(x.take(corners[c]) for x in coords) for c in range(3)]
        e = [_minus(p[2], p[1]), _minus(p[0], p[2]), _minus(p[1], p[0])]  # e[c] is opposite corner c
        del p
        normal = _cross(e[1], e[2])
        double_area = np.sqrt(_dot(normal, normal))
        normal = tuple(x / double_area for x in normal)
        squared = [_dot(x, x) for x in e]
        mean_edge_length = float(sum(np.sqrt(x).sum() for x in squared) / (3 * len(faces)))
        # corner c lies between e[c+1] (arriving) and e[c+2] (leaving): cos(theta_c) ~ -e[c+1].e[c+2]
        w = [-0.5 * _dot(e[(c + 1) % 3], e[(c + 2) % 3]) / double_area for c in range(3)]  # cot(theta_c) / 2
        laplacian = pool.submit(
            assemble,
            pattern.result(),
            np.stack([-(w[1] + w[2]), -(w[2] + w[0]), -(w[0] + w[1]), w[2], w[0], w[1], w[2], w[0], w[1]]),
        )
        areas = np.bincount(
            corners.reshape(-1), _corner_areas(squared, w, double_area).reshape(-1), minlength=num_vertices
        )
        around = np.bincount(corners.reshape(-1), np.tile(0.5 * double_area, 3), minlength=num_vertices)
        del squared, w

        def derivative(direction: np.ndarray) -> sp.csr_matrix:
            turned = _cross(tuple(direction.T), normal)  # d . (n x e) = (d x n) . e
            q = [0.5 * _dot(turned, e[c]) for c in range(3)]
            return assemble(
                pattern.result(),
                np.stack([q[0], q[1], q[2], q[1], q[2], q[0], q[0], q[1], q[2]]),
                row_scale=mean_edge_length / around,
            )

        east, north = frames.result()
        grad_ew = pool.submit(derivative, east)
        grad_ns = derivative(north)
        return MeshOperators(
            vertex_areas=areas,
            laplacian=laplacian.result(),
            grad_ew=grad_ew.result(),
            grad_ns=grad_ns,
            mean_edge_length=mean_edge_length,
        )


def _corner_areas(squared: list[np.ndarray], half_cot: list[np.ndarray], double_area: np.ndarray) -> np.ndarray:
    r"""Mixed-Voronoi area of each corner, ``(3, F)``.

    In a triangle without an obtuse angle, corner ``c`` gets the part of the face closer
    to it than to the other corners,
    :math:`\tfrac18 (|e_{c+1}|^2 \cot\theta_{c+1} + |e_{c+2}|^2 \cot\theta_{c+2})`; in an
    obtuse triangle the obtuse corner gets :math:`|f|/2` and the others :math:`|f|/4`.
    ``squared[c]`` is :math:`|e_c|^2`, ``half_cot[c]`` is :math:`\tfrac12\cot\theta_c`.
    """
    corner = np.stack(
        [
            0.25 * (squared[(c + 1) % 3] * half_cot[(c + 1) % 3] + squared[(c + 2) % 3] * half_cot[(c + 2) % 3])
            for c in range(3)
        ]
    )
    obtuse = np.stack(half_cot) < 0
    has_obtuse = obtuse.any(axis=0)
    if has_obtuse.any():
        corner[:, has_obtuse] = np.where(obtuse[:, has_obtuse], 0.25, 0.125) * double_area[has_obtuse]
    return corner
