"""Task recipes over the library: the model registry with typed configs (:mod:`.registry`),
classification with rotation studies (:mod:`.classification`, :mod:`.rotation_study`) and
segmentation (:mod:`.segmentation`).
"""

from .classification import train_and_test
from .export import export_safetensors, load_safetensors_model
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
from .rotation_study import RotationStudy, run_rotation_study
from .segmentation import SegmenterRun, mesh_probabilities, segmentation_report

__all__ = [
    "export_safetensors",
    "load_safetensors_model",
    "MODEL_KINDS",
    "TASKS",
    "ClassifierConfig",
    "SegmenterConfig",
    "ModelConfig",
    "model_config",
    "build_model",
    "count_parameters",
    "matched_width",
    "train_and_test",
    "mesh_probabilities",
    "SegmenterRun",
    "segmentation_report",
    "RotationStudy",
    "run_rotation_study",
]
