"""The passes of :func:`meshcnn.nn.mesh_conv` as custom operators, with fakes and autograd.

Private module. Every pass takes one :class:`~meshcnn.nn._plan.KernelPlan`: its strategy picks
the pass (``"linear"``: :func:`forward` / :func:`backward`; ``"invariant"``:
:func:`~meshcnn.nn._kernels.invariant_forward` / :func:`~meshcnn.nn._kernels.invariant_backward`),
its backend the kernels (``"triton"``: the fused kernels of :mod:`meshcnn.nn._triton_kernels`
where the pass's dtypes allow, :meth:`KernelPlan.runs_triton`; else the bag products of
:mod:`meshcnn.nn._kernels`). Under :func:`torch.compile` the passes run as the custom operators
``meshcnn::mesh_conv``, ``meshcnn::mesh_conv_backward``, ``meshcnn::mesh_conv_invariant`` and
``meshcnn::mesh_conv_invariant_backward`` (:func:`torch.library.custom_op`, autograd via
``register_autograd``): the graph keeps each as one opaque node (no graph break, no per-sample
loop for inductor to unroll), and fake implementations give output shapes and dtypes. In eager
mode the same passes run inside plain :class:`torch.autograd.Function` classes, which skip the
operators' dispatch layers (their cost: ``experiments/benchmark/RESULTS.md``, "Moved from
docstrings").

The plan crosses the custom-operator boundary as :meth:`KernelPlan.flat` (a list of tensors,
a list of ints, a bool, two strings, two dtypes) and is rebuilt by :meth:`KernelPlan.from_flat`.
"""

from __future__ import annotations

import torch

from ._kernels import bag_backward, bag_forward, invariant_backward, invariant_forward, no_autocast
from ._operator import samples_per_kernel
from ._plan import KernelPlan

__all__: list[str] = []


def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, plan: KernelPlan) -> torch.Tensor:
    """Forward pass of the ``"linear"`` strategy: the Triton kernel where the plan runs it, else the bag products.

    Parameters
    ----------
    x : Tensor
        ``(B, C, V_in)``.
    weight : Tensor
        ``W`` ``(O, C, T)``.
    bias : Tensor or None
        ``(O,)``.
    plan : KernelPlan
        Bound to ``x``'s dtypes (:meth:`KernelPlan.for_input`).

    Returns
    -------
    Tensor
        ``y`` ``(B, O, V_out)`` in the plan's dense dtype.
    """
    if plan.runs_triton(x, weight):
        from . import _triton_kernels

        with no_autocast(x.device.type):
            return _triton_kernels.mesh_conv_forward(x, weight, bias, plan)
    return bag_forward(x, weight, bias, plan)


def backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    plan: KernelPlan,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward pass of the ``"linear"`` strategy: the Triton kernels where the plan runs them, else the bag products.

    Parameters
    ----------
    grad : Tensor
        ``g`` ``(B, O, V_out)``, the gradient of the output.
    x, weight, plan
        As in :func:`forward`.
    need_x, need_w, need_b : bool
        Which gradients to compute.

    Returns
    -------
    tuple of Tensor
        ``(grad_x, grad_weight, grad_bias)``; a gradient not needed is returned empty.
    """
    if plan.runs_triton(x, weight, grad):
        from . import _triton_kernels

        with no_autocast(grad.device.type):
            return _triton_kernels.mesh_conv_backward(grad, x, weight, plan, need_x, need_w, need_b)
    return bag_backward(grad, x, weight, plan, need_x, need_w, need_b)


# ------------------------------------------------------------------------------------------
# "linear": custom operators and the eager Function
# ------------------------------------------------------------------------------------------
@torch.library.custom_op("meshcnn::mesh_conv", mutates_args=())
def mesh_conv_op(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    tensors: list[torch.Tensor],
    sizes: list[int],
    identity_tap: bool,
    strategy: str,
    backend: str,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
) -> torch.Tensor:
    """:func:`forward` as the custom operator ``meshcnn::mesh_conv``.

    Parameters
    ----------
    x, weight, bias
        As in :func:`forward`.
    tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype
        The plan, :meth:`KernelPlan.flat`.

    Returns
    -------
    Tensor
        ``y`` ``(B, O, V_out)`` in ``dense_dtype``.
    """
    plan = KernelPlan.from_flat(tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype)
    return forward(x, weight, bias, plan)


@mesh_conv_op.register_fake
def _(x, weight, bias, tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype):
    rows, _, taps, _ = sizes
    return x.new_empty((x.shape[0], weight.shape[0], rows // taps), dtype=dense_dtype)


@torch.library.custom_op("meshcnn::mesh_conv_backward", mutates_args=())
def mesh_conv_backward_op(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    tensors: list[torch.Tensor],
    sizes: list[int],
    identity_tap: bool,
    strategy: str,
    backend: str,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`backward` as the custom operator ``meshcnn::mesh_conv_backward``.

    Parameters
    ----------
    grad, x, weight, need_x, need_w, need_b
        As in :func:`backward`.
    tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype
        The plan, :meth:`KernelPlan.flat`.

    Returns
    -------
    tuple of Tensor
        ``(grad_x, grad_weight, grad_bias)``; a gradient not needed is returned empty.
    """
    plan = KernelPlan.from_flat(tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype)
    return backward(grad, x, weight, plan, need_x, need_w, need_b)


def _grads_fake(x, weight, need_x, need_w, need_b):
    return (
        x.new_empty(x.shape if need_x else (0,)),
        weight.new_empty(weight.shape if need_w else (0,)),
        weight.new_empty((weight.shape[0],) if need_b else (0,)),
    )


@mesh_conv_backward_op.register_fake
def _(
    grad, x, weight, tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype, need_x, need_w, need_b
):
    return _grads_fake(x, weight, need_x, need_w, need_b)


def _needs(ctx, bias_dtype) -> tuple[bool, bool, bool]:
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    return need_x, need_w, need_b and bias_dtype is not None


def _grads(needs: tuple[bool, bool, bool], grads: tuple, bias_dtype) -> tuple:
    """``(grad_x, grad_weight, grad_bias)`` for autograd: None where not needed, the bias's in its dtype."""
    (need_x, need_w, need_b), (grad_x, grad_w, grad_b) = needs, grads
    return (grad_x if need_x else None, grad_w if need_w else None, grad_b.to(bias_dtype) if need_b else None)


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, tensors, *settings = inputs
    ctx.save_for_backward(x, weight, *tensors)
    ctx.settings = settings
    ctx.bias_dtype = bias.dtype if bias is not None else None


def _op_backward(ctx, grad_out: torch.Tensor) -> tuple:
    x, weight, *tensors = ctx.saved_tensors
    needs = _needs(ctx, ctx.bias_dtype)
    grads = mesh_conv_backward_op(grad_out, x, weight, tensors, *ctx.settings, *needs)
    return _grads(needs, grads, ctx.bias_dtype) + ([None] * len(tensors),) + (None,) * 6


mesh_conv_op.register_autograd(_op_backward, setup_context=_setup_context)


class MeshConvFunction(torch.autograd.Function):
    """The ``"linear"`` passes for eager mode, without the custom operators' dispatch layers."""

    @staticmethod
    def forward(ctx, x, weight, bias, plan):
        """Run :func:`forward` and save what the backward needs: ``x``, the weight, the plan (never the features).

        Parameters
        ----------
        x, weight, bias, plan
            As in :func:`forward`.

        Returns
        -------
        Tensor
            ``y`` ``(B, O, V_out)`` in the plan's dense dtype.
        """
        # ctx in forward: a separate setup_context costs an inspect.signature per call
        out = forward(x, weight, bias, plan)
        ctx.save_for_backward(x, weight)
        ctx.plan = plan  # its tensors are constant buffers, not autograd inputs
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        needs = _needs(ctx, ctx.bias_dtype)
        grads = backward(grad_out, x, weight, ctx.plan, *needs)
        return _grads(needs, grads, ctx.bias_dtype) + (None,)


# ------------------------------------------------------------------------------------------
# "invariant": custom operators and the eager Function
# ------------------------------------------------------------------------------------------
@torch.library.custom_op("meshcnn::mesh_conv_invariant", mutates_args=())
def mesh_conv_invariant_op(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    tensors: list[torch.Tensor],
    sizes: list[int],
    identity_tap: bool,
    strategy: str,
    backend: str,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`~meshcnn.nn._kernels.invariant_forward` as the custom operator ``meshcnn::mesh_conv_invariant``.

    Parameters
    ----------
    x, weight, bias
        As in :func:`forward`.
    tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype
        The plan, :meth:`KernelPlan.flat`.

    Returns
    -------
    tuple of Tensor
        ``(y, u, features)``: the output ``(B, O, V_out)``, the modulus' ``z / r``
        ``(B, 2 O, V_out)`` and the features ``(B, V_out, T_op C)`` (the chunks joined; the
        eager Function keeps them apart instead), all in ``dense_dtype``.
    """
    plan = KernelPlan.from_flat(tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype)
    y, u, features = invariant_forward(x, weight, bias, plan)
    if not features:
        return y, u, x.new_empty((0, plan.operator.num_out, plan.operator.taps * x.shape[1]), dtype=dense_dtype)
    return y, u, features[0] if len(features) == 1 else torch.cat(features)


@mesh_conv_invariant_op.register_fake
def _(x, weight, bias, tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype):
    rows, _, taps, _ = sizes
    batch, channels, num_out = x.shape[0], x.shape[1], rows // taps
    return (
        x.new_empty((batch, weight.shape[0], num_out), dtype=dense_dtype),
        x.new_empty((batch, 2 * weight.shape[0], num_out), dtype=dense_dtype),
        x.new_empty((batch, num_out, taps * channels), dtype=dense_dtype),
    )


def _feature_chunks(features: torch.Tensor, plan: KernelPlan) -> list[torch.Tensor]:
    """The joined features ``(B, V_out, T_op C)`` of :func:`mesh_conv_invariant_op` as the forward's chunks (views)."""
    op = plan.operator
    channels = features.shape[2] // op.taps
    return list(
        features.split(samples_per_kernel(features.device, features.shape[0], op.block_samples, op.shape[1] * channels))
    )


@torch.library.custom_op("meshcnn::mesh_conv_invariant_backward", mutates_args=())
def mesh_conv_invariant_backward_op(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    u: torch.Tensor,
    features: torch.Tensor,
    tensors: list[torch.Tensor],
    sizes: list[int],
    identity_tap: bool,
    strategy: str,
    backend: str,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`~meshcnn.nn._kernels.invariant_backward` as ``meshcnn::mesh_conv_invariant_backward``.

    Parameters
    ----------
    grad, x, weight, need_x, need_w, need_b
        As in :func:`backward`.
    u, features
        The second and third outputs of :func:`mesh_conv_invariant_op`.
    tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype
        The plan, :meth:`KernelPlan.flat`.

    Returns
    -------
    tuple of Tensor
        ``(grad_x, grad_weight, grad_bias)``; a gradient not needed is returned empty.
    """
    plan = KernelPlan.from_flat(tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype)
    chunks = _feature_chunks(features, plan) if features.shape[0] else []
    return invariant_backward(grad, x, weight, u, chunks, plan, need_x, need_w, need_b)


@mesh_conv_invariant_backward_op.register_fake
def _(
    grad,
    x,
    weight,
    u,
    features,
    tensors,
    sizes,
    identity_tap,
    strategy,
    backend,
    sparse_dtype,
    dense_dtype,
    need_x,
    need_w,
    need_b,
):
    return _grads_fake(x, weight, need_x, need_w, need_b)


def _invariant_setup_context(ctx, inputs, output) -> None:
    x, weight, bias, tensors, *settings = inputs
    _, u, features = output
    ctx.save_for_backward(x, weight, u, features, *tensors)
    ctx.settings = settings
    ctx.bias_dtype = bias.dtype if bias is not None else None


def _invariant_op_backward(ctx, grad_out: torch.Tensor, _grad_u, _grad_features) -> tuple:
    x, weight, u, features, *tensors = ctx.saved_tensors
    needs = _needs(ctx, ctx.bias_dtype)
    grads = mesh_conv_invariant_backward_op(grad_out, x, weight, u, features, tensors, *ctx.settings, *needs)
    return _grads(needs, grads, ctx.bias_dtype) + ([None] * len(tensors),) + (None,) * 6


mesh_conv_invariant_op.register_autograd(_invariant_op_backward, setup_context=_invariant_setup_context)


class InvariantFunction(torch.autograd.Function):
    """The ``"invariant"`` passes for eager mode; the features stay in the forward's chunks."""

    @staticmethod
    def forward(ctx, x, weight, bias, plan):
        """Run :func:`~meshcnn.nn._kernels.invariant_forward` and save ``x``, the weight, ``u`` and the features.

        Parameters
        ----------
        x, weight, bias, plan
            As in :func:`forward`, the plan of strategy ``"invariant"``.

        Returns
        -------
        Tensor
            ``y`` ``(B, O, V_out)`` in the plan's dense dtype.
        """
        out, u, features = invariant_forward(x, weight, bias, plan)
        ctx.save_for_backward(x, weight, u, *features)
        ctx.plan = plan
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, u, *features = ctx.saved_tensors
        needs = _needs(ctx, ctx.bias_dtype)
        grads = invariant_backward(grad_out, x, weight, u, features, ctx.plan, *needs)
        return _grads(needs, grads, ctx.bias_dtype) + (None,)


def run_mesh_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, plan: KernelPlan) -> torch.Tensor:
    """The differentiable pass of ``plan``: the custom operator under :func:`torch.compile`, else the Function.

    Parameters
    ----------
    x, weight, bias
        As in :func:`forward`.
    plan : KernelPlan
        Not yet bound to dtypes: bound here to ``x``'s (:meth:`KernelPlan.for_input`).

    Returns
    -------
    Tensor
        ``y`` ``(B, O, V_out)`` in the dense dtype.
    """
    plan = plan.for_input(x)
    invariant = plan.strategy == "invariant"
    if torch.compiler.is_compiling():
        if invariant:
            return mesh_conv_invariant_op(x, weight, bias, *plan.flat())[0]
        return mesh_conv_op(x, weight, bias, *plan.flat())
    return (InvariantFunction if invariant else MeshConvFunction).apply(x, weight, bias, plan)
