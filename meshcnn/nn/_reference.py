r"""The dense reference of the mesh convolution: the formula, one dense product per tap.

Private module; public as :func:`meshcnn.testing.mesh_conv_reference` (and
:func:`meshcnn.nn.mesh_conv_reference`). Every kernel test compares against it.
"""

from __future__ import annotations

import scipy.sparse as sp
import torch

from ._orientation import INVARIANT_EPS, check_orientation

__all__ = ["mesh_conv_reference"]


def mesh_conv_reference(
    x: torch.Tensor,
    operators: list[sp.spmatrix],
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    orientation: str = "fixed",
) -> torch.Tensor:
    r"""Straightforward dense mesh convolution (for tests).

    .. math:: y = \sum_t W_{:,:,t}\, (O_t x) + b

    for every orientation but ``"invariant"``, which gives
    :math:`y = W_0 O_0 x + W_1 O_1 x + b + \sqrt{|z|^2 + \epsilon^2} - \epsilon`,
    :math:`z = \sum_c (a_c + i b_c)(O_2 x_c + i O_3 x_c)`, ``(a, b) = weight[..., 2:]``,
    :math:`\epsilon` = :data:`~meshcnn.nn._orientation.INVARIANT_EPS`.

    Parameters
    ----------
    x : (B, C, V_in) tensor
    operators : list of T scipy sparse matrices, each ``(V_out, V_in)``
        The taps ``O_t``, identity included (restricted to the output vertices for
        stride 2, composed with the upsampling for a transposed convolution).
    weight : (O, C, T) tensor
    bias : (O,) tensor or None
    orientation : str
        Only ``"invariant"`` changes the formula.

    Returns
    -------
    Tensor
        ``(B, O, V_out)`` in ``x``'s dtype, differentiable in ``x``, ``weight`` and ``bias``.
    """
    taps = [
        torch.einsum("vw,bcw->bcv", torch.as_tensor(s.toarray(), dtype=x.dtype, device=x.device), x) for s in operators
    ]

    def mix(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oc,bcv->bov", w, t)

    if check_orientation(orientation) != "invariant":
        out = sum(mix(t, weight[..., i]) for i, t in enumerate(taps))
    else:
        a, b = weight[..., 2], weight[..., 3]
        re = mix(taps[2], a) - mix(taps[3], b)
        im = mix(taps[3], a) + mix(taps[2], b)
        out = (
            mix(taps[0], weight[..., 0])
            + mix(taps[1], weight[..., 1])
            + torch.sqrt(re**2 + im**2 + INVARIANT_EPS**2)
            - INVARIANT_EPS
        )
    return out if bias is None else out + bias.view(1, -1, 1)
