r"""Sphere coordinates: the one convention every module of meshcnn uses.

Convention
----------
* Points on the sphere are unit vectors ``(x, y, z)`` with ``z`` towards the north pole
  and ``x`` towards latitude 0, longitude 0.
* ``lat`` is north-positive in :math:`[-\pi/2, \pi/2]`, ``lon`` east-positive in
  :math:`(-\pi, \pi]`, both in **radians** (modules that take degrees, such as the lat-lon
  grids, say so and convert with ``np.deg2rad``):

  .. math:: x = \cos\phi\cos\lambda, \quad y = \cos\phi\sin\lambda, \quad z = \sin\phi.

* The icosphere of level ``l`` has :math:`V = 10 \cdot 4^l + 2` vertices
  (:func:`num_vertices_at`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["EARTH_RADIUS_KM", "num_vertices_at", "latlon_to_xyz", "xyz_to_latlon", "east_north"]

#: Mean Earth radius, km (distances and areas on the unit sphere are scaled by it).
EARTH_RADIUS_KM = 6371.0


def num_vertices_at(level: int) -> int:
    """Vertex count of the icosphere of ``level``.

    Parameters
    ----------
    level : int
        Subdivision level (0 is the icosahedron).

    Returns
    -------
    int
        :math:`V = 10 \\cdot 4^{level} + 2`.
    """
    return 10 * 4**level + 2


def latlon_to_xyz(lat: np.ndarray | float, lon: np.ndarray | float) -> np.ndarray:
    """Unit vectors of latitudes and longitudes.

    Parameters
    ----------
    lat, lon : array_like
        Radians, broadcast against each other to a shape ``S``.

    Returns
    -------
    ndarray, shape ``S + (3,)``, float64
        ``(cos(lat) cos(lon), cos(lat) sin(lon), sin(lat))``.
    """
    lat, lon = np.broadcast_arrays(np.asarray(lat), np.asarray(lon))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def xyz_to_latlon(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of unit vectors.

    Parameters
    ----------
    xyz : ndarray, shape ``S + (3,)``
        Unit vectors (``z`` is clipped to ``[-1, 1]`` against round-off).

    Returns
    -------
    lat, lon : ndarray, shape ``S``
        Radians; ``lat = arcsin(z)``, ``lon = arctan2(y, x)`` in :math:`(-\\pi, \\pi]`.
    """
    xyz = np.asarray(xyz)
    return np.arcsin(np.clip(xyz[..., 2], -1.0, 1.0)), np.arctan2(xyz[..., 1], xyz[..., 0])


def east_north(xyz: np.ndarray, tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    r"""Unit east and north vectors at points, seen from the sphere's centre.

    With :math:`n = p / |p|` and :math:`\hat z` the north pole,
    :math:`e = \hat z \times n / |\hat z \times n|` points east and :math:`n \times e`
    north; :math:`(e, n \times e, n)` is right-handed. On the polar axis, where
    :math:`|\hat z \times n| = \cos(\mathrm{lat})` is below ``tol``, both are undefined
    and returned as NaN.

    Parameters
    ----------
    xyz : ndarray, shape ``S + (3,)``
        Points, not necessarily of unit length (zero is not allowed).
    tol : float
        Smallest :math:`\cos(\mathrm{lat})` with a defined frame (default 1e-12).

    Returns
    -------
    east, north : ndarray, shape ``S + (3,)``, float64
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    r = np.sqrt(x * x + y * y + z * z)
    nx, ny, nz = x / r, y / r, z / r
    rho = np.sqrt(ny * ny + nx * nx)
    with np.errstate(invalid="ignore", divide="ignore"):
        ex, ey = np.where(rho < tol, np.nan, -ny / rho), np.where(rho < tol, np.nan, nx / rho)
    east = np.stack([ex, ey, np.where(rho < tol, np.nan, 0.0)], axis=-1)
    north = np.stack([-nz * ey, nz * ex, nx * ey - ny * ex], axis=-1)
    return east, north
