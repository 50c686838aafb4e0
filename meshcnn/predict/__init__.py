"""The climate workflow after training: prediction on new model output (:mod:`.runner`)
and tracked events (:mod:`.events`). Command line: ``python -m meshcnn predict``.
"""
from .runner import (
    PredictError, Predictor, load_predictor, find_inputs, predict_files, read_fields, file_sha256, STAGES)
from .events import (
    EARTH_RADIUS_KM, EVENT_FIELDS, EVENT_COLUMNS, LAT_BANDS, find_events, frequency_path, read_events, summarize)

__all__ = [
    "PredictError", "Predictor", "load_predictor", "find_inputs", "predict_files", "read_fields", "file_sha256",
    "STAGES", "EARTH_RADIUS_KM", "EVENT_FIELDS", "EVENT_COLUMNS", "LAT_BANDS", "find_events", "frequency_path",
    "read_events", "summarize",
]
