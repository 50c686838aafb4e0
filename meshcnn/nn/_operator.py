r"""The layouts the MeshConv kernels read: the tap operator, the signal tables and the weight.

Private module, re-exported by :mod:`meshcnn.nn`.

Operator. ``T`` sparse taps ``S_t`` ``(V_out, V_in)`` are stacked **vertex-major** into
one CSR matrix ``S`` ``(V_out T, V_in)``: row ``v T + t`` is row ``v`` of tap ``t``
(:func:`stack_taps`). The backward pass reads ``R`` ``(V_in T, V_out)``, the
vertex-major stack of the transposed taps (row ``u T + t`` is column ``u`` of tap
``t``). For ``k > 1`` samples per bag kernel the block-diagonal ``diag(S, ..., S)``
(``k`` copies) acting on ``k`` samples' tables stacked as one ``(k V_in, C)`` table
has precomputed int32 row offsets and column indices; its values are ``val``
repeated. :class:`TapOperator` holds all of it: ten tensors and four integers.

Signals are read as vertex-major tables ``(B, V, C)`` (:func:`vertex_major`), the
weight ``W`` ``(O, C, T)`` as the GEMM operands of :func:`split_weight`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from .._cache import memoize

__all__ = ["stack_taps", "TapOperator", "tap_operator", "block_samples_for"]


BLOCK_MAX_TABLE_ELEMENTS = 2**18
BLOCK_MAX_ELEMENTS = 2**21
BLOCK_MAX_SAMPLES = 8
ONE_THREAD_MAX_ELEMENTS = 2**18

# The tensors of a TapOperator in the order of TapOperator.tensors(): those of S, then those of R.
TENSOR_FIELDS = (
    "crow",
    "col",
    "val",
    "block_crow",
    "block_col",
    "crow_t",
    "col_t",
    "val_t",
    "block_crow_t",
    "block_col_t",
)
# The tensors of the adjoint S^T (adjoint_tensors), kept by the layers of the "invariant" strategy.
ADJOINT_FIELDS = ("crow_a", "col_a", "val_a", "block_crow_a", "block_col_a")


@dataclasses.dataclass(frozen=True)
class TapOperator:
    """The operator of :func:`meshcnn.nn.mesh_conv`: ``T`` taps stacked vertex-major, with their transposes.

    Attributes
    ----------
    crow, col, val : Tensor
        CSR of ``S`` ``(V_out T, V_in)``, row ``v T + t`` = row ``v`` of tap ``t``
        (int64 indices, floating values).
    block_crow, block_col : Tensor
        int32 row offsets and column indices of ``diag(S, ..., S)`` (``block_samples``
        copies); empty when ``block_samples == 1``.
    crow_t, col_t, val_t, block_crow_t, block_col_t : Tensor
        The same for ``R`` ``(V_in T, V_out)``, row ``u T + t`` = column ``u`` of tap ``t``.
    shape : tuple of int
        ``(V_out T, V_in)``.
    taps : int
        ``T``.
    block_samples : int
        ``k``, how many samples one bag kernel may take (:func:`block_samples_for`).

    :meth:`tensors` and :meth:`sizes` give the whole state as a list of tensors and a
    list of ints (what the custom operators take), :meth:`from_tensors` rebuilds it.
    """

    crow: torch.Tensor
    col: torch.Tensor
    val: torch.Tensor
    block_crow: torch.Tensor
    block_col: torch.Tensor
    crow_t: torch.Tensor
    col_t: torch.Tensor
    val_t: torch.Tensor
    block_crow_t: torch.Tensor
    block_col_t: torch.Tensor
    shape: tuple[int, int]
    taps: int
    block_samples: int

    @property
    def num_out(self) -> int:
        """``V_out``, the vertices of the output."""
        return self.shape[0] // self.taps

    def tensors(self) -> list[torch.Tensor]:
        """The ten tensors, in the order of ``TENSOR_FIELDS`` (``S``'s, then ``R``'s)."""
        return [
            self.crow,
            self.col,
            self.val,
            self.block_crow,
            self.block_col,
            self.crow_t,
            self.col_t,
            self.val_t,
            self.block_crow_t,
            self.block_col_t,
        ]

    def sizes(self) -> list[int]:
        """``[V_out T, V_in, T, k]``."""
        return [self.shape[0], self.shape[1], self.taps, self.block_samples]

    @classmethod
    def from_tensors(cls, tensors: Sequence[torch.Tensor], sizes: Sequence[int]) -> TapOperator:
        """The operator whose :meth:`tensors` and :meth:`sizes` are ``tensors`` and ``sizes``.

        Parameters
        ----------
        tensors : sequence of Tensor
            The ten tensors, in the order of ``TENSOR_FIELDS``.
        sizes : sequence of int
            ``[V_out T, V_in, T, k]``.

        Returns
        -------
        TapOperator
        """
        rows, cols, taps, block_samples = sizes
        return cls(*tensors, (rows, cols), taps, block_samples)


def block_samples_for(table_elements: int) -> int:
    """How many samples one bag kernel takes, for per-sample tables of ``table_elements`` values.

    Parameters
    ----------
    table_elements : int
        Values in one sample's table, ``V C``.

    Returns
    -------
    int
        1 (one bag kernel per sample) when a sample's table holds more than
        ``BLOCK_MAX_TABLE_ELEMENTS`` (``2**18``) values; else the largest
        ``k <= BLOCK_MAX_SAMPLES`` (8) with ``k * table_elements <= BLOCK_MAX_ELEMENTS``
        (``2**21``). A batch then runs in chunks of ``k`` samples, one bag kernel and one
        batched GEMM per chunk, so threads split the work by samples and a sample's
        data stays on one core. The int32 block indices hold ``k`` copies of the
        operator's, hence the cap. Why these thresholds: ``experiments/benchmark/RESULTS.md``,
        section J and "Moved from docstrings".
    """
    if table_elements > BLOCK_MAX_TABLE_ELEMENTS:
        return 1
    return max(1, min(BLOCK_MAX_SAMPLES, BLOCK_MAX_ELEMENTS // max(1, table_elements)))


def samples_per_kernel(device: torch.device, batch: int, block_samples: int, table_elements: int) -> int:
    """Samples per bag kernel in one call.

    The operator's ``k``, but on a CPU running one thread only as many as keep the
    chunk's table within ``ONE_THREAD_MAX_ELEMENTS`` (``2**18``) values, since with one
    thread there is no cross-core traffic to avoid and one sample's features stay in
    cache (measurements: ``experiments/benchmark/RESULTS.md``, "Moved from docstrings").

    Parameters
    ----------
    device : torch.device
        Where the pass runs.
    batch : int
        ``B``, samples in the batch.
    block_samples : int
        The operator's ``k``.
    table_elements : int
        Values in one sample's table, ``V C``.

    Returns
    -------
    int
        At least 1, also for an empty batch.
    """
    if device.type == "cpu" and torch.get_num_threads() == 1:
        block_samples = min(block_samples, max(1, ONE_THREAD_MAX_ELEMENTS // max(1, table_elements)))
    return max(1, min(batch, block_samples))


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


# Layers with the same operator and k share these (read-only) indices: copy=False.
@memoize(maxsize=64, copy=False)
def _block_indices(
    crow: torch.Tensor, col: torch.Tensor, samples: int, num_cols: int
) -> tuple[torch.Tensor, torch.Tensor]:
    nnz = col.numel()
    shift = torch.arange(samples, dtype=torch.int64)[:, None]
    index = (col[None] + shift * num_cols).reshape(-1).to(torch.int32)
    offsets = torch.cat([(crow[None, :-1] + shift * nnz).reshape(-1), crow[-1:] + (samples - 1) * nnz])
    return offsets.to(torch.int32), index


def _block_diagonal(
    crow: torch.Tensor, col: torch.Tensor, samples: int, num_cols: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """int32 ``(offsets, index)`` of ``diag(M, ..., M)``, ``samples`` copies of CSR ``M`` with ``num_cols`` columns."""
    if samples == 1:
        return torch.zeros(0, dtype=torch.int32), torch.zeros(0, dtype=torch.int32)
    if samples * max(col.numel(), num_cols) >= 2**31:
        raise ValueError(f"block operator of {samples} samples overflows int32 indices")
    return _block_indices(crow, col, samples, num_cols)


def tap_operator(taps: list[sp.spmatrix], dtype: torch.dtype = torch.float32, block_samples: int = 1) -> TapOperator:
    """Build the :class:`TapOperator` of ``taps``.

    Parameters
    ----------
    taps : list of scipy sparse matrices, each ``(V_out, V_in)``
    dtype : torch.dtype
        dtype of the operator values.
    block_samples : int
        ``k`` for the block-diagonal indices (:func:`block_samples_for`); 1 runs every
        sample in its own bag kernel.

    Returns
    -------
    TapOperator
    """
    if isinstance(block_samples, bool) or not isinstance(block_samples, int) or block_samples < 1:
        raise ValueError(f"block_samples must be a positive integer, got {block_samples!r}")
    stacked = stack_taps(taps)
    backward = stack_taps([sp.csr_matrix(t).T for t in taps])
    crow, col, val = _csr_components(stacked, dtype)
    crow_t, col_t, val_t = _csr_components(backward, dtype)
    v_out, v_in = taps[0].shape
    return TapOperator(
        crow,
        col,
        val,
        *_block_diagonal(crow, col, block_samples, v_in),
        crow_t,
        col_t,
        val_t,
        *_block_diagonal(crow_t, col_t, block_samples, v_out),
        stacked.shape,
        len(taps),
        block_samples,
    )


def adjoint_tensors(op: TapOperator) -> list[torch.Tensor]:
    """CSR of the adjoint ``S^T`` ``(V_in, V_out T)`` of the stacked operator, with its block-diagonal indices.

    Row ``u`` of ``S^T`` holds ``S_t[v, u]`` at column ``v T + t``: applied to a vertex-major
    table ``dF`` ``(V_out T, C)`` (row ``v T + t`` the gradient of tap ``t``'s features at
    vertex ``v``), it sums every tap's contribution in one bag kernel,
    ``(S^T dF)[u, c] = sum_{t, v} S_t[v, u] dF[v T + t, c]``. It has the non-zeros of ``R``,
    in ``V_in`` rows instead of ``V_in T``.

    Parameters
    ----------
    op : TapOperator
        On the CPU.

    Returns
    -------
    list of Tensor
        ``[crow, col, val, block_crow, block_col]`` (``ADJOINT_FIELDS``), the block indices
        for ``op.block_samples`` copies of ``S^T`` acting on ``(V_out T, C)`` tables (empty for 1).
    """
    rows, cols = op.shape
    stacked = sp.csr_matrix((op.val.numpy(), op.col.numpy(), op.crow.numpy()), shape=(rows, cols))
    crow, col, val = _csr_components(stacked.T, op.val.dtype)
    return [crow, col, val, *_block_diagonal(crow, col, op.block_samples, rows)]


def vertex_major(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` as a contiguous vertex-major table (one copy).

    Parameters
    ----------
    x : Tensor
        ``(B, C, V)``.
    dtype : torch.dtype
        dtype of the table.

    Returns
    -------
    Tensor
        ``(B, V, C)`` of ``dtype``.
    """
    out = torch.empty((x.shape[0], x.shape[2], x.shape[1]), dtype=dtype, device=x.device)
    return out.copy_(x.transpose(1, 2))


def split_weight(
    weight: torch.Tensor, identity_tap: bool, dtype: torch.dtype
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """The weight as the GEMM operands of the kernels.

    ``W'[o, (t, c)] = W''[c, (t, o)] = W[o, c, t]`` over the operator taps (after the
    identity tap when ``identity_tap``).

    Parameters
    ----------
    weight : Tensor
        ``W`` ``(O, C, T)``.
    identity_tap : bool
        Whether tap 0 is the identity tap.
    dtype : torch.dtype
        dtype of the operands.

    Returns
    -------
    tuple
        ``(W_id (O, C) or None, W' (O, T C), W'' (C, T O))`` in ``dtype``.
    """
    out_channels, channels, _ = weight.shape
    w = weight.to(dtype)
    w_id = w[..., 0].contiguous() if identity_tap else None  # a strided GEMM operand is a slow path
    w_taps = w[..., int(identity_tap) :]  # (O, C, T)
    op_taps = w_taps.shape[-1]
    w_op = w_taps.transpose(1, 2).reshape(out_channels, op_taps * channels)  # [o, (t, c)]
    w_op_t = w_taps.permute(1, 2, 0).reshape(channels, op_taps * out_channels)  # [c, (t, o)]
    return w_id, w_op, w_op_t


# ELL tables for the Triton kernels, one per operator and device. Not memoize: its key hashes a
# tensor's bytes, a host copy per call for a CUDA operator; this cache is weakly keyed by the
# value tensor itself (an entry dies with the layer's buffer) and checked against its storage.
_ELL_CACHE = None  # torch.utils.weak.WeakIdKeyDictionary: value tensor -> (validation key, tables)


def _version(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # inference tensors have no version counter
        return -1


def ell_table(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """ELL form of the CSR matrix ``(crow, col, val)``, on its device.

    Entries keep the CSR order within a row. Built once per operator (one host-device
    synchronisation, for ``K``) and cached, weakly keyed by ``val`` and checked against
    the storage of all three tensors.

    Parameters
    ----------
    crow, col, val : Tensor
        CSR row pointers, column indices and values.

    Returns
    -------
    tuple
        ``(ell_col, ell_val, K)``: ``ell_col`` ``(n, K)`` int32 (padding ``-1``) and
        ``ell_val`` ``(n, K)`` float32 (padding 0), ``n = crow.numel() - 1``, ``K`` the
        largest number of non-zeros in a row (at least 1).
    """
    global _ELL_CACHE
    if _ELL_CACHE is None:
        from torch.utils.weak import WeakIdKeyDictionary

        _ELL_CACHE = WeakIdKeyDictionary()
    check = (
        crow.data_ptr(),
        col.data_ptr(),
        val.data_ptr(),
        crow.numel(),
        col.numel(),
        _version(crow),
        _version(col),
        _version(val),
        val.device,
    )
    hit = _ELL_CACHE.get(val)
    if hit is not None and hit[0] == check:
        return hit[1]
    rows, nnz, device = crow.numel() - 1, col.numel(), crow.device
    lengths = crow[1:] - crow[:-1]
    width = max(1, int(lengths.max())) if rows > 0 else 1  # the one synchronisation
    ell_col = torch.full((rows, width), -1, dtype=torch.int32, device=device)
    ell_val = torch.zeros((rows, width), dtype=torch.float32, device=device)
    if nnz:
        row_of = torch.repeat_interleave(torch.arange(rows, device=device), lengths, output_size=nnz)
        pos = torch.arange(nnz, device=device) - crow[:-1][row_of]
        ell_col[row_of, pos] = col.to(torch.int32)
        ell_val[row_of, pos] = val.to(torch.float32)
    tables = (ell_col, ell_val, width)
    _ELL_CACHE[val] = (check, tables)
    return tables
