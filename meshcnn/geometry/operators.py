r"""Sparse differential operators on a triangulated sphere.

All functions take a triangle mesh as ``vertices`` ``(V, 3)`` float64 and
``faces`` ``(F, 3)`` int64 (counter-clockwise seen from outside) and return
``scipy.sparse`` matrices in CSR format, or dense numpy arrays.

The construction is the one of Jiang et al., "Spherical CNNs on Unstructured
Grids" (ICLR 2019):

* the gradient of the piecewise-linear interpolant of a vertex signal is
  constant on each face; libigl's ``grad`` gives it as a ``(3F, V)`` matrix;
* on each face it is projected on the face's unit east-west and north-south
  vectors (computed at the face centroid);
* the per-face derivatives are brought back to vertices by an area-weighted
  average over the faces around each vertex.
"""

from __future__ import annotations

import igl
import numpy as np
import scipy.sparse as sp

from .coords import east_north

__all__ = [
    "cotangent_laplacian",
    "vertex_areas",
    "face_areas",
    "tangent_frames",
    "face_to_vertex",
    "directional_derivatives",
    "vertex_frames",
    "tangent_gradient",
    "poleward_sign",
    "edges",
    "bandwidth_order",
    "mean_edge_length",
    "upsample_matrix",
    "one_ring",
]


def cotangent_laplacian(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    r"""Cotangent stiffness matrix ``L`` (``(V, V)``, symmetric, negative semi-definite).

    :math:`(L u)_i = \tfrac12 \sum_{j \in N(i)} (\cot\alpha_{ij} + \cot\beta_{ij}) (u_j - u_i)`.
    It is dimension-free (cotangents are ratios of lengths); ``M^{-1} L``, with
    ``M`` the lumped vertex areas, approximates the Laplace-Beltrami operator.

    Parameters
    ----------
    vertices, faces : (V, 3) float64 and (F, 3) int64 arrays

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(V, V)``.
    """
    return sp.csr_matrix(igl.cotmatrix(vertices, faces))


def vertex_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Mixed-Voronoi lumped areas ``(V,)``; they sum to the polyhedron's area.

    Parameters
    ----------
    vertices, faces : (V, 3) float64 and (F, 3) int64 arrays

    Returns
    -------
    (V,) float64 array
    """
    mass = igl.massmatrix(vertices, faces, igl.MASSMATRIX_TYPE_VORONOI)
    return np.asarray(mass.diagonal(), dtype=np.float64)


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Areas of the flat triangles, ``(F,)``.

    Parameters
    ----------
    vertices, faces : (V, 3) float64 and (F, 3) int64 arrays

    Returns
    -------
    (F,) float64 array
    """
    return 0.5 * np.asarray(igl.doublearea(vertices, faces)).reshape(-1)


def tangent_frames(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Unit east-west and north-south vectors at each face centroid, ``(F, 3)`` each.

    With :math:`n` the normalized centroid and :math:`\hat z` the north pole,
    :math:`e_{ew} = \hat z \times n / |\hat z \times n|` points east and
    :math:`e_{ns} = n \times e_{ew}` points north. Undefined only if a centroid
    lies on the polar axis, which cannot happen on an icosphere with a vertex
    at each pole.

    Parameters
    ----------
    vertices, faces : (V, 3) float64 and (F, 3) int64 arrays

    Returns
    -------
    east, north : (F, 3) float64 arrays

    Raises
    ------
    ValueError
        If a face centroid lies on the polar axis.
    """
    centroid = np.stack([vertices[:, k].take(faces).sum(axis=1) / 3.0 for k in range(3)], axis=-1)
    east, north = east_north(centroid)
    if np.isnan(east[:, 0]).any():
        raise ValueError("a face centroid lies on the polar axis; east/north are undefined there")
    return east, north


def face_to_vertex(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    r"""Area-weighted face-to-vertex average ``A`` (``(V, F)``).

    :math:`(A g)_i = \sum_{f \ni i} |f|\, g_f / \sum_{f \ni i} |f|`; rows sum to 1.

    Parameters
    ----------
    vertices, faces : (V, 3) float64 and (F, 3) int64 arrays

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(V, F)``.
    """
    num_vertices, num_faces = len(vertices), len(faces)
    area = face_areas(vertices, faces)
    rows = faces.reshape(-1)
    cols = np.repeat(np.arange(num_faces), 3)
    mat = sp.csr_matrix((np.repeat(area, 3), (rows, cols)), shape=(num_vertices, num_faces))
    total = np.asarray(mat.sum(axis=1)).reshape(-1)
    return sp.csr_matrix(sp.diags(1.0 / total) @ mat)


def directional_derivatives(
    vertices: np.ndarray, faces: np.ndarray, scale: float = 1.0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    r"""East-west and north-south derivative operators ``(V, V)``, times ``scale``.

    :math:`D_{ew} = s\, A\, \sum_{k=x,y,z} \mathrm{diag}(e_{ew,k}) G_k` and likewise
    for :math:`D_{ns}`, where :math:`G_k` is the ``k``-th component block of
    libigl's face gradient and ``A`` the :func:`face_to_vertex` average. With
    ``scale`` a length ``h`` the result is dimension-free
    (:math:`D u \approx h\, \partial u / \partial s`, ``s`` arc length on the unit sphere).
    Each row only touches the vertex's 1-ring.

    Parameters
    ----------
    vertices, faces : (V, 3) float64 and (F, 3) int64 arrays
    scale : float
        Multiplies both operators (default 1).

    Returns
    -------
    D_ew, D_ns : scipy.sparse.csr_matrix
        ``(V, V)`` each.
    """
    east, north = tangent_frames(vertices, faces)
    average = face_to_vertex(vertices, faces)
    columns, values = _face_gradients(vertices, faces)

    def project(direction: np.ndarray) -> sp.csr_matrix:
        out = sp.csr_matrix(scale * (average @ _face_operator(columns, values, direction, len(vertices))))
        out.sum_duplicates()
        out.sort_indices()
        return out

    return project(east), project(north)


def _face_gradients(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """libigl's face gradient as dense per-face blocks.

    Returns
    -------
    columns : (F, 3) int
        The vertices of each face, ascending (the columns of the face's rows in the gradient).
    values : (3, F, 3) float64
        ``values[k, f, c]``: component ``k`` of the gradient, on face ``f``, of the hat
        function of vertex ``columns[f, c]``.
    """
    num_faces = len(faces)
    grad = sp.csr_matrix(igl.grad(vertices, faces))  # (3F, V): all x rows, then y, then z
    grad.sum_duplicates()
    if grad.nnz == 9 * num_faces and np.all(np.diff(grad.indptr) == 3):
        columns = grad.indices.reshape(3, num_faces, 3)
        if np.array_equal(columns[0], columns[1]) and np.array_equal(columns[0], columns[2]):
            return columns[0], grad.data.reshape(3, num_faces, 3)
    # a face with a repeated vertex: pad every row to three entries (explicit zeros are dropped later)
    coo = grad.tocoo()
    dense = np.zeros((3, num_faces, 3))
    face, component = coo.row % num_faces, coo.row // num_faces
    slot = np.argmax(np.sort(faces, axis=1)[face] == coo.col[:, None], axis=1)
    dense[component, face, slot] = coo.data
    return np.sort(faces, axis=1), dense


def _face_operator(columns: np.ndarray, values: np.ndarray, direction: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    r"""``(F, V)``: :math:`\sum_{k} \mathrm{diag}(d_k)\, G_k`, the face gradient projected on ``direction``.

    Summed as ``(d_x G_x + d_y G_y) + d_z G_z`` entry by entry, with exact zeros dropped,
    which is what the equivalent sparse products and sums give.
    """
    d = direction[:, :, None]
    projected = d[:, 0] * values[0] + d[:, 1] * values[1] + d[:, 2] * values[2]
    indptr = np.arange(0, projected.size + 1, 3)
    face_op = sp.csr_matrix((projected.reshape(-1), columns.reshape(-1), indptr), shape=(len(columns), num_vertices))
    face_op.eliminate_zeros()
    return face_op


def vertex_frames(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""An orthonormal tangent frame ``(e_1, e_2)`` at each vertex, ``(V, 3)`` each.

    Away from the poles :math:`e_1` is the unit east vector
    :math:`\hat z \times n / |\hat z \times n|` and :math:`e_2 = n \times e_1` the unit
    north vector (:math:`n` the vertex). At a pole, where east is undefined,
    :math:`e_1 = \hat x` and :math:`e_2 = n \times \hat x`. Every frame is right-handed
    seen from outside: :math:`e_1 \times e_2 = n`.
    """
    east, north = east_north(vertices)
    polar = np.isnan(east[:, 0])
    east[polar] = [1.0, 0.0, 0.0]
    north[polar] = np.cross(vertices[polar] / np.linalg.norm(vertices[polar], axis=1, keepdims=True), east[polar])
    return east, north


def tangent_gradient(
    vertices: np.ndarray, faces: np.ndarray, scale: float = 1.0, frame_angle: np.ndarray | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    r"""The vertex gradient as a tangent vector in one orthonormal frame per vertex, ``(V, V)`` each.

    :math:`g = A\,G\,u` is the area-weighted average (:func:`face_to_vertex`) of the
    face gradients of the linear interpolant, a 3-vector at each vertex; its
    components on the vertex frame :math:`(e_1, e_2)` of :func:`vertex_frames`,
    turned by ``frame_angle`` :math:`\theta_v` (radians, counter-clockwise seen from
    outside; default 0), are

    .. math:: D_1 u = s\, e_1' \cdot g, \qquad D_2 u = s\, e_2' \cdot g, \qquad
              e_1' = \cos\theta\, e_1 + \sin\theta\, e_2, \quad
              e_2' = -\sin\theta\, e_1 + \cos\theta\, e_2,

    with ``s = scale``. Turning the frame by :math:`\theta_v` multiplies
    :math:`D_1 u + i D_2 u` at vertex ``v`` by :math:`e^{-i\theta_v}`, so its modulus does
    not depend on the frame. Unlike :func:`directional_derivatives`, which projects
    each face's gradient on that face's own east/north before averaging, the frame
    here is one per vertex, which is what makes this exact.

    Parameters
    ----------
    vertices, faces : (V, 3) float64 and (F, 3) int64 arrays
    scale : float
        ``s`` above (default 1).
    frame_angle : (V,) array or None
        :math:`\theta_v` in radians, counter-clockwise seen from outside; ``None`` is 0.

    Returns
    -------
    D_1, D_2 : scipy.sparse.csr_matrix
        ``(V, V)`` each.
    """
    num_faces = len(faces)
    grad = sp.csr_matrix(igl.grad(vertices, faces))
    average = face_to_vertex(vertices, faces)
    components = [average @ grad[k * num_faces : (k + 1) * num_faces] for k in range(3)]
    e1, e2 = vertex_frames(vertices)
    if frame_angle is not None:
        angle = np.asarray(frame_angle, dtype=np.float64).reshape(-1, 1)
        e1, e2 = np.cos(angle) * e1 + np.sin(angle) * e2, -np.sin(angle) * e1 + np.cos(angle) * e2

    def project(direction: np.ndarray) -> sp.csr_matrix:
        out = sp.csr_matrix(scale * sum(sp.diags(direction[:, k]) @ components[k] for k in range(3)))
        out.sum_duplicates()
        out.sort_indices()
        return out

    return project(e1), project(e2)


def poleward_sign(vertices: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """``sign(latitude)`` of each vertex: +1 north, -1 south, 0 within ``tol`` of the equator.

    Parameters
    ----------
    vertices : (V, 3) array
    tol : float
        Half-width in ``z`` of the band counted as the equator (default 1e-12).

    Returns
    -------
    (V,) float64 array
    """
    z = vertices[:, 2]
    return np.where(np.abs(z) <= tol, 0.0, np.sign(z))


def edges(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges ``(E, 2)`` with ``a < b``, sorted lexicographically."""
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    pairs.sort(axis=1)
    n = int(faces.max()) + 1
    keys = np.sort(pairs[:, 0].astype(np.int64) * n + pairs[:, 1])
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # np.unique, by sorting (its hash path is slow)
    return np.stack([keys // n, keys % n], axis=1)


def bandwidth_order(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Reverse Cuthill-McKee order of the mesh's vertex graph: neighbours get nearby indices.

    The permutation of :func:`scipy.sparse.csgraph.reverse_cuthill_mckee` on the symmetric
    adjacency of the edges: it makes the bandwidth of the operators small, so that the rows a
    sparse product reads together lie together in memory.

    Parameters
    ----------
    faces : (F, 3) int array
    num_vertices : int

    Returns
    -------
    (V,) int64
        ``order[i]`` is the old index of the vertex that goes to position ``i``.
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    e = edges(faces)
    rows, cols = np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]]
    adjacency = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(num_vertices, num_vertices))
    return np.asarray(reverse_cuthill_mckee(adjacency, symmetric_mode=True), dtype=np.int64)


def mean_edge_length(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Mean Euclidean (chord) length of the mesh's edges.

    Parameters
    ----------
    vertices, faces : (V, 3) float64 and (F, 3) int64 arrays

    Returns
    -------
    float
    """
    e = edges(faces)
    return float(np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1).mean())


def upsample_matrix(parent_edges: np.ndarray, num_coarse: int) -> sp.csr_matrix:
    r"""Interpolation from a level to the next, ``(V_{fine}, V_{coarse})``.

    Coarse vertices keep their value (identity on the first ``V_coarse`` rows);
    vertex ``V_coarse + k`` takes the mean of the two ends ``parent_edges[k]``
    of the edge it splits.

    Parameters
    ----------
    parent_edges : (V_fine - V_coarse, 2) int array
        The edge each new vertex splits, in the order of the new vertices.
    num_coarse : int
        ``V_coarse``.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(V_fine, V_coarse)``.
    """
    num_new = len(parent_edges)
    rows = np.concatenate([np.arange(num_coarse), np.repeat(np.arange(num_new) + num_coarse, 2)])
    cols = np.concatenate([np.arange(num_coarse), parent_edges.reshape(-1)])
    vals = np.concatenate([np.ones(num_coarse), np.full(2 * num_new, 0.5)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(num_coarse + num_new, num_coarse))


def one_ring(faces: np.ndarray, num_vertices: int, max_degree: int = 6) -> np.ndarray:
    """Neighbour table ``(V, max_degree)``: each row lists the vertex's neighbours
    in increasing order, padded with ``-1``.

    Parameters
    ----------
    faces : (F, 3) int array
    num_vertices : int
        ``V``.
    max_degree : int
        Columns of the table (default 6).

    Returns
    -------
    (V, max_degree) int64 array

    Raises
    ------
    ValueError
        If a vertex has more than ``max_degree`` neighbours.
    """
    e = edges(faces)
    both = np.concatenate([e, e[:, ::-1]])
    order = np.lexsort((both[:, 1], both[:, 0]))
    both = both[order]
    degree = np.bincount(both[:, 0], minlength=num_vertices)
    if degree.max() > max_degree:
        raise ValueError(f"vertex degree {degree.max()} exceeds max_degree={max_degree}")
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    slot = np.arange(len(both)) - start[both[:, 0]]
    table = np.full((num_vertices, max_degree), -1, dtype=np.int64)
    table[both[:, 0], slot] = both[:, 1]
    return table
