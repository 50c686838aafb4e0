r"""The latitude-longitude grid: one class for the regridders, the climate reader and the generator.

A :class:`LatLonGrid` holds the 1-D coordinate vectors of a file, in **degrees** and in
the file's order (``lat`` may be ascending or descending, equiangular or Gaussian,
with or without rows at the poles; ``lon`` in ``0..360`` or ``-180..180``, ascending or
descending, possibly with a duplicated periodic column such as both 0 and 360). It
must be strictly monotonic and cover the globe (``ValueError`` otherwise).

Fields are ``(nlat, nlon)`` in file order, flattened row-major: ``index = i_lat * nlon + i_lon``.

Cells are bounded by the midpoints between coordinates and by the poles; their
exact areas on the unit sphere (:meth:`LatLonGrid.cell_areas`) are the grid's cell
weights (:mod:`meshcnn.grids.base`). A duplicated periodic column has area 0.

The regridders work in a *canonical* order: latitude ascending, unique longitudes in
``[0, 360)`` ascending (methods named ``canonical_*``, :meth:`~LatLonGrid.lat_edges`,
:meth:`~LatLonGrid.lon_edges`), mapped to and from the file order by
:meth:`~LatLonGrid.canonical_of_file` and :meth:`~LatLonGrid.file_of_canonical`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..geometry.coords import EARTH_RADIUS_KM, latlon_to_xyz

__all__ = ["LatLonGrid"]

_LON_DECIMALS = 9  # longitudes equal to 1e-9 degrees (mod 360) are the same column


def _coordinate(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D coordinate vector (degrees), got shape {arr.shape}")
    if len(arr) < 2:
        raise ValueError(f"{name} needs at least 2 values, got {len(arr)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")
    d = np.diff(arr)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise ValueError(f"{name} is not strictly monotonic (neither strictly ascending nor strictly descending)")
    return arr


def _canonical_lat(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorting order of ``lat`` (checked to reach both poles within 1.5 row spacings) and the sorted values."""
    if lat.min() < -90.0 - 1e-9 or lat.max() > 90.0 + 1e-9:
        raise ValueError(f"lat must be in degrees within [-90, 90], got [{lat.min()}, {lat.max()}]")
    lat = np.clip(lat, -90.0, 90.0)
    order = np.argsort(lat, kind="stable")
    ascending = lat[order]
    spacing = np.diff(ascending).max()
    for gap, pole in ((90.0 - ascending[-1], "north"), (ascending[0] + 90.0, "south")):
        if gap > 1.5 * spacing + 1e-9:
            raise ValueError(
                f"lat does not reach the {pole} pole (outermost row {gap:g} degrees away, spacing {spacing:g}); "
                "regridding to the sphere needs a global grid"
            )
    return order, ascending


def _canonical_lon(lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique longitudes in ``[0, 360)`` (checked to cover the circle), first file column of each,
    and the canonical column of each file column."""
    if lon.max() - lon.min() > 360.0 + 1e-9:
        raise ValueError(f"lon spans more than 360 degrees ({lon.min()} .. {lon.max()})")
    wrapped = np.round(np.mod(lon, 360.0), _LON_DECIMALS) % 360.0
    unique, first, inverse = np.unique(wrapped, return_index=True, return_inverse=True)
    if len(unique) < 2:
        raise ValueError("lon needs at least 2 distinct longitudes")
    gaps = np.diff(np.concatenate([unique, [unique[0] + 360.0]]))
    interior = np.diff(lon if lon[-1] > lon[0] else lon[::-1])
    if gaps.max() > 1.5 * interior.max() + 1e-9:
        raise ValueError(
            f"lon does not cover the globe (largest gap {gaps.max():g} degrees, spacing {interior.max():g})"
        )
    return unique, first, inverse.reshape(-1)


class LatLonGrid:
    """A validated global latitude-longitude grid (see the module docstring).

    Parameters
    ----------
    lat : array_like, shape ``(nlat,)``
        Latitudes, degrees north, in file order.
    lon : array_like, shape ``(nlon,)``
        Longitudes, degrees east, in file order.
    """

    def __init__(self, lat: Any, lon: Any) -> None:
        self.lat = _coordinate(lat, "lat")
        self.lon = _coordinate(lon, "lon")
        self.lat_order, self.canonical_lat = _canonical_lat(self.lat)
        self.lat_inverse = np.empty_like(self.lat_order)
        self.lat_inverse[self.lat_order] = np.arange(len(self.lat_order))
        self.canonical_lon, self.lon_first, self.lon_inverse = _canonical_lon(self.lon)

    def __repr__(self) -> str:
        return f"LatLonGrid(nlat={len(self.lat)}, nlon={len(self.lon)})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LatLonGrid)
            and self.lat.shape == other.lat.shape
            and self.lon.shape == other.lon.shape
            and np.allclose(self.lat, other.lat)
            and np.allclose(self.lon, other.lon)
        )

    def __hash__(self) -> int:
        # equal grids (coordinates equal to rounding, see __eq__) have equal shapes; nothing finer is
        # consistent with a tolerance, so grids of one shape share a hash and __eq__ tells them apart
        return hash((LatLonGrid, self.lat.shape, self.lon.shape))

    # ------------------------------------------------------------------ the grid protocol (file order)
    @property
    def shape(self) -> tuple[int, int]:
        """``(nlat, nlon)`` of a field in file order."""
        return len(self.lat), len(self.lon)

    def points(self) -> np.ndarray:
        """Unit vectors of the grid points in file order, ``(nlat * nlon, 3)``."""
        return self.xyz.reshape(-1, 3)

    def cell_areas(self) -> np.ndarray:
        """Exact spherical cell areas, steradians, ``(nlat, nlon)`` in file order, summing to :math:`4\\pi`."""
        areas = np.zeros(self.shape)
        areas[self.lat_order[:, None], self.lon_first[None, :]] = self.canonical_cell_areas()
        return areas

    @property
    def cell_weights(self) -> np.ndarray:
        """:meth:`cell_areas` normalised to sum to 1, ``(nlat, nlon)``."""
        areas = self.cell_areas()
        return areas / areas.sum()

    # ------------------------------------------------------------------ canonical order (the regridders)
    @property
    def canonical_shape(self) -> tuple[int, int]:
        """``(nlat, number of distinct longitudes)``."""
        return len(self.canonical_lat), len(self.canonical_lon)

    def lat_edges(self) -> np.ndarray:
        """Cell boundaries in latitude, degrees, ``(nlat + 1,)`` from -90 to 90."""
        lat = self.canonical_lat
        return np.concatenate([[-90.0], 0.5 * (lat[1:] + lat[:-1]), [90.0]])

    def lon_edges(self) -> np.ndarray:
        """Cell boundaries in longitude, degrees, canonical columns ``(nlon + 1,)``, spanning exactly 360."""
        lon = self.canonical_lon
        west = 0.5 * (lon[-1] - 360.0 + lon[0])
        return np.concatenate([[west], 0.5 * (lon[1:] + lon[:-1]), [west + 360.0]])

    def lon_weights(self) -> np.ndarray:
        """Fraction of the circle covered by each canonical column, ``(nlon,)``, sums to 1."""
        return np.diff(self.lon_edges()) / 360.0

    def canonical_cell_areas(self) -> np.ndarray:
        """Exact spherical areas of the canonical cells, steradians, ``(nlat, nlon)``; sum :math:`4\\pi`."""
        dsin = np.diff(np.sin(np.deg2rad(self.lat_edges())))
        return np.outer(dsin, np.deg2rad(np.diff(self.lon_edges())))

    def canonical_points(self) -> np.ndarray:
        """Unit vectors of the canonical grid points, ``(nlat * nlon, 3)``."""
        lat, lon = np.meshgrid(self.canonical_lat, self.canonical_lon, indexing="ij")
        return latlon_to_xyz(np.deg2rad(lat).reshape(-1), np.deg2rad(lon).reshape(-1))

    def canonical_of_file(self) -> np.ndarray:
        """For each file-order flat index, its canonical flat index."""
        return (self.lat_inverse[:, None] * len(self.canonical_lon) + self.lon_inverse[None, :]).reshape(-1)

    def file_of_canonical(self) -> np.ndarray:
        """For each canonical flat index, the file-order flat index that represents it."""
        return (self.lat_order[:, None] * len(self.lon) + self.lon_first[None, :]).reshape(-1)

    # ------------------------------------------------------------------ geometry of the points (file order)
    @functools.cached_property
    def lat_rad(self) -> np.ndarray:
        """Latitude of every point, radians, ``(nlat, nlon)``."""
        return np.meshgrid(np.deg2rad(self.lat), np.deg2rad(self.lon), indexing="ij")[0]

    @functools.cached_property
    def lon_rad(self) -> np.ndarray:
        """Longitude of every point, radians, ``(nlat, nlon)`` (as given, not wrapped)."""
        return np.meshgrid(np.deg2rad(self.lat), np.deg2rad(self.lon), indexing="ij")[1]

    @functools.cached_property
    def xyz(self) -> np.ndarray:
        """Unit vectors of the points, ``(nlat, nlon, 3)``."""
        return latlon_to_xyz(self.lat_rad, self.lon_rad)

    @functools.cached_property
    def east(self) -> np.ndarray:
        """Unit east vectors at the points, ``(nlat, nlon, 3)``."""
        return np.stack([-np.sin(self.lon_rad), np.cos(self.lon_rad), np.zeros_like(self.lon_rad)], -1)

    @functools.cached_property
    def north(self) -> np.ndarray:
        """Unit north vectors at the points, ``(nlat, nlon, 3)``."""
        lat, lon = self.lat_rad, self.lon_rad
        return np.stack([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)], -1)

    def distance_km(self, center: np.ndarray) -> np.ndarray:
        """Great-circle distance on the Earth from a unit vector ``center`` to every point, km, ``(nlat, nlon)``."""
        return np.arccos(np.clip(self.xyz @ center, -1.0, 1.0)) * EARTH_RADIUS_KM

    def tangent_components(self, vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Eastward and northward components of a 3-D vector field ``(nlat, nlon, 3)``."""
        return np.einsum("...k,...k->...", vec, self.east), np.einsum("...k,...k->...", vec, self.north)

    def vortex_directions(self, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit outward radial ``a`` and counter-clockwise tangential ``p x a`` vectors around ``center``,
        ``(nlat, nlon, 3)`` each."""
        p = self.xyz
        a = p * (p @ center)[..., None] - center
        a /= np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
        return a, np.cross(p, a)
