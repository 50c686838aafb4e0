r"""Hierarchies of sphere meshes, fine to coarse, with the operators between consecutive levels.

A U-Net or a ResNet needs, between a fine mesh :math:`h_i` (``V_i`` vertices) and the next
coarser one :math:`h_{i+1}`:

* a **prolongation** :math:`P_i` ``(V_i, V_{i+1})``, coarse -> fine: by default the barycentric
  interpolation of the fine vertices on the coarse mesh
  (:func:`~meshcnn.geometry.barycentric_interpolation`); rows sum to 1, so constants are kept;
* a **restriction** :math:`R_i` ``(V_{i+1}, V_i)``, fine -> coarse: by default area-weighted
  pooling, the adjoint of :math:`P_i` for the area inner products, rows normalised,

  .. math:: R_i = \mathrm{diag}(P_i^\top a)^{-1}\, P_i^\top\, \mathrm{diag}(a),

  with :math:`a` the fine mesh's ``vertex_areas``: coarse vertex ``c`` takes the mean of the
  fine values under its hat function, weighted by their areas (full weighting, as in
  multigrid). A coarse vertex whose hat covers no fine vertex takes the interpolated value
  of the fine mesh at its position instead.

Any pair of meshes works (an ICON grid over icospheres, random points over HEALPix). Between
two meshes with the same :attr:`Mesh.polar_symmetry`, the computed prolongation is averaged over
those rotations (:mod:`meshcnn.geometry._symmetry`), so the operators commute with them exactly.
grids with an exact nesting give their own operators: the icosphere
(:meth:`MeshHierarchy.icosphere`: coarse vertices are the first fine ones, the upsampling
of :attr:`Mesh.upsample`, the 1-ring mean of :class:`meshcnn.MeshPool`) and HEALPix
(:class:`meshcnn.grids.HealpixGrid`: the exact mean of the 4 nested children).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .._cache import memoize
from ._symmetry import polar_permutation, symmetrize
from .locate import barycentric_interpolation
from .mesh import Mesh, check_level, icosphere

__all__ = ["MeshHierarchy", "area_weighted_restriction", "ring_mean"]


def area_weighted_restriction(fine: Mesh, coarse: Mesh, prolongation: sp.spmatrix | None = None) -> sp.csr_matrix:
    r"""Area-weighted pooling ``(V_coarse, V_fine)`` from ``fine`` to ``coarse`` (module docstring).

    Parameters
    ----------
    fine, coarse : Mesh
    prolongation : sparse ``(V_fine, V_coarse)``, optional
        :math:`P`; default the barycentric interpolation of the fine vertices on ``coarse``.

    Returns
    -------
    scipy.sparse.csr_matrix
        Non-negative, every row sums to 1.
    """
    if prolongation is None:
        prolongation = barycentric_interpolation(coarse, fine.vertices, normalize=False)
    weighted = sp.csr_matrix(prolongation.T @ sp.diags(fine.vertex_areas))
    total = np.asarray(weighted.sum(axis=1)).ravel()
    empty = total <= 0.0
    if empty.any():  # coarse vertices whose hat covers no fine vertex: interpolate the fine mesh there
        fallback = barycentric_interpolation(fine, coarse.vertices[empty], normalize=False)
        rows = sp.csr_matrix(
            (np.ones(empty.sum()), (np.flatnonzero(empty), np.arange(empty.sum()))),
            shape=(coarse.num_vertices, int(empty.sum())),
        )
        weighted = sp.csr_matrix(weighted + rows @ fallback)
        total[empty] = 1.0
    out = sp.csr_matrix(sp.diags(1.0 / total) @ weighted)
    out.sort_indices()
    return out


def ring_mean(mesh: Mesh, num_out: int) -> sp.csr_matrix:
    r"""``(num_out, V)``: vertex ``i < num_out`` takes the mean over its closed 1-ring,
    :math:`y_i = \frac{1}{|R_i|}\sum_{j \in R_i} x_j` (the pooling of :class:`meshcnn.MeshPool`
    on a nested hierarchy, as a matrix)."""
    neighbors = mesh.neighbors[:num_out]
    ring = np.concatenate([np.arange(num_out)[:, None], neighbors], axis=1)
    valid = ring >= 0
    size = valid.sum(axis=1)
    rows = np.repeat(np.arange(num_out), size)
    out = sp.csr_matrix((np.repeat(1.0 / size, size), (rows, ring[valid])), shape=(num_out, mesh.num_vertices))
    out.sort_indices()
    return out


class MeshHierarchy:
    r"""Meshes from fine to coarse and the restriction / prolongation between consecutive ones.

    Parameters
    ----------
    meshes : sequence of Mesh
        ``meshes[0]`` the finest; each coarser than the one before (fewer vertices).
    restrictions : sequence of sparse matrices or None, optional
        ``restrictions[i]`` ``(V_{i+1}, V_i)``, fine -> coarse; an entry (or the whole
        argument) ``None`` is computed from geometry (:func:`area_weighted_restriction`).
    prolongations : sequence of sparse matrices or None, optional
        ``prolongations[i]`` ``(V_i, V_{i+1})``, coarse -> fine; ``None``: barycentric
        interpolation.
    nested : bool
        The coarse vertices are the first vertices of every finer mesh, in order (checked):
        a stride-2 convolution is then evaluated at those vertices only, as on the icosphere.
    name : str, optional

    Attributes
    ----------
    meshes : tuple of Mesh
    restrictions, prolongations : tuple of scipy.sparse.csr_matrix
        ``len(meshes) - 1`` each.

    Indexing: ``h[i]`` is a :class:`Mesh`; ``h[i:]`` (step 1) the hierarchy from ``h[i]`` down,
    sharing the operators. A layer given a hierarchy works on ``h[0]`` (and ``h[1]`` when it
    changes resolution).
    """

    def __init__(
        self,
        meshes: Sequence[Mesh],
        *,
        restrictions: Sequence[sp.spmatrix | None] | None = None,
        prolongations: Sequence[sp.spmatrix | None] | None = None,
        nested: bool = False,
        name: str | None = None,
    ) -> None:
        meshes = tuple(meshes)
        if not meshes or not all(isinstance(m, Mesh) for m in meshes):
            raise ValueError("MeshHierarchy needs a non-empty sequence of Mesh objects, finest first")
        for i, (fine, coarse) in enumerate(zip(meshes, meshes[1:])):
            if coarse.num_vertices >= fine.num_vertices:
                raise ValueError(
                    f"meshes must go from fine to coarse: mesh {i + 1} ({coarse.describe()}) has no "
                    f"fewer vertices than mesh {i} ({fine.describe()})"
                )
            if nested and not np.array_equal(fine.vertices[: coarse.num_vertices], coarse.vertices):
                raise ValueError(f"nested=True but the vertices of mesh {i + 1} are not the first vertices of mesh {i}")
        count = len(meshes) - 1
        restrictions = [None] * count if restrictions is None else list(restrictions)
        prolongations = [None] * count if prolongations is None else list(prolongations)
        if len(restrictions) != count or len(prolongations) != count:
            raise ValueError(
                f"{len(meshes)} meshes need {count} restrictions and prolongations, got "
                f"{len(restrictions)} and {len(prolongations)}"
            )
        for i, (fine, coarse) in enumerate(zip(meshes, meshes[1:])):
            order = fine.polar_symmetry if fine.polar_symmetry == coarse.polar_symmetry else 1
            if prolongations[i] is None:
                prolongations[i] = barycentric_interpolation(coarse, fine.vertices, normalize=False)
                if order > 1:  # the coarse triangles break the symmetry the operators keep: average it back
                    prolongations[i] = symmetrize(
                        prolongations[i],
                        polar_permutation(fine.vertices, order),
                        order,
                        polar_permutation(coarse.vertices, order),
                    )
            if restrictions[i] is None:
                restrictions[i] = area_weighted_restriction(fine, coarse, prolongations[i])
            prolongations[i] = _checked(prolongations[i], (fine.num_vertices, coarse.num_vertices), f"prolongation {i}")
            restrictions[i] = _checked(restrictions[i], (coarse.num_vertices, fine.num_vertices), f"restriction {i}")
        self.meshes = meshes
        self.restrictions = tuple(restrictions)
        self.prolongations = tuple(prolongations)
        self.nested = bool(nested)
        self.name = name

    @classmethod
    def icosphere(cls, max_level: int, min_level: int = 0, mesh_dir: str | os.PathLike | None = None) -> MeshHierarchy:
        """The icosphere levels ``max_level`` down to ``min_level``, with their exact nesting.

        Prolongation :attr:`Mesh.upsample` (each new vertex the mean of its edge's ends),
        restriction :func:`ring_mean` (the 1-ring mean), ``nested=True``.
        """
        max_level, min_level = check_level(max_level, "max_level"), check_level(min_level, "min_level")
        if min_level > max_level:
            raise ValueError(f"min_level ({min_level}) must not be above max_level ({max_level})")
        return _icosphere_hierarchy(max_level, min_level, None if mesh_dir is None else os.fspath(mesh_dir))

    def __copy__(self) -> MeshHierarchy:
        return self  # immutable by contract, like its meshes

    def __deepcopy__(self, memo: dict) -> MeshHierarchy:
        return self

    def __len__(self) -> int:
        return len(self.meshes)

    def __getitem__(self, index: int | slice) -> Mesh | MeshHierarchy:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self.meshes))
            if step != 1 or start >= stop:
                raise ValueError(f"a hierarchy slice must be non-empty with step 1, got {index}")
            return MeshHierarchy(
                self.meshes[start:stop],
                restrictions=self.restrictions[start : stop - 1],
                prolongations=self.prolongations[start : stop - 1],
                nested=self.nested,
                name=self.name,
            )
        return self.meshes[index]

    def __iter__(self):
        return iter(self.meshes)

    @property
    def fingerprint(self) -> str:
        """16 hex digits identifying the meshes (their :attr:`Mesh.fingerprint`, in order)."""
        return hashlib.sha256(",".join(m.fingerprint for m in self.meshes).encode()).hexdigest()[:16]

    @property
    def is_icosphere(self) -> bool:
        """Whether this is a stretch of the nested icosphere hierarchy (:meth:`icosphere`)."""
        return self.nested and all(m.is_icosphere for m in self.meshes)

    def __repr__(self) -> str:
        what = f"name={self.name!r}, " if self.name else ""
        return f"MeshHierarchy({what}vertices={[m.num_vertices for m in self.meshes]}, nested={self.nested})"


def _checked(matrix: sp.spmatrix, shape: tuple[int, int], what: str) -> sp.csr_matrix:
    out = (
        matrix if sp.isspmatrix_csr(matrix) and matrix.dtype == np.float64 else sp.csr_matrix(matrix, dtype=np.float64)
    )
    if out.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {out.shape}")
    if not np.all(np.isfinite(out.data)):
        raise ValueError(f"{what} has non-finite entries")
    if np.diff(out.indptr).min(initial=1) == 0:
        raise ValueError(f"{what} has an empty row: every output vertex must take some input")
    return out


@memoize(maxsize=None, copy=False)  # immutable by contract, like the meshes
def _icosphere_hierarchy(max_level: int, min_level: int, mesh_dir: str | None) -> MeshHierarchy:
    meshes = [icosphere(level, mesh_dir) for level in range(max_level, min_level - 1, -1)]
    return MeshHierarchy(
        meshes,
        restrictions=[ring_mean(f, c.num_vertices) for f, c in zip(meshes, meshes[1:])],
        prolongations=[f.upsample for f in meshes[:-1]],
        nested=True,
        name="icosphere",
    )
