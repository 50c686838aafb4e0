"""Task recipes over the library: classification with rotation studies
(:mod:`.classification`) and segmentation (:mod:`.segmentation`).
"""
from .classification import (
    KINDS, classifier_config, build_classifier, count_parameters, matched_width, accuracy, accuracy_evaluator,
    train_and_test, summarize_rows)
from .segmentation import (
    MODEL_KINDS, build_model, matching_planar_width, mesh_probabilities, segmentation_report, flat_metrics)

__all__ = [
    "KINDS", "classifier_config", "build_classifier", "count_parameters", "matched_width", "accuracy",
    "accuracy_evaluator", "train_and_test", "summarize_rows", "MODEL_KINDS", "build_model", "matching_planar_width",
    "mesh_probabilities", "segmentation_report", "flat_metrics",
]
