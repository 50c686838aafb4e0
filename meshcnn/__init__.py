"""meshcnn: convolutional neural networks on spherical unstructured meshes.

Geometry (:mod:`meshcnn.geometry.mesh`, :mod:`meshcnn.geometry.operators`) -> layers
(:mod:`meshcnn.nn.layers`, :mod:`meshcnn.nn.functional`) -> models (:mod:`meshcnn.models`).

The names below are loaded on first use (PEP 562), so that the geometry layer and its
command-line tool (``python -m meshcnn.geometry``) do not import torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_HOMES = {
    "Mesh": "meshcnn.geometry.mesh",
    "icosphere": "meshcnn.geometry.mesh",
    "MeshHierarchy": "meshcnn.geometry.hierarchy",
    "MeshConv": "meshcnn.nn.layers",
    "MeshConvTranspose": "meshcnn.nn.layers",
    "MeshPool": "meshcnn.nn.layers",
    "ORIENTATIONS": "meshcnn.nn.layers",
    "hemisphere_flip": "meshcnn.nn.layers",
}
__all__ = [*_HOMES, "models", "__version__"]


def __getattr__(name: str) -> object:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        try:  # a subpackage or module: meshcnn.models, meshcnn.geometry, ...
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
