r"""Functional form of the mesh convolution.

A mesh convolution with ``T`` taps is

.. math::  y_{b,o,v} = \sum_{t,c} W_{o,c,t}\, (S_t x_{b,c})_v + \beta_o,

where :math:`S_t` are sparse ``(V_out, V_in)`` operators (identity, Laplacian,
east-west and north-south derivatives for :class:`meshcnn.MeshConv`). The taps
are stacked into one CSR matrix ``S`` of shape ``(V_out T, V_in)`` with
**vertex-major** rows: row ``v * T + t`` is row ``v`` of tap ``t``. The layer
is then one sparse product followed by one dense matrix product; the
``(batch, out, in, V, T)`` broadcast of the original implementation is never
formed.

How it is computed (:func:`mesh_conv`):

1. ``x`` is copied once to ``(B, V_in, C)`` (vertex-major, channels contiguous);
2. per sample, ``F_b = S x_b^T`` ``(V_out T, C)`` = ``(V_out, T C)`` with
   :func:`torch.nn.functional.embedding_bag` in ``"sum"`` mode with
   per-sample weights: the CSR row pointers are the bag offsets, the column
   indices the bag members and the operator values the weights. This is a
   vectorized gather-and-sum kernel on CPU (FBGEMM) and CUDA, several times
   faster than PyTorch's sparse CSR matmul for these short rows (at most 7
   non-zeros per tap row on the icosphere: the closed 1-ring);
3. per sample, ``y_b += W' F_b^T`` with ``W'`` the ``(O, T C)`` weight, one GEMM
   that reads ``F_b`` transposed, so no permute copy of the features is ever
   made and the output is contiguous ``(B, O, V_out)``.

When the first tap is the identity (``identity_tap=True``, :class:`MeshConv`),
it is not stored in ``S``: ``y = W_0 x + \beta`` is one batched GEMM on the
input directly, into which step 3 accumulates.

The backward pass is written by hand (``meshcnn::mesh_conv_backward``), per sample
too. It applies the precomputed vertex-major stack of the transposed taps ``R``
(row ``u T + t`` = column ``u`` of tap ``t``) to ``g_b^T`` as bags (a gather, never
a scatter): ``H_b = R g_b^T`` ``(V_in, T O)``, ``H_b[u, (t, o)] = (S_t^T g_{b,o})_u``.
Both gradients of the operator taps come from it, each one GEMM (``W''`` is the
``(C, T O)`` weight, ``W''[c, (t, o)] = W[o, c, t]``):

.. math:: \partial L / \partial x_b = W''\, H_b^T, \qquad
          \partial L / \partial W_{o,c,t} = \sum_b (x_b H_b)_{c,(t,o)}.

So the forward keeps nothing but ``x`` for the backward (``F_b`` is used at once and
dropped): no ``(V, T C)`` features per sample are stored, and each ``F_b`` and
``H_b`` is consumed by its GEMMs while it is still in cache. Samples side by side
instead (one bag product over a ``(V, B C)`` table) measured 6x slower on CPU at
levels 6-7 (see ``experiments/benchmark/RESULTS.md``).

Samples per kernel (:func:`block_samples_for`): where a sample's table is small
(up to ``2**18`` values: level 5 and below with 16 channels), steps 2-3 and the
backward take chunks of ``k`` samples at once: one bag kernel over the
block-diagonal ``diag(S, ..., S)`` applied to the ``(k V_in, C)`` table (its int32
indices are precomputed, :class:`TapOperator`) and one batched GEMM. Then every
kernel of the layer splits the work between threads by samples, so a thread's data
stays on its core; on the GPU it saves kernel launches. Larger tables run one
sample at a time, as described above, and so does a CPU running a single thread
beyond ``2**18`` values per chunk (:func:`_samples_per_kernel`): with no second core
there is no traffic to avoid, and per-sample features stay in cache.

Under :func:`torch.compile`, forward and backward are the custom operators
``meshcnn::mesh_conv`` and ``meshcnn::mesh_conv_backward``
(:func:`torch.library.custom_op`, autograd via ``register_autograd``): the graph
keeps each as one node (no graph break, and no per-sample loop for inductor to
unroll and re-generate), and fake implementations give output shapes and dtypes.
In eager mode the same two functions run inside a plain
:class:`torch.autograd.Function`, which skips the operators' dispatch layers.

Sparse operators are passed as their CSR components (``crow``, ``col``,
``val``) and those of their transpose, all plain dense tensors: modules keep
them as ordinary buffers (deep-copyable, movable with ``.to()``).

On CUDA, where triton is importable and the environment variable ``MESHCNN_TRITON`` is not
``0``, float32/float16/bfloat16 passes run the fused gather + GEMM kernels of
:mod:`meshcnn.nn._triton_kernels` instead (same operators, same dtypes; :func:`_use_triton`);
the CPU and float64 always take the path above.

Precision: the sparse product runs in float64 for float64 input and in float32
otherwise (also for float16/bfloat16 input and under :func:`torch.autocast`),
because the Laplacian and derivative taps are differences of nearly equal
neighbour values, which 8-bit mantissas would destroy. The dense products run
in the autocast dtype when autocast is enabled (else in the input's dtype),
and the output has that dtype, like :class:`torch.nn.Linear` under autocast.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import weakref
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

__all__ = [
    "CSR",
    "csr_from_scipy",
    "stack_taps",
    "TapOperator",
    "tap_operator",
    "sparse_matmul",
    "mesh_conv",
    "mesh_conv_reference",
    "compute_dtypes",
]


class CSR(NamedTuple):
    """A sparse matrix as CSR components plus its transpose, all dense tensors."""

    crow: torch.Tensor
    col: torch.Tensor
    val: torch.Tensor
    crow_t: torch.Tensor
    col_t: torch.Tensor
    val_t: torch.Tensor
    shape: tuple[int, int]


def _csr_components(m: sp.spmatrix, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(crow, col, val)`` of ``m`` in canonical CSR (sorted, no duplicates)."""
    m = sp.csr_matrix(m, copy=True)
    m.sum_duplicates()
    m.sort_indices()
    return (
        torch.from_numpy(m.indptr.astype(np.int64)),
        torch.from_numpy(m.indices.astype(np.int64)),
        torch.from_numpy(np.asarray(m.data, dtype=np.float64)).to(dtype),
    )


def csr_from_scipy(matrix: sp.spmatrix, dtype: torch.dtype = torch.float32) -> CSR:
    """Convert a scipy sparse matrix to :class:`CSR` (with its transpose)."""
    return CSR(*_csr_components(matrix, dtype), *_csr_components(matrix.T, dtype), tuple(matrix.shape))


def stack_taps(taps: list[sp.spmatrix]) -> sp.csr_matrix:
    """Stack ``T`` operators ``(V_out, V_in)`` vertex-major: row ``v * T + t`` is row ``v`` of tap ``t``."""
    if not taps:
        raise ValueError("stack_taps needs at least one operator")
    shape = taps[0].shape
    if any(t.shape != shape for t in taps):
        raise ValueError(f"all taps must have the same shape, got {[t.shape for t in taps]}")
    stacked = sp.vstack(taps, format="csr")  # tap-major
    num_taps, v_out = len(taps), shape[0]
    order = np.arange(num_taps * v_out).reshape(num_taps, v_out).T.reshape(-1)
    return sp.csr_matrix(stacked[order])


class TapOperator(NamedTuple):
    """The operator of :func:`mesh_conv`: ``T`` taps stacked vertex-major, with their transposes.

    ``crow, col, val``: CSR of ``S`` ``(V_out T, V_in)``, row ``v * T + t`` = row ``v`` of tap ``t``.
    ``crow_t, col_t, val_t``: CSR of ``R`` ``(V_in T, V_out)``, row ``u * T + t`` = column ``u``
    of tap ``t`` (the vertex-major stack of the transposed taps, used by the backward pass).
    ``shape``: ``(V_out T, V_in)``; ``taps``: ``T``.
    ``block_samples``: ``k``, how many samples one bag kernel may take, and
    ``block_crow, block_col`` (``block_crow_t, block_col_t``): int32 row offsets and
    column indices of the block-diagonal ``diag(S, ..., S)`` (``diag(R, ..., R)``) of
    ``k`` copies, acting on ``k`` samples' tables stacked as one ``(k V, C)`` table;
    empty when ``k = 1``. Their values are ``val`` (``val_t``) repeated.
    """

    crow: torch.Tensor
    col: torch.Tensor
    val: torch.Tensor
    crow_t: torch.Tensor
    col_t: torch.Tensor
    val_t: torch.Tensor
    shape: tuple[int, int]
    taps: int
    block_crow: torch.Tensor
    block_col: torch.Tensor
    block_crow_t: torch.Tensor
    block_col_t: torch.Tensor
    block_samples: int


BLOCK_MAX_TABLE_ELEMENTS = 2**18
BLOCK_MAX_ELEMENTS = 2**21
BLOCK_MAX_SAMPLES = 8


def block_samples_for(table_elements: int) -> int:
    """``k``: how many samples one bag kernel takes, for per-sample tables of ``table_elements`` values.

    1 (one bag kernel per sample) when a sample's table holds more than
    ``BLOCK_MAX_TABLE_ELEMENTS`` (``2**18``) values; else the largest
    ``k <= BLOCK_MAX_SAMPLES`` with ``k * table_elements <= BLOCK_MAX_ELEMENTS``
    (``2**21`` values, 8 MB in float32). A batch runs in chunks of ``k`` samples, one
    bag kernel and one batched GEMM per chunk.

    Why (measured on 2 CPU threads, ``experiments/benchmark/RESULTS.md`` section J):
    with one kernel per sample both threads split every sample, and each sample's
    data passes between the cores; on a host where that is slow, the level-5 layer
    (16 channels, batch 8) took 17-18 ms per sample-wise step against 11-13 ms for
    whole-batch kernels, which split by samples; levels 3-4 gain 10-20 % in any case.
    Larger per-sample tables (level 6 with 16 channels) keep per-sample kernels, which
    were 20 % faster there (49 vs 60 ms). On a GPU, fewer launches win at these sizes.

    Memory: the int32 indices hold ``k`` copies of the operator's, for the forward and
    the backward operator (level 5, 16 channels, ``k = 8``: 7.5 MB each), hence the cap
    ``BLOCK_MAX_SAMPLES = 8``; a larger batch runs in several chunks. Layers with the
    same operator and ``k`` share them (on the CPU; ``.to(device)`` copies per layer).
    """
    if table_elements > BLOCK_MAX_TABLE_ELEMENTS:
        return 1
    return max(1, min(BLOCK_MAX_SAMPLES, BLOCK_MAX_ELEMENTS // max(1, table_elements)))


ONE_THREAD_MAX_ELEMENTS = 2**18


def _samples_per_kernel(device: torch.device, batch: int, block_samples: int, table_elements: int) -> int:
    """Samples per bag kernel in this call: the operator's ``k``, but on a CPU running one
    thread only as many as keep the chunk's table within ``ONE_THREAD_MAX_ELEMENTS`` values
    (1 MB): with one thread there is no cross-core traffic to avoid, and one sample's
    features stay in cache. Measured with one thread, 16 channels, batch 8: level 5
    18.5 ms per sample against 22.0 ms in one chunk, level 4 4.8 ms either way,
    level 3 1.45 ms in one chunk against 1.68 ms per sample. At least 1, also for an
    empty batch (whose loops then run no chunk)."""
    if device.type == "cpu" and torch.get_num_threads() == 1:
        block_samples = min(block_samples, max(1, ONE_THREAD_MAX_ELEMENTS // max(1, table_elements)))
    return max(1, min(batch, block_samples))


# Block indices built once per distinct operator and shared by every layer that holds them:
# values are weak, so an entry lives exactly as long as some module keeps it as a buffer.
_BLOCK_INDICES: "weakref.WeakValueDictionary[tuple, torch.Tensor]" = weakref.WeakValueDictionary()


def _block_diagonal(crow: torch.Tensor, col: torch.Tensor, samples: int,
                    num_cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """int32 ``(offsets, index)`` of ``diag(M, ..., M)`` (``samples`` copies) for CSR ``M`` with ``num_cols`` columns.

    Layers with the same operator and ``samples`` get the same (read-only) tensors.
    """
    if samples == 1:
        return torch.zeros(0, dtype=torch.int32), torch.zeros(0, dtype=torch.int32)
    nnz = col.numel()
    if samples * max(nnz, num_cols) >= 2**31:
        raise ValueError(f"block operator of {samples} samples overflows int32 indices")
    digest = hashlib.sha1(crow.cpu().numpy().tobytes() + col.cpu().numpy().tobytes()).hexdigest()
    key = (digest, crow.numel(), nnz, num_cols, samples)
    offsets, index = _BLOCK_INDICES.get(key + ("offsets",)), _BLOCK_INDICES.get(key + ("index",))
    if offsets is None or index is None:
        shift = torch.arange(samples, dtype=torch.int64)[:, None]
        index = (col[None] + shift * num_cols).reshape(-1).to(torch.int32)
        offsets = torch.cat([(crow[None, :-1] + shift * nnz).reshape(-1),
                             crow[-1:] + (samples - 1) * nnz]).to(torch.int32)
        _BLOCK_INDICES[key + ("offsets",)], _BLOCK_INDICES[key + ("index",)] = offsets, index
    return offsets, index


def tap_operator(taps: list[sp.spmatrix], dtype: torch.dtype = torch.float32, block_samples: int = 1) -> TapOperator:
    """Build the :class:`TapOperator` of ``taps`` (each ``(V_out, V_in)``), values in ``dtype``.

    ``block_samples``: ``k`` for the block-diagonal index (see :func:`block_samples_for`);
    1 runs every sample in its own bag kernel.
    """
    if isinstance(block_samples, bool) or not isinstance(block_samples, int) or block_samples < 1:
        raise ValueError(f"block_samples must be a positive integer, got {block_samples!r}")
    stacked = stack_taps(taps)
    backward = stack_taps([sp.csr_matrix(t).T for t in taps])
    crow, col, val = _csr_components(stacked, dtype)
    crow_t, col_t, val_t = _csr_components(backward, dtype)
    v_out, v_in = taps[0].shape
    return TapOperator(crow, col, val, crow_t, col_t, val_t, stacked.shape, len(taps),
                       *_block_diagonal(crow, col, block_samples, v_in),
                       *_block_diagonal(crow_t, col_t, block_samples, v_out), block_samples)


def _bag_matmul(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``S @ table`` for CSR ``S`` and a contiguous 2-D ``table``, as a weighted embedding bag."""
    return F.embedding_bag(col, table, crow, mode="sum", per_sample_weights=val, include_last_offset=True)


def _bag_matmul_samples(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, block_crow: torch.Tensor,
                        block_col: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """``S @ tables[b]`` for every ``b`` of a contiguous ``(b, V_in, C)`` stack, in one bag kernel.

    The ``b`` tables are read as one ``(b V_in, C)`` table and ``S`` as the block-diagonal
    ``diag(S, ..., S)``, whose first ``b`` blocks are a prefix of the precomputed
    ``block_crow, block_col`` (see :class:`TapOperator`). Returns ``(b, rows, C)``.
    """
    b, v_in, c = tables.shape
    if b == 1:
        return _bag_matmul(crow, col, val, tables[0]).unsqueeze(0)
    nnz, rows = col.numel(), crow.numel() - 1
    out = F.embedding_bag(block_col[:b * nnz], tables.reshape(b * v_in, c), block_crow[:b * rows + 1], mode="sum",
                          per_sample_weights=val.repeat(b), include_last_offset=True)
    return out.view(b, rows, c)


class _SparseMatmul(torch.autograd.Function):
    """``S @ x`` for a constant CSR ``S``; the backward uses the stored ``S^T``."""

    @staticmethod
    def forward(ctx, x, crow, col, val, crow_t, col_t, val_t, shape):  # noqa: D401
        ctx.save_for_backward(crow_t, col_t, val_t)
        return _bag_matmul(crow, col, val.to(x.dtype), x.contiguous())

    @staticmethod
    def backward(ctx, grad):
        crow_t, col_t, val_t = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = _bag_matmul(crow_t, col_t, val_t.to(grad.dtype), grad.contiguous())
        return grad_x, None, None, None, None, None, None, None


def sparse_matmul(op: CSR, x: torch.Tensor) -> torch.Tensor:
    """``op @ x`` for ``x`` of shape ``(n_cols, k)``; differentiable in ``x``."""
    if x.dim() != 2 or x.shape[0] != op.shape[1]:
        raise ValueError(f"sparse_matmul: expected x of shape ({op.shape[1]}, k), got {tuple(x.shape)}")
    return _SparseMatmul.apply(x, *op)


def compute_dtypes(x: torch.Tensor) -> tuple[torch.dtype, torch.dtype]:
    """``(sparse_dtype, dense_dtype)`` that :func:`mesh_conv` uses for input ``x``.

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


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast off for ``device_type`` (dtypes are chosen explicitly by :func:`compute_dtypes`)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _vertex_major(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` (B, C, V) as a contiguous ``(B, V, C)`` tensor of ``dtype`` (one copy)."""
    out = torch.empty((x.shape[0], x.shape[2], x.shape[1]), dtype=dtype, device=x.device)
    return out.copy_(x.transpose(1, 2))


def _split_weight(weight: torch.Tensor, identity_tap: bool, dtype: torch.dtype):
    """``(W_id (O, C) or None, W_op (O, T C), W_opT (C, T O))`` in ``dtype``."""
    out_channels, channels, _ = weight.shape
    w = weight.to(dtype)
    w_id = w[..., 0].contiguous() if identity_tap else None  # a strided GEMM operand is a slow path
    w_taps = w[..., int(identity_tap):]  # (O, C, T)
    op_taps = w_taps.shape[-1]
    w_op = w_taps.transpose(1, 2).reshape(out_channels, op_taps * channels)  # [o, (t, c)]
    w_op_t = w_taps.permute(1, 2, 0).reshape(channels, op_taps * out_channels)  # [c, (t, o)]
    return w_id, w_op, w_op_t


def _use_triton(x: torch.Tensor, sparse_dtype: torch.dtype, dense_dtype: torch.dtype, *tensors: torch.Tensor) -> bool:
    """Whether this pass runs the Triton kernels of :mod:`meshcnn.nn._triton_kernels`: ``x`` on a CUDA
    device, float32 sparse products (not float64), no empty tensor, triton importable and usable
    there, and the environment variable ``MESHCNN_TRITON`` not ``0``. Any other case (the CPU
    always) takes the bag-product path below."""
    if x.device.type != "cuda" or sparse_dtype != torch.float32 or x.numel() == 0:
        return False
    if any(t.numel() == 0 for t in tensors) or os.environ.get("MESHCNN_TRITON", "1") == "0":
        return False
    from . import _triton_kernels
    return _triton_kernels.usable(x.device, dense_dtype)


def _mesh_conv_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, crow: torch.Tensor,
                       col: torch.Tensor, val: torch.Tensor, block_crow: torch.Tensor, block_col: torch.Tensor,
                       block_samples: int, num_out: int, identity_tap: bool, sparse_dtype: torch.dtype,
                       dense_dtype: torch.dtype) -> torch.Tensor:
    """Forward pass: ``y (B, O, V_out)``. The features ``F_b`` are used at once and not kept."""
    if _use_triton(x, sparse_dtype, dense_dtype, weight):  # CUDA: fused gather + GEMM kernel
        from . import _triton_kernels
        with _no_autocast(x.device.type):
            return _triton_kernels.mesh_conv_forward(x, weight, bias, crow, col, val, num_out, identity_tap,
                                                     dense_dtype)
    batch, channels, _ = x.shape
    out_channels, _, taps = weight.shape
    op_taps = taps - int(identity_tap)
    with _no_autocast(x.device.type):
        val = val.to(sparse_dtype)
        w_id, w_op, _ = _split_weight(weight, identity_tap, dense_dtype)
        # whole-batch ops where they cost nothing extra: fewer, larger kernels
        tables = _vertex_major(x, sparse_dtype)  # (B, V_in, C), one copy
        shape = (batch, out_channels, num_out)
        if identity_tap:  # y = W_0 x (+ b), the whole batch in one batched GEMM
            xi = x[:, :, :num_out].to(dense_dtype)
            w_id = w_id.expand(batch, -1, -1)
            if bias is None:
                out = torch.bmm(w_id, xi)
            else:
                out = torch.baddbmm(bias.to(dense_dtype)[:, None].expand(shape), w_id, xi)
        elif bias is None:
            out = torch.zeros(shape, dtype=dense_dtype, device=x.device)
        else:
            out = bias.to(dense_dtype)[:, None].expand(shape).contiguous()
        step = _samples_per_kernel(x.device, batch, block_samples, tables.shape[1] * channels)
        for start in range(0, batch, step):  # F = S x^T for `step` samples, then y += W' F^T
            f = _bag_matmul_samples(crow, col, val, block_crow, block_col, tables[start:start + step])
            f = f.view(f.shape[0], num_out, op_taps * channels).to(dense_dtype)
            if f.shape[0] == 1:
                out[start].addmm_(w_op, f[0].t())
            else:
                out[start:start + step].baddbmm_(w_op.expand(f.shape[0], -1, -1), f.transpose(1, 2))
    return out


def _mesh_conv_backward(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, crow_t: torch.Tensor,
                        col_t: torch.Tensor, val_t: torch.Tensor, block_crow_t: torch.Tensor,
                        block_col_t: torch.Tensor, block_samples: int, identity_tap: bool,
                        sparse_dtype: torch.dtype, dense_dtype: torch.dtype, need_x: bool, need_w: bool,
                        need_b: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward pass: ``(grad_x, grad_weight, grad_bias)``; a gradient not needed is returned empty.

    Both the input and the weight gradient of the operator taps come from
    ``H_b = R g_b^T`` ``(V_in, T O)``, ``H_b[u, (t, o)] = (S_t^T g_{b,o})_u``:
    ``grad_x_b = W'' H_b^T`` and ``grad_W[o, c, t] = sum_b (x_b H_b)[c, (t, o)]``.
    """
    if _use_triton(x, sparse_dtype, dense_dtype, weight, grad):  # CUDA: fused gather + GEMM kernels
        from . import _triton_kernels
        with _no_autocast(grad.device.type):
            return _triton_kernels.mesh_conv_backward(grad, x, weight, crow_t, col_t, val_t, identity_tap,
                                                      dense_dtype, need_x, need_w, need_b)
    batch, channels, num_in = x.shape
    out_channels, _, taps = weight.shape
    num_out = grad.shape[2]
    op_taps = taps - int(identity_tap)
    acc_dtype = torch.promote_types(weight.dtype, torch.float32)
    grad_x = x.new_empty(0)
    grad_w = weight.new_empty(0)
    grad_b = weight.new_empty(0)
    with _no_autocast(grad.device.type):
        grad = grad.to(dense_dtype)
        if need_b:
            grad_b = grad.sum(dim=(0, 2), dtype=acc_dtype if acc_dtype != grad.dtype else None).to(weight.dtype)
        if not (need_x or need_w):
            return grad_x, grad_w, grad_b
        w_id, _, w_op_t = _split_weight(weight, identity_tap, dense_dtype)
        val_t = val_t.to(sparse_dtype)
        xd = x.to(dense_dtype)
        tables = _vertex_major(grad, sparse_dtype)  # (B, V_out, O), one copy
        if need_x:
            if identity_tap and num_in == num_out:
                gx = torch.bmm(w_id.t().expand(batch, -1, -1), grad)
            else:
                gx = torch.zeros((batch, channels, num_in), dtype=dense_dtype, device=grad.device)
                if identity_tap:
                    gx[:, :, :num_out] = torch.bmm(w_id.t().expand(batch, -1, -1), grad)
        if need_w:  # accumulated transposed: grad_w_op_t[c, (t, o)]
            grad_w_op_t = torch.zeros((channels, op_taps * out_channels), dtype=acc_dtype, device=grad.device)
        step = _samples_per_kernel(grad.device, batch, block_samples, tables.shape[1] * out_channels)
        for start in range(0, batch, step):
            stop = min(start + step, batch)
            h = _bag_matmul_samples(crow_t, col_t, val_t, block_crow_t, block_col_t, tables[start:stop])
            h = h.view(stop - start, num_in, op_taps * out_channels).to(dense_dtype)
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
            grad_w_op = grad_w_op_t.view(channels, op_taps, out_channels).permute(2, 0, 1)
            if identity_tap:
                grad_w_id = torch.bmm(grad, xd[:, :, :num_out].transpose(1, 2)).sum(0, dtype=acc_dtype)
                grad_w = torch.cat([grad_w_id[..., None], grad_w_op], dim=2).to(weight.dtype).contiguous()
            else:
                grad_w = grad_w_op.to(weight.dtype).contiguous()
    return grad_x, grad_w, grad_b


# The two passes are registered as custom operators: torch.compile sees each as one opaque
# node (no graph break, nothing to trace or re-generate inside), autograd uses the hand-written
# backward, and fake (meta) implementations give shapes and dtypes.
@torch.library.custom_op("meshcnn::mesh_conv", mutates_args=())
def _mesh_conv_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, crow: torch.Tensor,
                  col: torch.Tensor, val: torch.Tensor, crow_t: torch.Tensor, col_t: torch.Tensor,
                  val_t: torch.Tensor, block_crow: torch.Tensor, block_col: torch.Tensor,
                  block_crow_t: torch.Tensor, block_col_t: torch.Tensor, block_samples: int, num_out: int,
                  identity_tap: bool, sparse_dtype: torch.dtype, dense_dtype: torch.dtype) -> torch.Tensor:
    """``y``. The transposed taps are inputs only so that autograd can save them."""
    return _mesh_conv_forward(x, weight, bias, crow, col, val, block_crow, block_col, block_samples, num_out,
                              identity_tap, sparse_dtype, dense_dtype)


@_mesh_conv_op.register_fake
def _(x, weight, bias, crow, col, val, crow_t, col_t, val_t, block_crow, block_col, block_crow_t, block_col_t,
      block_samples, num_out, identity_tap, sparse_dtype, dense_dtype):
    return x.new_empty((x.shape[0], weight.shape[0], num_out), dtype=dense_dtype)


@torch.library.custom_op("meshcnn::mesh_conv_backward", mutates_args=())
def _mesh_conv_backward_op(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, crow_t: torch.Tensor,
                           col_t: torch.Tensor, val_t: torch.Tensor, block_crow_t: torch.Tensor,
                           block_col_t: torch.Tensor, block_samples: int, identity_tap: bool,
                           sparse_dtype: torch.dtype, dense_dtype: torch.dtype, need_x: bool, need_w: bool,
                           need_b: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _mesh_conv_backward(grad, x, weight, crow_t, col_t, val_t, block_crow_t, block_col_t, block_samples,
                               identity_tap, sparse_dtype, dense_dtype, need_x, need_w, need_b)


@_mesh_conv_backward_op.register_fake
def _(grad, x, weight, crow_t, col_t, val_t, block_crow_t, block_col_t, block_samples, identity_tap, sparse_dtype,
      dense_dtype, need_x, need_w, need_b):
    return (x.new_empty(x.shape if need_x else (0,)), weight.new_empty(weight.shape if need_w else (0,)),
            weight.new_empty((weight.shape[0],) if need_b else (0,)))


def _setup_context(ctx, inputs, output):
    (x, weight, bias, _, _, _, crow_t, col_t, val_t, _, _, block_crow_t, block_col_t, block_samples, _,
     identity_tap, sparse_dtype, dense_dtype) = inputs
    ctx.save_for_backward(x, weight, crow_t, col_t, val_t, block_crow_t, block_col_t)
    ctx.meta = (block_samples, identity_tap, sparse_dtype, dense_dtype, bias.dtype if bias is not None else None)


def _backward(ctx, grad_out, backward_pass=_mesh_conv_backward_op):
    x, weight, crow_t, col_t, val_t, block_crow_t, block_col_t = ctx.saved_tensors
    block_samples, identity_tap, sparse_dtype, dense_dtype, bias_dtype = ctx.meta
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    grad_x, grad_w, grad_b = backward_pass(grad_out, x, weight, crow_t, col_t, val_t, block_crow_t, block_col_t,
                                           block_samples, identity_tap, sparse_dtype, dense_dtype, need_x, need_w,
                                           need_b and bias_dtype is not None)
    no_grads = (None,) * (len(ctx.needs_input_grad) - 3)  # the operator tensors and settings
    return (grad_x if need_x else None, grad_w if need_w else None,
            grad_b.to(bias_dtype) if need_b and bias_dtype is not None else None) + no_grads


_mesh_conv_op.register_autograd(_backward, setup_context=_setup_context)


class _MeshConvFunction(torch.autograd.Function):
    """The same two passes for eager mode, without the custom operators' dispatch layers.

    They cost ~0.13 ms per call (level 1, batch 8, 16 channels: 0.71 ms forward+backward
    through the operators, 0.58 ms through this Function), which matters at the coarse
    levels of a U-Net; under :func:`torch.compile`, :func:`mesh_conv` uses the custom
    operators instead.
    """

    @staticmethod
    def forward(ctx, *inputs):  # ctx in forward: a separate setup_context costs an inspect.signature per call
        (x, weight, bias, crow, col, val, _, _, _, block_crow, block_col, _, _, block_samples, num_out, identity_tap,
         sparse_dtype, dense_dtype) = inputs
        out = _mesh_conv_forward(x, weight, bias, crow, col, val, block_crow, block_col, block_samples, num_out,
                                 identity_tap, sparse_dtype, dense_dtype)
        _setup_context(ctx, inputs, out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return _backward(ctx, grad_out, backward_pass=_mesh_conv_backward)


def mesh_conv(x: torch.Tensor, op: TapOperator, weight: torch.Tensor, bias: torch.Tensor | None,
              identity_tap: bool = False) -> torch.Tensor:
    r"""Mesh convolution with a stacked tap operator.

    .. math:: y_{b,o,v} = \sum_{t,c} W_{o,c,t}\, (S_t x_{b,c})_v + \beta_o

    Parameters
    ----------
    x : (B, C, V_in) floating tensor
    op : :class:`TapOperator` with ``T_op`` taps (see :func:`tap_operator`).
    weight : (O, C, T)
        With ``identity_tap=False``, ``T = T_op``. With ``identity_tap=True``,
        ``T = T_op + 1``: ``weight[..., 0]`` multiplies the identity restricted to
        the first ``V_out`` vertices (``x[..., :V_out]``), which is not in ``op``,
        and ``weight[..., t + 1]`` the ``t``-th tap of ``op``.
    bias : (O,) or None
    identity_tap : bool

    Returns
    -------
    (B, O, V_out), in the dense dtype of :func:`compute_dtypes`.

    The result equals :func:`mesh_conv_reference` up to rounding; the tests
    check it in float64 to 1e-10.
    """
    batch, channels, num_in = x.shape
    out_channels, w_channels, taps = weight.shape
    op_taps = taps - int(identity_tap)
    if w_channels != channels:
        raise ValueError(f"mesh_conv: weight has {w_channels} input channels, x has {channels}")
    if op.shape[1] != num_in:
        raise ValueError(f"mesh_conv: operator acts on V={op.shape[1]} vertices, x has V={num_in}")
    if op.taps != op_taps:
        raise ValueError(f"mesh_conv: the operator holds {op.taps} taps, the weight needs {op_taps} "
                         f"({taps} taps{', the first the identity' if identity_tap else ''})")
    num_out = op.shape[0] // op_taps
    if identity_tap and num_out > num_in:
        raise ValueError("mesh_conv: an identity tap needs V_out <= V_in")
    sparse_dtype, dense_dtype = compute_dtypes(x)
    conv = _mesh_conv_op if torch.compiler.is_compiling() else _MeshConvFunction.apply
    return conv(x, weight, bias, op.crow, op.col, op.val, op.crow_t, op.col_t, op.val_t, op.block_crow, op.block_col,
                op.block_crow_t, op.block_col_t, op.block_samples, num_out, identity_tap, sparse_dtype, dense_dtype)


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
