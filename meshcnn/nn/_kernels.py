r"""The bag-product kernels of :func:`meshcnn.nn.mesh_conv` (CPU, float64, and CUDA without Triton).

Private module. Notation of :mod:`meshcnn.nn.functional`: ``x`` ``(B, C, V_in)``, weight
``W`` ``(O, C, T)``, operator ``S`` / ``R`` of :class:`~meshcnn.nn.TapOperator`.

Forward, per chunk of ``k`` samples (:func:`~meshcnn.nn._operator.samples_per_kernel`):
``F_b = S x_b^T`` ``(V_out, T C)`` with :func:`torch.nn.functional.embedding_bag` in
``"sum"`` mode with per-sample weights (CSR row pointers = bag offsets, column
indices = bag members, values = weights), then ``y_b += W' F_b^T``, one GEMM reading
``F_b`` transposed. With an identity tap, ``y = W_0 x + \beta`` is one batched GEMM
first.

Backward: ``H_b = R g_b^T`` ``(V_in, T O)`` (a gather, never a scatter), then
``grad_x_b = W'' H_b^T`` and ``grad W[o, c, t] = sum_b (x_b H_b)[c, (t, o)]``.
Only ``x`` is kept for the backward; each ``F_b`` and ``H_b`` is consumed while in cache.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ._operator import TapOperator, samples_per_kernel, split_weight, vertex_major

__all__ = ["compute_dtypes"]


def compute_dtypes(x: torch.Tensor) -> tuple[torch.dtype, torch.dtype]:
    """``(sparse_dtype, dense_dtype)`` that :func:`meshcnn.nn.mesh_conv` uses for input ``x``.

    Parameters
    ----------
    x : Tensor

    Returns
    -------
    tuple of torch.dtype
        The sparse product runs in float64 for float64 input and in float32 for any
        other floating input; the dense products in the autocast dtype of
        ``x.device`` when autocast is enabled there, else in ``x.dtype``.
    """
    sparse_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    device_type = x.device.type
    # only "meta" (and other device types autocast doesn't know) take the except branch;
    # a try rather than torch.amp.is_autocast_available, which torch.compile cannot trace in torch 2.11
    try:
        autocast = torch.is_autocast_enabled(device_type)
    except RuntimeError:
        autocast = False
    dense_dtype = torch.get_autocast_dtype(device_type) if autocast else x.dtype
    return sparse_dtype, dense_dtype


def no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast off for ``device_type`` (dtypes are chosen explicitly by :func:`compute_dtypes`)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def bag_matmul(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``S @ table`` for CSR ``S`` and a contiguous 2-D ``table``, as a weighted embedding bag.

    Parameters
    ----------
    crow, col, val : Tensor
        CSR row pointers (bag offsets), column indices (bag members) and values
        (per-sample weights) of ``S`` ``(rows, V_in)``.
    table : Tensor
        ``(V_in, C)``, contiguous.

    Returns
    -------
    Tensor
        ``(rows, C)``.
    """
    return F.embedding_bag(col, table, crow, mode="sum", per_sample_weights=val, include_last_offset=True)


def bag_matmul_samples(
    crow: torch.Tensor,
    col: torch.Tensor,
    val: torch.Tensor,
    block_crow: torch.Tensor,
    block_col: torch.Tensor,
    tables: torch.Tensor,
) -> torch.Tensor:
    """``S @ tables[b]`` for every ``b`` of a contiguous ``(b, V_in, C)`` stack, in one bag kernel.

    The ``b`` tables are read as one ``(b V_in, C)`` table and ``S`` as ``diag(S, ..., S)``,
    whose first ``b`` blocks are a prefix of the precomputed ``block_crow, block_col``.

    Parameters
    ----------
    crow, col, val : Tensor
        CSR of ``S`` ``(rows, V_in)``, as in :func:`bag_matmul`.
    block_crow, block_col : Tensor
        int32 row offsets and column indices of ``diag(S, ..., S)`` (at least ``b`` copies).
    tables : Tensor
        ``(b, V_in, C)``, contiguous.

    Returns
    -------
    Tensor
        ``(b, rows, C)``.
    """
    b, v_in, c = tables.shape
    if b == 1:
        return bag_matmul(crow, col, val, tables[0]).unsqueeze(0)
    nnz, rows = col.numel(), crow.numel() - 1
    out = F.embedding_bag(
        block_col[: b * nnz],
        tables.reshape(b * v_in, c),
        block_crow[: b * rows + 1],
        mode="sum",
        per_sample_weights=val.repeat(b),
        include_last_offset=True,
    )
    return out.view(b, rows, c)


def _output_start(
    x: torch.Tensor,
    w_id: torch.Tensor | None,
    bias: torch.Tensor | None,
    shape: tuple[int, int, int],
    dense_dtype: torch.dtype,
) -> torch.Tensor:
    """``W_0 x[..., :V_out] + b`` (or ``b``, or zeros): the output the operator taps accumulate into."""
    if w_id is not None:  # the whole batch in one batched GEMM
        xi = x[:, :, : shape[2]].to(dense_dtype)
        w_id = w_id.expand(shape[0], -1, -1)
        if bias is None:
            return torch.bmm(w_id, xi)
        return torch.baddbmm(bias.to(dense_dtype)[:, None].expand(shape), w_id, xi)
    if bias is None:
        return torch.zeros(shape, dtype=dense_dtype, device=x.device)
    return bias.to(dense_dtype)[:, None].expand(shape).contiguous()


def bag_forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    op: TapOperator,
    identity_tap: bool,
    sparse_dtype: torch.dtype,
    dense_dtype: torch.dtype,
) -> torch.Tensor:
    """Forward pass by the bag products. The features ``F_b`` are used at once and not kept.

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
        The dtypes of :func:`compute_dtypes`.

    Returns
    -------
    Tensor
        ``y`` ``(B, O, V_out)`` in ``dense_dtype``.
    """
    batch, channels, _ = x.shape
    out_channels = weight.shape[0]
    num_out = op.num_out
    with no_autocast(x.device.type):
        val = op.val.to(sparse_dtype)
        w_id, w_op, _ = split_weight(weight, identity_tap, dense_dtype)
        tables = vertex_major(x, sparse_dtype)  # (B, V_in, C), one copy
        out = _output_start(x, w_id, bias, (batch, out_channels, num_out), dense_dtype)
        step = samples_per_kernel(x.device, batch, op.block_samples, tables.shape[1] * channels)
        for start in range(0, batch, step):  # F = S x^T for `step` samples, then y += W' F^T
            f = bag_matmul_samples(op.crow, op.col, val, op.block_crow, op.block_col, tables[start : start + step])
            f = f.view(f.shape[0], num_out, op.taps * channels).to(dense_dtype)
            if f.shape[0] == 1:
                out[start].addmm_(w_op, f[0].t())
            else:
                out[start : start + step].baddbmm_(w_op.expand(f.shape[0], -1, -1), f.transpose(1, 2))
    return out


def _identity_input_grad(
    grad: torch.Tensor, w_id: torch.Tensor | None, x_shape: torch.Size, dense_dtype: torch.dtype
) -> torch.Tensor:
    """``W_0^T g`` on the first ``V_out`` vertices (zeros elsewhere, or everywhere without identity tap)."""
    batch, channels, num_in = x_shape
    if w_id is not None and num_in == grad.shape[2]:
        return torch.bmm(w_id.t().expand(batch, -1, -1), grad)
    gx = torch.zeros((batch, channels, num_in), dtype=dense_dtype, device=grad.device)
    if w_id is not None:
        gx[:, :, : grad.shape[2]] = torch.bmm(w_id.t().expand(batch, -1, -1), grad)
    return gx


def bias_grad(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``grad b_o = sum_{b, v} g[b, o, v]``, accumulated in at least float32.

    Parameters
    ----------
    grad : Tensor
        ``g`` ``(B, O, V_out)``.
    weight : Tensor
        ``(O, C, T)``; gives the result's dtype.

    Returns
    -------
    Tensor
        ``(O,)`` in ``weight``'s dtype.
    """
    acc_dtype = torch.promote_types(weight.dtype, torch.float32)
    return grad.sum(dim=(0, 2), dtype=acc_dtype if acc_dtype != grad.dtype else None).to(weight.dtype)


def weight_grad(
    grad_w_op: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, identity_tap: bool
) -> torch.Tensor:
    """``grad W`` from the operator taps' gradient and, with an identity tap, the identity tap's.

    With an identity tap, ``grad W[..., 0] = sum_b g_b x_b[:, :V_out]^T``.

    Parameters
    ----------
    grad_w_op : Tensor
        ``(O, C, T_op)``, the gradient of the operator taps.
    grad : Tensor
        ``g`` ``(B, O, V_out)`` in the dense dtype.
    x : Tensor
        ``(B, C, V_in)``.
    weight : Tensor
        ``W`` ``(O, C, T)``; gives the result's dtype.
    identity_tap : bool
        Whether tap 0 of ``weight`` is the identity.

    Returns
    -------
    Tensor
        ``grad W`` ``(O, C, T)`` in ``weight``'s dtype.
    """
    if not identity_tap:
        return grad_w_op.to(weight.dtype).contiguous()
    acc_dtype = torch.promote_types(weight.dtype, torch.float32)
    xd = x[:, :, : grad.shape[2]].to(grad.dtype)
    grad_w_id = torch.bmm(grad, xd.transpose(1, 2)).sum(0, dtype=acc_dtype)
    return torch.cat([grad_w_id[..., None], grad_w_op.to(acc_dtype)], dim=2).to(weight.dtype).contiguous()


def bag_backward(
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
    """Backward pass by the bag products.

    Parameters
    ----------
    grad : Tensor
        ``g`` ``(B, O, V_out)``, the gradient of the output.
    x, weight, op, identity_tap, sparse_dtype, dense_dtype
        As in :func:`bag_forward`.
    need_x, need_w, need_b : bool
        Which gradients to compute.

    Returns
    -------
    tuple of Tensor
        ``(grad_x, grad_weight, grad_bias)``; a gradient not needed is returned empty.
    """
    batch, channels, num_in = x.shape
    out_channels = weight.shape[0]
    acc_dtype = torch.promote_types(weight.dtype, torch.float32)
    grad_x, grad_w, grad_b = x.new_empty(0), weight.new_empty(0), weight.new_empty(0)
    with no_autocast(grad.device.type):
        grad = grad.to(dense_dtype)
        if need_b:
            grad_b = bias_grad(grad, weight)
        if not (need_x or need_w):
            return grad_x, grad_w, grad_b
        w_id, _, w_op_t = split_weight(weight, identity_tap, dense_dtype)
        val_t = op.val_t.to(sparse_dtype)
        xd = x.to(dense_dtype)
        tables = vertex_major(grad, sparse_dtype)  # (B, V_out, O), one copy
        gx = _identity_input_grad(grad, w_id, x.shape, dense_dtype) if need_x else None
        grad_w_op_t = (
            torch.zeros((channels, op.taps * out_channels), dtype=acc_dtype, device=grad.device) if need_w else None
        )  # accumulated transposed: grad_w_op_t[c, (t, o)]
        step = samples_per_kernel(grad.device, batch, op.block_samples, tables.shape[1] * out_channels)
        for start in range(0, batch, step):
            stop = min(start + step, batch)
            h = bag_matmul_samples(op.crow_t, op.col_t, val_t, op.block_crow_t, op.block_col_t, tables[start:stop])
            h = h.view(stop - start, num_in, op.taps * out_channels).to(dense_dtype)
            if stop - start == 1:
                if need_x:
                    gx[start].addmm_(w_op_t, h[0].t())
                if need_w and acc_dtype == dense_dtype:
                    grad_w_op_t.addmm_(xd[start], h[0])
                elif need_w:  # low-precision GEMM, accumulated over the batch in float32
                    grad_w_op_t += torch.mm(xd[start], h[0])
            else:
                if need_x:
                    gx[start:stop].baddbmm_(w_op_t.expand(stop - start, -1, -1), h.transpose(1, 2))
                if need_w:
                    grad_w_op_t += torch.bmm(xd[start:stop], h).sum(0, dtype=acc_dtype)
        if need_x:
            grad_x = gx.to(x.dtype)
        if need_w:
            grad_w = weight_grad(
                grad_w_op_t.view(channels, op.taps, out_channels).permute(2, 0, 1), grad, x, weight, identity_tap
            )
    return grad_x, grad_w, grad_b
