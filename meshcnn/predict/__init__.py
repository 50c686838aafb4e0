"""The climate workflow after training: ``meshcnn predict`` on new model output and
tracked events. Command line: ``python -m meshcnn predict`` / ``meshcnn events summary``.

:mod:`.runner` (:func:`predict_files`, the file loop) runs the stages of :mod:`.stages`
(read and regrid in ``DataLoader`` workers, model, regrid back) with the model of
:mod:`.predictor`, reading with :mod:`.inputs` and writing with :mod:`.output`;
:mod:`.events` finds connected events on the mesh and summarises an events CSV; :mod:`.distributed` runs
the chunks on a ``dask.distributed`` cluster (``meshcnn predict --dask``, ``predict_files(client=)``).
"""

from .events import EVENT_COLUMNS, find_events, frequency_path, read_events, summarize
from .inputs import find_inputs
from .predictor import PredictError, Predictor, load_predictor
from .runner import predict_files

__all__ = [
    "PredictError",
    "Predictor",
    "load_predictor",
    "find_inputs",
    "predict_files",
    "EVENT_COLUMNS",
    "find_events",
    "frequency_path",
    "read_events",
    "summarize",
]
