r"""Area-weighted segmentation metrics on the sphere.

Every function takes numpy arrays or torch tensors and returns numpy arrays or
Python floats. Shapes: predicted and true labels ``(V,)`` or ``(N, V)`` (int),
class scores ``(C, V)`` or ``(N, C, V)``. ``weights`` is broadcast against the
labels. Pass the cell weights of the grid the labels live on, the one convention of
:mod:`meshcnn.grids.base`: ``IcosphereGrid(level).cell_weights`` (the vertex areas
``mesh.vertex_areas``, normalised) on a mesh, ``LatLonGrid(lat, lon).cell_weights``
(exact cell areas) on a lat-lon grid, so that each point counts by the area it
represents (an unweighted metric over-counts the poles of a lat-lon grid; the
icosphere's cells differ in area too, less). Only ratios of weights matter.

Conventions: the confusion matrix has true classes in rows and predicted
classes in columns, entries are summed weights. A per-class metric that is
undefined (e.g. IoU of a class absent from both prediction and target) is NaN;
means ignore NaNs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "mean_std",
    "confusion_matrix",
    "iou",
    "per_class_accuracy",
    "average_precision",
    "segmentation_report",
    "LAT_ZONES",
]

#: The climate zones of :func:`segmentation_report`'s ``iou_by_band``, by absolute latitude in degrees:
#: ``name -> (low, high)``, ``low <= |lat| < high`` (the polar zone includes the poles). The tropics end
#: at the Tropics of Cancer and Capricorn, the polar zone begins at the polar circles. Not the 15-degree
#: bands of the event counts (:data:`meshcnn.predict.events.EVENT_LAT_BANDS`).
LAT_ZONES: dict[str, tuple[float, float]] = {
    "tropics": (0.0, 23.5),
    "midlatitudes": (23.5, 66.5),
    "polar": (66.5, 90.0),
}


def _numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise ValueError(f"{name} must be a numeric array, got dtype object")
    return arr


def _labels(x: Any, name: str, num_classes: int) -> np.ndarray:
    arr = _numpy(x, name)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"{name} has labels outside 0..{num_classes - 1} (min {arr.min()}, max {arr.max()})")
    return arr


def _weights(weights: Any, shape: tuple[int, ...]) -> np.ndarray:
    if weights is None:
        return np.ones(shape, dtype=np.float64)
    w = _numpy(weights, "weights").astype(np.float64)
    try:
        w = np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(f"weights of shape {w.shape} do not broadcast to the labels' shape {shape}") from None
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    return w


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def confusion_matrix(pred: Any, target: Any, num_classes: int, weights: Any = None) -> np.ndarray:
    """Weighted confusion matrix ``(C, C)`` float64: ``cm[t, p]`` = summed weight of vertices
    with true class ``t`` predicted as ``p``.

    Parameters
    ----------
    pred, target : array_like or tensor of int
        Predicted and true labels in ``0..C-1``, of the same shape (``ValueError`` otherwise).
    num_classes : int
        ``C``, positive.
    weights : array_like, optional
        Broadcast to the labels' shape (e.g. vertex areas ``(V,)`` for labels ``(N, V)``);
        default: all 1.

    Returns
    -------
    (C, C) float64 array
    """
    num_classes = _check_num_classes(num_classes)
    pred = _labels(pred, "pred", num_classes)
    target = _labels(target, "target", num_classes)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
    w = _weights(weights, target.shape)
    flat = (target * num_classes + pred).reshape(-1)
    cm = np.bincount(flat, weights=w.reshape(-1), minlength=num_classes * num_classes)
    return cm.reshape(num_classes, num_classes)


def _iou_from_cm(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1.0), np.nan)


def _accuracy_from_cm(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm)
    support = cm.sum(1)
    return np.where(support > 0, tp / np.where(support > 0, support, 1.0), np.nan)


def iou(pred: Any, target: Any, num_classes: int, weights: Any = None) -> np.ndarray:
    r"""Per-class intersection over union ``(C,)``: :math:`TP / (TP + FP + FN)`, each term a sum of weights.

    NaN for a class absent from both ``pred`` and ``target``.

    Parameters
    ----------
    pred, target, num_classes, weights
        As in :func:`confusion_matrix`.
    """
    return _iou_from_cm(confusion_matrix(pred, target, num_classes, weights))


def per_class_accuracy(pred: Any, target: Any, num_classes: int, weights: Any = None) -> np.ndarray:
    r"""Per-class accuracy (recall) ``(C,)``: :math:`TP / (TP + FN)`, the weighted fraction of each
    true class predicted correctly. NaN for a class absent from ``target``.

    Parameters
    ----------
    pred, target, num_classes, weights
        As in :func:`confusion_matrix`.
    """
    return _accuracy_from_cm(confusion_matrix(pred, target, num_classes, weights))


def _binary_ap(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> float:
    """Weighted average precision of one class (step integration, as sklearn's ``average_precision_score``)."""
    order = np.argsort(-scores, kind="mergesort")
    s, y, w = scores[order], positive[order], weights[order]
    tp_w = np.cumsum(np.where(y, w, 0.0))
    fp_w = np.cumsum(np.where(y, 0.0, w))
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct threshold
    tps, fps = tp_w[last], fp_w[last]
    if len(tps) == 0 or tps[-1] <= 0:
        return math.nan
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted > 0)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def average_precision(scores: Any, target: Any, num_classes: int, weights: Any = None) -> np.ndarray:
    r"""Per-class average precision ``(C,)``, one-vs-rest, area-weighted.

    :math:`AP_k = \sum_n (R_n - R_{n-1}) P_n` over decreasing score thresholds of class
    ``k``, with weighted precision :math:`P_n` and recall :math:`R_n` (ties form one
    threshold) -- the definition of sklearn's ``average_precision_score`` with
    ``sample_weight``. NaN for a class with no positive weight.

    Parameters
    ----------
    scores : ``(C, V)`` or ``(N, C, V)`` array_like or tensor
        Per-class probabilities (or any score increasing with confidence); finite.
    target : ``(V,)`` or ``(N, V)`` array_like or tensor of int
    num_classes : int
        ``C``; must match the class axis of ``scores``.
    weights : array_like, optional
        Broadcast to ``target`` (e.g. vertex areas); default: all 1.

    Returns
    -------
    (C,) float64 array

    Raises
    ------
    ValueError
        If the shapes do not match or ``scores`` contain NaN or Inf.
    """
    num_classes = _check_num_classes(num_classes)
    scores = _numpy(scores, "scores").astype(np.float64)
    target = _labels(target, "target", num_classes)
    if scores.ndim == target.ndim + 1:
        class_axis = 0 if target.ndim <= 1 else 1
    else:
        raise ValueError(f"scores of shape {scores.shape} must be (C, V) or (N, C, V) for target {target.shape}")
    if scores.shape[class_axis] != num_classes:
        raise ValueError(f"scores have {scores.shape[class_axis]} classes on axis {class_axis}, expected {num_classes}")
    scores = np.moveaxis(scores, class_axis, 0)
    if scores.shape[1:] != target.shape:
        raise ValueError(f"scores of shape {scores.shape} do not match target of shape {target.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or Inf")
    w = _weights(weights, target.shape).reshape(-1)
    t = target.reshape(-1)
    return np.array([_binary_ap(scores[k].reshape(-1), t == k, w) for k in range(num_classes)])


def _nan_to_none(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _nanmean(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=np.float64)
    return None if np.all(np.isnan(x)) else float(np.nanmean(x))


def segmentation_report(
    scores: Any,
    target: Any,
    num_classes: int | None = None,
    weights: Any = None,
    lat: Any = None,
    class_names: Sequence[str] | None = None,
    pred: Any = None,
) -> dict:
    """All the metrics of a segmentation, as a JSON-ready dict (undefined values are ``None``).

    Parameters
    ----------
    scores : ``(N, C, V)`` or ``(C, V)`` class probabilities, or ``None`` (then no AP).
    target : ``(N, V)`` or ``(V,)`` true labels.
    num_classes : defaults to the class axis of ``scores``.
    weights : the grid's ``cell_weights`` (:mod:`meshcnn.grids.base`), e.g. vertex areas ``(V,)``
        (or anything broadcasting to ``target``).
    lat : vertex latitudes ``(V,)`` in **radians** (``mesh.lat``); adds ``iou_by_band`` for
        the bands of :data:`LAT_ZONES` (tropics, mid-latitudes, polar), and
        ``iou_by_hemisphere`` (``north``: latitude > 0, ``south``: < 0; the equator in neither).
    class_names : names used as keys; default ``"0"``, ``"1"``, ...
    pred : predicted labels; default ``argmax`` of ``scores`` over classes.

    Returns keys ``mean_iou``, ``iou``, ``accuracy`` (per class), ``mean_accuracy``,
    ``overall_accuracy``, ``ap``, ``mean_ap``, ``confusion_matrix`` (true x predicted,
    fractions of the total weight), ``class_names`` and, with ``lat``, ``iou_by_band``
    (``{band: {"mean_iou": ..., "iou": {...}, "area_fraction": ...}}``).
    """
    if scores is None and pred is None:
        raise ValueError("segmentation_report needs scores or pred")
    target_np = _numpy(target, "target")
    if scores is not None:
        scores = _numpy(scores, "scores")
        class_axis = 1 if scores.ndim == 3 else 0
        if num_classes is None:
            num_classes = scores.shape[class_axis]
        if pred is None:
            pred = np.argmax(scores, axis=class_axis)
    if num_classes is None:
        raise ValueError("num_classes is needed when no scores are given")
    num_classes = _check_num_classes(num_classes)
    names = [str(k) for k in range(num_classes)] if class_names is None else [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    pred_np = _labels(pred, "pred", num_classes)
    target_np = _labels(target_np, "target", num_classes)
    w = _weights(weights, target_np.shape)

    cm = confusion_matrix(pred_np, target_np, num_classes, w)
    ious, accs = _iou_from_cm(cm), _accuracy_from_cm(cm)
    total = cm.sum()
    report: dict[str, Any] = {
        "class_names": names,
        "mean_iou": _nanmean(ious),
        "iou": {n: _nan_to_none(v) for n, v in zip(names, ious)},
        "accuracy": {n: _nan_to_none(v) for n, v in zip(names, accs)},
        "mean_accuracy": _nanmean(accs),
        "overall_accuracy": _nan_to_none(np.trace(cm) / total) if total > 0 else None,
        "confusion_matrix": (cm / total if total > 0 else cm).tolist(),
    }
    if scores is not None:
        aps = average_precision(scores, target_np, num_classes, w)
        report["ap"] = {n: _nan_to_none(v) for n, v in zip(names, aps)}
        report["mean_ap"] = _nanmean(aps)
    if lat is not None:
        report.update(_iou_by_latitude(pred_np, target_np, num_classes, w, lat, names))
    return report


def _iou_by_latitude(
    pred: np.ndarray, target: np.ndarray, num_classes: int, w: np.ndarray, lat: Any, names: list[str]
) -> dict[str, Any]:
    """``iou_by_band`` (:data:`LAT_ZONES`) and ``iou_by_hemisphere`` of :func:`segmentation_report`."""
    lat_deg = np.rad2deg(_numpy(lat, "lat").astype(np.float64))
    if lat_deg.shape != target.shape[-1:]:
        raise ValueError(f"lat of shape {lat_deg.shape} must be (V,) = {target.shape[-1:]}")
    if np.abs(lat_deg).max() > 90.0 + 1e-6:
        raise ValueError("lat must be in radians (|lat| <= pi/2); got values that look like degrees")

    def region(mask: np.ndarray) -> dict[str, Any]:
        rw = w * mask
        ious = _iou_from_cm(confusion_matrix(pred, target, num_classes, rw))
        return {
            "mean_iou": _nanmean(ious),
            "iou": {n: _nan_to_none(v) for n, v in zip(names, ious)},
            "area_fraction": float(rw.sum() / w.sum()) if w.sum() > 0 else None,
        }

    a = np.abs(lat_deg)
    bands = {band: region((a >= lo) & ((a < hi) if hi < 90.0 else (a <= hi))) for band, (lo, hi) in LAT_ZONES.items()}
    return {"iou_by_band": bands, "iou_by_hemisphere": {"north": region(lat_deg > 0), "south": region(lat_deg < 0)}}


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``"mean ± std"`` of ``values`` (sample standard deviation) with ``digits`` decimals.

    The value alone for one value, ``"-"`` for none. For tables of results over seeds.

    Parameters
    ----------
    values : sequence of float
    digits : int
        Decimals (default 3).

    Returns
    -------
    str
    """
    values = [float(v) for v in values]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
