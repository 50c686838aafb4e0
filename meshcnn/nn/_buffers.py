"""Constant buffers: tensors that are functions of the mesh level only (operators, rings, weights).

Private module. A module keeps them as non-persistent buffers (not in ``state_dict()``,
moved by ``.to()``), re-derived from CPU masters after every ``_apply``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._operator import ADJOINT_FIELDS, TENSOR_FIELDS, TapOperator

__all__: list[str] = []


def ambient_device() -> torch.device:
    """The device factory functions use here: ``meta`` under ``with torch.device("meta"):``."""
    return torch.empty(0).device


class ConstantBuffers(nn.Module):
    """A module whose non-persistent buffers are constants, kept exact through dtype and device changes.

    :meth:`register_constant` keeps a CPU master of each buffer (float64 for floating
    tensors; an integer master is the tensor itself, so shared indices stay shared on
    the CPU). After every ``_apply`` (``.to()``, ``.double()``, ``.half()``,
    ``.to_empty()``) each buffer is set again from its master on the buffer's new device,
    so ``.float().double()`` gives exact float64 values, ``.to_empty()`` (meta-device
    workflows) gives those of a freshly built module, and floating values never go below
    float32 (the sparse product runs in float32 for half-precision input).
    """

    def register_constant(self, name: str, tensor: torch.Tensor) -> None:
        """Register ``tensor`` as the non-persistent buffer ``name``, with a CPU master.

        Parameters
        ----------
        name : str
            The buffer's name.
        tensor : Tensor
            Its value; registered on the ambient device (:func:`ambient_device`),
            floats in the default dtype.
        """
        masters = self.__dict__.setdefault("_constant_masters", {})
        if tensor.is_floating_point():
            masters[name] = tensor.detach().to("cpu", torch.float64, copy=True)
            tensor = masters[name].to(torch.get_default_dtype())
        else:
            masters[name] = tensor
        self.register_buffer(name, tensor.to(ambient_device()), persistent=False)

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        super()._apply(fn, recurse)
        for name, master in self.__dict__.get("_constant_masters", {}).items():
            current = getattr(self, name)
            dtype = master.dtype
            if master.is_floating_point():
                dtype = current.dtype if current.dtype in (torch.float32, torch.float64) else torch.float32
            setattr(self, name, master.to(device=current.device, dtype=dtype))
        return self


class OperatorBuffers(ConstantBuffers):
    """The tensors of one :class:`~meshcnn.nn.TapOperator` as constant buffers, named as its fields.

    With ``adjoint``, the five tensors of its adjoint ``S^T``
    (:func:`~meshcnn.nn._operator.adjoint_tensors`, named ``ADJOINT_FIELDS``), which the
    ``"invariant"`` strategy's backward reads, are buffers too.
    """

    def __init__(self, op: TapOperator, adjoint: list[torch.Tensor] | None = None) -> None:
        super().__init__()
        for name, tensor in zip(TENSOR_FIELDS, op.tensors()):
            self.register_constant(name, tensor)
        for name, tensor in zip(ADJOINT_FIELDS, adjoint or ()):
            self.register_constant(name, tensor)
        self.sizes = op.sizes()
        self.has_adjoint = adjoint is not None

    def operator(self) -> TapOperator:
        """The operator, on the buffers' device and dtype."""
        return TapOperator.from_tensors([getattr(self, name) for name in TENSOR_FIELDS], self.sizes)

    def adjoint(self) -> tuple[torch.Tensor, ...]:
        """The adjoint's five tensors (``ADJOINT_FIELDS``) on the buffers' device; empty without ``adjoint``."""
        return tuple(getattr(self, name) for name in ADJOINT_FIELDS) if self.has_adjoint else ()
