"""meshcnn: convolutional neural networks on spherical unstructured meshes.

Geometry (:mod:`meshcnn.mesh`, :mod:`meshcnn.operators`) -> layers
(:mod:`meshcnn.layers`, :mod:`meshcnn.functional`) -> models (:mod:`meshcnn.models`).
"""
from . import models
from .layers import ORIENTATIONS, MeshConv, MeshConvTranspose, MeshPool, hemisphere_flip
from .mesh import Mesh, icosphere

__version__ = "0.1.0"
__all__ = ["Mesh", "icosphere", "MeshConv", "MeshConvTranspose", "MeshPool", "ORIENTATIONS", "hemisphere_flip",
           "models", "__version__"]
