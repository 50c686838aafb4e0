"""The two passes of :func:`meshcnn.nn.mesh_conv` as custom operators, with fakes and autograd.

Private module. :func:`forward` and :func:`backward` choose the kernels: the fused Triton
kernels of :mod:`meshcnn.nn._triton_kernels` on CUDA (:func:`use_triton`), the bag
products of :mod:`meshcnn.nn._kernels` everywhere else. Under :func:`torch.compile` they
run as the custom operators ``meshcnn::mesh_conv`` and ``meshcnn::mesh_conv_backward``
(:func:`torch.library.custom_op`, autograd via ``register_autograd``): the graph keeps
each as one opaque node (no graph break, no per-sample loop for inductor to unroll),
and fake implementations give output shapes and dtypes. In eager mode the same passes
run inside a plain :class:`torch.autograd.Function`, which skips the operators' dispatch
layers (their cost: ``experiments/benchmark/RESULTS.md``, "Moved from docstrings").

The operator crosses the custom-operator boundary as ``TapOperator.tensors()`` and
``TapOperator.sizes()`` (a list of tensors and a list of ints) and is rebuilt with
:meth:`TapOperator.from_tensors`.
"""

from __future__ import annotations

import os

import torch

from ._kernels import bag_backward, bag_forward, no_autocast
from ._operator import TapOperator

__all__: list[str] = []


def use_triton(x: torch.Tensor, sparse_dtype: torch.dtype, dense_dtype: torch.dtype, *tensors: torch.Tensor) -> bool:
    """Whether this pass runs the Triton kernels.

    True for ``x`` on a CUDA device, float32 sparse products (not float64), no empty
    tensor, triton importable and usable there, and the environment variable
    ``MESHCNN_TRITON`` not ``0``. Any other case (the CPU always) takes the bag products.

    Parameters
    ----------
    x : Tensor
        The pass's input (forward) signal.
    sparse_dtype, dense_dtype : torch.dtype
        The dtypes of :func:`~meshcnn.nn._kernels.compute_dtypes`.
    *tensors : Tensor
        Further operands of the pass; any empty one rules Triton out.

    Returns
    -------
    bool
    """
    if x.device.type != "cuda" or sparse_dtype != torch.float32 or x.numel() == 0:
        return False
    if any(t.numel() == 0 for t in tensors) or os.environ.get("MESHCNN_TRITON", "1") == "0":
        return False
    from . import _triton_kernels

    return _triton_kernels.usable(x.device, dense_dtype)


def forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    op: TapOperator,
    identity_tap: bool,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
) -> torch.Tensor:
    """Forward pass: the Triton kernel on CUDA (:func:`use_triton`), else the bag products.

    Parameters
    ----------
    x : Tensor
        ``(B, C, V_in)``.
    weight : Tensor
        ``W`` ``(O, C, T)``.
    bias : Tensor or None
        ``(O,)``.
    op : TapOperator
    identity_tap : bool
        Whether tap 0 of ``weight`` is the identity (``W_0 x`` on the first ``V_out`` vertices).
    sparse_dtype, dense_dtype : torch.dtype
        The dtypes of :func:`~meshcnn.nn._kernels.compute_dtypes`.

    Returns
    -------
    Tensor
        ``y`` ``(B, O, V_out)`` in ``dense_dtype``.
    """
    if use_triton(x, sparse_dtype, dense_dtype, weight):
        from . import _triton_kernels

        with no_autocast(x.device.type):
            return _triton_kernels.mesh_conv_forward(x, weight, bias, op, identity_tap, dense_dtype)
    return bag_forward(x, weight, bias, op, identity_tap, sparse_dtype, dense_dtype)


def backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    op: TapOperator,
    identity_tap: bool,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward pass: the Triton kernels on CUDA (:func:`use_triton`), else the bag products.

    Parameters
    ----------
    grad : Tensor
        ``g`` ``(B, O, V_out)``, the gradient of the output.
    x, weight, op, identity_tap, sparse_dtype, dense_dtype
        As in :func:`forward`.
    need_x, need_w, need_b : bool
        Which gradients to compute.

    Returns
    -------
    tuple of Tensor
        ``(grad_x, grad_weight, grad_bias)``; a gradient not needed is returned empty.
    """
    if use_triton(x, sparse_dtype, dense_dtype, weight, grad):
        from . import _triton_kernels

        with no_autocast(grad.device.type):
            return _triton_kernels.mesh_conv_backward(
                grad, x, weight, op, identity_tap, dense_dtype, need_x, need_w, need_b
            )
    return bag_backward(grad, x, weight, op, identity_tap, sparse_dtype, dense_dtype, need_x, need_w, need_b)


@torch.library.custom_op("meshcnn::mesh_conv", mutates_args=())
def mesh_conv_op(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    operator: list[torch.Tensor],
    sizes: list[int],
    identity_tap: bool,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
) -> torch.Tensor:
    """:func:`forward` as the custom operator ``meshcnn::mesh_conv``.

    Parameters
    ----------
    x, weight, bias, identity_tap, sparse_dtype, dense_dtype
        As in :func:`forward`.
    operator : list of Tensor
        ``TapOperator.tensors()``.
    sizes : list of int
        ``TapOperator.sizes()``.

    Returns
    -------
    Tensor
        ``y`` ``(B, O, V_out)`` in ``dense_dtype``.
    """
    return forward(x, weight, bias, TapOperator.from_tensors(operator, sizes), identity_tap, sparse_dtype, dense_dtype)


@mesh_conv_op.register_fake
def _(x, weight, bias, operator, sizes, identity_tap, sparse_dtype, dense_dtype):
    rows, _, taps, _ = sizes
    return x.new_empty((x.shape[0], weight.shape[0], rows // taps), dtype=dense_dtype)


@torch.library.custom_op("meshcnn::mesh_conv_backward", mutates_args=())
def mesh_conv_backward_op(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    operator: list[torch.Tensor],
    sizes: list[int],
    identity_tap: bool,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`backward` as the custom operator ``meshcnn::mesh_conv_backward``.

    Parameters
    ----------
    grad, x, weight, identity_tap, sparse_dtype, dense_dtype, need_x, need_w, need_b
        As in :func:`backward`.
    operator, sizes
        The operator as in :func:`mesh_conv_op`.

    Returns
    -------
    tuple of Tensor
        ``(grad_x, grad_weight, grad_bias)``; a gradient not needed is returned empty.
    """
    return backward(
        grad,
        x,
        weight,
        TapOperator.from_tensors(operator, sizes),
        identity_tap,
        sparse_dtype,
        dense_dtype,
        need_x,
        need_w,
        need_b,
    )


@mesh_conv_backward_op.register_fake
def _(grad, x, weight, operator, sizes, identity_tap, sparse_dtype, dense_dtype, need_x, need_w, need_b):
    return (
        x.new_empty(x.shape if need_x else (0,)),
        weight.new_empty(weight.shape if need_w else (0,)),
        weight.new_empty((weight.shape[0],) if need_b else (0,)),
    )


def _save(
    ctx,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    op: TapOperator,
    identity_tap: bool,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
) -> None:
    """What the backward needs: ``x``, the weight and the operator (never the features)."""
    ctx.save_for_backward(x, weight, *op.tensors())
    ctx.meta = (op.sizes(), identity_tap, sparse_dtype, dense_dtype, bias.dtype if bias is not None else None)


def _backward(ctx, grad_out: torch.Tensor, backward_pass) -> tuple:
    """Gradients of the first three inputs of either entry point, ``(x, weight, bias)``."""
    x, weight, *tensors = ctx.saved_tensors
    sizes, identity_tap, sparse_dtype, dense_dtype, bias_dtype = ctx.meta
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    need_b = need_b and bias_dtype is not None
    grad_x, grad_w, grad_b = backward_pass(
        grad_out,
        x,
        weight,
        TapOperator.from_tensors(tensors, sizes),
        identity_tap,
        sparse_dtype,
        dense_dtype,
        need_x,
        need_w,
        need_b,
    )
    return (grad_x if need_x else None, grad_w if need_w else None, grad_b.to(bias_dtype) if need_b else None)


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, operator, sizes, identity_tap, sparse_dtype, dense_dtype = inputs
    _save(ctx, x, weight, bias, TapOperator.from_tensors(operator, sizes), identity_tap, sparse_dtype, dense_dtype)


def _backward_through_op(grad, x, weight, op, *settings):
    return mesh_conv_backward_op(grad, x, weight, op.tensors(), op.sizes(), *settings)


def _op_backward(ctx, grad_out: torch.Tensor) -> tuple:
    operator_grads = [None] * len(ctx.saved_tensors[2:])  # the list input gets a list
    return _backward(ctx, grad_out, _backward_through_op) + (operator_grads, None, None, None, None)


mesh_conv_op.register_autograd(_op_backward, setup_context=_setup_context)


class MeshConvFunction(torch.autograd.Function):
    """The same two passes for eager mode, without the custom operators' dispatch layers."""

    @staticmethod
    def forward(ctx, x, weight, bias, op, identity_tap, sparse_dtype, dense_dtype):
        """Run :func:`forward` and save what the backward needs.

        Parameters
        ----------
        x, weight, bias, op, identity_tap, sparse_dtype, dense_dtype
            As in :func:`forward`.

        Returns
        -------
        Tensor
            ``y`` ``(B, O, V_out)`` in ``dense_dtype``.
        """
        # ctx in forward: a separate setup_context costs an inspect.signature per call
        out = forward(x, weight, bias, op, identity_tap, sparse_dtype, dense_dtype)
        _save(ctx, x, weight, bias, op, identity_tap, sparse_dtype, dense_dtype)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return _backward(ctx, grad_out, backward) + (None,) * 4  # the operator and the settings


def run_mesh_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    op: TapOperator,
    identity_tap: bool,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
) -> torch.Tensor:
    """The differentiable pass: the custom operator under :func:`torch.compile`, else the Function.

    Parameters
    ----------
    x, weight, bias, op, identity_tap, sparse_dtype, dense_dtype
        As in :func:`forward`.

    Returns
    -------
    Tensor
        ``y`` ``(B, O, V_out)`` in ``dense_dtype``.
    """
    if torch.compiler.is_compiling():
        return mesh_conv_op(x, weight, bias, op.tensors(), op.sizes(), identity_tap, sparse_dtype, dense_dtype)
    return MeshConvFunction.apply(x, weight, bias, op, identity_tap, sparse_dtype, dense_dtype)
