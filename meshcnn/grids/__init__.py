"""Grids on the sphere and the regridders between them (lat-lon <-> icosphere)."""
from .regrid import (
    METHODS, latlon_to_mesh, mesh_to_latlon, apply, grid_cell_areas, mesh_cell_areas, locate, regrid_dataarray,
    mesh_dataarray_to_latlon)

__all__ = [
    "METHODS", "latlon_to_mesh", "mesh_to_latlon", "apply", "grid_cell_areas", "mesh_cell_areas", "locate",
    "regrid_dataarray", "mesh_dataarray_to_latlon",
]
