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

from ._orientation import INVARIANT_EPS, ORIENTATIONS, check_orientation, hemisphere_flip, orientation_taps
from .functional import (
    TapOperator,
    block_samples_for,
    compute_dtypes,
    mesh_conv,
    mesh_conv_reference,
    stack_taps,
    tap_operator,
)
from .layers import MeshConv, MeshConvTranspose, MeshPool, check_signal

__all__ = [
    "stack_taps",
    "TapOperator",
    "tap_operator",
    "mesh_conv",
    "mesh_conv_reference",
    "compute_dtypes",
    "block_samples_for",
    "MeshConv",
    "MeshConvTranspose",
    "MeshPool",
    "check_signal",
    "check_orientation",
    "orientation_taps",
    "hemisphere_flip",
    "ORIENTATIONS",
    "INVARIANT_EPS",
]
