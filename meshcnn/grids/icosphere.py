r"""The icosphere seen as a grid: its vertices are the points, their lumped areas the cells."""
from __future__ import annotations

import numpy as np

from ..geometry.mesh import Mesh, as_mesh

__all__ = ["IcosphereGrid", "mesh_cell_areas"]


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
