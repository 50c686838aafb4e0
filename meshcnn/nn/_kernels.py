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
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ._operator import samples_per_kernel, split_weight, vertex_major
from ._orientation import INVARIANT_EPS

if TYPE_CHECKING:
    from ._plan import KernelPlan

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
    shift: float = 0.0,
) -> torch.Tensor:
    """``W_0 x[..., :V_out] + b + shift`` (without the terms absent): the output the operator taps accumulate into."""
    if bias is not None:
        bias = bias.to(dense_dtype)
        bias = bias + shift if shift else bias
    elif shift:
        bias = torch.full(shape[1:2], shift, dtype=dense_dtype, device=x.device)
    if w_id is not None:  # the whole batch in one batched GEMM
        xi = x[:, :, : shape[2]].to(dense_dtype)
        w_id = w_id.expand(shape[0], -1, -1)
        if bias is None:
            return torch.bmm(w_id, xi)
        return torch.baddbmm(bias[:, None].expand(shape), w_id, xi)
    if bias is None:
        return torch.zeros(shape, dtype=dense_dtype, device=x.device)
    return bias[:, None].expand(shape).contiguous()


def bag_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, plan: KernelPlan) -> torch.Tensor:
    """Forward pass of the ``"linear"`` strategy by the bag products. The features ``F_b`` are used at once, not kept.

    Parameters
    ----------
    x : Tensor
        ``(B, C, V_in)``.
    weight : Tensor
        ``W`` ``(O, C, T)``.
    bias : Tensor or None
        ``(O,)``.
    plan : KernelPlan
        Its operator, identity tap and dtypes (bound by :meth:`KernelPlan.for_input`).

    Returns
    -------
    Tensor
        ``y`` ``(B, O, V_out)`` in the plan's dense dtype.
    """
    op, identity_tap = plan.operator, plan.identity_tap
    sparse_dtype, dense_dtype = plan.sparse_dtype, plan.dense_dtype
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
    plan: KernelPlan,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward pass of the ``"linear"`` strategy by the bag products.

    Parameters
    ----------
    grad : Tensor
        ``g`` ``(B, O, V_out)``, the gradient of the output.
    x, weight, plan
        As in :func:`bag_forward`.
    need_x, need_w, need_b : bool
        Which gradients to compute.

    Returns
    -------
    tuple of Tensor
        ``(grad_x, grad_weight, grad_bias)``; a gradient not needed is returned empty.
    """
    op, identity_tap = plan.operator, plan.identity_tap
    sparse_dtype, dense_dtype = plan.sparse_dtype, plan.dense_dtype
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


def _invariant_weights(
    weight: torch.Tensor, identity_tap: bool, dtype: torch.dtype
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """The ``"invariant"`` weight as GEMM operands: ``(W_id or None, W_lin (O, T_lin C), W_dir (2 O, 2 C))``.

    ``weight`` ``(O, C, T)`` holds the linear taps first (the identity tap, when
    ``identity_tap``, then ``T_lin`` operator taps) and the complex weight ``a + i b`` last,
    ``a = W[..., T-2]``, ``b = W[..., T-1]``. ``W_lin`` is :func:`split_weight`'s ``W'`` of the
    linear taps; ``W_dir = [[a, -b], [b, a]]`` maps the features ``[D_1 x; D_2 x]`` to
    ``[Re z; Im z]``: ``Re z = a D_1 x - b D_2 x``, ``Im z = b D_1 x + a D_2 x``.
    """
    weight = weight.detach()  # the kernels write GEMMs into given outputs (out=), which autograd refuses
    w_id, w_lin, _ = split_weight(weight[..., :-2], identity_tap, dtype)
    a, b = weight[..., -2].to(dtype), weight[..., -1].to(dtype)
    w_dir = torch.cat([torch.cat([a, -b], dim=1), torch.cat([b, a], dim=1)], dim=0)
    return w_id, w_lin, w_dir


def invariant_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, plan: KernelPlan
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    r"""Forward pass of the ``"invariant"`` strategy: all taps and the modulus in one pass.

    With the operator taps ``[S_1, ..., S_{T_lin}, D_1, D_2]`` stacked in ``S``, per chunk of
    samples: ``F_b = S x_b^T`` ``(V_out, T_op C)`` (one bag kernel, as for ``"linear"``), then
    ``y_b += W_lin F_b[:, lin]^T`` and ``z_b = W_dir F_b[:, dir]^T`` ``(2 O, V_out)``
    (:func:`_invariant_weights`), then, while ``z_b`` is in cache,
    ``r = \sqrt{Re z^2 + Im z^2 + \epsilon^2}``, ``y_b += r`` and ``u_b = z_b / r``. The output
    starts as ``W_0 x + \beta - \epsilon``, so that
    ``y = \sum_{t < T-2} W_t S_t x + \beta + \sqrt{|z|^2 + \epsilon^2} - \epsilon``.

    Parameters
    ----------
    x : Tensor
        ``(B, C, V_in)``.
    weight : Tensor
        ``W`` ``(O, C, T)``, the complex weight ``(a, b)`` last.
    bias : Tensor or None
        ``(O,)``.
    plan : KernelPlan
        Strategy ``"invariant"``, with dtypes.

    Returns
    -------
    tuple
        ``(y, u, features)``: ``y`` ``(B, O, V_out)``; ``u = z / r`` ``(B, 2 O, V_out)``, rows
        ``[Re; Im]`` (what the backward needs of the modulus); ``features``, the chunks
        ``F`` ``(k, V_out, T_op C)`` of consecutive samples, all in the dense dtype (the
        backward's weight gradient reads them).
    """
    op, identity_tap = plan.operator, plan.identity_tap
    sparse_dtype, dense_dtype = plan.sparse_dtype, plan.dense_dtype
    batch, channels, _ = x.shape
    out_channels, num_out = weight.shape[0], op.num_out
    lin = (op.taps - 2) * channels
    features = []
    with no_autocast(x.device.type):
        val = op.val.to(sparse_dtype)
        w_id, w_lin, w_dir = _invariant_weights(weight, identity_tap, dense_dtype)
        tables = vertex_major(x, sparse_dtype)  # (B, V_in, C), one copy
        out = _output_start(x, w_id, bias, (batch, out_channels, num_out), dense_dtype, -INVARIANT_EPS)
        u = torch.empty((batch, 2 * out_channels, num_out), dtype=dense_dtype, device=x.device)
        step = samples_per_kernel(x.device, batch, op.block_samples, tables.shape[1] * channels)
        # r for one chunk, reused: a fresh buffer per chunk costs page faults on the CPU
        r_buf = torch.empty((min(step, batch), out_channels, num_out), dtype=dense_dtype, device=x.device)
        eps2 = torch.tensor(INVARIANT_EPS**2, dtype=dense_dtype, device=x.device)
        for start in range(0, batch, step):
            f = bag_matmul_samples(op.crow, op.col, val, op.block_crow, op.block_col, tables[start : start + step])
            f = f.view(f.shape[0], num_out, op.taps * channels).to(dense_dtype)
            k = f.shape[0]
            y, z = out[start : start + k], u[start : start + k]
            if lin:
                y.baddbmm_(w_lin.expand(k, -1, -1), f[..., :lin].transpose(1, 2))
            torch.bmm(w_dir.expand(k, -1, -1), f[..., lin:].transpose(1, 2), out=z)
            z = z.view(k, 2, out_channels, num_out)
            r = torch.addcmul(eps2, z[:, 0], z[:, 0], out=r_buf[:k]).addcmul_(z[:, 1], z[:, 1]).sqrt_()
            y.add_(r)
            z.div_(r.unsqueeze(1))
            features.append(f)
    return out, u, features


def invariant_backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    u: torch.Tensor,
    features: list[torch.Tensor],
    plan: KernelPlan,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Backward pass of the ``"invariant"`` strategy.

    Per chunk, with ``g`` the gradient of ``y``: the modulus' gradient is
    ``dz = [u_re g; u_im g]`` ``(2 O, V_out)``. Then ``dF = [g^T W_lin | dz^T W_dir]``
    ``(V_out, T_op C)`` (two GEMMs into one table) and
    ``grad_x_b^T += S^T dF`` read as ``(V_out T_op, C)`` (one bag kernel over the adjoint of
    :attr:`KernelPlan.adjoint`: the same non-zeros and width ``C`` as the ``"linear"``
    backward's gather); the weight gradient from the saved features,
    ``grad W_lin += g F[:, lin]``, ``G = dz F[:, dir]`` ``(2 O, 2 C)``,
    ``grad a = G[re, D_1] + G[im, D_2]``, ``grad b = G[im, D_1] - G[re, D_2]``.

    Parameters
    ----------
    grad : Tensor
        ``g`` ``(B, O, V_out)``.
    x, weight, plan
        As in :func:`invariant_forward`.
    u, features
        What :func:`invariant_forward` returned.
    need_x, need_w, need_b : bool
        Which gradients to compute.

    Returns
    -------
    tuple of Tensor
        ``(grad_x, grad_weight, grad_bias)``; a gradient not needed is returned empty.
    """
    op, identity_tap = plan.operator, plan.identity_tap
    sparse_dtype, dense_dtype = plan.sparse_dtype, plan.dense_dtype
    crow, col, val, block_crow, block_col = plan.adjoint
    batch, channels, _ = x.shape
    out_channels, num_out = weight.shape[0], op.num_out
    lin = (op.taps - 2) * channels
    acc_dtype = torch.promote_types(weight.dtype, torch.float32)
    grad_x, grad_w, grad_b = x.new_empty(0), weight.new_empty(0), weight.new_empty(0)
    with no_autocast(grad.device.type):
        grad = grad.to(dense_dtype)
        if need_b:
            grad_b = bias_grad(grad, weight)
        if not (need_x or need_w):
            return grad_x, grad_w, grad_b
        w_id, w_lin, w_dir = _invariant_weights(weight, identity_tap, dense_dtype)
        val = val.to(sparse_dtype)
        gx = _identity_input_grad(grad, w_id, x.shape, dense_dtype) if need_x else None
        if need_w:
            gw_lin = torch.zeros((out_channels, lin), dtype=acc_dtype, device=grad.device)
            gw_dir = torch.zeros((2 * out_channels, 2 * channels), dtype=acc_dtype, device=grad.device)
        step = max((f.shape[0] for f in features), default=1)  # scratch for one chunk, reused (page faults)
        dz_buf = torch.empty((step, 2 * out_channels, num_out), dtype=dense_dtype, device=grad.device)
        df_buf = (
            torch.empty((step, num_out, op.taps * channels), dtype=dense_dtype, device=grad.device) if need_x else None
        )
        start = 0
        for f in features:
            k = f.shape[0]
            g = grad[start : start + k]
            dz = dz_buf[:k]
            torch.mul(
                u[start : start + k].view(k, 2, out_channels, num_out),
                g.unsqueeze(1),
                out=dz.view(k, 2, out_channels, num_out),
            )
            if need_w:
                if lin:
                    gw_lin += torch.bmm(g, f[..., :lin]).sum(0, dtype=acc_dtype)
                gw_dir += torch.bmm(dz, f[..., lin:]).sum(0, dtype=acc_dtype)
            if need_x:
                df = df_buf[:k]
                if lin:
                    torch.bmm(g.transpose(1, 2), w_lin.expand(k, -1, -1), out=df[..., :lin])
                torch.bmm(dz.transpose(1, 2), w_dir.expand(k, -1, -1), out=df[..., lin:])
                df = df.to(sparse_dtype).view(k, num_out * op.taps, channels)
                h = bag_matmul_samples(crow, col, val, block_crow, block_col, df)  # (k, V_in, C)
                gx[start : start + k] += h.transpose(1, 2).to(dense_dtype)
            start += k
        if need_x:
            grad_x = gx.to(x.dtype)
        if need_w:
            re, im = gw_dir[:out_channels], gw_dir[out_channels:]
            d_a = re[:, :channels] + im[:, channels:]
            d_b = im[:, :channels] - re[:, channels:]
            d_lin = gw_lin.view(out_channels, op.taps - 2, channels).permute(0, 2, 1)
            grad_w_op = torch.cat([d_lin, d_a[..., None], d_b[..., None]], dim=2)
            grad_w = weight_grad(grad_w_op, grad, x, weight, identity_tap)
    return grad_x, grad_w, grad_b
