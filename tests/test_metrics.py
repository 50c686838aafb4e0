"""Tests of meshcnn.metrics against hand-computed answers and sklearn."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from meshcnn import metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_confusion_matrix_weighted_by_hand():
    target = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    cm = metrics.confusion_matrix(pred, target, 3, w)
    expected = np.array([[1.0, 2.0, 0.0], [0.0, 7.0, 0.0], [5.0, 0.0, 0.0]])
    np.testing.assert_array_equal(cm, expected)
    # IoU: class 0: 1 / (1 + 2 + 5); class 1: 7 / (7 + 2); class 2: 0 / 5
    np.testing.assert_allclose(metrics.iou(pred, target, 3, w), [1 / 8, 7 / 9, 0.0])
    np.testing.assert_allclose(metrics.per_class_accuracy(pred, target, 3, w), [1 / 3, 1.0, 0.0])


def test_batch_with_vertex_weights_matches_sklearn():
    rng = np.random.default_rng(0)
    n, v, c = 4, 50, 3
    target = rng.integers(0, c, (n, v))
    pred = rng.integers(0, c, (n, v))
    areas = rng.uniform(0.5, 1.5, v)
    full = np.broadcast_to(areas, (n, v)).ravel()
    cm = metrics.confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), c, torch.from_numpy(areas))
    np.testing.assert_allclose(
        cm, sklearn_metrics.confusion_matrix(target.ravel(), pred.ravel(), labels=range(c), sample_weight=full)
    )
    np.testing.assert_allclose(
        metrics.iou(pred, target, c, areas),
        sklearn_metrics.jaccard_score(target.ravel(), pred.ravel(), average=None, sample_weight=full),
    )


def test_absent_class_is_nan():
    target = np.array([0, 0, 1])
    pred = np.array([0, 1, 1])
    ious = metrics.iou(pred, target, 3)
    assert math.isnan(ious[2]) and not np.isnan(ious[:2]).any()
    assert math.isnan(metrics.per_class_accuracy(pred, target, 3)[2])


@pytest.mark.parametrize("ties", [False, True])
def test_average_precision_matches_sklearn(ties):
    rng = np.random.default_rng(1)
    n, c, v = 3, 3, 120
    target = rng.integers(0, c, (n, v))
    scores = rng.random((n, c, v))
    if ties:
        scores = np.round(scores, 1)  # many tied thresholds
    w = rng.uniform(0.1, 2.0, v)
    ap = metrics.average_precision(torch.from_numpy(scores), target, c, w)
    full = np.broadcast_to(w, (n, v)).ravel()
    for k in range(c):
        expected = sklearn_metrics.average_precision_score(
            (target == k).ravel(), scores[:, k].ravel(), sample_weight=full
        )
        assert ap[k] == pytest.approx(expected, abs=1e-12)
    # unbatched (C, V) input
    ap0 = metrics.average_precision(scores[0], target[0], c, w)
    expected0 = sklearn_metrics.average_precision_score((target[0] == 1), scores[0, 1], sample_weight=w)
    assert ap0[1] == pytest.approx(expected0, abs=1e-12)


def test_average_precision_perfect_and_no_positives():
    target = np.array([0, 0, 1, 1])
    scores = np.array([[0.9, 0.8, 0.1, 0.2], [0.1, 0.2, 0.9, 0.8], [0.0, 0.0, 0.0, 0.0]])
    ap = metrics.average_precision(scores, target, 3)
    assert ap[0] == 1.0 and ap[1] == 1.0 and math.isnan(ap[2])


def test_bad_inputs():
    with pytest.raises(ValueError, match="outside"):
        metrics.iou(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="shape"):
        metrics.iou(np.array([0, 1, 1]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="broadcast"):
        metrics.iou(np.array([0, 1]), np.array([0, 1]), 3, weights=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        metrics.iou(np.array([0, 1]), np.array([0, 1]), 3, weights=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="integer"):
        metrics.iou(np.array([0.5, 1.0]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="classes"):
        metrics.average_precision(np.zeros((2, 4)), np.zeros(4, dtype=int), 3)


def test_segmentation_report_and_latitude_bands():
    lat = np.deg2rad(np.array([0.0, 10.0, -20.0, 45.0, -60.0, 70.0, -89.0, 90.0]))
    target = np.array([[0, 1, 1, 2, 2, 0, 0, 2]])
    pred = np.array([[0, 1, 0, 2, 2, 0, 2, 2]])
    scores = np.eye(3)[pred].transpose(0, 2, 1)  # one-hot scores (1, C, V)
    w = np.arange(1.0, 9.0)
    rep = metrics.segmentation_report(scores, target, weights=w, lat=lat, class_names=["bg", "tc", "ar"])
    json.dumps(rep, allow_nan=False)  # JSON-ready, no NaN
    np.testing.assert_allclose([rep["iou"][k] for k in ("bg", "tc", "ar")], metrics.iou(pred, target, 3, w))
    assert rep["mean_iou"] == pytest.approx(np.mean(metrics.iou(pred, target, 3, w)))
    assert rep["overall_accuracy"] == pytest.approx((w.sum() - w[2] - w[6]) / w.sum())
    bands = rep["iou_by_band"]
    # tropics: vertices 0, 1, 2 (|lat| 0, 10, 20): class 2 absent -> None
    assert bands["tropics"]["iou"]["ar"] is None
    assert bands["tropics"]["iou"]["tc"] == pytest.approx(2 / 5)
    # mid-latitudes: vertices 3, 4 all ar, correct
    assert bands["midlatitudes"]["iou"]["ar"] == 1.0 and bands["midlatitudes"]["iou"]["bg"] is None
    # polar: vertices 5, 6, 7 (70, 89, 90): bg iou = 6 / (6 + 7), ar iou = 8 / (8 + 7)
    assert bands["polar"]["iou"]["bg"] == pytest.approx(6 / 13)
    assert bands["polar"]["iou"]["ar"] == pytest.approx(8 / 15)
    assert sum(b["area_fraction"] for b in bands.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="radians"):
        metrics.segmentation_report(scores, target, lat=np.rad2deg(lat))
