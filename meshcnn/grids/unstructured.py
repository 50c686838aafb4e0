r"""Native unstructured model grids (ICON, MPAS) as grids: data on the cell centres, no regridding.

:class:`UnstructuredGrid` is a :class:`~meshcnn.grids.base.Grid` whose points are the cell
centres of a model's own grid, read from its grid file by :meth:`UnstructuredGrid.from_file`,
with a :class:`~meshcnn.geometry.Mesh` on those centres (the network's vertices) and a
:class:`~meshcnn.geometry.MeshHierarchy` down to coarser icospheres for pooling. A field on the
grid is a vector ``(ncells,)`` in the file's cell order.

Two conventions are read (detected from the variables present):

ICON (triangular C-grid; the cells are the triangles)
    ``clon``, ``clat`` ``(cell,)``: cell centres, **radians**; ``vertex_of_cell`` ``(nv=3, cell)``:
    1-based indices into the ICON vertices ``vlon``/``vlat`` ``(vertex,)``; optionally
    ``cells_of_vertex`` ``(ne=6, vertex)``, 1-based, with a fill value (0 or -1) for the missing
    sixth cell around the pentagon vertices; optionally ``cell_area`` ``(cell,)``, m^2.

    The centres of the cells around one ICON vertex form a hexagon (a pentagon at the 12
    icosahedron vertices): the dual of the ICON triangulation is a polygon tiling, not a
    triangulation, so the file holds no triangulation of the cell centres. The mesh is
    therefore :meth:`Mesh.from_points` of the centres, their spherical Delaunay triangulation
    (convex hull), which subdivides each dual polygon into triangles. The file's connectivity is
    used to **check** it: each Delaunay edge should join two cells that share an ICON vertex
    (an edge of a dual polygon or a diagonal inside one). Edges that do not are kept in
    :attr:`UnstructuredGrid.unmatched_edges` and reported with a :class:`UserWarning`: the
    triangulation is still valid, but it crosses a dual polygon's boundary there, which a
    strongly distorted grid (or a file whose connectivity does not match its centres) causes;
    the grids of :func:`write_icon_grid` (levels 0-5 checked) have none. ``cells_of_vertex``, where present, must
    list the same (vertex, cell) incidences as ``vertex_of_cell`` (``ValueError`` otherwise).

MPAS (Voronoi C-grid; the cells are the Voronoi polygons)
    ``latCell``, ``lonCell`` ``(nCells,)``: cell centres (generators), **radians** (MPAS stores
    ``lonCell`` in ``[0, 2 pi)``); ``cellsOnVertex`` ``(nVertices, vertexDegree=3)``, 1-based,
    0 for a missing neighbour; optionally ``areaCell`` ``(nCells,)`` (units of
    ``sphere_radius``\ :sup:`2`). The triangles ``cellsOnVertex`` around the MPAS vertices *are*
    the Delaunay triangulation of the cell centres (the dual of the Voronoi mesh), so the mesh is
    :meth:`Mesh.from_faces` ``(centres, cellsOnVertex - 1)``, the model's own triangulation.

    A 0 in ``cellsOnVertex`` marks a regional (limited-area) mesh, whose triangulation has a
    boundary. It is refused with a ``ValueError``: the mesh operators need a closed
    triangulation of the sphere, and the Delaunay hull of a regional set of centres
    (:meth:`Mesh.from_points`) is no fallback: it would add long triangles across the area
    outside the domain, so that convolutions would couple the domain's opposite edges. Regional
    data need a global grid: remap them onto one (e.g. an icosphere, with the domain's outside
    masked) first.

Conventions: points are unit vectors built with :func:`meshcnn.geometry.latlon_to_xyz`
from the file's radians; :attr:`UnstructuredGrid.lat` and :attr:`~UnstructuredGrid.lon` are
degrees, ``lon`` in ``(-180, 180]`` (:func:`meshcnn.geometry.xyz_to_latlon`), like
:class:`~meshcnn.grids.IcosphereGrid`. :meth:`UnstructuredGrid.cell_areas` are the file's cell
areas (``cell_area``/``areaCell``) scaled to sum to :math:`4\pi`, where the file has them,
else the mesh's lumped vertex areas scaled likewise (:func:`~meshcnn.grids.icosphere.mesh_cell_areas`).

:func:`write_icon_grid` and :func:`write_mpas_grid` write synthetic ICON-like and MPAS-like
grid files from an icosphere (with the real variable names, dimensions and quirks), for the
tests and the examples. Reading and writing need the optional extra ``meshcnn[climate]``
(xarray, netCDF4).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry.coords import latlon_to_xyz, num_vertices_at, xyz_to_latlon
from ..geometry.mesh import MAX_LEVEL, Mesh, check_level, icosphere
from ..io import discard, publish, temporary_beside
from ._xarray import _import_xarray

__all__ = ["UnstructuredGrid", "GridFileError", "write_icon_grid", "write_mpas_grid", "ICON_SPHERE_RADIUS"]

#: Sphere radius of ICON grid files, m (the ``sphere_radius`` attribute; cell areas are in m^2).
ICON_SPHERE_RADIUS = 6371229.0

_ICON_VARIABLES = ("clon", "clat", "vertex_of_cell")
_MPAS_VARIABLES = ("latCell", "lonCell", "cellsOnVertex")
_ANGLE_TOL = 1e-9  # radians of slack on the coordinate ranges


class GridFileError(ValueError):
    """A grid file that cannot be used; the message names the file (and the variable)."""

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)


def _xarray() -> Any:
    """The xarray module, or an ImportError that names the optional extra."""
    return _import_xarray("reading and writing ICON/MPAS grid files needs xarray and netCDF4")


# ---------------------------------------------------------------------------------------------- the grid
class UnstructuredGrid:
    r"""The cell centres of a native model grid, as a :class:`~meshcnn.grids.base.Grid`.

    Usually made by :meth:`from_file`. A field on the grid is ``(ncells,)`` in the order of
    :attr:`mesh`'s vertices (the file's cell order).

    Parameters
    ----------
    mesh : Mesh
        A closed triangulation whose vertices are the cell centres.
    cell_areas : ndarray, shape ``(ncells,)``, optional
        Cell areas in any unit (positive, finite); scaled to sum to :math:`4\pi`. Default: the
        mesh's lumped vertex areas scaled likewise.
    name : str, optional
        Default: the mesh's name, else ``"unstructured"``.
    convention : {"icon", "mpas"}, optional
        The file convention it was read from (informative).
    path : str or path-like, optional
        The file it was read from (informative).
    unmatched_edges : ndarray, shape ``(K, 2)``, optional
        ICON: the Delaunay edges that join two cells sharing no ICON vertex (see the module
        docstring); empty by default.

    Attributes
    ----------
    mesh : Mesh
    name : str
    convention : str or None
    path : pathlib.Path or None
    unmatched_edges : ndarray, shape ``(K, 2)``, int64
    """

    def __init__(
        self,
        mesh: Mesh,
        *,
        cell_areas: np.ndarray | None = None,
        name: str | None = None,
        convention: str | None = None,
        path: str | os.PathLike | None = None,
        unmatched_edges: np.ndarray | None = None,
    ) -> None:
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a meshcnn.geometry.Mesh, got {type(mesh).__name__}")
        self.mesh = mesh
        self.name = name or getattr(mesh, "name", None) or "unstructured"
        self.convention = convention
        self.path = None if path is None else Path(path)
        n = mesh.num_vertices
        if cell_areas is None:
            areas = np.asarray(mesh.vertex_areas, dtype=np.float64)
        else:
            areas = np.asarray(cell_areas, dtype=np.float64)
            if areas.shape != (n,):
                raise ValueError(f"cell_areas must have shape ({n},), got {areas.shape}")
            if not np.all(np.isfinite(areas)) or np.any(areas <= 0):
                raise ValueError("cell_areas must be finite and positive")
        self._areas = areas * (4.0 * np.pi / areas.sum())
        self._areas.setflags(write=False)
        edges = np.zeros((0, 2), dtype=np.int64) if unmatched_edges is None else np.asarray(unmatched_edges, np.int64)
        self.unmatched_edges = edges.reshape(-1, 2)
        self._hierarchies: dict[int, Any] = {}

    def __repr__(self) -> str:
        return f"UnstructuredGrid(name={self.name!r}, convention={self.convention!r}, ncells={self.shape[0]})"

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, *, convention: str | None = None, areas: str = "file", name: str | None = None
    ) -> UnstructuredGrid:
        """Read an ICON or MPAS grid file (see the module docstring for the variables and the mesh).

        Parameters
        ----------
        path : str or path-like
            A netCDF grid file (read with xarray).
        convention : {"icon", "mpas"}, optional
            Default: detected from the variables (``clon``/``clat``/``vertex_of_cell`` for ICON,
            ``latCell``/``lonCell``/``cellsOnVertex`` for MPAS); needed only for a file with both.
        areas : {"file", "mesh"}
            ``"file"`` (default): the file's ``cell_area``/``areaCell``, scaled to :math:`4\\pi`,
            where present, else the mesh's vertex areas; ``"mesh"``: always the mesh's vertex areas.
        name : str, optional
            Default: the file name without its suffix.

        Returns
        -------
        UnstructuredGrid

        Raises
        ------
        FileNotFoundError
            Nothing at ``path``.
        GridFileError (a ValueError)
            Not a readable netCDF file; neither convention (the message lists the variables
            lacking); a variable of the wrong shape; indices out of range; coordinates beyond
            the radian ranges (degrees given); a regional MPAS mesh; cell centres that give no
            valid mesh (duplicates, one hemisphere); inconsistent ICON connectivity.
        """
        path = Path(path)
        if areas not in ("file", "mesh"):
            raise ValueError(f"areas must be 'file' or 'mesh', got {areas!r}")
        if convention not in (None, "icon", "mpas"):
            raise ValueError(f"convention must be 'icon', 'mpas' or None, got {convention!r}")
        if path.is_dir():
            raise GridFileError(path, "is a folder, not a grid file")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such grid file")
        name = name or path.name.split(".")[0] or path.name
        xr = _xarray()
        try:
            ds = xr.open_dataset(path, mask_and_scale=False, decode_times=False, decode_coords=False)
        except (OSError, ValueError, RuntimeError) as exc:
            raise GridFileError(path, f"not a readable netCDF file ({exc})") from exc
        with ds:
            convention = _detect(path, ds, convention)
            read = _read_icon if convention == "icon" else _read_mpas
            mesh, file_areas, unmatched = read(path, ds, name, areas == "file")
        if unmatched is not None and len(unmatched):
            warnings.warn(
                f"{path}: {len(unmatched)} of {len(mesh.edges)} edges of the Delaunay triangulation of the cell "
                "centres join two cells that share no ICON vertex (a distorted grid, or connectivity that does not "
                "match the centres); the mesh is still a valid triangulation; the edges are in "
                "UnstructuredGrid.unmatched_edges",
                stacklevel=2,
            )
        return cls(mesh, cell_areas=file_areas, name=name, convention=convention, path=path, unmatched_edges=unmatched)

    # -------------------------------------------------------------------------- Grid protocol
    @property
    def shape(self) -> tuple[int]:
        """``(ncells,)``."""
        return (self.mesh.num_vertices,)

    def points(self) -> np.ndarray:
        """Unit vectors of the cell centres, ``(ncells, 3)``."""
        return self.mesh.vertices

    def cell_areas(self) -> np.ndarray:
        """Cell areas, steradians, ``(ncells,)``, summing to :math:`4\\pi` (see the module docstring)."""
        return self._areas.copy()

    @property
    def cell_weights(self) -> np.ndarray:
        """:meth:`cell_areas` normalised to sum to 1, ``(ncells,)``."""
        return self._areas / self._areas.sum()

    @property
    def lat(self) -> np.ndarray:
        """Latitude of each cell centre, degrees, ``(ncells,)``."""
        return np.rad2deg(xyz_to_latlon(self.mesh.vertices)[0])

    @property
    def lon(self) -> np.ndarray:
        """Longitude of each cell centre, degrees in ``(-180, 180]``, ``(ncells,)``."""
        return np.rad2deg(xyz_to_latlon(self.mesh.vertices)[1])

    # -------------------------------------------------------------------------- hierarchy
    def coarse_level(self) -> int:
        """The finest icosphere level with fewer vertices than the grid has cells (-1 if none)."""
        n = self.shape[0]
        levels = [lv for lv in range(MAX_LEVEL + 1) if num_vertices_at(lv) < n]
        return levels[-1] if levels else -1

    def hierarchy(self, levels: int = 3) -> Any:
        """A :class:`~meshcnn.geometry.MeshHierarchy` from the native mesh down to icospheres.

        ``MeshHierarchy([mesh, icosphere(L), icosphere(L - 1), ..., icosphere(L - levels + 2)])``
        with ``L`` = :meth:`coarse_level`, the finest icosphere with fewer vertices than the grid
        has cells; its restrictions and prolongations are computed from the geometry
        (barycentric interpolation and its area-weighted adjoint). Cached per ``levels``.

        Parameters
        ----------
        levels : int
            Number of meshes, the native one included (``>= 1``).

        Returns
        -------
        MeshHierarchy
            ``len == levels``; ``[0]`` is :attr:`mesh`.
        """
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
            raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
        levels = int(levels)
        if levels not in self._hierarchies:
            from ..geometry.hierarchy import MeshHierarchy

            top = self.coarse_level()
            if top - (levels - 2) < 0:
                raise ValueError(
                    f"{self.name}: {self.shape[0]} cells allow at most {top + 2} levels "
                    f"(icospheres {top}..0 below the native mesh), got levels={levels}"
                )
            meshes = [self.mesh] + [icosphere(top - k) for k in range(levels - 1)]
            self._hierarchies[levels] = MeshHierarchy(meshes, name=f"{self.name}+icosphere")
        return self._hierarchies[levels]


# ---------------------------------------------------------------------------------------------- reading
def _detect(path: Path, ds: Any, convention: str | None) -> str:
    has_icon = all(v in ds.variables for v in _ICON_VARIABLES)
    has_mpas = all(v in ds.variables for v in _MPAS_VARIABLES)
    if convention is not None:
        wanted = _ICON_VARIABLES if convention == "icon" else _MPAS_VARIABLES
        missing = [v for v in wanted if v not in ds.variables]
        if missing:
            raise GridFileError(path, f"not an {convention.upper()} grid file: lacks {', '.join(map(repr, missing))}")
        return convention
    if has_icon and has_mpas:
        raise GridFileError(path, "holds both ICON and MPAS grid variables: pass convention='icon' or 'mpas'")
    if has_icon:
        return "icon"
    if has_mpas:
        return "mpas"
    lack_icon = ", ".join(repr(v) for v in _ICON_VARIABLES if v not in ds.variables)
    lack_mpas = ", ".join(repr(v) for v in _MPAS_VARIABLES if v not in ds.variables)
    raise GridFileError(
        path, f"neither an ICON grid file (lacks {lack_icon}) nor an MPAS grid file (lacks {lack_mpas})"
    )


def _angles(path: Path, ds: Any, lat_name: str, lon_name: str, dim: str) -> np.ndarray:
    """Unit vectors ``(n, 3)`` of the radian coordinates ``lat_name``/``lon_name`` on dimension ``dim``."""
    out = []
    for name, low, high in ((lat_name, -np.pi / 2, np.pi / 2), (lon_name, -np.pi, 2 * np.pi)):
        var = ds[name]
        if var.ndim != 1 or (dim in ds.dims and var.dims != (dim,)):
            raise GridFileError(
                path, f"variable {name!r} must be 1-D on dimension {dim!r}, got dims {var.dims} shape {var.shape}"
            )
        units = str(var.attrs.get("units", "")).strip().lower()
        if units.startswith("deg"):
            raise GridFileError(path, f"variable {name!r} has units {units!r}; radians expected")
        values = np.asarray(var.values, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise GridFileError(path, f"variable {name!r} contains NaN or Inf")
        if values.size and (values.min() < low - _ANGLE_TOL or values.max() > high + _ANGLE_TOL):
            raise GridFileError(
                path,
                f"variable {name!r} spans {values.min():g}..{values.max():g}, beyond "
                f"[{low:g}, {high:g}]: radians expected (degrees given?)",
            )
        out.append(values)
    if len(out[0]) != len(out[1]):
        raise GridFileError(path, f"{lat_name!r} and {lon_name!r} differ in length: {len(out[0])} and {len(out[1])}")
    return latlon_to_xyz(out[0], out[1])


def _indices(path: Path, name: str, raw: Any, count: int, fills: tuple[int, ...]) -> np.ndarray:
    """The 1-based indices ``raw`` of variable ``name`` minus 1, int64; the ``fills`` become -1, the
    others must be in ``1..count``."""
    raw = np.asarray(raw)
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            raise GridFileError(path, f"variable {name!r} must hold integer indices")
    elif raw.dtype.kind not in "iu":
        raise GridFileError(path, f"variable {name!r} must hold integer indices, got dtype {raw.dtype}")
    values = raw.astype(np.int64)
    fill = np.isin(values, fills) if fills else np.zeros(values.shape, dtype=bool)
    bad = ~fill & ((values < 1) | (values > count))
    if np.any(bad):
        shown = np.unique(values[bad])[:5].tolist()
        extra = f" (or a fill value {' or '.join(map(str, fills))})" if fills else ""
        raise GridFileError(
            path,
            f"variable {name!r} holds {int(bad.sum())} indices out of the 1-based range 1..{count}{extra}: {shown}",
        )
    return np.where(fill, -1, values - 1)


def _oriented(path: Path, ds: Any, name: str, dim: str, n: int, width: int | None) -> Any:
    """``ds[name]`` as ``(width, n)`` with ``dim`` (of size ``n``) last; ``width`` None: any."""
    var = ds[name]
    if var.ndim != 2:
        raise GridFileError(path, f"variable {name!r} must be 2-D, got dims {var.dims} shape {var.shape}")
    if dim in var.dims:
        var = var.transpose(*[d for d in var.dims if d != dim], dim)
    elif var.shape[0] == n and var.shape[1] != n:
        var = var.T
    if var.shape[1] != n or (width is not None and var.shape[0] != width):
        want = f"({width if width is not None else 'k'}, {n})"
        raise GridFileError(
            path,
            f"variable {name!r} has shape {ds[name].shape} (dims {ds[name].dims}); expected "
            f"{want} on dimension {dim!r} or its transpose",
        )
    return var


def _file_areas(path: Path, ds: Any, name: str, dim: str, n: int) -> np.ndarray | None:
    if name not in ds.variables:
        return None
    var = ds[name]
    values = np.asarray(var.values, dtype=np.float64)
    if var.ndim != 1 or len(values) != n:
        raise GridFileError(path, f"variable {name!r} must be 1-D of length {n} on {dim!r}, got shape {var.shape}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise GridFileError(path, f"variable {name!r} must hold finite positive cell areas")
    return values


def _mesh(path: Path, what: str, build: Any, *args: Any, name: str) -> Mesh:
    """``build(*args, name=name)``, its ``ValueError`` turned into a :class:`GridFileError` naming the file
    and ``what`` the mesh was built from."""
    try:
        return build(*args, name=name)
    except ValueError as exc:
        raise GridFileError(path, f"{what} give no valid spherical mesh ({exc})") from exc


def _read_icon(path: Path, ds: Any, name: str, with_areas: bool) -> tuple[Mesh, np.ndarray | None, np.ndarray]:
    points = _angles(path, ds, "clat", "clon", "cell")
    n = len(points)
    if "vertex" in ds.dims:
        nvertex = int(ds.sizes["vertex"])
    elif "vlon" in ds.variables:
        nvertex = int(ds["vlon"].size)
    else:
        nvertex = int(np.asarray(ds["vertex_of_cell"].values).max())
    voc = _indices(path, "vertex_of_cell", _oriented(path, ds, "vertex_of_cell", "cell", n, 3).values, nvertex, ())
    if np.any((voc[0] == voc[1]) | (voc[1] == voc[2]) | (voc[0] == voc[2])):
        raise GridFileError(path, "variable 'vertex_of_cell' lists a vertex twice for some cell")
    # (vertex, cell) incidences of the ICON triangles, as sorted keys
    incidences = np.unique(voc * np.int64(n) + np.arange(n)[None, :])
    if "cells_of_vertex" in ds.variables:
        cov = _indices(
            path, "cells_of_vertex", _oriented(path, ds, "cells_of_vertex", "vertex", nvertex, None).values, n, (0, -1)
        )
        vert = np.broadcast_to(np.arange(nvertex)[None, :], cov.shape)
        listed = np.unique(vert[cov >= 0] * np.int64(n) + cov[cov >= 0])
        if len(listed) != len(incidences) or not np.array_equal(listed, incidences):
            extra = len(np.setxor1d(listed, incidences))
            raise GridFileError(
                path,
                "variables 'cells_of_vertex' and 'vertex_of_cell' disagree: "
                f"{extra} (vertex, cell) incidences are in one only",
            )
    mesh = _mesh(path, "the cell centres 'clon'/'clat'", Mesh.from_points, points, name=name)
    unmatched = _unmatched_edges(mesh.edges, voc)
    return mesh, _file_areas(path, ds, "cell_area", "cell", n) if with_areas else None, unmatched


def _unmatched_edges(edges: np.ndarray, vertex_of_cell: np.ndarray) -> np.ndarray:
    """The edges ``(i, j)`` whose cells share no ICON vertex: ``vertex_of_cell`` is ``(3, cell)``, 0-based."""
    a = vertex_of_cell[:, edges[:, 0]]  # (3, E)
    b = vertex_of_cell[:, edges[:, 1]]
    shared = (a[:, None, :] == b[None, :, :]).any(axis=(0, 1))
    return edges[~shared]


def _read_mpas(path: Path, ds: Any, name: str, with_areas: bool) -> tuple[Mesh, np.ndarray | None, None]:
    points = _angles(path, ds, "latCell", "lonCell", "nCells")
    n = len(points)
    var = ds["cellsOnVertex"]
    if var.ndim != 2 or var.shape[1] != 3 or ("nVertices" in ds.dims and var.dims[0] != "nVertices"):
        raise GridFileError(
            path, f"variable 'cellsOnVertex' must be (nVertices, vertexDegree=3), got dims {var.dims} shape {var.shape}"
        )
    cov = _indices(path, "cellsOnVertex", var.values, n, (0,))
    missing = np.any(cov < 0, axis=1)
    if np.any(missing):
        raise GridFileError(
            path,
            f"variable 'cellsOnVertex' has a missing neighbour (0) in {int(missing.sum())} of {len(cov)} "
            "triangles: a regional (limited-area) MPAS mesh. Only global meshes are supported: the mesh "
            "operators need a closed triangulation of the sphere (a Delaunay hull would bridge the area "
            "outside the domain); remap regional data onto a global grid first",
        )
    mesh = _mesh(path, "the cell centres and the triangles 'cellsOnVertex'", Mesh.from_faces, points, cov, name=name)
    return mesh, _file_areas(path, ds, "areaCell", "nCells", n) if with_areas else None, None


# ---------------------------------------------------------------------------------------------- writing
def _circumcentres(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    r"""Spherical circumcentres ``(F, 3)`` of the triangles: the unit normal of the plane through
    their corners, :math:`(b - a)\times(c - a)/|\cdot|`, equidistant from the three corners
    (outward for triangles counter-clockwise seen from outside)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _triangle_areas(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    r"""Signed areas of spherical triangles of unit vectors (Van Oosterom & Strackee):
    :math:`2\,\mathrm{atan2}(\det(a, b, c),\ 1 + a\cdot b + b\cdot c + c\cdot a)`, steradians."""
    det = np.einsum("ij,ij->i", a, np.cross(b, c))
    dots = 1.0 + np.einsum("ij,ij->i", a, b) + np.einsum("ij,ij->i", b, c) + np.einsum("ij,ij->i", c, a)
    return 2.0 * np.arctan2(det, dots)


def _faces_around(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each vertex, its faces counter-clockwise seen from outside, ``(V, 6)`` (or wider) padded with -1,
    starting from its lowest-numbered face; and each vertex's degree ``(V,)``."""
    nv = len(vertices)
    vert = faces.reshape(-1)
    face = np.repeat(np.arange(len(faces)), 3)
    centre = _circumcentres(vertices, faces)[face]
    order = np.lexsort((face, vert))
    vert, face, centre = vert[order], face[order], centre[order]
    degree = np.bincount(vert, minlength=nv)
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    p = vertices[vert]
    ref = centre[start][vert]  # the direction of each vertex's first face
    e1 = ref - np.einsum("ij,ij->i", ref, p)[:, None] * p
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(p, e1)  # (e1, e2, p) right-handed: angle grows counter-clockwise seen from outside
    angle = np.mod(np.arctan2(np.einsum("ij,ij->i", centre, e2), np.einsum("ij,ij->i", centre, e1)), 2 * np.pi)
    angle[start] = 0.0
    order = np.lexsort((angle, vert))
    face = face[order]
    table = np.full((nv, max(6, int(degree.max()))), -1, dtype=np.int64)
    rank = np.arange(len(vert)) - start[vert[order]]
    table[vert[order], rank] = face
    return table, degree


def _lon_0_2pi(lon: np.ndarray) -> np.ndarray:
    """Longitudes in ``[0, 2 pi)``, MPAS's range (``np.mod`` alone gives ``2 pi`` for ``-1e-17``)."""
    lon = np.mod(lon, 2 * np.pi)
    return np.where(lon >= 2 * np.pi, 0.0, lon)


def _write_netcdf(path: str | os.PathLike, ds: Any) -> Path:
    """Write the Dataset to ``path`` atomically (netCDF4 format: it opens in append mode ``"r+"``), without
    the ``_FillValue`` xarray adds to float variables (grid files have none)."""
    path = Path(path)
    tmp = temporary_beside(path)
    try:
        ds.to_netcdf(
            tmp,
            mode="w",
            format="NETCDF4",
            engine="netcdf4",
            encoding={name: {"_FillValue": None} for name in ds.variables},
        )
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    return path


def write_icon_grid(path: str | os.PathLike, level: int, *, fill_value: int = -1) -> Path:
    r"""Write an icosahedral ICON-like grid file from the icosphere of ``level``.

    The ICON triangles are the icosphere's faces, the ICON vertices its vertices. Variables
    (ICON names, dims ``cell``, ``vertex``, ``nv = 3``, ``ne = 6``; angles in radians):

    * ``clon``, ``clat`` ``(cell,)``: cell centres, the triangles' spherical circumcentres
      (normalised, :func:`_circumcentres`), as in ICON; ``clon`` in ``(-pi, pi]``;
    * ``clon_vertices``, ``clat_vertices`` ``(cell, nv)``: the triangles' corners;
    * ``vlon``, ``vlat`` ``(vertex,)``: the ICON vertices;
    * ``vertex_of_cell`` ``(nv, cell)`` int32 = ``faces.T + 1`` (1-based, counter-clockwise);
    * ``cells_of_vertex`` ``(ne, vertex)`` int32: the cells around each vertex, 1-based,
      counter-clockwise, ``fill_value`` in the sixth row at the 12 pentagon vertices;
    * ``cell_area`` ``(cell,)``: the spherical triangles' areas, m^2 on a sphere of radius
      :data:`ICON_SPHERE_RADIUS` (attribute ``sphere_radius``).

    Parameters
    ----------
    path : str or path-like
        Written atomically (netCDF4; it opens in append mode).
    level : int
        Icosphere level 0..MAX_LEVEL: ``20 * 4**level`` cells, ``10 * 4**level + 2`` vertices.
    fill_value : {-1, 0}
        The fill value of ``cells_of_vertex`` (ICON files use either).

    Returns
    -------
    pathlib.Path
    """
    level = check_level(level)
    if fill_value not in (-1, 0):
        raise ValueError(f"fill_value must be -1 or 0, got {fill_value!r}")
    xr = _xarray()
    mesh = icosphere(level)
    verts, faces = mesh.vertices, mesh.faces
    centres = _circumcentres(verts, faces)
    clat, clon = xyz_to_latlon(centres)
    vlat, vlon = xyz_to_latlon(verts)
    corner_lat, corner_lon = xyz_to_latlon(verts[faces])
    around, _ = _faces_around(verts, faces)
    cov = np.where(around >= 0, around + 1, fill_value).T.astype(np.int32)
    area = _triangle_areas(*(verts[faces[:, k]] for k in range(3))) * ICON_SPHERE_RADIUS**2
    rad = {"units": "radian"}
    ds = xr.Dataset(
        {
            "clon": (
                "cell",
                clon,
                {**rad, "standard_name": "grid_longitude", "long_name": "center longitude", "bounds": "clon_vertices"},
            ),
            "clat": (
                "cell",
                clat,
                {**rad, "standard_name": "grid_latitude", "long_name": "center latitude", "bounds": "clat_vertices"},
            ),
            "clon_vertices": (("cell", "nv"), corner_lon, rad),
            "clat_vertices": (("cell", "nv"), corner_lat, rad),
            "vlon": ("vertex", vlon, {**rad, "standard_name": "grid_longitude", "long_name": "vertex longitude"}),
            "vlat": ("vertex", vlat, {**rad, "standard_name": "grid_latitude", "long_name": "vertex latitude"}),
            "vertex_of_cell": (
                ("nv", "cell"),
                (faces.T + 1).astype(np.int32),
                {"long_name": "vertices of each cell", "cf_role": "face_node_connectivity", "start_index": np.int32(1)},
            ),
            "cells_of_vertex": (
                ("ne", "vertex"),
                cov,
                {"long_name": "cells around each vertex", "missing_value": np.int32(fill_value)},
            ),
            "cell_area": ("cell", area, {"units": "m2", "standard_name": "area", "long_name": "area of grid cell"}),
        },
        attrs={
            "title": "ICON-like icosahedral grid (synthetic, meshcnn.grids.write_icon_grid)",
            "grid_geometry": np.int32(1),
            "grid_root": np.int32(1),
            "grid_level": np.int32(level),
            "sphere_radius": ICON_SPHERE_RADIUS,
            "history": f"meshcnn.grids.write_icon_grid(level={level})",
        },
    )
    return _write_netcdf(path, ds)


def write_mpas_grid(path: str | os.PathLike, level: int, *, sphere_radius: float = 1.0) -> Path:
    r"""Write an MPAS-like Voronoi grid file, the dual of the icosphere of ``level``.

    The MPAS cells are the Voronoi cells of the icosphere's vertices (their centres, the
    generators); the MPAS vertices are the icosphere triangles' spherical circumcentres (the
    Voronoi corners). Variables (MPAS names, dims ``nCells``, ``nVertices``, ``nEdges``,
    ``maxEdges = 6``, ``vertexDegree = 3``, ``TWO``; angles in radians; indices int32, 1-based,
    0 = none):

    * ``latCell``, ``lonCell`` ``(nCells,)``: the icosphere vertices, ``lonCell`` in
      ``[0, 2 pi)`` as MPAS stores it; ``xCell``/``yCell``/``zCell`` on the sphere of ``sphere_radius``;
    * ``latVertex``, ``lonVertex`` ``(nVertices,)``: the circumcentres;
    * ``cellsOnVertex`` ``(nVertices, vertexDegree)`` = ``faces + 1`` (counter-clockwise);
    * ``verticesOnCell``, ``cellsOnCell`` ``(nCells, maxEdges)``: counter-clockwise, padded with
      0 beyond ``nEdgesOnCell`` (5 at the 12 pentagons, else 6); ``cellsOnEdge`` ``(nEdges, TWO)``;
    * ``areaCell`` ``(nCells,)``: the spherical Voronoi cells' areas, in units of
      ``sphere_radius``\ :sup:`2` (the default radius 1 is that of MPAS base meshes);
    * ``indexToCellID`` ``(nCells,)``; attributes ``on_a_sphere = "YES"``, ``sphere_radius``.

    Parameters
    ----------
    path : str or path-like
        Written atomically (netCDF4; it opens in append mode).
    level : int
        Icosphere level 0..MAX_LEVEL: ``10 * 4**level + 2`` cells, ``20 * 4**level`` vertices.
    sphere_radius : float
        Radius of the sphere the file describes (positive).

    Returns
    -------
    pathlib.Path
    """
    level = check_level(level)
    if not np.isfinite(sphere_radius) or sphere_radius <= 0:
        raise ValueError(f"sphere_radius must be positive, got {sphere_radius!r}")
    xr = _xarray()
    mesh = icosphere(level)
    verts, faces = mesh.vertices, mesh.faces
    nc, nf = len(verts), len(faces)
    centres = _circumcentres(verts, faces)
    lat, lon = xyz_to_latlon(verts)
    vlat, vlon = xyz_to_latlon(centres)
    around, degree = _faces_around(verts, faces)
    # Voronoi cell areas: around cell i, the spherical triangles (x_i, cc_g, cc_f) for each face f of i
    # and the face g before it counter-clockwise (across the half-edge i -> j of f)
    half_from = faces.reshape(-1)
    half_to = faces[:, [1, 2, 0]].reshape(-1)
    half_face = np.repeat(np.arange(nf), 3)
    keys = half_from * np.int64(nc) + half_to
    order = np.argsort(keys)
    twin = half_face[order[np.searchsorted(keys[order], half_to * np.int64(nc) + half_from)]]
    parts = _triangle_areas(verts[half_from], centres[twin], centres[half_face])
    area = np.bincount(half_from, weights=parts, minlength=nc)
    # neighbours counter-clockwise: the corner after the cell in each face around it
    pos = np.argmax(faces[np.maximum(around, 0)] == np.arange(nc)[:, None, None], axis=2)
    neighbours = np.where(around >= 0, faces[np.maximum(around, 0), (pos + 1) % 3], -1)
    voc = (around + 1).astype(np.int32)  # 0 = none
    coc = (neighbours + 1).astype(np.int32)
    rad = {"units": "radians"}
    ds = xr.Dataset(
        {
            "latCell": ("nCells", lat, {**rad, "long_name": "Latitude of cell centres"}),
            "lonCell": ("nCells", _lon_0_2pi(lon), {**rad, "long_name": "Longitude of cell centres"}),
            "xCell": ("nCells", verts[:, 0] * sphere_radius, {"units": "m"}),
            "yCell": ("nCells", verts[:, 1] * sphere_radius, {"units": "m"}),
            "zCell": ("nCells", verts[:, 2] * sphere_radius, {"units": "m"}),
            "indexToCellID": ("nCells", np.arange(1, nc + 1, dtype=np.int32)),
            "latVertex": ("nVertices", vlat, rad),
            "lonVertex": ("nVertices", _lon_0_2pi(vlon), rad),
            "cellsOnVertex": (
                ("nVertices", "vertexDegree"),
                (faces + 1).astype(np.int32),
                {"long_name": "Cells that share a vertex"},
            ),
            "nEdgesOnCell": ("nCells", degree.astype(np.int32), {"long_name": "Number of edges on a cell"}),
            "verticesOnCell": (("nCells", "maxEdges"), voc, {"long_name": "Vertices on a cell"}),
            "cellsOnCell": (("nCells", "maxEdges"), coc, {"long_name": "Cells neighbouring a cell"}),
            "cellsOnEdge": (("nEdges", "TWO"), (mesh.edges + 1).astype(np.int32)),
            "areaCell": ("nCells", area * sphere_radius**2, {"units": "m^2", "long_name": "Area of each cell"}),
        },
        attrs={
            "on_a_sphere": "YES",
            "sphere_radius": float(sphere_radius),
            "is_periodic": "NO",
            "mesh_spec": "1.0",
            "history": f"meshcnn.grids.write_mpas_grid(level={level}) (synthetic Voronoi dual of an icosphere)",
        },
    )
    return _write_netcdf(path, ds)
