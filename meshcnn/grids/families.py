r"""The sphere grids a model can run on, by name and level: one place that maps ``--grid`` to meshes.

================  ==========================  ===================================
family            level ``l``                 points
================  ==========================  ===================================
``"icosphere"``   subdivision level, 0..9     ``10 * 4**l + 2`` (level 5: 10,242)
``"healpix"``     order, ``nside = 2**l``     ``12 * 4**l`` (order 5, nside 32: 12,288)
================  ==========================  ===================================

At equal ``l`` the two families have about the same number of points, which is how the
climate pipeline compares them (``--grid icosphere|healpix --level 5``).
"""

from __future__ import annotations

import os

import numpy as np

from .._cache import memoize
from ..geometry.hierarchy import MeshHierarchy
from ..geometry.mesh import Mesh, check_level
from .healpix import HealpixGrid
from .icosphere import IcosphereGrid

__all__ = ["GRID_FAMILIES", "check_grid_family", "sphere_grid", "sphere_hierarchy", "as_sphere_grid"]

GRID_FAMILIES = ("icosphere", "healpix")


def check_grid_family(family: str) -> str:
    """Return ``family`` if it is one of :data:`GRID_FAMILIES`, else raise ``ValueError`` listing them."""
    if not isinstance(family, str) or family not in GRID_FAMILIES:
        raise ValueError(f"grid must be one of {', '.join(map(repr, GRID_FAMILIES))}, got {family!r}")
    return family


def sphere_grid(family: str, level: int) -> IcosphereGrid | HealpixGrid:
    """The grid of ``family`` at ``level`` (module table): :class:`IcosphereGrid` or NESTED :class:`HealpixGrid`.

    Parameters
    ----------
    family : one of :data:`GRID_FAMILIES`
    level : int
        0..9 (:data:`~meshcnn.geometry.MAX_LEVEL`) for both families.

    Returns
    -------
    IcosphereGrid or HealpixGrid
        With ``.mesh``, ``.points()``, ``.cell_weights``; usable wherever the regridders take a level.
        One object per family and level and process (its mesh is built once).
    """
    return _sphere_grid(check_grid_family(family), check_level(level))


@memoize(maxsize=None, copy=False)  # one grid object per family and level: caches keyed on it are shared
def _sphere_grid(family: str, level: int) -> IcosphereGrid | HealpixGrid:
    return IcosphereGrid(level) if family == "icosphere" else HealpixGrid(2**level, nest=True)


def as_sphere_grid(target: int | Mesh | IcosphereGrid | HealpixGrid) -> IcosphereGrid | HealpixGrid:
    """The grid of a mesh-side argument: an icosphere level or any :class:`Mesh` as an
    :class:`IcosphereGrid` (its vertices and lumped areas), a grid with a ``mesh`` as it is."""
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return IcosphereGrid(check_level(target))
    if isinstance(target, Mesh):
        return IcosphereGrid(target)
    if hasattr(target, "mesh") and hasattr(target, "cell_areas"):
        return target
    raise ValueError(f"expected an icosphere level, a Mesh or a sphere grid, got {type(target).__name__}")


def sphere_hierarchy(
    family: str, max_level: int, min_level: int, mesh_dir: str | os.PathLike | None = None
) -> MeshHierarchy:
    """The meshes of ``family`` from ``max_level`` down to ``min_level``, with their own nesting.

    Parameters
    ----------
    family : one of :data:`GRID_FAMILIES`
    max_level, min_level : int
        ``0 <= min_level <= max_level <= 9``.
    mesh_dir : path, optional
        Where icosphere meshes are cached (HEALPix meshes are built in memory).

    Returns
    -------
    MeshHierarchy
        :meth:`MeshHierarchy.icosphere`, or :meth:`HealpixGrid.hierarchy` (the exact mean over the
        4 nested children as restriction).
    """
    max_level, min_level = check_level(max_level, "max_level"), check_level(min_level, "min_level")
    if min_level > max_level:
        raise ValueError(f"min_level ({min_level}) must not be above max_level ({max_level})")
    if check_grid_family(family) == "icosphere":
        return MeshHierarchy.icosphere(max_level, min_level, mesh_dir)
    return _healpix_hierarchy(max_level, min_level)


@memoize(maxsize=None, copy=False)  # hierarchies are immutable by contract
def _healpix_hierarchy(max_level: int, min_level: int) -> MeshHierarchy:
    return _sphere_grid("healpix", max_level).hierarchy(min_nside=2**min_level)
