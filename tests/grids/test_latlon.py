"""LatLonGrid: equality and hashing."""

import numpy as np

from meshcnn.grids import LatLonGrid


def test_latlon_grids_that_compare_equal_hash_equal():
    a = LatLonGrid(np.linspace(-90, 90, 19), np.arange(0, 360, 15.0))
    b = LatLonGrid(np.linspace(-90, 90, 19) + 1e-12, np.arange(0, 360, 15.0))
    c = LatLonGrid(np.linspace(-90, 90, 10), np.arange(0, 360, 15.0))
    assert a == b and hash(a) == hash(b) and a != c
    assert len({a, b, c}) == 2 and {a: 1}[b] == 1
