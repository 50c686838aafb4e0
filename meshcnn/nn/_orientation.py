r"""Orientations of the MeshConv taps: which directional operators a layer uses.

Private module, re-exported by :mod:`meshcnn.nn`.
"""

from __future__ import annotations

import os

import scipy.sparse as sp
import torch

from ..geometry.mesh import Mesh, check_level, icosphere
from ..geometry.operators import poleward_sign

__all__ = ["ORIENTATIONS", "INVARIANT_EPS", "check_orientation", "orientation_taps", "hemisphere_flip"]

ORIENTATIONS = ("fixed", "poleward", "isotropic", "invariant")
INVARIANT_EPS = 1e-2


def check_orientation(orientation: str) -> str:
    """Return ``orientation`` if it is one of :data:`ORIENTATIONS`, else raise ``ValueError`` listing them."""
    if not isinstance(orientation, str) or orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {', '.join(map(repr, ORIENTATIONS))}, got {orientation!r}")
    return orientation


def orientation_taps(mesh: Mesh, num_out: int, orientation: str = "fixed") -> list[sp.csr_matrix]:
    r"""The sparse taps of a MeshConv of ``orientation``, restricted to the first ``num_out`` rows.

    Parameters
    ----------
    mesh : Mesh
    num_out : int
        Output vertices (``V_level`` or ``V_{level-1}`` for stride 2).
    orientation : one of :data:`ORIENTATIONS`

    Returns
    -------
    list of scipy.sparse.csr_matrix, each ``(num_out, V)``
        * ``"fixed"``: ``[I, L, D_ew, D_ns]`` (global east and north);
        * ``"poleward"``: ``[I, L, D_ew, sign(lat) D_ns]`` (:attr:`Mesh.grad_poleward`);
        * ``"isotropic"``: ``[I, L]``;
        * ``"invariant"``: ``[I, L, D_1, D_2]``, the vertex gradient on one tangent frame
          per vertex (:attr:`Mesh.grad_tangent`); the layer only uses it through the
          frame-free modulus :math:`|D_1 u + i D_2 u|`.
    """
    identity = sp.eye(num_out, mesh.num_vertices, format="csr")
    directional = {
        "fixed": (mesh.grad_ew, mesh.grad_ns),
        "poleward": (mesh.grad_ew, mesh.grad_poleward),
        "isotropic": (),
        "invariant": mesh.grad_tangent,
    }[check_orientation(orientation)]
    return [identity] + [m[:num_out] for m in (mesh.laplacian, *directional)]


def tap_operators(mesh: Mesh, num_out: int) -> list[sp.csr_matrix]:
    """The four taps ``[I, L, D_ew, D_ns]`` of ``mesh`` (orientation ``"fixed"``).

    Parameters
    ----------
    mesh : Mesh
    num_out : int
        Output vertices: the taps keep their first ``num_out`` rows.

    Returns
    -------
    list of scipy.sparse.csr_matrix, each ``(num_out, V)``
    """
    return orientation_taps(mesh, num_out, "fixed")


def hemisphere_flip(
    fields: torch.Tensor,
    level: int | Mesh,
    channels: list[int] | tuple[int, ...],
    mesh_dir: str | os.PathLike | None = None,
) -> torch.Tensor:
    r"""Multiply the northward vector components among ``fields`` by ``sign(latitude)``.

    The input transform that goes with ``orientation="poleward"``: with northward wind
    components (``V850``, ``VBOT``) replaced by poleward ones, a southern-hemisphere
    cyclone (clockwise) becomes the mirror image across the equator of a northern one
    (counter-clockwise) in every channel, and a poleward MeshConv, which is equivariant
    to that mirror, responds to both alike. Scalars and eastward components are left
    as they are. The transform is its own inverse away from the equator (where it gives 0).

    Parameters
    ----------
    fields : (..., C, V) tensor on the icosphere of ``level`` (or on the mesh ``level``)
    level : int or Mesh
    channels : list of int
        Indices of the northward components along the channel axis (``-2``).
    mesh_dir : path, optional
        Where meshes are cached.

    Returns
    -------
    Tensor
        A new tensor, ``fields`` with ``fields[..., c, :] * sign(lat)`` for each ``c`` in ``channels``.
    """
    mesh = level if isinstance(level, Mesh) else icosphere(check_level(level), mesh_dir)
    if not isinstance(fields, torch.Tensor) or fields.dim() < 2 or fields.shape[-1] != mesh.num_vertices:
        shape = tuple(fields.shape) if isinstance(fields, torch.Tensor) else type(fields).__name__
        raise ValueError(
            f"hemisphere_flip: expected a (..., C, {mesh.num_vertices}) tensor for {mesh.describe()}, got {shape}"
        )
    num_channels = fields.shape[-2]
    index = [int(c) for c in channels]
    if any(not -num_channels <= c < num_channels for c in index):
        raise ValueError(f"hemisphere_flip: channels {index} out of range for {num_channels} channels")
    sign = torch.as_tensor(poleward_sign(mesh.vertices), dtype=fields.dtype, device=fields.device)
    out = fields.clone()
    out[..., index, :] = fields[..., index, :] * sign
    return out
