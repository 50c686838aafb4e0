"""Whole models: the spherical U-Net and ResNet (:mod:`.spherical`) and the planar
lat-lon baselines they are compared with (:mod:`.planar`).
"""

from .planar import LonConv2d, PlanarCNN, PlanarUNet
from .spherical import ResBlock, SphericalResNet, SphericalUNet

__all__ = ["ResBlock", "SphericalUNet", "SphericalResNet", "LonConv2d", "PlanarCNN", "PlanarUNet"]
