"""Task recipes over the library: the model registry with typed configs (:mod:`.registry`),
classification with rotation studies (:mod:`.classification`, :mod:`.rotation_study`) and
segmentation (:mod:`.segmentation`).
"""

from .classification import (
    accuracy,
    accuracy_evaluator,
    summarize_rows,
    train_and_test,
)
from .registry import (
    MODEL_KINDS,
    TASKS,
    ClassifierConfig,
    ModelConfig,
    SegmenterConfig,
    build_model,
    count_parameters,
    matched_width,
    model_config,
)
from .rotation_study import (
    SETTINGS,
    TRAIN_MODES,
    RotationStudy,
    StudyVariant,
    check_study_resume,
    run_folder,
    run_rotation_study,
)
from .segmentation import SegmenterRun, flat_metrics, matching_planar_width, mesh_probabilities, segmentation_report

__all__ = [
    "MODEL_KINDS",
    "TASKS",
    "ClassifierConfig",
    "SegmenterConfig",
    "ModelConfig",
    "model_config",
    "build_model",
    "count_parameters",
    "matched_width",
    "accuracy",
    "accuracy_evaluator",
    "train_and_test",
    "summarize_rows",
    "matching_planar_width",
    "mesh_probabilities",
    "SegmenterRun",
    "segmentation_report",
    "flat_metrics",
    "SETTINGS",
    "TRAIN_MODES",
    "StudyVariant",
    "RotationStudy",
    "run_folder",
    "run_rotation_study",
    "check_study_resume",
]
