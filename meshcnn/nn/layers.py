r"""Neural network layers on sphere meshes: the icosphere, or any :class:`~meshcnn.geometry.Mesh`.

Tensor layout is ``(batch, channels, V)`` like :class:`torch.nn.Conv1d`, with ``V`` the
vertex count of the layer's mesh (``10 * 4**level + 2`` on the icosphere of ``level``).
A layer takes its mesh as an icosphere ``level``, or as ``mesh=``: a :class:`Mesh` (any
grid, e.g. :meth:`Mesh.from_points`) or, for the layers that change resolution, a
:class:`~meshcnn.geometry.MeshHierarchy` ``h`` (they go between ``h[0]`` and ``h[1]``).
"""

from __future__ import annotations

import math
import os

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..geometry.hierarchy import MeshHierarchy
from ..geometry.mesh import Mesh, check_level, level_of, num_vertices_at
from ._buffers import ConstantBuffers, OperatorBuffers
from ._operator import adjoint_tensors
from ._ops import run_mesh_conv
from ._orientation import (
    INVARIANT_EPS,
    ORIENTATIONS,
    check_orientation,
    hemisphere_flip,
    orientation_taps,
)
from ._plan import KernelPlan, choose_backend
from .functional import TapOperator, block_samples_for, tap_operator

__all__ = [
    "MeshConv",
    "MeshConvTranspose",
    "MeshPool",
    "check_signal",
    "check_orientation",
    "orientation_taps",
    "hemisphere_flip",
    "ORIENTATIONS",
    "INVARIANT_EPS",
    "resolve_meshes",
]


def resolve_meshes(
    level: int | Mesh | MeshHierarchy | None,
    mesh: Mesh | MeshHierarchy | None,
    mesh_dir: str | os.PathLike | None,
    who: str,
    coarse: bool,
) -> MeshHierarchy:
    """The meshes of a layer as a hierarchy: ``h[0]`` the fine mesh, ``h[1]`` the coarse one if ``coarse``.

    Parameters
    ----------
    level : int, Mesh, MeshHierarchy or None
        An icosphere level (0..9; 1..9 when ``coarse``), or a mesh given positionally.
    mesh : Mesh, MeshHierarchy or None
        The mesh, keyword form; exactly one of ``level`` and ``mesh``.
    mesh_dir : path, optional
        Where icosphere meshes are cached.
    who : str
        Name that starts the error messages.
    coarse : bool
        Whether the layer also needs the next coarser mesh (stride 2, pooling, transposed).

    Returns
    -------
    MeshHierarchy
        For a level ``l``: :meth:`MeshHierarchy.icosphere` ``(l, l - 1)`` (or ``(l, l)``); an
        icosphere :class:`Mesh` is taken as its level; any other Mesh is a one-mesh hierarchy,
        refused when ``coarse`` (which needs a :class:`MeshHierarchy` to know the coarse mesh).
    """
    if (level is None) == (mesh is None):
        raise ValueError(f"{who}: give an icosphere level or mesh= (a Mesh or MeshHierarchy), exactly one of them")
    given = mesh if level is None else level
    if isinstance(given, MeshHierarchy):
        if coarse and len(given) < 2:
            raise ValueError(f"{who}: needs a hierarchy of at least two meshes, got {given!r}")
        return given[:2] if coarse else given[:1]
    if isinstance(given, Mesh):
        if not coarse:
            return MeshHierarchy(
                [given], nested=given.is_icosphere, name="icosphere" if given.is_icosphere else given.name
            )
        if not given.is_icosphere:
            raise ValueError(
                f"{who}: going to a coarser mesh needs mesh=MeshHierarchy([...]): a single "
                f"Mesh ({given.describe()}) does not say which mesh is coarser"
            )
        given = given.level
    if isinstance(given, bool) or not isinstance(given, (int, np.integer)):
        raise ValueError(f"{who}: expected an icosphere level, a Mesh or a MeshHierarchy, got {type(given).__name__}")
    given = check_level(given)
    if coarse and given == 0:
        raise ValueError(f"{who} needs level >= 1 (its coarse side lives on level - 1; there is no level below 0)")
    return MeshHierarchy.icosphere(given, given - 1 if coarse else given, mesh_dir)


def check_signal(x: torch.Tensor, channels: int | None, mesh: int | Mesh, who: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating ``(B, channels, V)`` tensor on ``mesh``.

    Parameters
    ----------
    x : Tensor
        The signal to check.
    channels : int or None
        Expected channels; None accepts any number.
    mesh : int or Mesh
        The mesh (or icosphere level) whose vertex count ``V`` ``x`` must have.
    who : str
        Name that starts the error message.

    Raises
    ------
    ValueError
        If ``x`` is not a tensor, not 3-D, not floating, has another channel count, or
        another vertex count (the message names the mesh, and the icosphere level of the
        given count, if any).
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{who}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"{who}: expected input of shape (batch, channels, vertices), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{who}: expected a floating-point input, got dtype {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{who}: expected {channels} input channels, got {x.shape[1]}")
    if isinstance(mesh, Mesh):
        expected, where = mesh.num_vertices, mesh.describe()
    else:
        expected, where = num_vertices_at(mesh), f"level {mesh}"
    if x.shape[-1] != expected:
        given = x.shape[-1]
        other = level_of(given)
        hint = (
            f" (that is the vertex count of level {other})"
            if other is not None
            else " (no icosphere level has that many)"
        )
        raise ValueError(f"{who}: input is on {where}, which has V={expected} vertices, but got V={given}{hint}")


def _check_input_dtype(x: torch.Tensor, weight: torch.Tensor, who: str) -> None:
    """Raise ``ValueError`` naming both dtypes where :class:`torch.nn.Conv1d` would refuse ``x``.

    Accepted: ``x`` of the weight's dtype; half/bfloat16 ``x`` (the sparse product runs in
    float32, see :class:`MeshConv`); and under :func:`torch.autocast` on ``x``'s device any
    mix without float64 (autocast chooses the dense dtype). Refused: any other mix, such as
    float64 input to a float32 layer, which would silently compute in one of the two.
    """
    if x.dtype == weight.dtype or x.dtype in (torch.float16, torch.bfloat16):
        return
    if torch.float64 not in (x.dtype, weight.dtype):
        try:  # as in meshcnn.nn.functional.compute_dtypes: device types autocast does not know raise
            if torch.is_autocast_enabled(x.device.type):
                return
        except RuntimeError:
            pass
    raise ValueError(
        f"{who}: input dtype {x.dtype} does not match the layer's dtype {weight.dtype} "
        f"(convert one of them, e.g. layer.to({x.dtype}) or x.to({weight.dtype}))"
    )


class _TapConv(nn.Module):
    """Shared machinery: a learned combination of fixed sparse taps, ``(B, C, V_in) -> (B, O, V_out)``.

    ``taps`` are the operator taps (without the identity when ``identity_tap``); the
    weight has one slice per tap, the identity included. The operator is the submodule
    ``op`` (:class:`~meshcnn.nn._buffers.OperatorBuffers`: non-persistent buffers, exact
    through ``.to()``/``.double()``/``.half()``/``.to_empty()``), all taps in one stack.
    With ``orientation="invariant"`` the taps are ``[(I,) L, D_1, D_2]`` and the weight
    ``[identity, laplacian, a, b]``, run by the ``"invariant"`` strategy of
    :class:`~meshcnn.nn._plan.KernelPlan` (the modulus in the same pass); ``op`` then also
    holds the adjoint of the stack.

    The kernel backend (:func:`~meshcnn.nn._plan.choose_backend`) is chosen when the layer
    is built and again whenever it is moved (``.to()``, ``.cuda()``, ``.to_empty()``, ...),
    not per call; :meth:`set_kernel_backend` overrides it.
    """

    weight: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hierarchy: MeshHierarchy,
        in_mesh: Mesh,
        out_mesh: Mesh,
        taps: list[sp.spmatrix],
        bias: bool,
        identity_tap: bool = False,
        orientation: str = "fixed",
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hierarchy = hierarchy  # immutable and shared: not copied by deepcopy, not in state_dict()
        self.in_mesh, self.out_mesh = in_mesh, out_mesh
        self.in_level, self.out_level = in_mesh.level, out_mesh.level
        self.orientation = check_orientation(orientation)
        self.identity_tap = identity_tap
        self.strategy = "invariant" if orientation == "invariant" else "linear"
        self.op = self._operator_buffers(taps)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, len(taps) + int(identity_tap)))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._requested_backend: str | None = None
        self.kernel_backend = choose_backend(self.weight.device, self.strategy)
        self.reset_parameters()

    def _operator_buffers(self, taps: list[sp.spmatrix]) -> OperatorBuffers:
        """The float64 :class:`TapOperator` of ``taps`` as buffers (with the adjoint for ``"invariant"``);
        ``k`` samples per bag kernel from the larger of the forward and backward tables."""
        v_out, v_in = taps[0].shape
        block_samples = block_samples_for(max(v_in * self.in_channels, v_out * self.out_channels))
        with torch.device("cpu"):  # the masters (and the shared block indices) live on the CPU
            op = tap_operator(taps, torch.float64, block_samples)
            adjoint = adjoint_tensors(op) if self.strategy == "invariant" else None
        return OperatorBuffers(op, adjoint)  # the buffers on the ambient device

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[1] * self.weight.shape[2])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def set_kernel_backend(self, backend: str | None) -> None:
        """Override the kernel backend: ``"bag"``, ``"triton"``, or None to choose automatically.

        The choice is kept across moves. Automatic (the default): ``"triton"`` for a layer on a
        CUDA device whose strategy is ``"linear"`` (every orientation but ``"invariant"``), where
        triton is importable and ``MESHCNN_TRITON`` was not ``0`` when the layer was built or
        last moved; ``"bag"`` otherwise (:func:`~meshcnn.nn._plan.choose_backend`). For a whole
        model: ``for m in model.modules(): getattr(m, "set_kernel_backend", lambda b: None)("bag")``.

        Parameters
        ----------
        backend : {"bag", "triton"} or None

        Raises
        ------
        ValueError
            For another value, or ``"triton"`` on an ``"invariant"`` layer.
        """
        self.kernel_backend = choose_backend(self.weight.device, self.strategy, backend)
        self._requested_backend = backend

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        super()._apply(fn, recurse)
        self.kernel_backend = choose_backend(self.weight.device, self.strategy, self._requested_backend)
        return self

    @property
    def operator(self) -> TapOperator:
        """The stacked tap operator ``(V_out T, V_in)`` (vertex-major, see
        :func:`meshcnn.nn.tap_operator`) and the stack of the transposed taps;
        without the identity tap when :attr:`identity_tap` is set."""
        return self.op.operator()

    @property
    def plan(self) -> KernelPlan:
        """The :class:`~meshcnn.nn._plan.KernelPlan` of :meth:`forward` (not yet bound to an input's dtypes)."""
        return KernelPlan(self.op.operator(), self.identity_tap, self.strategy, self.kernel_backend, self.op.adjoint())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_signal(x, self.in_channels, self.in_mesh, type(self).__name__)
        _check_input_dtype(x, self.weight, type(self).__name__)
        return run_mesh_conv(x, self.weight, self.bias, self.plan)

    def signature(self) -> torch.Tensor:
        """``(3,)`` int64: the icosphere level (-1 off the icosphere), the index of the orientation in
        :data:`ORIENTATIONS` and the first 60 bits of the hierarchy's fingerprint (0 on the icosphere).

        Stored in ``state_dict()`` as ``"mesh_signature"``, a tensor like the weights (so that the
        state dict is tensors only and ``safetensors`` can hold it), and compared on load, so that
        weights are not loaded onto another level, orientation or mesh. The meshes themselves are
        not stored.
        """
        mesh = 0 if self.hierarchy.is_icosphere else int(self.hierarchy.fingerprint[:15], 16)
        level = -1 if self.level is None else self.level
        return torch.tensor([level, ORIENTATIONS.index(self.orientation), mesh], dtype=torch.int64, device="cpu")

    def _describe_signature(self, signature: list[int]) -> str:
        level, orientation, mesh = signature
        where = f"level {level}" if mesh == 0 else f"the mesh with fingerprint {mesh:015x}..."
        name = ORIENTATIONS[orientation] if 0 <= orientation < len(ORIENTATIONS) else f"#{orientation}"
        return f"{where} with orientation {name!r}"

    def _check_signature(self, signature: list[int]) -> None:
        own = self.signature().tolist()
        if list(signature) != own:
            raise ValueError(
                f"{type(self).__name__}: the state_dict is for {self._describe_signature(signature)}, "
                f"this layer is on {self._describe_signature(own)} ({self.hierarchy!r})"
            )

    def _save_to_state_dict(self, destination, prefix, keep_vars):  # type: ignore[override]
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "mesh_signature"] = self.signature()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        signature = state_dict.pop(prefix + "mesh_signature", None)
        if signature is not None:
            self._check_signature([int(v) for v in torch.as_tensor(signature).reshape(-1).tolist()])
        old = state_dict.pop(prefix + "_extra_state", None)  # written before the signature: a dict
        if isinstance(old, dict):
            orientation = old.get("orientation")
            mesh = old.get("mesh")
            self._check_signature(
                [
                    -1 if old.get("level") is None else old["level"],
                    ORIENTATIONS.index(orientation) if orientation in ORIENTATIONS else -1,
                    0 if mesh is None else int(mesh[:15], 16),
                ]
            )
        # state_dicts written before layers stored their level and orientation (neither key) still load
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        orientation = "" if self.orientation == "fixed" else f", orientation={self.orientation!r}"
        if self.in_mesh is self.out_mesh:
            where = self.in_mesh.describe()
        elif self.hierarchy.is_icosphere:
            where = f"level {self.in_level} -> {self.out_level}"
        else:
            where = f"{self.in_mesh.describe()} -> {self.out_mesh.describe()}"
        return f"{self.in_channels}, {self.out_channels}, {where}, bias={self.bias is not None}{orientation}"


class MeshConv(_TapConv):
    r"""Convolution as a learned differential operator on the icosphere of ``level``, or on any mesh.

    .. math::
        y = W_{:,:,0}\, x + W_{:,:,1}\, (L x) + W_{:,:,2}\, (D_{ew} x) + W_{:,:,3}\, (D_{ns} x) + b

    with ``L``, ``D_ew``, ``D_ns`` the dimension-free taps of :class:`meshcnn.Mesh`
    (``laplacian``, ``grad_ew``, ``grad_ns``), applied per channel.

    Parameters
    ----------
    in_channels, out_channels : int
    level : int
        Icosphere level of the input, 0..9 (or give ``mesh=``).
    stride : 1 or 2
        With 2 the output lives on ``level - 1``: the same formula evaluated only
        at the first ``V_{level-1}`` vertices (the coarse ones). On a
        :class:`~meshcnn.geometry.MeshHierarchy` ``h`` the output lives on ``h[1]``: at its
        vertices where the hierarchy is nested, else restricted,
        :math:`y = R \sum_k W_k T_k x` with :math:`R` = ``h.restrictions[0]``.
    bias : bool
    orientation : one of :data:`ORIENTATIONS`
        How the directional taps are oriented (:func:`orientation_taps`):

        * ``"fixed"`` (default): the formula above, global east and north; equivariant to
          rotations about the polar axis only.
        * ``"poleward"``: :math:`D_{ns}` replaced by :math:`\mathrm{sign}(\mathrm{lat})\, D_{ns}`, so
          the layer is also exactly equivariant to the equatorial mirror
          ``(lat, lon) -> (-lat, lon + 36°)``, a symmetry of the icosphere (pair it with
          :func:`hemisphere_flip` for vector fields).
        * ``"isotropic"``: identity and Laplacian only, ``weight`` ``(out, in, 2)``; exactly
          equivariant to the 60 icosahedral rotations, approximately to all of SO(3).
        * ``"invariant"``: :math:`y = W_0 x + W_1 L x + \beta + \sqrt{|z|^2 + \epsilon^2} - \epsilon`
          per output channel, with :math:`z = \sum_c (a_c + i b_c)(D_1 x_c + i D_2 x_c)`,
          ``weight[..., 2:] = (a, b)``, :math:`(D_1, D_2)` the vertex gradient on any
          tangent frame (:attr:`Mesh.grad_tangent`) and :math:`\epsilon` =
          :data:`INVARIANT_EPS`. Turning a vertex's frame multiplies :math:`z` by a phase,
          so the output does not depend on the frame: directional filters without a
          global north, equivariant like ``"isotropic"``.

    mesh : Mesh or MeshHierarchy, keyword only
        Instead of ``level``: any sphere mesh (:meth:`Mesh.from_points`, a HEALPix or
        native model grid), with the same four taps from its own operators; a
        :class:`~meshcnn.geometry.MeshHierarchy` for ``stride=2``. ``state_dict()`` then
        holds the hierarchy's fingerprint (not its arrays) in ``mesh_signature``: loading it
        into a layer on another mesh raises ``ValueError``.
    mesh_dir : path, optional
        Where icosphere meshes are cached.

    Shapes: input ``(B, in_channels, V_level)``, output ``(B, out_channels, V_out)``.
    ``weight`` is ``(out_channels, in_channels, 4)`` ordered ``[identity, laplacian, ew, ns]``
    (``ns`` the poleward tap for ``"poleward"``, ``[identity, laplacian, a, b]`` for
    ``"invariant"``, ``[identity, laplacian]`` for ``"isotropic"``). ``state_dict()`` also
    holds ``mesh_signature`` (:meth:`signature`: level, orientation, mesh fingerprint) as an
    int64 tensor, and loading one of another level, orientation or mesh raises ``ValueError``.
    The operators are non-persistent buffers, rebuilt from ``level``: they move with
    ``.to()``/``.double()`` but are not in ``state_dict()``. They are re-derived from
    CPU masters after every ``.to()``/``.to_empty()``, so a layer built under
    ``with torch.device("meta"):`` or moved with ``.to("meta")``, then materialised
    with ``.to_empty(device=...)`` (and given parameters by ``load_state_dict`` or
    ``reset_parameters``), has the operators of a normally built one.
    Input of another dtype than the weight's is refused like :class:`torch.nn.Conv1d`
    does (``ValueError`` naming both), except half/bfloat16 input and mixes under
    :func:`torch.autocast` (see Precision).

    Computation (:func:`meshcnn.nn.mesh_conv`): the three differential taps
    are one vertex-major stacked sparse operator applied per sample as a weighted
    ``embedding_bag`` (every row has at most 7 non-zeros, the closed 1-ring), then
    one GEMM with the ``(out, 3 in)`` weight; the identity tap is a GEMM on ``x``
    itself. The backward pass applies the precomputed stack of transposed taps.
    Where a sample's table is small (``V_in * in_channels <= 2**18``), chunks of ``k``
    samples share one bag kernel through precomputed int32 block-diagonal indices
    (:func:`meshcnn.nn.functional.block_samples_for`), shared by the layers with the same operator
    (their size: ``experiments/benchmark/RESULTS.md``, "Moved from docstrings").

    Precision: float64 input runs entirely in float64. Under :func:`torch.autocast`
    (bfloat16 on CPU, float16/bfloat16 on CUDA) and for half-precision input, **the
    sparse product runs in float32** (the taps are differences of nearly equal
    neighbour values, which a 8- or 11-bit mantissa would wipe out) and only the
    dense products run in the autocast dtype; the output has the autocast dtype and
    the input gradient the input's dtype. The operator values stay in float32 even
    after ``.half()``/``.bfloat16()``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        level: int | Mesh | MeshHierarchy | None = None,
        stride: int = 1,
        bias: bool = True,
        orientation: str = "fixed",
        mesh_dir: str | os.PathLike | None = None,
        *,
        mesh: Mesh | MeshHierarchy | None = None,
    ) -> None:
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2 (an integer), got {stride!r}")
        hierarchy = resolve_meshes(
            level, mesh, mesh_dir, "MeshConv" + (" with stride=2" if stride == 2 else ""), coarse=stride == 2
        )
        fine, out_mesh = hierarchy[0], hierarchy[-1]
        if stride == 1 or hierarchy.nested:  # the output vertices are the first fine ones: rows of the taps
            taps, identity_tap = orientation_taps(fine, out_mesh.num_vertices, orientation)[1:], True
        else:  # y = R (sum_k W_k T_k x): the restriction folded into every tap, the identity's included
            restriction = hierarchy.restrictions[0]
            taps, identity_tap = (
                [restriction @ t for t in orientation_taps(fine, fine.num_vertices, orientation)],
                False,
            )
        self.level, self.stride = fine.level, int(stride)
        super().__init__(
            in_channels,
            out_channels,
            hierarchy,
            fine,
            out_mesh,
            taps,
            bias,
            identity_tap=identity_tap,
            orientation=orientation,
        )


class MeshConvTranspose(_TapConv):
    r"""Upsampling convolution, ``level - 1 -> level`` (or ``h[1] -> h[0]`` on a hierarchy ``h``).

    .. math:: y = \mathrm{MeshConv}_{level}(U x)

    where ``U`` is :attr:`Mesh.upsample` (each new vertex takes the mean of the
    two ends of the edge it splits), or ``mesh.prolongations[0]`` for ``mesh=`` a
    :class:`~meshcnn.geometry.MeshHierarchy` (barycentric interpolation unless the
    hierarchy gives its own). ``U`` is folded into the stacked operator,
    so it is still one sparse product and one dense product. ``orientation`` as in
    :class:`MeshConv`.

    Shapes: input ``(B, in_channels, V_{level-1})``, output ``(B, out_channels, V_level)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        level: int | Mesh | MeshHierarchy | None = None,
        bias: bool = True,
        orientation: str = "fixed",
        mesh_dir: str | os.PathLike | None = None,
        *,
        mesh: MeshHierarchy | None = None,
    ) -> None:
        hierarchy = resolve_meshes(level, mesh, mesh_dir, "MeshConvTranspose", coarse=True)
        fine, prolongation = hierarchy[0], hierarchy.prolongations[0]
        taps = [t @ prolongation for t in orientation_taps(fine, fine.num_vertices, orientation)]
        self.level = fine.level
        super().__init__(in_channels, out_channels, hierarchy, hierarchy[1], fine, taps, bias, orientation=orientation)


class MeshPool(ConstantBuffers):
    r"""Pooling from ``level`` to ``level - 1`` (or ``h[0] -> h[1]`` on a hierarchy ``h``).

    On the icosphere, coarse vertex ``i`` (one of the first ``V_{level-1}``) pools over its
    closed 1-ring on ``level`` (itself and its 5 or 6 neighbours), :math:`R_i`:

    * ``"mean"``: :math:`y_i = \frac{1}{|R_i|}\sum_{j \in R_i} x_j`;
    * ``"max"``: :math:`y_i = \max_{j \in R_i} x_j`;
    * ``"drop"``: :math:`y_i = x_i` (subsampling).

    On any other :class:`~meshcnn.geometry.MeshHierarchy`, :math:`R_i` is the support of row
    ``i`` of the restriction ``h.restrictions[0]`` and ``"mean"`` is the restriction itself,
    :math:`y_i = \sum_j R_{ij} x_j` (area-weighted, or the hierarchy's own: the exact mean of
    the 4 children on HEALPix); ``"drop"`` needs a nested hierarchy.

    Shapes: ``(B, C, V_level) -> (B, C, V_{level-1})``.
    """

    def __init__(
        self,
        level: int | MeshHierarchy | None = None,
        mode: str = "mean",
        mesh_dir: str | os.PathLike | None = None,
        *,
        mesh: MeshHierarchy | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("mean", "max", "drop"):
            raise ValueError(f"mode must be 'mean', 'max' or 'drop', got {mode!r}")
        hierarchy = resolve_meshes(level, mesh, mesh_dir, "MeshPool", coarse=True)
        if mode == "drop" and not hierarchy.nested:
            raise ValueError(
                "MeshPool: mode='drop' keeps the first vertices, which needs a nested hierarchy; "
                f"{hierarchy!r} is not: use 'mean' or 'max'"
            )
        self.hierarchy, self.in_mesh, self.out_mesh = hierarchy, hierarchy[0], hierarchy[1]
        self.level, self.mode = hierarchy[0].level, mode
        num_out = hierarchy[1].num_vertices
        self.weighted = not hierarchy.is_icosphere
        if mode != "drop" and not self.weighted:
            neighbors = hierarchy[0].neighbors[:num_out]
            self_index = np.arange(num_out)[:, None]
            ring = np.concatenate([self_index, np.where(neighbors < 0, self_index, neighbors)], axis=1)
            valid = np.concatenate([np.ones((num_out, 1), bool), neighbors >= 0], axis=1)
            # mask and count rather than float weights: exact in every dtype
            for name, value in (("ring", ring), ("ring_valid", valid), ("ring_size", valid.sum(1))):
                self.register_constant(name, torch.from_numpy(value))  # the rings are constants of the level
        elif mode != "drop":  # the restriction's rows, padded to the widest: (V_out, K) indices and weights
            restriction = hierarchy.restrictions[0]
            counts = np.diff(restriction.indptr)
            width = int(counts.max())
            slot = np.arange(restriction.nnz) - np.repeat(restriction.indptr[:-1], counts)
            rows = np.repeat(np.arange(num_out), counts)
            first = restriction.indices[restriction.indptr[:-1]]
            ring = np.repeat(first[:, None], width, axis=1)  # padded with the row's first column (weight 0)
            ring[rows, slot] = restriction.indices
            weight = np.zeros((num_out, width))
            weight[rows, slot] = restriction.data
            self.register_constant("ring", torch.from_numpy(ring))
            self.register_constant("ring_weight", torch.from_numpy(weight))
        self.num_out = num_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_signal(x, None, self.in_mesh, "MeshPool")
        if self.mode == "drop":
            return x[..., : self.num_out]
        gathered = x[..., self.ring]  # (B, C, V_out, K), padded with a member of the row
        if self.mode == "max":
            return gathered.amax(dim=-1)
        if self.weighted:
            return (gathered * self.ring_weight.to(x.dtype)).sum(dim=-1)
        return (gathered * self.ring_valid).sum(dim=-1) / self.ring_size

    def extra_repr(self) -> str:
        if self.hierarchy.is_icosphere:
            return f"level {self.level} -> {self.level - 1}, mode={self.mode!r}"
        return f"{self.in_mesh.describe()} -> {self.out_mesh.describe()}, mode={self.mode!r}"
