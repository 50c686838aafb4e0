"""Neural layers on the icosphere: the MeshConv kernel (:mod:`.functional`) and the
layers built on it (:mod:`.layers`). Tensors are ``(batch, channels, vertices)``.
"""
from .functional import (
    CSR, csr_from_scipy, stack_taps, TapOperator, tap_operator, sparse_matmul, mesh_conv, mesh_conv_reference,
    compute_dtypes)
from .layers import (
    MeshConv, MeshConvTranspose, MeshPool, check_signal, check_orientation, orientation_taps, hemisphere_flip, TAPS,
    ORIENTATIONS, INVARIANT_EPS)

__all__ = [
    "CSR", "csr_from_scipy", "stack_taps", "TapOperator", "tap_operator", "sparse_matmul", "mesh_conv",
    "mesh_conv_reference", "compute_dtypes", "MeshConv", "MeshConvTranspose", "MeshPool", "check_signal",
    "check_orientation", "orientation_taps", "hemisphere_flip", "TAPS", "ORIENTATIONS", "INVARIANT_EPS",
]
