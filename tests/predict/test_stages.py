"""The per-chunk stages of meshcnn predict (meshcnn.predict.stages): the class argmax and the labels on the grid."""

from __future__ import annotations

import numpy as np

from meshcnn.grids import regrid
from meshcnn.predict.stages import argmax_classes, grid_labels


def test_argmax_classes_is_numpy_argmax_with_the_first_maximum_on_ties():
    rng = np.random.default_rng(0)
    probs = rng.integers(0, 3, (4, 5, 50)).astype(np.float32)  # many ties
    labels = argmax_classes(probs)
    assert labels.dtype == np.int8
    np.testing.assert_array_equal(labels, probs.argmax(1))


def test_grid_labels_are_the_argmax_of_the_interpolated_probabilities():
    level, lat, lon = 2, np.linspace(-80.0, 80.0, 9), np.arange(0.0, 360.0, 30.0)
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 3, 162)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels, grid_probs = grid_labels(probs, level, lat, lon, probabilities=True)
    assert labels.shape == (2, 9, 12) and grid_probs.shape == (2, 3, 9, 12)
    expected = regrid.apply(regrid.mesh_to_latlon(level, lat, lon, "bilinear").astype(np.float32), probs)
    np.testing.assert_array_equal(grid_probs.reshape(2, 3, -1), expected)
    np.testing.assert_array_equal(labels, grid_probs.argmax(1))
    assert grid_labels(probs, level, lat, lon, probabilities=False)[1] is None
