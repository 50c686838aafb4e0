"""Grids on the sphere and the regridders between them (lat-lon <-> icosphere, HEALPix or any mesh).

:mod:`.base` the grid protocol and the cell-weight convention; :mod:`.latlon` the one
lat-lon grid class; :mod:`.icosphere` the icosphere as a grid; :mod:`.healpix` the HEALPix grids;
:mod:`.unstructured` native model grids read from ICON and MPAS grid files; :mod:`.families` the grids
a model runs on, by name and level; :mod:`.regrid` the regridding matrices and :func:`apply`;
:mod:`._interp` and :mod:`._conservative` the methods; :mod:`._xarray` the xarray front end; :mod:`.regridder` the
:class:`Regridder` objects (NumPy, torch, Dask and xarray; save and load).
"""

from ._xarray import latlon_dims, mesh_dataarray_to_latlon, regrid_dataarray
from .base import Grid
from .families import GRID_FAMILIES, sphere_grid, sphere_hierarchy
from .healpix import HealpixGrid
from .icosphere import IcosphereGrid
from .latlon import LatLonGrid
from .regrid import METHODS, latlon_to_mesh, mesh_to_latlon
from .regridder import Regridder
from .unstructured import GridFileError, UnstructuredGrid, write_icon_grid, write_mpas_grid

__all__ = [
    "Grid",
    "LatLonGrid",
    "IcosphereGrid",
    "HealpixGrid",
    "GRID_FAMILIES",
    "sphere_grid",
    "sphere_hierarchy",
    "UnstructuredGrid",
    "GridFileError",
    "write_icon_grid",
    "write_mpas_grid",
    "METHODS",
    "latlon_to_mesh",
    "mesh_to_latlon",
    "regrid_dataarray",
    "mesh_dataarray_to_latlon",
    "latlon_dims",
    "Regridder",
]
