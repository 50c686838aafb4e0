"""Sphere coordinates: the lat/lon convention and the east/north frame."""

import numpy as np
import pytest

from meshcnn.geometry import latlon_to_xyz, xyz_to_latlon
from meshcnn.geometry.coords import east_north


def test_latlon_round_trip_and_axes():
    lat, lon = np.deg2rad([0.0, 0.0, 90.0, -30.0]), np.deg2rad([0.0, 90.0, 0.0, 180.0])
    xyz = latlon_to_xyz(lat, lon)
    np.testing.assert_allclose(xyz[:3], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], atol=1e-15)
    back_lat, back_lon = xyz_to_latlon(xyz)
    np.testing.assert_allclose(back_lat, lat, atol=1e-15)
    np.testing.assert_allclose(back_lon[[0, 1, 3]], lon[[0, 1, 3]], atol=1e-15)


def test_east_north_are_the_derivatives_of_the_coordinates():
    """east = d(xyz)/d(lon) / cos(lat), north = d(xyz)/d(lat), at any radius."""
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-1.5, 1.5, 50), rng.uniform(-np.pi, np.pi, 50)
    east, north = east_north(3.0 * latlon_to_xyz(lat, lon))
    eps = 1e-6
    d_lon = (latlon_to_xyz(lat, lon + eps) - latlon_to_xyz(lat, lon - eps)) / (2 * eps) / np.cos(lat)[:, None]
    d_lat = (latlon_to_xyz(lat + eps, lon) - latlon_to_xyz(lat - eps, lon)) / (2 * eps)
    np.testing.assert_allclose(east, d_lon, atol=1e-8)
    np.testing.assert_allclose(north, d_lat, atol=1e-8)
    np.testing.assert_allclose(np.cross(east, north), latlon_to_xyz(lat, lon), atol=1e-14)  # right-handed


@pytest.mark.parametrize("pole", [[0.0, 0.0, 2.0], [0.0, 0.0, -1.0]])
def test_east_north_undefined_on_the_polar_axis(pole):
    east, north = east_north(np.array([pole, [1.0, 0.0, 0.0]]))
    assert np.isnan(east[0]).all() and np.isnan(north[0]).all()
    np.testing.assert_allclose(east[1], [0, 1, 0])
    np.testing.assert_allclose(north[1], [0, 0, 1])
