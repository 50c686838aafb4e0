r"""Neural network layers on the icosphere.

Tensor layout is ``(batch, channels, V)`` like :class:`torch.nn.Conv1d`, with
``V = 10 * 4**level + 2`` the vertex count of the layer's level.
"""
from __future__ import annotations

import math
import os

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .functional import TapOperator, block_samples_for, mesh_conv, tap_operator
from .mesh import Mesh, check_level, icosphere, level_of, num_vertices_at

__all__ = ["MeshConv", "MeshConvTranspose", "MeshPool", "check_signal", "TAPS"]

TAPS = ("identity", "laplacian", "ew", "ns")


def check_signal(x: torch.Tensor, channels: int | None, level: int, who: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating ``(B, channels, V_level)`` tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{who}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"{who}: expected input of shape (batch, channels, vertices), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{who}: expected a floating-point input, got dtype {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{who}: expected {channels} input channels, got {x.shape[1]}")
    expected = num_vertices_at(level)
    if x.shape[-1] != expected:
        given = x.shape[-1]
        other = level_of(given)
        hint = f" (that is the vertex count of level {other})" if other is not None else " (no icosphere level has that many)"
        raise ValueError(
            f"{who}: input is on level {level}, which has V={expected} vertices, but got V={given}{hint}"
        )


def tap_operators(mesh: Mesh, num_out: int) -> list[sp.csr_matrix]:
    """The four taps ``[I, L, D_ew, D_ns]`` of ``mesh``, restricted to the first ``num_out`` rows."""
    identity = sp.eye(num_out, mesh.num_vertices, format="csr")
    return [identity] + [m[:num_out] for m in (mesh.laplacian, mesh.grad_ew, mesh.grad_ns)]


class _TapConv(nn.Module):
    """Shared machinery: a learned combination of fixed sparse taps, ``(B, C, V_in) -> (B, O, V_out)``."""

    weight: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, in_level: int, out_level: int,
                 taps: list[sp.spmatrix], bias: bool, identity_tap: bool = False) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_level, self.out_level = in_level, out_level
        # vertex-major stacking (row v * T + t), the layout mesh_conv wants; an identity
        # first tap is not stored but applied to the input directly (identity_tap)
        # k samples per bag kernel, from the larger of the forward and backward tables
        v_out, v_in = taps[0].shape
        block_samples = block_samples_for(max(v_in * in_channels, v_out * out_channels))
        op = tap_operator(taps, torch.float64, block_samples)
        self.identity_tap = identity_tap
        self._exact: dict[str, torch.Tensor] = {}
        for field in ("crow", "col", "val", "crow_t", "col_t", "val_t", "block_crow", "block_col", "block_crow_t",
                      "block_col_t"):
            self._register_operator(f"op_{field}", getattr(op, field))
        self._op_shape, self._op_taps, self._block_samples = op.shape, op.taps, op.block_samples
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, len(taps) + int(identity_tap)))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def _register_operator(self, name: str, tensor: torch.Tensor) -> None:
        """Register a non-persistent operator buffer, keeping a float64 master of float ones.

        Floating operator values are stored in the default dtype, but every dtype or
        device change (``.double()``, ``.half()``, ``.to(...)``) re-derives them from the
        float64 master, so ``.float().double()`` gives exact float64 operators again.
        """
        if tensor.is_floating_point():
            self._exact[name] = tensor.detach().to(torch.float64, copy=True)
            tensor = tensor.to(torch.get_default_dtype())
        self.register_buffer(name, tensor, persistent=False)

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        super()._apply(fn, recurse)
        for name, exact in self._exact.items():
            current = getattr(self, name)
            # operator values never go below float32 (the sparse product runs in float32
            # for half/bfloat16 input, see meshcnn.functional)
            dtype = current.dtype if current.dtype in (torch.float32, torch.float64) else torch.float32
            setattr(self, name, exact.to(device=current.device, dtype=dtype))
        return self

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[1] * self.weight.shape[2])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def operator(self) -> TapOperator:
        """The stacked tap operator ``(V_out T, V_in)`` (vertex-major, see
        :func:`meshcnn.functional.tap_operator`) and the stack of the transposed taps;
        without the identity tap when :attr:`identity_tap` is set."""
        return TapOperator(self.op_crow, self.op_col, self.op_val, self.op_crow_t, self.op_col_t, self.op_val_t,
                           self._op_shape, self._op_taps, self.op_block_crow, self.op_block_col,
                           self.op_block_crow_t, self.op_block_col_t, self._block_samples)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_signal(x, self.in_channels, self.in_level, type(self).__name__)
        return mesh_conv(x, self.operator, self.weight, self.bias, identity_tap=self.identity_tap)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, level {self.in_level} -> {self.out_level}, "
                f"bias={self.bias is not None}")


class MeshConv(_TapConv):
    r"""Convolution as a learned differential operator on the icosphere of ``level``.

    .. math::
        y = W_{:,:,0}\, x + W_{:,:,1}\, (L x) + W_{:,:,2}\, (D_{ew} x) + W_{:,:,3}\, (D_{ns} x) + b

    with ``L``, ``D_ew``, ``D_ns`` the dimension-free taps of :class:`meshcnn.Mesh`
    (``laplacian``, ``grad_ew``, ``grad_ns``), applied per channel.

    Parameters
    ----------
    in_channels, out_channels : int
    level : int
        Level of the input, 0..9.
    stride : 1 or 2
        With 2 the output lives on ``level - 1``: the same formula evaluated only
        at the first ``V_{level-1}`` vertices (the coarse ones).
    bias : bool

    Shapes: input ``(B, in_channels, V_level)``, output ``(B, out_channels, V_out)``.
    ``weight`` is ``(out_channels, in_channels, 4)`` ordered ``[identity, laplacian, ew, ns]``.
    The operators are non-persistent buffers, rebuilt from ``level``: they move with
    ``.to()``/``.double()`` but are not in ``state_dict()``.

    Computation (:func:`meshcnn.functional.mesh_conv`): the three differential taps
    are one vertex-major stacked sparse operator applied per sample as a weighted
    ``embedding_bag`` (every row has at most 7 non-zeros, the closed 1-ring), then
    one GEMM with the ``(out, 3 in)`` weight; the identity tap is a GEMM on ``x``
    itself. The backward pass applies the precomputed stack of transposed taps.
    Where a sample's table is small (``V_in * in_channels <= 2**18``), chunks of ``k``
    samples share one bag kernel through precomputed int32 block-diagonal indices
    (:func:`meshcnn.functional.block_samples_for`; at level 5 with 16 channels, ``k = 8``
    and 7.5 MB of indices per direction, shared by the layers with the same operator).

    Precision: float64 input runs entirely in float64. Under :func:`torch.autocast`
    (bfloat16 on CPU, float16/bfloat16 on CUDA) and for half-precision input, **the
    sparse product runs in float32** (the taps are differences of nearly equal
    neighbour values, which a 8- or 11-bit mantissa would wipe out) and only the
    dense products run in the autocast dtype; the output has the autocast dtype and
    the input gradient the input's dtype. The operator values stay in float32 even
    after ``.half()``/``.bfloat16()``.
    """

    def __init__(self, in_channels: int, out_channels: int, level: int, stride: int = 1, bias: bool = True,
                 mesh_dir: str | os.PathLike | None = None) -> None:
        level = check_level(level)
        if stride not in (1, 2) or isinstance(stride, bool):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        if stride == 2 and level == 0:
            raise ValueError("stride=2 needs level >= 1 (there is no level below 0)")
        out_level = level - 1 if stride == 2 else level
        mesh = icosphere(level, mesh_dir)
        super().__init__(in_channels, out_channels, level, out_level,
                         tap_operators(mesh, num_vertices_at(out_level))[1:], bias, identity_tap=True)
        self.level, self.stride = level, stride


class MeshConvTranspose(_TapConv):
    r"""Upsampling convolution, ``level - 1 -> level``.

    .. math:: y = \mathrm{MeshConv}_{level}(U x)

    where ``U`` is :attr:`Mesh.upsample` (each new vertex takes the mean of the
    two ends of the edge it splits). ``U`` is folded into the stacked operator,
    so it is still one sparse product and one dense product.

    Shapes: input ``(B, in_channels, V_{level-1})``, output ``(B, out_channels, V_level)``.
    """

    def __init__(self, in_channels: int, out_channels: int, level: int, bias: bool = True,
                 mesh_dir: str | os.PathLike | None = None) -> None:
        level = check_level(level)
        if level == 0:
            raise ValueError("MeshConvTranspose needs level >= 1: its input lives on level - 1")
        mesh = icosphere(level, mesh_dir)
        taps = [t @ mesh.upsample for t in tap_operators(mesh, mesh.num_vertices)]
        super().__init__(in_channels, out_channels, level - 1, level, taps, bias)
        self.level = level


class MeshPool(nn.Module):
    r"""Pooling from ``level`` to ``level - 1``.

    Coarse vertex ``i`` (one of the first ``V_{level-1}``) pools over its closed
    1-ring on ``level`` (itself and its 5 or 6 neighbours):

    * ``"mean"``: :math:`y_i = \frac{1}{|R_i|}\sum_{j \in R_i} x_j`;
    * ``"max"``: :math:`y_i = \max_{j \in R_i} x_j`;
    * ``"drop"``: :math:`y_i = x_i` (subsampling).

    Shapes: ``(B, C, V_level) -> (B, C, V_{level-1})``.
    """

    def __init__(self, level: int, mode: str = "mean", mesh_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        level = check_level(level)
        if level == 0:
            raise ValueError("MeshPool needs level >= 1: its output lives on level - 1")
        if mode not in ("mean", "max", "drop"):
            raise ValueError(f"mode must be 'mean', 'max' or 'drop', got {mode!r}")
        self.level, self.mode = level, mode
        num_out = num_vertices_at(level - 1)
        if mode != "drop":
            neighbors = icosphere(level, mesh_dir).neighbors[:num_out]
            self_index = np.arange(num_out)[:, None]
            ring = np.concatenate([self_index, np.where(neighbors < 0, self_index, neighbors)], axis=1)
            valid = np.concatenate([np.ones((num_out, 1), bool), neighbors >= 0], axis=1)
            self.register_buffer("ring", torch.from_numpy(ring), persistent=False)
            # mask and count rather than float weights: exact in every dtype
            self.register_buffer("ring_valid", torch.from_numpy(valid), persistent=False)
            self.register_buffer("ring_size", torch.from_numpy(valid.sum(1)), persistent=False)
        self.num_out = num_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_signal(x, None, self.level, "MeshPool")
        if self.mode == "drop":
            return x[..., : self.num_out]
        gathered = x[..., self.ring]  # (B, C, V_out, 7)
        if self.mode == "max":
            return gathered.amax(dim=-1)
        return (gathered * self.ring_valid).sum(dim=-1) / self.ring_size

    def extra_repr(self) -> str:
        return f"level {self.level} -> {self.level - 1}, mode={self.mode!r}"
