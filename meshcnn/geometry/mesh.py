r"""Icosphere hierarchy with precomputed differential operators.

Level 0 is the regular icosahedron with a vertex at each pole. Level ``l + 1``
splits every triangle of level ``l`` into four by adding the midpoint of every
edge, projected onto the unit sphere. New vertices are appended after the old
ones, so the hierarchy is nested::

    icosphere(l + 1).vertices[: icosphere(l).num_vertices] == icosphere(l).vertices

which is what pooling (keep the first vertices) and upsampling rely on.

Command line::

    python -m meshcnn.geometry --levels 0-7 --out meshes/
"""

from __future__ import annotations

import argparse
import functools
import os
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .._cache import memoize
from .._progress import progress_bar
from ..io import array_checksum, save_npz
from . import operators as ops
from ._assembly import closed_mesh_operators
from ._delaunay import orient_outward, sphere_points, spherical_delaunay
from ._symmetry import polar_permutation, symmetrize, symmetrize_areas
from .coords import latlon_to_xyz, num_vertices_at, xyz_to_latlon

if TYPE_CHECKING:
    import torch

__all__ = ["Mesh", "icosphere", "as_mesh", "MAX_LEVEL", "FORMAT_VERSION", "level_of", "check_level"]

MAX_LEVEL = 9
FORMAT_VERSION = 1
#: Vertex orders :meth:`Mesh.from_points` can give: the points' own (``None``) or reverse Cuthill-McKee.
REORDERINGS = (None, "rcm")


def check_level(level: int, name: str = "level", low: int = 0) -> int:
    """Return ``level`` as an int, or raise ``ValueError`` if it is not in ``low..MAX_LEVEL``.

    Parameters
    ----------
    level : int
        Booleans are refused.
    name : str
        Name of the value in the error message (default ``"level"``).
    low : int
        Smallest level accepted (default 0).
    """
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not low <= level <= MAX_LEVEL:
        raise ValueError(f"{name} must be an integer in {low}..{MAX_LEVEL}, got {level!r}")
    return int(level)


def level_of(num_vertices: int) -> int | None:
    """The level whose icosphere has ``num_vertices`` vertices, or ``None``."""
    for level in range(MAX_LEVEL + 1):
        if num_vertices_at(level) == num_vertices:
            return level
    return None


def _icosahedron() -> tuple[np.ndarray, np.ndarray]:
    """Unit icosahedron: poles at ``±z``, two rings of five at latitude ``±atan(1/2)``."""
    ring_lat = np.arctan(0.5)
    upper_lon = np.deg2rad(np.arange(5) * 72.0)
    lower_lon = upper_lon + np.deg2rad(36.0)

    vertices = np.concatenate(
        [[[0.0, 0.0, 1.0]], latlon_to_xyz(ring_lat, upper_lon), latlon_to_xyz(-ring_lat, lower_lon), [[0.0, 0.0, -1.0]]]
    )
    faces = []
    for i in range(5):
        u, u_next = 1 + i, 1 + (i + 1) % 5
        d, d_next = 6 + i, 6 + (i + 1) % 5
        faces += [[0, u, u_next], [u, d, u_next], [u_next, d, d_next], [11, d_next, d]]
    faces = np.array(faces, dtype=np.int64)
    # orient every face outward (counter-clockwise seen from outside)
    v = vertices[faces]
    outward = np.einsum("ij,ij->i", np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), v.mean(1)) > 0
    faces[~outward] = faces[~outward][:, ::-1]
    return vertices, faces


def _subdivide(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each face in four; returns (vertices, faces, parent_edges of the new vertices)."""
    n = len(vertices)
    f = len(faces)
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    pairs.sort(axis=1)
    keys, inverse = np.unique(pairs[:, 0] * n + pairs[:, 1], return_inverse=True)
    parents = np.stack([keys // n, keys % n], axis=1)
    midpoints = vertices[parents[:, 0]] + vertices[parents[:, 1]]
    midpoints /= np.linalg.norm(midpoints, axis=1, keepdims=True)
    mid = (inverse.reshape(3, f) + n).T  # (F, 3): midpoints of edges 01, 12, 20
    a, b, c = faces.T
    ab, bc, ca = mid.T
    new_faces = np.concatenate([np.stack(t, axis=1) for t in ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))])
    return np.concatenate([vertices, midpoints]), new_faces, parents


def _geometry(level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, faces and parent edges of the new vertices at ``level``."""
    vertices, faces = _icosahedron()
    parents = np.zeros((0, 2), dtype=np.int64)
    for _ in range(level):
        vertices, faces, parents = _subdivide(vertices, faces)
    return vertices, faces, parents


@dataclass(frozen=True, eq=False)
class Mesh:
    r"""A closed triangulation of the unit sphere and its operators: one level of the
    icosphere hierarchy (:func:`icosphere`), or any spherical grid
    (:meth:`from_points`, :meth:`from_faces`).

    Conventions: unit sphere; ``lat`` in ``[-pi/2, pi/2]`` and ``lon`` in
    ``(-pi, pi]``, radians; faces counter-clockwise seen from outside; a vertex
    signal is indexed by vertex, a batch of signals is ``(batch, channels, V)``.

    Attributes
    ----------
    level : int or None
        Icosphere subdivision level, ``V = 10 * 4**level + 2``, ``F = 20 * 4**level``;
        ``None`` for a mesh that is not an icosphere.
    vertices : (V, 3) float64
        Unit vectors; on an icosphere the first ``V_{l-1}`` are the vertices of level ``l - 1``.
    faces : (F, 3) int64
        Counter-clockwise seen from outside; every edge shared by two faces (closed).
    parent_edges : (V - V_{l-1}, 2) int64 or None
        Icosphere only: for each vertex added at this level, the two ends of the edge it splits.
    vertex_areas : (V,) float64
        Lumped mixed-Voronoi areas :math:`M_{ii}`, summing to the polyhedron's area
        (slightly under :math:`4\pi`).
    laplacian : scipy.sparse (V, V)
        Cotangent stiffness :math:`L`, :math:`(Lu)_i = \frac12\sum_j (\cot\alpha_{ij}+\cot\beta_{ij})(u_j-u_i)`.
        Symmetric, negative semi-definite, dimension-free; :math:`M^{-1}L\,u \approx \Delta u`.
    grad_ew, grad_ns : scipy.sparse (V, V)
        :math:`D = h\,A\,\sum_k \mathrm{diag}(e_k)\,G_k` with :math:`G` the face gradient
        of the linear interpolant, :math:`e` the unit east (north) vector at each face
        centroid, :math:`A` the area-weighted face-to-vertex average and
        :math:`h` = :attr:`mean_edge_length`. Dimension-free: :math:`D u \approx h\,\partial_{ew} u`.
        For :math:`u = z`, ``grad_ns @ z ≈ h cos(lat)`` and ``grad_ew @ z ≈ 0``.
    mean_edge_length : float
        :math:`h`, mean chord length of the edges on the unit sphere.
    name : str or None
        What the mesh is (``"healpix16n"``, a grid file's name); ``None`` for an icosphere.
    polar_symmetry : int
        ``k > 1``: the operators are averaged over the rotations by ``2 pi / k`` about the polar
        axis, which map the vertices onto themselves, so that they commute with them exactly
        whatever the triangulation (:mod:`meshcnn.geometry._symmetry`); 1 otherwise.
    point_order : (V,) int64 or None
        Set when :meth:`from_points` or :meth:`from_faces` reordered the points
        (``reorder="rcm"``): vertex ``i`` is point ``point_order[i]`` of the input, so data
        given on the points maps to the mesh by :meth:`points_to_vertices`
        (``x[..., point_order]``) and back by :meth:`vertices_to_points`. ``None``: the
        vertices are the points in the order given.
    """

    level: int | None
    vertices: np.ndarray
    faces: np.ndarray
    parent_edges: np.ndarray | None
    vertex_areas: np.ndarray
    laplacian: sp.csr_matrix
    grad_ew: sp.csr_matrix
    grad_ns: sp.csr_matrix
    mean_edge_length: float
    name: str | None = None
    polar_symmetry: int = 1
    point_order: np.ndarray | None = None

    def __copy__(self) -> Mesh:
        return self  # immutable by contract: a copied model shares its meshes

    def __deepcopy__(self, memo: dict) -> Mesh:
        return self

    @property
    def is_icosphere(self) -> bool:
        """Whether this is a level of the icosphere hierarchy (:func:`icosphere`)."""
        return self.level is not None

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identity of the mesh: 16 hex digits of the SHA-256 of its vertices and faces.

        Two meshes with the same points in the same order and the same faces share it; layers
        store it in their state so that weights are not loaded onto another mesh.
        """
        arrays = {"vertices": self.vertices, "faces": self.faces}
        if self.polar_symmetry > 1:
            arrays["polar_symmetry"] = np.array(self.polar_symmetry, dtype=np.int64)
        return array_checksum(arrays)[:16]

    def points_to_vertices(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Data given on the input points, ``(..., V)`` in their order -> the mesh's vertex order.

        ``x[..., point_order]``; ``x`` itself when the mesh kept the points' order.
        """
        return self._take(x, self.point_order)

    def vertices_to_points(self, y: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """The inverse of :meth:`points_to_vertices`: ``(..., V)`` on the vertices -> the points' order."""
        return self._take(y, self._point_rank)

    @functools.cached_property
    def _point_rank(self) -> np.ndarray | None:
        """The inverse of :attr:`point_order`: point ``j`` is vertex ``_point_rank[j]``."""
        return None if self.point_order is None else _inverse_permutation(self.point_order)

    def _take(self, x: np.ndarray | torch.Tensor, index: np.ndarray | None) -> np.ndarray | torch.Tensor:
        """``x[..., index]`` (``x`` itself for ``index=None``), after checking the last axis has ``V`` entries."""
        if x.ndim < 1 or x.shape[-1] != self.num_vertices:
            raise ValueError(
                f"expected data of shape (..., {self.num_vertices}) for {self.describe()}, got {tuple(x.shape)}"
            )
        if index is None:
            return x
        if isinstance(x, np.ndarray):
            return x[..., index]
        import torch

        return x[..., torch.as_tensor(index, device=x.device)]

    def describe(self) -> str:
        """``"level 5"`` for an icosphere, else the name (or ``"a mesh"``) and the vertex count."""
        if self.is_icosphere:
            return f"level {self.level}"
        return f"{self.name or 'a mesh'} (V={self.num_vertices})"

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    @property
    def lat(self) -> np.ndarray:
        """Latitude of each vertex, radians, ``(V,)`` (:func:`meshcnn.geometry.xyz_to_latlon`)."""
        return xyz_to_latlon(self.vertices)[0]

    @property
    def lon(self) -> np.ndarray:
        """Longitude of each vertex, radians in ``(-pi, pi]``, ``(V,)``."""
        return xyz_to_latlon(self.vertices)[1]

    @functools.cached_property
    def upsample(self) -> sp.csr_matrix | None:
        """``(V, V_{l-1})`` interpolation from the previous level; ``None`` at level 0 and
        for a mesh that is not an icosphere (see :class:`~meshcnn.geometry.MeshHierarchy`)."""
        if not self.level:
            return None
        return ops.upsample_matrix(self.parent_edges, num_vertices_at(self.level - 1))

    @functools.cached_property
    def grad_poleward(self) -> sp.csr_matrix:
        r"""``(V, V)`` poleward derivative tap :math:`\mathrm{sign}(\mathrm{lat})\, D_{ns}`: northward in the
        northern hemisphere, southward in the southern, zero on the equator."""
        return sp.csr_matrix(sp.diags(ops.poleward_sign(self.vertices)) @ self.grad_ns)

    @functools.cached_property
    def grad_tangent(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        r"""``(D_1, D_2)``, each ``(V, V)``: the vertex gradient on the frame of
        :func:`meshcnn.geometry.operators.vertex_frames` (east/north, fixed axes at the poles),
        scaled by :attr:`mean_edge_length` like the other taps; averaged over the rotations of
        :attr:`polar_symmetry`, which carry east and north onto east and north."""
        taps = ops.tangent_gradient(self.vertices, self.faces, scale=self.mean_edge_length)
        if self.polar_symmetry > 1:
            perm = polar_permutation(self.vertices, self.polar_symmetry)
            taps = tuple(symmetrize(t, perm, self.polar_symmetry) for t in taps)
        return taps

    @functools.cached_property
    def neighbors(self) -> np.ndarray:
        """1-ring neighbour table ``(V, D)``, padded with ``-1``: ``D = 6`` on an icosphere (the 12
        icosahedron vertices have 5), the largest vertex degree on any other mesh."""
        if self.is_icosphere:
            return ops.one_ring(self.faces, self.num_vertices)
        degree = int(np.bincount(self.faces.reshape(-1), minlength=self.num_vertices).max())
        return ops.one_ring(self.faces, self.num_vertices, max_degree=degree)

    @functools.cached_property
    def edges(self) -> np.ndarray:
        """Unique edges ``(E, 2)``, ``E = 3 F / 2`` (``30 * 4**level`` on an icosphere)."""
        return ops.edges(self.faces)

    def __repr__(self) -> str:
        what = f"level={self.level}" if self.is_icosphere else f"name={self.name!r}"
        return f"Mesh({what}, num_vertices={self.num_vertices}, num_faces={self.num_faces})"

    # ------------------------------------------------------------------ build / save / load
    @classmethod
    def build(cls, level: int) -> Mesh:
        """Generate the mesh and compute its operators from scratch.

        The operators are assembled face by face (:func:`~meshcnn.geometry._assembly.closed_mesh_operators`);
        they equal those of the general functions of :mod:`meshcnn.geometry.operators` to rounding.
        """
        level = check_level(level)
        vertices, faces, parents = _geometry(level)
        built = closed_mesh_operators(vertices, faces)
        return cls(
            level=level,
            vertices=vertices,
            faces=faces,
            parent_edges=parents,
            vertex_areas=built.vertex_areas,
            laplacian=built.laplacian,
            grad_ew=built.grad_ew,
            grad_ns=built.grad_ns,
            mean_edge_length=built.mean_edge_length,
        )

    @classmethod
    def from_points(
        cls,
        points: np.ndarray | None = None,
        *,
        lat: np.ndarray | None = None,
        lon: np.ndarray | None = None,
        name: str | None = None,
        polar_symmetry: int = 1,
        reorder: str | None = None,
    ) -> Mesh:
        r"""The mesh of any set of points on the sphere: their spherical Delaunay triangulation.

        The faces are the convex hull of the points (the spherical Delaunay triangulation,
        see :mod:`meshcnn.geometry._delaunay`), outward and counter-clockwise; the operators
        are assembled by the same code as an icosphere's (:meth:`build`), so a HEALPix grid,
        a native model grid or scattered stations get the same ``laplacian``, ``grad_ew``,
        ``grad_ns``, ``vertex_areas`` and tangent frames, in the order of the points given.

        Parameters
        ----------
        points : (N, 3) array, optional
            Unit vectors (renormalised; norms must be within 1e-6 of 1).
        lat, lon : (N,) arrays, optional
            Degrees, instead of ``points``.
        name : str, optional
            What the mesh is, shown in errors and ``repr``.
        polar_symmetry : int, optional
            ``k > 1`` when the rotation by ``2 pi / k`` about the polar axis maps the points onto
            themselves (4 for HEALPix): the operators are then averaged over those rotations so
            that the layers are exactly equivariant to them, even where cocircular points leave
            the triangulation a choice that breaks the symmetry. ``ValueError`` if the points are
            not symmetric, or one lies on the axis.
        reorder : {None, "rcm"}, optional
            ``"rcm"``: number the vertices in reverse Cuthill-McKee order of the triangulation's
            edges (:func:`meshcnn.geometry.operators.bandwidth_order`), so that neighbours lie
            close in memory and the layers' sparse products read them together: points in an
            arbitrary order (scattered stations, a shuffled grid) then convolve about as fast as
            an icosphere (``experiments/benchmark/RESULTS.md``). :attr:`point_order` records the
            permutation; map data with :meth:`points_to_vertices`. ``None`` keeps the points'
            order.

        Returns
        -------
        Mesh
            ``level`` is ``None``.

        Raises
        ------
        ValueError
            Fewer than 4 points; a wrong shape or non-finite values; points off the unit
            sphere; duplicate or coincident points; all points in one hemisphere (a regional
            grid, whose hull is not a sphere: such data needs a global grid with a mask of
            valid points).
        """
        vertices = sphere_points(points, lat, lon)
        return cls._closed(vertices, spherical_delaunay(vertices), name, polar_symmetry, reorder)

    @classmethod
    def from_faces(
        cls, vertices: np.ndarray, faces: np.ndarray, *, name: str | None = None, reorder: str | None = None
    ) -> Mesh:
        """The mesh of a given triangulation of the sphere (a grid file's own connectivity).

        Parameters
        ----------
        vertices : (V, 3) array
            Unit vectors, checked as in :meth:`from_points`.
        faces : (F, 3) int array
            0-based; turned counter-clockwise seen from outside where they are not.
        name : str, optional
        reorder : {None, "rcm"}, optional
            As in :meth:`from_points`.

        Raises
        ------
        ValueError
            Indices out of range, degenerate faces, a vertex in no face, or a triangulation
            that is not closed (every edge shared by exactly two faces), besides the checks
            on the points of :meth:`from_points`.
        """
        vertices = sphere_points(vertices)
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
            raise ValueError(f"faces must be an (F, 3) integer array, got shape {faces.shape} of {faces.dtype}")
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(f"face indices must be in 0..{len(vertices) - 1}, got {faces.min()}..{faces.max()}")
        return cls._closed(vertices, orient_outward(vertices, faces), name, reorder=reorder)

    @classmethod
    def _closed(
        cls,
        vertices: np.ndarray,
        faces: np.ndarray,
        name: str | None,
        polar_symmetry: int = 1,
        reorder: str | None = None,
    ) -> Mesh:
        if reorder not in REORDERINGS:
            raise ValueError(f"reorder must be one of {REORDERINGS}, got {reorder!r}")
        point_order = None
        if reorder == "rcm":
            point_order = ops.bandwidth_order(faces, len(vertices))
            vertices, faces = vertices[point_order], _inverse_permutation(point_order)[faces]
        perm = polar_permutation(vertices, polar_symmetry) if polar_symmetry != 1 else None
        built = closed_mesh_operators(vertices, faces)  # checks that the mesh is closed and oriented
        areas, laplacian, grad_ew, grad_ns = built.vertex_areas, built.laplacian, built.grad_ew, built.grad_ns
        if perm is not None:
            areas = symmetrize_areas(areas, perm, polar_symmetry)
            laplacian, grad_ew, grad_ns = (symmetrize(m, perm, polar_symmetry) for m in (laplacian, grad_ew, grad_ns))
        return cls(
            level=None,
            vertices=vertices,
            faces=faces,
            parent_edges=None,
            vertex_areas=areas,
            laplacian=laplacian,
            grad_ew=grad_ew,
            grad_ns=grad_ns,
            mean_edge_length=built.mean_edge_length,
            name=name,
            polar_symmetry=int(polar_symmetry),
            point_order=point_order,
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "level": np.array(-1 if self.level is None else self.level, dtype=np.int64),
            "name": np.array(self.name or ""),
            "polar_symmetry": np.array(self.polar_symmetry, dtype=np.int64),
            "vertices": self.vertices,
            "faces": self.faces,
            "parent_edges": np.zeros((0, 2), np.int64) if self.parent_edges is None else self.parent_edges,
            "vertex_areas": self.vertex_areas,
            "mean_edge_length": np.array(self.mean_edge_length),
            "point_order": np.zeros(0, np.int64) if self.point_order is None else self.point_order,
        }
        for name in ("laplacian", "grad_ew", "grad_ns"):
            mat = getattr(self, name)
            arrays[f"{name}.data"] = mat.data
            arrays[f"{name}.indices"] = mat.indices.astype(np.int64)
            arrays[f"{name}.indptr"] = mat.indptr.astype(np.int64)
        return arrays

    def save(self, path: str | os.PathLike) -> None:
        """Write the mesh as an ``.npz`` with a format version and a SHA-256 checksum (atomic)."""
        arrays = self._arrays()
        save_npz(
            path,
            format_version=np.array(FORMAT_VERSION, dtype=np.int64),
            checksum=np.array(array_checksum(arrays)),
            **arrays,
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Mesh:
        """Read a file written by :meth:`save`; ``ValueError`` if it is corrupt,
        truncated, of another format version or fails its checksum."""
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(f"{path}: unreadable mesh file ({exc})") from exc
        version = arrays.pop("format_version", None)
        if version is None or int(version) != FORMAT_VERSION:
            raise ValueError(f"{path}: format version {version}, expected {FORMAT_VERSION}")
        checksum = arrays.pop("checksum", None)
        if checksum is None or str(checksum) != array_checksum(arrays):
            raise ValueError(f"{path}: checksum mismatch")
        level = int(arrays["level"])
        level = None if level < 0 else level
        v = len(arrays["vertices"])

        def matrix(name: str) -> sp.csr_matrix:
            parts = (arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"])
            return sp.csr_matrix(parts, shape=(v, v))

        return cls(
            level=level,
            vertices=arrays["vertices"],
            faces=arrays["faces"],
            parent_edges=None if level is None else arrays["parent_edges"],
            vertex_areas=arrays["vertex_areas"],
            laplacian=matrix("laplacian"),
            grad_ew=matrix("grad_ew"),
            grad_ns=matrix("grad_ns"),
            mean_edge_length=float(arrays["mean_edge_length"]),
            name=(str(arrays["name"]) or None) if "name" in arrays else None,
            polar_symmetry=int(arrays.get("polar_symmetry", 1)),
            point_order=arrays["point_order"] if len(arrays.get("point_order", ())) else None,
        )


def mesh_file(mesh_dir: str | os.PathLike, level: int) -> Path:
    """Path of the cached file for ``level`` inside ``mesh_dir``.

    Parameters
    ----------
    mesh_dir : str or path-like
    level : int
    """
    return Path(mesh_dir) / f"icosphere_{level}.npz"


@memoize(maxsize=None, copy=False)  # a Mesh is immutable by contract
def _icosphere(level: int, mesh_dir: str | None) -> Mesh:
    if mesh_dir is None:
        return Mesh.build(level)
    path = mesh_file(mesh_dir, level)
    try:
        mesh = Mesh.load(path)
        if mesh.level != level:
            raise ValueError(f"{path}: holds level {mesh.level}, expected {level}")
        return mesh
    except (FileNotFoundError, ValueError) as exc:
        reason = "missing" if not path.exists() else str(exc)
        warnings.warn(f"mesh file for level {level} not usable ({reason}); recomputing", stacklevel=3)
    mesh = Mesh.build(level)
    try:
        mesh.save(path)
    except OSError as exc:  # read-only mesh folder: keep the in-memory mesh
        warnings.warn(f"could not write {path}: {exc}", stacklevel=3)
    return mesh


def icosphere(level: int, mesh_dir: str | os.PathLike | None = None) -> Mesh:
    """The icosphere of ``level`` (0..9) with its operators, cached per process.

    ``mesh_dir`` (default: the ``MESHCNN_MESH_DIR`` environment variable) is a
    folder of files written by ``python -m meshcnn.geometry``. A file that is missing,
    truncated, of another format version or fails its checksum is recomputed
    (with a warning) and rewritten. Without a folder the mesh is computed in
    memory (costly at the highest levels; timings in experiments/benchmark/RESULTS.md).

    Parameters
    ----------
    level : int
        0..9 (``ValueError`` otherwise).
    mesh_dir : str or path-like, optional
        The folder of mesh files; default ``MESHCNN_MESH_DIR``, else none.
    """
    level = check_level(level)
    if mesh_dir is None:
        mesh_dir = os.environ.get("MESHCNN_MESH_DIR") or None
    return _icosphere(level, None if mesh_dir is None else str(Path(mesh_dir).resolve()))


def as_mesh(mesh: Mesh | int, low: int = 0) -> Mesh:
    """The mesh itself, or the icosphere of a level: the one ``Mesh | int`` resolver.

    Parameters
    ----------
    mesh : Mesh or int
        A mesh, or a level for :func:`icosphere`.
    low : int
        Smallest level accepted (``ValueError`` below it or above :data:`MAX_LEVEL`).

    Returns
    -------
    Mesh
    """
    if isinstance(mesh, Mesh):
        if mesh.is_icosphere:
            check_level(mesh.level, "level", low=low)
        return mesh
    return icosphere(check_level(mesh, "level", low=low))


def _parse_levels(text: str) -> list[int]:
    levels: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        levels += range(int(lo), int(hi or lo) + 1)
    for level in levels:
        check_level(level)
    return levels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate icosphere mesh files with their operators.")
    parser.add_argument("--levels", default="0-7", help="levels, e.g. '0-7' or '3,5' (default 0-7)")
    parser.add_argument("--out", default="meshes", help="output folder (default meshes/)")
    args = parser.parse_args(argv)
    levels = _parse_levels(args.levels)
    bar = progress_bar(levels, desc="icosphere", unit="level")
    for level in bar:
        t0 = time.perf_counter()
        mesh = Mesh.build(level)
        path = mesh_file(args.out, level)
        mesh.save(path)
        bar.write(
            f"level {level}: V={mesh.num_vertices} F={mesh.num_faces} -> {path} ({time.perf_counter() - t0:.2f} s)"
        )


def _inverse_permutation(order: np.ndarray) -> np.ndarray:
    """``rank`` with ``rank[order[i]] = i``."""
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank
