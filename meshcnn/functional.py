r"""Functional form of the mesh convolution.

A mesh convolution with ``T`` taps is

.. math::  y_{b,o,v} = \sum_{t,c} W_{o,c,t}\, (S_t x_{b,c})_v + \beta_o,

where :math:`S_t` are sparse ``(V_out, V_in)`` operators (identity, Laplacian,
east-west and north-south derivatives for :class:`meshcnn.MeshConv`). The taps
are stacked into one ``(T V_out, V_in)`` CSR matrix ``S``, so the whole layer is
one sparse-dense product followed by one dense matrix product; the
``(batch, out, in, V, T)`` broadcast of the original implementation is never
formed.

Sparse operators are passed as their CSR components (``crow``, ``col``,
``val``) and those of their transpose, all plain dense tensors: modules can
keep them as ordinary buffers (deep-copyable, movable with ``.to()``), and the
backward pass multiplies by the precomputed transpose instead of transposing
on the fly.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["CSR", "csr_from_scipy", "sparse_matmul", "mesh_conv", "mesh_conv_reference"]


class CSR(NamedTuple):
    """A sparse matrix as CSR components plus its transpose, all dense tensors."""

    crow: torch.Tensor
    col: torch.Tensor
    val: torch.Tensor
    crow_t: torch.Tensor
    col_t: torch.Tensor
    val_t: torch.Tensor
    shape: tuple[int, int]


def csr_from_scipy(matrix: sp.spmatrix, dtype: torch.dtype = torch.float32) -> CSR:
    """Convert a scipy sparse matrix to :class:`CSR` (with its transpose)."""

    def parts(m: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = sp.csr_matrix(m)
        m.sum_duplicates()
        m.sort_indices()
        return (
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data).to(dtype),
        )

    return CSR(*parts(matrix), *parts(matrix.T), tuple(matrix.shape))


class _SparseMatmul(torch.autograd.Function):
    """``S @ x`` for a constant CSR ``S``; the backward uses the stored ``S^T``."""

    @staticmethod
    def forward(ctx, x, crow, col, val, crow_t, col_t, val_t, shape):  # noqa: D401
        ctx.save_for_backward(crow_t, col_t, val_t)
        ctx.shape_t = (shape[1], shape[0])
        matrix = torch.sparse_csr_tensor(crow, col, val.to(x.dtype), shape, check_invariants=False)
        return matrix @ x

    @staticmethod
    def backward(ctx, grad):
        crow_t, col_t, val_t = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            matrix_t = torch.sparse_csr_tensor(crow_t, col_t, val_t.to(grad.dtype), ctx.shape_t, check_invariants=False)
            grad_x = matrix_t @ grad.contiguous()
        return grad_x, None, None, None, None, None, None, None


def sparse_matmul(op: CSR, x: torch.Tensor) -> torch.Tensor:
    """``op @ x`` for ``x`` of shape ``(n_cols, k)``; differentiable in ``x``."""
    return _SparseMatmul.apply(x, *op)


def mesh_conv(x: torch.Tensor, op: CSR, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Mesh convolution with a stacked tap operator.

    Parameters
    ----------
    x : (B, C, V_in)
    op : CSR of shape ``(T * V_out, V_in)``, tap ``t`` in rows ``t*V_out:(t+1)*V_out``
    weight : (O, C, T)
    bias : (O,) or None

    Returns
    -------
    (B, O, V_out)
    """
    batch, channels, v_in = x.shape
    out_channels, _, taps = weight.shape
    v_out = op.shape[0] // taps
    # vertex-major layout: every CSR row gathers contiguous (B*C) vectors
    xt = x.permute(2, 0, 1).reshape(v_in, batch * channels)
    feats = sparse_matmul(op, xt).view(taps, v_out, batch, channels)
    out = torch.einsum("tvbc,oct->bov", feats, weight)
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out


def mesh_conv_reference(
    x: torch.Tensor, operators: list[sp.spmatrix], weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """Straightforward ``sum_t W[..., t] (S_t x) + b`` with one dense product per tap (for tests)."""
    out = 0
    for t, s in enumerate(operators):
        dense = torch.as_tensor(s.toarray(), dtype=x.dtype, device=x.device)
        out = out + torch.einsum("oc,bcw,vw->bov", weight[..., t], x, dense)
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out
