"""Test helpers for code built on meshcnn: the dense MeshConv reference and an equivariance check.

* :func:`mesh_conv_reference`: the mesh convolution written as its formula, one dense
  product per tap, for every orientation, stride and transposed convolution
  (:func:`layer_taps` gives a layer's taps);
* :func:`assert_equivariant`: ``f(g x) == g f(x)`` (or ``f(x)``) for a rotation or a
  reflection ``g`` of the icosphere, acting on signals as a vertex permutation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from .geometry.mesh import level_of
from .geometry.rotations import vertex_permutation
from .nn import mesh_conv_reference, orientation_taps
from .nn.layers import MeshConvTranspose

__all__ = [
    "mesh_conv_reference",
    "layer_taps",
    "reference_output",
    "move_signal",
    "equivariance_error",
    "assert_equivariant",
]


def layer_taps(layer: torch.nn.Module) -> list[sp.csr_matrix]:
    """The taps ``O_t`` of a :class:`~meshcnn.MeshConv` or :class:`~meshcnn.MeshConvTranspose`.

    Parameters
    ----------
    layer : MeshConv or MeshConvTranspose

    Returns
    -------
    list of scipy.sparse.csr_matrix, each ``(V_out, V_in)``
        :func:`~meshcnn.nn.orientation_taps` of the layer's level and orientation, identity
        included: rows restricted to the coarse vertices for stride 2 (composed with the
        restriction on a hierarchy that is not nested), composed with the prolongation
        (:attr:`Mesh.upsample <meshcnn.Mesh.upsample>` on the icosphere) for a transposed convolution.
    """
    hierarchy = layer.hierarchy
    fine, num_out = hierarchy[0], layer.out_mesh.num_vertices
    if isinstance(layer, MeshConvTranspose):
        return [
            sp.csr_matrix(t @ hierarchy.prolongations[0])
            for t in orientation_taps(fine, fine.num_vertices, layer.orientation)
        ]
    if layer.out_mesh is fine or hierarchy.nested:
        return orientation_taps(fine, num_out, layer.orientation)
    return [
        sp.csr_matrix(hierarchy.restrictions[0] @ t)
        for t in orientation_taps(fine, fine.num_vertices, layer.orientation)
    ]


def reference_output(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """:func:`mesh_conv_reference` with the taps, weight, bias and orientation of ``layer``.

    Parameters
    ----------
    layer : torch.nn.Module
        A MeshConv layer (:func:`layer_taps` gives its taps).
    x : (B, C, V_in) tensor

    Returns
    -------
    Tensor
        The reference output, computed in ``x``'s dtype.
    """
    bias = None if layer.bias is None else layer.bias.to(x.dtype)
    return mesh_conv_reference(x, layer_taps(layer), layer.weight.to(x.dtype), bias, layer.orientation)


def move_signal(x: torch.Tensor, transform: np.ndarray) -> torch.Tensor:
    """The signal ``x`` ``(..., V)`` moved by ``transform``: ``out[..., perm] = x``.

    Parameters
    ----------
    x : (..., V) tensor on the icosphere of some level
    transform : (3, 3) array or (V,) integer array
        An orthogonal matrix that maps the icosphere onto itself (a rotation or a
        reflection), or its vertex permutation ``perm`` on this level
        (:func:`~meshcnn.geometry.vertex_permutation`: vertex ``i`` goes to ``perm[i]``).

    Returns
    -------
    Tensor
        A new tensor of ``x``'s shape.
    """
    transform = np.asarray(transform)
    if transform.shape == (3, 3):
        level = level_of(x.shape[-1])
        if level is None:
            raise ValueError(f"move_signal: V={x.shape[-1]} is no icosphere level's vertex count")
        transform = vertex_permutation(level, transform)
    if transform.shape != (x.shape[-1],):
        raise ValueError(f"move_signal: a permutation of {transform.shape[0]} vertices for V={x.shape[-1]}")
    out = torch.empty_like(x)
    out[..., torch.from_numpy(transform).to(x.device)] = x
    return out


def equivariance_error(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, transform: np.ndarray, invariant: bool = False
) -> float:
    """``|f(g x) - g f(x)| / |f(x)|`` (Frobenius norms); with ``invariant``, ``|f(g x) - f(x)| / |f(x)|``.

    Parameters
    ----------
    fn : callable
        ``f``, ``(B, C, V_in) -> (B, O, V_out)`` (or any output, with ``invariant=True``).
    x : (B, C, V_in) tensor
    transform : (3, 3) array or (V_in,) integer array
        ``g``, as in :func:`move_signal`; a permutation only where input and output
        live on the same level (a matrix otherwise).
    invariant : bool, default False
        Compare ``f(g x)`` with ``f(x)`` instead of ``g f(x)``.

    Returns
    -------
    float
        The relative error, computed without gradients.
    """
    with torch.no_grad():
        y = fn(x)
        moved = fn(move_signal(x, transform))
        want = y if invariant else move_signal(y, transform)
    return float((moved - want).norm() / want.norm())


def assert_equivariant(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    transform: np.ndarray,
    *,
    tol: float = 1e-12,
    invariant: bool = False,
) -> None:
    """Raise ``AssertionError`` unless :func:`equivariance_error` is at most ``tol``.

    Parameters
    ----------
    fn : callable
        ``(B, C, V_in) -> (B, O, V_out)`` (or any output, with ``invariant=True``).
    x : (B, C, V_in) tensor
    transform : (3, 3) array or (V_in,) integer array
        See :func:`move_signal`.
    tol : float
        Largest relative error accepted.
    invariant : bool
        Compare ``f(g x)`` with ``f(x)`` instead of ``g f(x)``.
    """
    err = equivariance_error(fn, x, transform, invariant)
    if not err <= tol:
        kind = "invariant" if invariant else "equivariant"
        raise AssertionError(f"not {kind}: relative error {err:.3e} > {tol:.1e}")
