r"""Functional form of the mesh convolution.

A mesh convolution with ``T`` taps is

.. math::  y_{b,o,v} = \sum_{t,c} W_{o,c,t}\, (S_t x_{b,c})_v + \beta_o,

where :math:`S_t` are sparse ``(V_out, V_in)`` operators (identity, Laplacian,
east-west and north-south derivatives for :class:`meshcnn.MeshConv`), stacked
vertex-major into one :class:`TapOperator` (:mod:`meshcnn.nn._operator`). The layer is
one sparse product followed by one dense product; the ``(batch, out, in, V, T)``
broadcast of the original implementation is never formed.

Where the work happens:

* :mod:`meshcnn.nn._operator`: the operator layout, the samples-per-kernel heuristic;
* :mod:`meshcnn.nn._kernels`: the bag-product kernels (CPU, float64, CUDA without Triton);
* :mod:`meshcnn.nn._triton_kernels`: the fused gather + GEMM kernels (CUDA);
* :mod:`meshcnn.nn._ops`: the choice between them, the custom operators (for
  :func:`torch.compile`), their fakes and autograd.

* :mod:`meshcnn.nn._plan`: :class:`KernelPlan`, the operator, identity tap, strategy,
  backend and dtypes of one call as one object, and the backend choice.

On CUDA, where triton is importable and the environment variable ``MESHCNN_TRITON`` is
not ``0``, float32/float16/bfloat16 passes run the Triton kernels (same operators, same
dtypes); the CPU and float64 always take the bag products. :func:`mesh_conv` chooses
per call (:func:`~meshcnn.nn._plan.choose_backend`); the layers choose once, when built
or moved, and take an override (:meth:`meshcnn.MeshConv.set_kernel_backend`).

Precision: the sparse product runs in float64 for float64 input and in float32
otherwise (also for float16/bfloat16 input and under :func:`torch.autocast`),
because the Laplacian and derivative taps are differences of nearly equal
neighbour values, which 8-bit mantissas would destroy. The dense products run
in the autocast dtype when autocast is enabled (else in the input's dtype),
and the output has that dtype, like :class:`torch.nn.Linear` under autocast
(:func:`compute_dtypes`).
"""

from __future__ import annotations

import torch

from ._kernels import compute_dtypes
from ._operator import TapOperator, block_samples_for, stack_taps, tap_operator
from ._ops import run_mesh_conv
from ._plan import KernelPlan, choose_backend
from ._reference import mesh_conv_reference

__all__ = [
    "stack_taps",
    "TapOperator",
    "tap_operator",
    "mesh_conv",
    "mesh_conv_reference",
    "compute_dtypes",
    "block_samples_for",
]


def mesh_conv(
    x: torch.Tensor, op: TapOperator, weight: torch.Tensor, bias: torch.Tensor | None, identity_tap: bool = False
) -> torch.Tensor:
    r"""Mesh convolution with a stacked tap operator.

    .. math:: y_{b,o,v} = \sum_{t,c} W_{o,c,t}\, (S_t x_{b,c})_v + \beta_o

    Parameters
    ----------
    x : (B, C, V_in) floating tensor
    op : TapOperator
        ``T_op`` taps (see :func:`tap_operator`).
    weight : (O, C, T) tensor
        With ``identity_tap=False``, ``T = T_op``. With ``identity_tap=True``,
        ``T = T_op + 1``: ``weight[..., 0]`` multiplies the identity restricted to
        the first ``V_out`` vertices (``x[..., :V_out]``), which is not in ``op``,
        and ``weight[..., t + 1]`` the ``t``-th tap of ``op``.
    bias : (O,) tensor or None
    identity_tap : bool

    Returns
    -------
    Tensor
        ``(B, O, V_out)``, in the dense dtype of :func:`compute_dtypes`; equal to
        :func:`mesh_conv_reference` up to rounding.
    """
    _, channels, num_in = x.shape
    _, w_channels, taps = weight.shape
    op_taps = taps - int(identity_tap)
    if w_channels != channels:
        raise ValueError(f"mesh_conv: weight has {w_channels} input channels, x has {channels}")
    if op.shape[1] != num_in:
        raise ValueError(f"mesh_conv: operator acts on V={op.shape[1]} vertices, x has V={num_in}")
    if op.taps != op_taps:
        raise ValueError(
            f"mesh_conv: the operator holds {op.taps} taps, the weight needs {op_taps} "
            f"({taps} taps{', the first the identity' if identity_tap else ''})"
        )
    if identity_tap and op.num_out > num_in:
        raise ValueError("mesh_conv: an identity tap needs V_out <= V_in")
    plan = KernelPlan(op, identity_tap, "linear", choose_backend(x.device))
    return run_mesh_conv(x, weight, bias, plan)
