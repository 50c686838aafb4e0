r"""The grid protocol: what every grid on the sphere provides.

A grid is a set of points on the unit sphere, each the centre of a cell; the cells
tile the sphere. Two grids implement it: :class:`~meshcnn.grids.LatLonGrid` (a
rectilinear latitude-longitude grid, values ``(nlat, nlon)``) and
:class:`~meshcnn.grids.IcosphereGrid` (the vertices of an icosphere, values ``(V,)``).

Cell-weight convention (the one used by the regridders and by the metrics):
``cell_areas()`` are the areas of the cells on the unit sphere, steradians, summing
to :math:`4\pi`; ``cell_weights`` are the same areas normalised to sum to 1, so that
an area-weighted mean is ``(cell_weights * values).sum()``. Coordinates follow
:mod:`meshcnn.geometry.coords`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Grid"]


@runtime_checkable
class Grid(Protocol):
    """A grid on the unit sphere (see the module docstring)."""

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of a field on the grid: ``(nlat, nlon)`` or ``(V,)``."""
        ...

    def points(self) -> np.ndarray:
        """Unit vectors of the grid points, ``(prod(shape), 3)``, in the flat order of a field."""
        ...

    def cell_areas(self) -> np.ndarray:
        """Cell areas, steradians, of shape :attr:`shape`, summing to :math:`4\\pi`."""
        ...

    @property
    def cell_weights(self) -> np.ndarray:
        """Cell areas normalised to sum to 1, of shape :attr:`shape`."""
        ...
