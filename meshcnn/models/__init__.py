"""Whole models: the spherical U-Net and ResNet (:mod:`.spherical`) and the planar
lat-lon baselines they are compared with (:mod:`.planar`).
"""
from .spherical import ResBlock, SphericalUNet, SphericalResNet, DOWNSAMPLE
from .planar import LonConv2d, PlanarCNN, PlanarUNet

__all__ = [
    "ResBlock", "SphericalUNet", "SphericalResNet", "DOWNSAMPLE", "LonConv2d", "PlanarCNN", "PlanarUNet",
]
