"""Neural layers on the icosphere. Tensors are ``(batch, channels, vertices)``.

* :mod:`.functional`: :func:`mesh_conv`, the mesh convolution as a function;
* :mod:`._operator`: the tap operator layout (:class:`TapOperator`) and the samples-per-kernel rule;
* :mod:`._kernels`: the bag-product kernels (CPU, float64); :mod:`._triton_kernels`: the CUDA kernels;
* :mod:`._ops`: kernel choice, custom operators for :func:`torch.compile`, autograd;
* :mod:`._reference`: the dense reference formula (public in :mod:`meshcnn.testing`);
* :mod:`._orientation`: orientations of the directional taps, the hemisphere flip;
* :mod:`._buffers`: constant (non-persistent) buffers kept exact through ``.to()``;
* :mod:`.layers`: :class:`MeshConv`, :class:`MeshConvTranspose`, :class:`MeshPool`.
"""

from ._buffers import ConstantBuffers
from ._orientation import ORIENTATIONS, check_orientation, hemisphere_flip, orientation_taps
from .functional import TapOperator, mesh_conv, mesh_conv_reference, tap_operator
from .layers import MeshConv, MeshConvTranspose, MeshPool

__all__ = [
    "TapOperator",
    "tap_operator",
    "mesh_conv",
    "mesh_conv_reference",
    "MeshConv",
    "MeshConvTranspose",
    "MeshPool",
    "check_orientation",
    "orientation_taps",
    "hemisphere_flip",
    "ORIENTATIONS",
    "ConstantBuffers",
]
