r"""Fused gather + GEMM Triton kernels for :func:`meshcnn.nn.mesh_conv` on CUDA.

Private module. :mod:`meshcnn.nn._ops` calls :func:`mesh_conv_forward` and :func:`mesh_conv_backward` in place of
its bag-product path for a :class:`~meshcnn.nn._plan.KernelPlan` of backend ``"triton"`` (chosen on a CUDA device
where triton is importable and ``MESHCNN_TRITON`` is not ``0``, :func:`~meshcnn.nn._plan.choose_backend`) whose pass
the kernels take (:meth:`~meshcnn.nn._plan.KernelPlan.runs_triton`). Importing this module never imports triton:
the kernels are built on first use (:func:`_kernels`), so the module imports cleanly where triton is absent.

Notation (as in :mod:`meshcnn.nn.functional`): ``x`` ``(B, C, V_in)``, weight ``W`` ``(O, C, T)`` (with
``identity_tap``, ``W[..., 0]`` is the identity tap and the operator holds ``T_op = T - 1`` taps), the vertex-major
tap stack ``S`` ``(V_out T_op, V_in)`` (row ``v T_op + t`` = row ``v`` of tap ``t``) and the stack of the transposed
taps ``R`` ``(V_in T_op, V_out)`` (row ``u T_op + t`` = column ``u`` of tap ``t``).

Layouts. Operators are read as ELL tables (:func:`~meshcnn.nn._operator.ell_table`): ``ell_col`` ``(n, K)`` int32
column indices in CSR order padded with ``-1``, ``ell_val`` ``(n, K)`` float32 values padded with 0; ``K <= 7`` for
the convolution taps (the closed 1-ring). Tables of signals are vertex-major: ``x`` is read as ``(B, V_in, C)``
float32 (channels contiguous), so one neighbour's ``BLOCK_M`` channels are one contiguous load.

Kernels. ``_ell_gemm_kernel`` (forward and input gradient): for one sample ``b``, a tile of ``BLOCK_V`` output rows
``v`` and ``BLOCK_N`` output channels ``n``,

.. math:: Y_{b,n,v} = \beta_n + [v < V_{id}] \sum_m A_{n,m} X_{b,v,m}
          + \sum_t \sum_m W_{n,(t,m)} \sum_{k<K} e^{val}_{vT+t,k}\, X_{b,e^{col}_{vT+t,k},m}.

The gathered tile (the sparse product) is summed in float32 in registers, cast to the dense dtype and multiplied by
the weight tile with ``tl.dot`` (float32 accumulator); nothing but ``Y`` is written. Forward: ``X = x^T``,
``e = ELL(S)``, ``W = W'`` ``(O, T_op C)``, ``A = W_0`` ``(O, C)``, ``V_id = V_out``. Input gradient: ``X = g^T``
``(B, V_out, O)``, ``e = ELL(R)``, ``W = W''`` ``(C, T_op O)`` (``W''[c, (t, o)] = W[o, c, t]``), ``A = W_0^T``,
``V_id = V_out``, no bias.

``_ell_weight_grad_kernel`` (weight gradient of the operator taps): program ``(s, t, j)`` sums, over all samples and
the vertex tiles ``s, s + P, s + 2P, ...``,

.. math:: P^{(s)}_{t,c,o} = \sum_b \sum_u x_{b,c,u}\, H_{b,u,t,o}, \qquad
          H_{b,u,t,o} = \sum_{k<K} e^{val}_{uT+t,k}\, g_{b,o,e^{col}_{uT+t,k}},

with ``e = ELL(R)``, so ``H_b = R g_b^T`` is formed tile by tile in registers and never stored; the ``P`` partial
sums ``(P, T_op, C, O)`` (float32) are added up afterwards (deterministic, no atomics),
``grad W[o, c, t] = sum_s P^{(s)}_{t,c,o}``.

Precision, as the module docstring of :mod:`meshcnn.nn.functional` requires: the gathers (sparse part) are summed in
float32 from float32 tables and float32 operator values; the dense products take operands in the dense dtype
(float32, or bfloat16/float16 under autocast) and accumulate in float32. Float32 dot products are exact IEEE
products unless ``torch.get_float32_matmul_precision()`` allows TF32 (as for ``torch.matmul``). float64 input never
comes here.
"""

from __future__ import annotations

import contextlib
import os
import types
from typing import TYPE_CHECKING

import torch

from .._cache import memoize
from ._kernels import bias_grad, weight_grad
from ._operator import ell_table, split_weight, vertex_major

if TYPE_CHECKING:
    from ._plan import KernelPlan

__all__ = ["available", "usable", "ell_table", "mesh_conv_forward", "mesh_conv_backward"]


@memoize(maxsize=1, copy=False)
def available() -> bool:
    """Whether triton can be imported (checked once)."""
    try:
        import triton
        import triton.language  # noqa: F401 - imported only to probe the installation
    except Exception:  # ImportError, or a broken installation
        return False
    return True


def usable(device: torch.device, dense_dtype: torch.dtype) -> bool:
    """Whether the kernels can run on ``device`` with dense products in ``dense_dtype``.

    Parameters
    ----------
    device : torch.device
    dense_dtype : torch.dtype

    Returns
    -------
    bool
        True for triton importable, a float32, float16 or bfloat16 dense dtype, and for bfloat16
        a GPU of compute capability 8.0 or later (NVIDIA; ROCm devices are left to triton).
    """
    if dense_dtype not in _TL_DTYPES or not available():
        return False
    if dense_dtype == torch.bfloat16 and device.type == "cuda" and torch.version.hip is None:
        return torch.cuda.get_device_capability(device) >= (8, 0)
    return True


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


# ---------------------------------------------------------------------------------------
# Kernel sources. They are plain functions here and become triton kernels in _kernels();
# ``tl`` is bound as a module global there (annotations are strings, see __future__).
# They call triton's builtins only (tl.full, not tl.zeros or tl.cdiv, which are themselves
# jit functions decorated when triton is imported): so interpreted kernels (tests, CPU
# tensors) and compiled ones can be built in one process whatever TRITON_INTERPRET was then.
# ---------------------------------------------------------------------------------------
tl = None  # triton.language, bound by _kernels()


def _gather_tile(
    table,
    ell_col_ptr,
    ell_val_ptr,
    row,
    row_mask,
    cols,
    col_mask,
    row_len,
    K: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """``sum_k e_val[row, k] table[e_col[row, k], cols]`` ``(BLOCK_R, BLOCK_C)`` float32: rows ``row``
    of an ELL operator times a vertex-major table whose rows hold ``row_len`` values."""
    f = tl.full((BLOCK_R, BLOCK_C), 0.0, tl.float32)
    for k in range(K):
        idx = tl.load(ell_col_ptr + row * K + k, mask=row_mask, other=-1)
        a = tl.load(ell_val_ptr + row * K + k, mask=row_mask, other=0.0)
        ok = idx >= 0
        xv = tl.load(
            table + idx.to(tl.int64)[:, None] * row_len + cols[None, :], mask=ok[:, None] & col_mask[None, :], other=0.0
        )
        f += a[:, None] * xv
    return f


def _ell_gemm_kernel(
    table_ptr,
    ell_col_ptr,
    ell_val_ptr,
    w_ptr,
    wid_ptr,
    bias_ptr,
    out_ptr,
    n_rows,
    n_table_rows,
    n_ident,
    M,
    N,
    T: tl.constexpr,
    K: tl.constexpr,
    HAS_ID: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
):
    """``out[b, n, v]`` for a ``(BLOCK_V, BLOCK_N)`` tile, see the module docstring.

    table ``(B, n_table_rows, M)`` float32; ell ``(n_rows T, K)``; w ``(N, T M)`` and wid ``(N, M)`` in the dense
    dtype; bias ``(N,)`` float32; out ``(B, N, n_rows)``. ``UPCAST``: operands rounded to the dense dtype are
    multiplied as float32 (the same products; for triton's interpreter, whose ``tl.dot`` cannot take bfloat16).
    """
    pid_v = tl.program_id(0)
    pid_n = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    rv = pid_v * BLOCK_V + tl.arange(0, BLOCK_V)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    v_mask = rv < n_rows
    n_mask = rn < N
    table_b = table_ptr + b * n_table_rows * M
    dot_dtype = w_ptr.dtype.element_ty
    acc = tl.full((BLOCK_V, BLOCK_N), 0.0, tl.float32)
    for t in range(T):
        row = rv * T + t
        for m0 in range(0, M, BLOCK_M):
            rm = m0 + tl.arange(0, BLOCK_M)
            m_mask = rm < M
            f = _gather_tile(
                table_b,
                ell_col_ptr,
                ell_val_ptr,
                row,
                v_mask,
                rm,
                m_mask,
                M,  # rows of S times x^T
                K=K,
                BLOCK_R=BLOCK_V,
                BLOCK_C=BLOCK_M,
            )
            w = tl.load(
                w_ptr + rn[None, :] * (T * M) + t * M + rm[:, None], mask=m_mask[:, None] & n_mask[None, :], other=0.0
            )  # (BLOCK_M, BLOCK_N)
            f = f.to(dot_dtype)
            if UPCAST:
                f = f.to(tl.float32)
                w = w.to(tl.float32)
            acc = tl.dot(f, w, acc, input_precision=PRECISION)
    if HAS_ID:
        id_mask = v_mask & (rv < n_ident)
        for m0 in range(0, M, BLOCK_M):
            rm = m0 + tl.arange(0, BLOCK_M)
            m_mask = rm < M
            xv = tl.load(
                table_b + rv.to(tl.int64)[:, None] * M + rm[None, :], mask=id_mask[:, None] & m_mask[None, :], other=0.0
            )
            wid = tl.load(wid_ptr + rn[None, :] * M + rm[:, None], mask=m_mask[:, None] & n_mask[None, :], other=0.0)
            xv = xv.to(dot_dtype)
            if UPCAST:
                xv = xv.to(tl.float32)
                wid = wid.to(tl.float32)
            acc = tl.dot(xv, wid, acc, input_precision=PRECISION)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + rn, mask=n_mask, other=0.0)[None, :]
    out = out_ptr + b * N * n_rows + rn[None, :] * n_rows + rv[:, None]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=v_mask[:, None] & n_mask[None, :])


def _ell_weight_grad_kernel(
    x_ptr,
    g_ptr,
    ell_col_ptr,
    ell_val_ptr,
    part_ptr,
    B,
    n_rows,
    n_g_rows,
    C,
    O,
    n_tiles,
    n_split,
    T: tl.constexpr,
    K: tl.constexpr,
    BLOCK_U: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_O: tl.constexpr,
    DOT_DTYPE: tl.constexpr,
    PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
):
    """Partial weight gradient ``part[s, t, c, o]`` for one ``(BLOCK_C, BLOCK_O)`` tile, see the module docstring.

    x ``(B, n_rows, C)`` and g ``(B, n_g_rows, O)`` float32 tables; ell ``(n_rows T, K)``
    of ``R``; part ``(n_split, T, C, O)`` float32. ``UPCAST`` as in ``_ell_gemm_kernel``.
    """
    pid_s = tl.program_id(0)
    t = tl.program_id(1)
    pid_co = tl.program_id(2)
    n_o_tiles = (O + BLOCK_O - 1) // BLOCK_O  # not tl.cdiv: a jit function, see _kernels
    rc = (pid_co // n_o_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    ro = (pid_co % n_o_tiles) * BLOCK_O + tl.arange(0, BLOCK_O)
    c_mask = rc < C
    o_mask = ro < O
    acc = tl.full((BLOCK_C, BLOCK_O), 0.0, tl.float32)
    x_b = x_ptr  # sample b's tables: advanced by a whole table per sample (64-bit pointers)
    g_b = g_ptr
    for _ in range(B):
        for tile in range(pid_s, n_tiles, n_split):
            ru = tile * BLOCK_U + tl.arange(0, BLOCK_U)
            u_mask = ru < n_rows
            row = ru * T + t
            h = _gather_tile(
                g_b,
                ell_col_ptr,
                ell_val_ptr,
                row,
                u_mask,
                ro,
                o_mask,
                O,  # H tile: rows of R times g^T
                K=K,
                BLOCK_R=BLOCK_U,
                BLOCK_C=BLOCK_O,
            )
            xt = tl.load(
                x_b + ru.to(tl.int64)[None, :] * C + rc[:, None], mask=c_mask[:, None] & u_mask[None, :], other=0.0
            )  # (BLOCK_C, BLOCK_U)
            xt = xt.to(DOT_DTYPE)
            h = h.to(DOT_DTYPE)
            if UPCAST:
                xt = xt.to(tl.float32)
                h = h.to(tl.float32)
            acc = tl.dot(xt, h, acc, input_precision=PRECISION)
        x_b += n_rows * C
        g_b += n_g_rows * O
    part = part_ptr + ((pid_s * T + t) * C + rc[:, None]) * O + ro[None, :]
    tl.store(part, acc, mask=c_mask[:, None] & o_mask[None, :])


_KERNELS: dict = {}


def _kernels():
    """``(gemm_kernel, weight_grad_kernel, triton)``, built once per interpreter setting.

    ``TRITON_INTERPRET=1`` (read when the kernels are first built) gives triton's CPU
    interpreter, which the tests use to run the kernels on CPU tensors.
    """
    key = _interpreting()
    if key not in _KERNELS:
        import triton
        import triton.language as language

        globals()["tl"] = language
        # each setting's kernels resolve their helper in a namespace of their own
        namespace = dict(globals())
        namespace["_gather_tile"] = _jit(triton, _gather_tile, namespace)
        _KERNELS[key] = (
            _jit(triton, _ell_gemm_kernel, namespace),
            _jit(triton, _ell_weight_grad_kernel, namespace),
            triton,
        )
    return _KERNELS[key]


def _jit(triton, fn, namespace: dict):
    """``triton.jit`` of a copy of ``fn`` that resolves its globals in ``namespace``."""
    copy = types.FunctionType(fn.__code__, namespace, fn.__name__)
    copy.__annotations__ = dict(fn.__annotations__)  # triton finds the constexpr parameters there
    return triton.jit(copy)


_TL_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def _tl_dtype(dtype: torch.dtype):
    return getattr(tl, _TL_DTYPES[dtype])


def _precision() -> str:
    return "ieee" if torch.get_float32_matmul_precision() == "highest" else "tf32"


def _block(n: int, cap: int = 64) -> int:
    """Power-of-two tile size for a dimension of ``n``: at least 16 (``tl.dot``), at most ``cap``."""
    return max(16, min(cap, 1 << max(0, int(n) - 1).bit_length()))


# ---------------------------------------------------------------------------------------
# Launchers
# ---------------------------------------------------------------------------------------
BLOCK_V = 64  # output rows per program of the gather + GEMM kernel
BLOCK_U = 64  # rows per step of the weight-gradient kernel


def _gather_gemm(
    table: torch.Tensor,
    ell_col: torch.Tensor,
    ell_val: torch.Tensor,
    width: int,
    taps: int,
    w: torch.Tensor,
    wid: torch.Tensor | None,
    bias: torch.Tensor | None,
    n_rows: int,
    n_ident: int,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """``out (B, N, n_rows)``: one launch of ``_ell_gemm_kernel`` (see the module docstring).

    ``table`` ``(B, n_table_rows, M)`` float32 contiguous; ``w`` ``(N, taps M)`` and
    ``wid`` ``(N, M)`` contiguous in the dense dtype; ``bias`` ``(N,)`` float32.
    """
    gemm, _, triton = _kernels()
    batch, n_table_rows, m = table.shape
    n = w.shape[0]
    out = torch.empty((batch, n, n_rows), dtype=out_dtype, device=table.device)
    block_m, block_n = _block(m), _block(n)
    grid = (triton.cdiv(n_rows, BLOCK_V), triton.cdiv(n, block_n), batch)
    with _on_device(table.device):
        gemm[grid](
            table,
            ell_col,
            ell_val,
            w,
            wid if wid is not None else w,
            bias if bias is not None else w,
            out,
            n_rows,
            n_table_rows,
            n_ident,
            m,
            n,
            T=taps,
            K=width,
            HAS_ID=wid is not None,
            HAS_BIAS=bias is not None,
            BLOCK_V=BLOCK_V,
            BLOCK_M=block_m,
            BLOCK_N=block_n,
            PRECISION=_precision(),
            UPCAST=_interpreting(),
        )
    return out


def _on_device(device: torch.device) -> contextlib.AbstractContextManager:
    """``device`` made the current CUDA device for a launch (triton launches on the current one)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _num_programs(device: torch.device) -> int:
    """How many programs the weight-gradient kernel spreads its vertex tiles over: 8 per SM on CUDA (its gathers
    wait on memory, so several programs per SM hide the latency), 4 elsewhere (the interpreter). Not tuned on
    hardware yet."""
    if device.type == "cuda":
        return 8 * torch.cuda.get_device_properties(device).multi_processor_count
    return 4


def _weight_grad(
    x_table: torch.Tensor,
    g_table: torch.Tensor,
    ell_col: torch.Tensor,
    ell_val: torch.Tensor,
    width: int,
    taps: int,
    dense_dtype: torch.dtype,
) -> torch.Tensor:
    """``grad_w_op (O, C, taps)`` float32 of the operator taps (see ``_ell_weight_grad_kernel``)."""
    _, weight_grad, triton = _kernels()
    batch, n_rows, c = x_table.shape
    _, n_g_rows, o = g_table.shape
    block_c, block_o = _block(c), _block(o)
    n_tiles = triton.cdiv(n_rows, BLOCK_U)
    co_tiles = triton.cdiv(c, block_c) * triton.cdiv(o, block_o)
    n_split = max(1, min(n_tiles, _num_programs(x_table.device) // max(1, taps * co_tiles)))
    part = torch.empty((n_split, taps, c, o), dtype=torch.float32, device=x_table.device)
    with _on_device(x_table.device):
        weight_grad[(n_split, taps, co_tiles)](
            x_table,
            g_table,
            ell_col,
            ell_val,
            part,
            batch,
            n_rows,
            n_g_rows,
            c,
            o,
            n_tiles,
            n_split,
            T=taps,
            K=width,
            BLOCK_U=BLOCK_U,
            BLOCK_C=block_c,
            BLOCK_O=block_o,
            DOT_DTYPE=_tl_dtype(dense_dtype),
            PRECISION=_precision(),
            UPCAST=_interpreting(),
        )
    return part.sum(0).permute(2, 1, 0)  # [t, c, o] -> [o, c, t]


def mesh_conv_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, plan: KernelPlan
) -> torch.Tensor:
    """Forward pass of :func:`meshcnn.nn.mesh_conv` in one kernel launch.

    Parameters
    ----------
    x : (B, C, V_in) tensor, float32, float16 or bfloat16, non-empty
    weight : (O, C, T) tensor
    bias : (O,) tensor or None
    plan : KernelPlan
        Strategy ``"linear"``, bound to dtypes. Of its operator the CSR ``crow, col, val`` of ``S``
        ``(V_out T_op, V_in)`` are read; ``identity_tap``: whether ``weight[..., 0]`` multiplies
        ``x[..., :V_out]`` (not stored in ``S``); the dense dtype (float32, float16, bfloat16) is
        that of the dense products and the output.

    Returns
    -------
    Tensor
        ``y`` ``(B, O, V_out)`` in the dense dtype, ``y[b, o, v] = bias[o] + sum_{t, c} W[o, c, t] (S_t x[b, c])[v]``.
    """
    op, dense_dtype = plan.operator, plan.dense_dtype
    ell_col, ell_val, width = ell_table(op.crow, op.col, op.val)
    w_id, w_op, _ = split_weight(weight, plan.identity_tap, dense_dtype)
    table = vertex_major(x, torch.float32)  # (B, V_in, C), one copy
    bias32 = bias.to(torch.float32).contiguous() if bias is not None else None
    return _gather_gemm(
        table, ell_col, ell_val, width, op.taps, w_op.contiguous(), w_id, bias32, op.num_out, op.num_out, dense_dtype
    )


def mesh_conv_backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    plan: KernelPlan,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward pass of :func:`meshcnn.nn.mesh_conv`.

    ``grad_x[b, c, u] = sum_o W[o, c, 0] g[b, o, u] [u < V_out, identity tap]
    + sum_{t, o} W[o, c, t] (R g_b^T)[u T_op + t, o]`` (one ``_ell_gemm_kernel`` launch);
    ``grad_W[o, c, t] = sum_b (x_b (R g_b^T))[c, (t, o)]`` (``_ell_weight_grad_kernel``); the identity tap's
    weight gradient and the bias gradient are dense reductions in torch.

    Parameters
    ----------
    grad : (B, O, V_out) tensor
    x, weight, plan
        As in :func:`mesh_conv_forward`; of the operator the CSR ``crow_t, col_t, val_t`` of ``R`` are read.
    need_x, need_w, need_b : bool
        Which gradients to compute.

    Returns
    -------
    tuple of Tensor
        ``(grad_x, grad_weight, grad_bias)``, ``grad_x`` in ``x``'s dtype, the others in ``weight``'s; as in
        :func:`meshcnn.nn._kernels.bag_backward`, a gradient not needed is returned empty.
    """
    op, identity_tap, dense_dtype = plan.operator, plan.identity_tap, plan.dense_dtype
    num_in, num_out = x.shape[2], grad.shape[2]
    grad_x, grad_w, grad_b = x.new_empty(0), weight.new_empty(0), weight.new_empty(0)
    grad = grad.to(dense_dtype)
    if need_b:
        grad_b = bias_grad(grad, weight)
    if not (need_x or need_w):
        return grad_x, grad_w, grad_b
    ell_col, ell_val, width = ell_table(op.crow_t, op.col_t, op.val_t)
    w_id, _, w_op_t = split_weight(weight, identity_tap, dense_dtype)
    g_table = vertex_major(grad, torch.float32)  # (B, V_out, O), one copy
    if need_x:
        grad_x = _gather_gemm(
            g_table,
            ell_col,
            ell_val,
            width,
            op.taps,
            w_op_t.contiguous(),
            w_id.t().contiguous() if identity_tap else None,
            None,
            num_in,
            num_out,
            dense_dtype,
        ).to(x.dtype)
    if need_w:
        x_table = vertex_major(x, torch.float32)  # (B, V_in, C)
        grad_w_op = _weight_grad(x_table, g_table, ell_col, ell_val, width, op.taps, dense_dtype)
        grad_w = weight_grad(grad_w_op, grad, x, weight, identity_tap)
    return grad_x, grad_w, grad_b
