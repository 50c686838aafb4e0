"""meshcnn: convolutional neural networks on spherical unstructured meshes.

Geometry (:mod:`meshcnn.geometry.mesh`, :mod:`meshcnn.geometry.operators`) -> layers
(:mod:`meshcnn.nn.layers`, :mod:`meshcnn.nn.functional`) -> models (:mod:`meshcnn.models`).
"""
from . import models
from .nn.layers import ORIENTATIONS, MeshConv, MeshConvTranspose, MeshPool, hemisphere_flip
from .geometry.mesh import Mesh, icosphere

__version__ = "0.1.0"
__all__ = ["Mesh", "icosphere", "MeshConv", "MeshConvTranspose", "MeshPool", "ORIENTATIONS", "hemisphere_flip",
           "models", "__version__"]
