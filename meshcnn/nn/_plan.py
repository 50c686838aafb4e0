r"""The kernel plan of a mesh convolution: what one call of the kernels needs, as one object.

Private module. A :class:`KernelPlan` holds the :class:`~meshcnn.nn.TapOperator`, whether
``weight[..., 0]`` is an identity tap, the strategy (what the weight computes), the backend
(which kernels run it) and, per call, the compute dtypes of
:func:`~meshcnn.nn._kernels.compute_dtypes`. The kernels (:mod:`meshcnn.nn._kernels`,
:mod:`meshcnn.nn._triton_kernels`) and the passes of :mod:`meshcnn.nn._ops` take it whole;
it is flattened into tensors, ints, bools, strings and dtypes (:meth:`KernelPlan.tensors`,
:meth:`KernelPlan.sizes`) only where the custom operators are called, and rebuilt there by
:meth:`KernelPlan.from_flat`.

Strategies, for ``x`` ``(B, C, V_in)``, weight ``W`` ``(O, C, T)`` and the taps ``S_t``:

* ``"linear"``: :math:`y = \sum_t W_{:,:,t} S_t x + \beta` (every orientation but ``"invariant"``);
* ``"invariant"``: the last two taps are the tangent gradient :math:`(D_1, D_2)` and the last
  two weight slices a complex weight :math:`a + i b`,
  :math:`y = \sum_{t < T-2} W_{:,:,t} S_t x + \beta + \sqrt{|z|^2 + \epsilon^2} - \epsilon`,
  :math:`z = (a + i b)(D_1 + i D_2) x` summed over channels; computed in one pass of the
  kernel (:func:`~meshcnn.nn._kernels.invariant_forward`). It needs the adjoint ``S^T`` of
  the stacked operator (:func:`~meshcnn.nn._operator.adjoint_tensors`) in :attr:`KernelPlan.adjoint`.

Backends (:data:`BACKENDS`): ``"bag"``, the embedding-bag products of :mod:`meshcnn.nn._kernels`
(any device, any dtype, both strategies); ``"triton"``, the fused kernels of
:mod:`meshcnn.nn._triton_kernels` (CUDA, strategy ``"linear"``; a pass in float64, or with an
empty operand, still takes the bag products). :func:`choose_backend` picks one when a layer is
built or moved.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import torch

from ._kernels import compute_dtypes
from ._operator import TENSOR_FIELDS, TapOperator

__all__: list[str] = []

STRATEGIES = ("linear", "invariant")
BACKENDS = ("bag", "triton")


def choose_backend(device: torch.device | str, strategy: str = "linear", requested: str | None = None) -> str:
    """The backend of the kernels for a layer on ``device``.

    Parameters
    ----------
    device : torch.device or str
        Where the layer's operator lives.
    strategy : one of :data:`STRATEGIES`
    requested : one of :data:`BACKENDS`, or None
        None chooses: ``"triton"`` on a CUDA device for the ``"linear"`` strategy where triton
        is importable and the environment variable ``MESHCNN_TRITON`` is not ``0`` (read here,
        when the choice is made, not per call); ``"bag"`` otherwise. ``"bag"`` is always
        honoured. ``"triton"`` is honoured for the ``"linear"`` strategy on any device (on CPU
        tensors the kernels need triton's interpreter, ``TRITON_INTERPRET=1``: for tests).

    Returns
    -------
    str
        ``"bag"`` or ``"triton"``.

    Raises
    ------
    ValueError
        For an unknown backend or strategy, or ``"triton"`` requested for ``"invariant"``
        (which has bag kernels only).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if requested is not None:
        if requested not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS} or None, got {requested!r}")
        if requested == "triton" and strategy != "linear":
            raise ValueError(f"the {strategy!r} strategy has no Triton kernels: use backend 'bag' or None")
        return requested
    if torch.device(device).type != "cuda" or strategy != "linear":
        return "bag"
    if os.environ.get("MESHCNN_TRITON", "1") == "0":
        return "bag"
    from . import _triton_kernels

    return "triton" if _triton_kernels.available() else "bag"


@dataclasses.dataclass(frozen=True)
class KernelPlan:
    """One mesh convolution's kernel settings: operator, identity tap, strategy, backend, dtypes.

    Attributes
    ----------
    operator : TapOperator
        The stacked operator taps ``S`` ``(V_out T_op, V_in)`` and the stack of their transposes.
    identity_tap : bool
        Whether ``weight[..., 0]`` multiplies the identity on the first ``V_out`` vertices (not in
        ``operator``); the weight then has ``T_op + 1`` taps.
    strategy : one of :data:`STRATEGIES`
    backend : one of :data:`BACKENDS`
    adjoint : tuple of Tensor
        ``"invariant"``: the five tensors of :func:`~meshcnn.nn._operator.adjoint_tensors`;
        empty for ``"linear"``.
    sparse_dtype, dense_dtype : torch.dtype or None
        The dtypes of :func:`~meshcnn.nn._kernels.compute_dtypes` for the call's input, set by
        :meth:`for_input`; None in a plan not yet bound to an input.
    """

    operator: TapOperator
    identity_tap: bool = False
    strategy: str = "linear"
    backend: str = "bag"
    adjoint: tuple[torch.Tensor, ...] = ()
    sparse_dtype: torch.dtype | None = None
    dense_dtype: torch.dtype | None = None

    def for_input(self, x: torch.Tensor) -> KernelPlan:
        """This plan with the compute dtypes of input ``x`` (:func:`compute_dtypes`)."""
        sparse_dtype, dense_dtype = compute_dtypes(x)
        return dataclasses.replace(self, sparse_dtype=sparse_dtype, dense_dtype=dense_dtype)

    def runs_triton(self, *operands: torch.Tensor) -> bool:
        """Whether a pass with these operands runs the Triton kernels.

        True for backend ``"triton"``, a float32 sparse product (not float64), no empty operand
        and a dense dtype the kernels take on the operands' device
        (:func:`~meshcnn.nn._triton_kernels.usable`); else the pass takes the bag products.
        """
        if self.backend != "triton" or self.sparse_dtype != torch.float32:
            return False
        if any(t.numel() == 0 for t in operands):
            return False
        from . import _triton_kernels

        return _triton_kernels.usable(operands[0].device, self.dense_dtype)

    def tensors(self) -> list[torch.Tensor]:
        """The operator's ten tensors, then the adjoint's (``"invariant"``): the custom operators' list input."""
        return self.operator.tensors() + list(self.adjoint)

    def sizes(self) -> list[int]:
        """:meth:`TapOperator.sizes`: ``[V_out T, V_in, T, k]``."""
        return self.operator.sizes()

    def flat(self) -> tuple:
        """The plan as the custom operators take it.

        ``(tensors, sizes, identity_tap, strategy, backend, sparse_dtype, dense_dtype)``.
        """
        return (
            self.tensors(),
            self.sizes(),
            self.identity_tap,
            self.strategy,
            self.backend,
            self.sparse_dtype,
            self.dense_dtype,
        )

    @classmethod
    def from_flat(
        cls,
        tensors: Sequence[torch.Tensor],
        sizes: Sequence[int],
        identity_tap: bool,
        strategy: str,
        backend: str,
        sparse_dtype: torch.dtype,
        dense_dtype: torch.dtype,
    ) -> KernelPlan:
        """The plan whose :meth:`flat` is the arguments."""
        split = len(TENSOR_FIELDS)
        operator = TapOperator.from_tensors(tensors[:split], sizes)
        return cls(operator, identity_tap, strategy, backend, tuple(tensors[split:]), sparse_dtype, dense_dtype)
