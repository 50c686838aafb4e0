"""One public name, one meaning: two modules of meshcnn may not define or export different things under the same
public name (issue 19: ``LAT_BANDS`` meant the metrics' climate zones in :mod:`meshcnn.metrics` and the event
counts' 15-degree bands in :mod:`meshcnn.predict.events`; ``mesh_probabilities`` was two different functions).
Re-exports of the same object (a package's ``__init__`` re-exporting its modules' names) are fine."""

from __future__ import annotations

import importlib
import inspect
from collections import defaultdict

from _helpers import meshcnn_module_names

#: Names reviewed and allowed to mean different things in different modules, with the reason.
ALLOWED = {
    "main": "the entry point of each command line (python -m meshcnn.<package>)",
    "segmentation_report": "meshcnn.tasks.segmentation's wraps meshcnn.metrics's for mesh predictions on a grid",
}


def _modules():
    """Every importable module of meshcnn (``__main__`` modules, which run a command line, left out)."""
    for name in meshcnn_module_names():
        try:
            yield importlib.import_module(name)
        except ImportError:  # an optional dependency (triton, ...) that this environment lacks
            continue


def _public_objects(module):
    """``name -> object`` of the module's ``__all__`` and of the public functions and classes it defines."""
    out = {name: getattr(module, name) for name in getattr(module, "__all__", ()) if hasattr(module, name)}
    for name, obj in vars(module).items():
        if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)):
            if obj.__module__ == module.__name__:
                out[name] = obj
    return out


def test_a_public_name_means_one_thing():
    where = defaultdict(dict)  # name -> {id(object): [module, ...]}
    for module in _modules():
        for name, obj in _public_objects(module).items():
            if not inspect.ismodule(obj):
                where[name].setdefault(id(obj), []).append(module.__name__)
    clashes = {
        name: [mods[0] for mods in objs.values()]
        for name, objs in where.items()
        if len(objs) > 1 and name not in ALLOWED
    }
    assert not clashes, f"public names defined differently in several modules (rename one): {clashes}"


def test_latitude_bands_have_distinct_names():
    from meshcnn import metrics
    from meshcnn.predict import events

    assert set(metrics.LAT_ZONES) == {"tropics", "midlatitudes", "polar"}
    assert list(events.EVENT_LAT_BANDS) == ["0-15", "15-30", "30-45", "45-60", "60-90"]
    assert not hasattr(metrics, "LAT_BANDS") and not hasattr(events, "LAT_BANDS")
