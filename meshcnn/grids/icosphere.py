r"""The icosphere (or any mesh) seen as a grid: its vertices are the points, their lumped areas the cells.

Also the one resolver of the mesh side of the regridders (:func:`regrid_target`): an
icosphere level, a :class:`~meshcnn.geometry.Mesh` or a grid with a ``mesh``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..geometry.mesh import Mesh, as_mesh, check_level

__all__ = ["IcosphereGrid", "mesh_cell_areas", "regrid_target", "MeshTarget"]


def mesh_cell_areas(level: int | Mesh) -> np.ndarray:
    """The mesh's ``vertex_areas`` scaled to sum to :math:`4\\pi`, steradians.

    Parameters
    ----------
    level : int or Mesh

    Returns
    -------
    ndarray, shape ``(V,)``
        The cell areas of :class:`IcosphereGrid`: the weights with which conservative
        regridding preserves area integrals (proportional to the weights of
        :mod:`meshcnn.metrics`).
    """
    mesh = as_mesh(level)
    return mesh.vertex_areas * (4.0 * np.pi / mesh.vertex_areas.sum())


class IcosphereGrid:
    """The vertices of an icosphere as a grid (:class:`~meshcnn.grids.base.Grid`).

    Parameters
    ----------
    mesh : Mesh or int
        The mesh or its level.
    """

    def __init__(self, mesh: Mesh | int) -> None:
        self.mesh = as_mesh(mesh)

    def __repr__(self) -> str:
        return f"IcosphereGrid(level={self.mesh.level})"

    @property
    def shape(self) -> tuple[int]:
        """``(V,)``."""
        return (self.mesh.num_vertices,)

    @property
    def lat(self) -> np.ndarray:
        """Latitude of each vertex, degrees, ``(V,)``."""
        return np.rad2deg(self.mesh.lat)

    @property
    def lon(self) -> np.ndarray:
        """Longitude of each vertex, degrees in ``(-180, 180]``, ``(V,)``."""
        return np.rad2deg(self.mesh.lon)

    def points(self) -> np.ndarray:
        """The vertices, ``(V, 3)``."""
        return self.mesh.vertices

    def cell_areas(self) -> np.ndarray:
        """:func:`mesh_cell_areas`, ``(V,)``, summing to :math:`4\\pi`."""
        return mesh_cell_areas(self.mesh)

    @property
    def cell_weights(self) -> np.ndarray:
        """The vertex areas normalised to sum to 1, ``(V,)``."""
        areas = self.mesh.vertex_areas
        return areas / areas.sum()


class MeshTarget:
    """The mesh side of a regridding matrix that is not an icosphere level: a mesh and its cell areas.

    Hashable and compared by the mesh's :attr:`~meshcnn.geometry.Mesh.fingerprint` and the
    bytes of the areas, so equal meshes built twice share the regridders' cache entries.

    Parameters
    ----------
    mesh : Mesh
    cell_areas : array_like, shape ``(V,)``
        Steradians, positive, summing to :math:`4\\pi` (the weights ``conservative`` preserves).
    """

    __slots__ = ("mesh", "cell_areas", "_key")

    def __init__(self, mesh: Mesh, cell_areas: Any) -> None:
        areas = np.array(cell_areas, dtype=np.float64).reshape(-1)
        if areas.shape != (mesh.num_vertices,):
            raise ValueError(
                f"cell_areas must have one value per vertex ({mesh.num_vertices}), got shape {np.shape(cell_areas)}"
            )
        if not np.all(np.isfinite(areas)) or areas.min() <= 0.0:
            raise ValueError("cell_areas must be positive and finite")
        if abs(areas.sum() / (4.0 * np.pi) - 1.0) > 1e-9:
            raise ValueError(f"cell_areas must sum to 4 pi (steradians), got {areas.sum():.12g}")
        areas.setflags(write=False)
        self.mesh = mesh
        self.cell_areas = areas
        self._key = (mesh.fingerprint, hashlib.sha1(areas.tobytes()).hexdigest())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MeshTarget) and self._key == other._key

    def __repr__(self) -> str:
        return f"MeshTarget({self.mesh.describe()}, fingerprint={self._key[0]})"


def regrid_target(target: Any) -> int | MeshTarget:
    """The mesh side of a regridder, resolved: an icosphere level (int) or a :class:`MeshTarget`.

    Parameters
    ----------
    target : int, Mesh or grid
        * an icosphere level 0..9, an icosphere :class:`~meshcnn.geometry.Mesh`, or a grid whose
          ``mesh`` is one (:class:`IcosphereGrid`): the level;
        * any other Mesh: a :class:`MeshTarget` with :func:`mesh_cell_areas`;
        * a grid with a non-icosphere ``mesh`` and ``cell_areas()`` (e.g.
          :class:`~meshcnn.grids.HealpixGrid`): a :class:`MeshTarget` with the grid's cell areas.

    Raises
    ------
    ValueError
        For a level outside 0..9 or anything else.
    """
    if isinstance(target, Mesh):
        if target.is_icosphere:
            return check_level(target.level)
        return MeshTarget(target, mesh_cell_areas(target))
    mesh = getattr(target, "mesh", None)
    if isinstance(mesh, Mesh) and callable(getattr(target, "cell_areas", None)):
        if mesh.is_icosphere:
            return check_level(mesh.level)
        return MeshTarget(mesh, target.cell_areas())
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return check_level(target)
    raise ValueError(
        f"the mesh side must be an icosphere level (int 0..9), a Mesh or a grid with a .mesh "
        f"(IcosphereGrid, HealpixGrid), got {target!r}"
    )
