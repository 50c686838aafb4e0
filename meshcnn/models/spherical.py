"""Whole models built from the mesh layers.

* :class:`SphericalUNet`: encoder/decoder for per-vertex segmentation.
* :class:`SphericalResNet`: residual classifier, ``(B, C, V) -> (B, num_classes)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from ..geometry.hierarchy import MeshHierarchy
from ..geometry.mesh import Mesh, check_level
from ..nn import ConstantBuffers
from ..nn.layers import (
    MeshConv,
    MeshConvTranspose,
    MeshPool,
    check_orientation,
    check_signal,
    hemisphere_flip,
    resolve_meshes,
)

__all__ = ["ResBlock", "SphericalUNet", "SphericalResNet", "DOWNSAMPLE"]

DOWNSAMPLE = ("stride", "pool", "none")


class ResBlock(nn.Module):
    """Residual block ``relu(BN(MeshConv(relu(BN(MeshConv(x))))) + shortcut(x))``.

    With ``stride=2`` the block goes from ``level`` to ``level - 1`` and the shortcut
    mean-pools over 1-rings. ``downsample`` says how the first convolution gets there:
    ``"stride"`` evaluates it at the coarse vertices only (a stride-2 MeshConv, the
    original method); ``"pool"`` evaluates it on ``level`` and mean-pools over 1-rings
    (:class:`MeshPool`), a low-pass filter before the subsampling: four times the
    cost of that convolution, less aliasing, so features move more smoothly with the
    signal under rotations that are not symmetries of the mesh. The shortcut has a 1x1
    convolution when the channel count changes.

    Parameters
    ----------
    in_channels, out_channels : int
    level : int, Mesh or MeshHierarchy
        The input's icosphere level, or its mesh (a hierarchy ``h`` for ``stride=2``: from
        ``h[0]`` to ``h[1]``).
    stride : 1 or 2
        2: the output lives on ``level - 1`` (``h[1]``).
    orientation : one of :data:`meshcnn.ORIENTATIONS`
    downsample : ``"stride"`` or ``"pool"``
    mesh_dir : path, optional
        Where meshes are cached.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        level: int | Mesh | MeshHierarchy,
        stride: int = 1,
        orientation: str = "fixed",
        downsample: str = "stride",
        mesh_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        if downsample not in ("stride", "pool"):
            raise ValueError(f"downsample must be 'stride' or 'pool', got {downsample!r}")
        meshes = resolve_meshes(level, None, mesh_dir, "ResBlock", coarse=stride == 2)
        kw = {"bias": False, "orientation": orientation}
        if stride == 2 and downsample == "pool":
            self.conv1 = nn.Sequential(
                MeshConv(in_channels, out_channels, mesh=meshes[0], **kw), MeshPool(mesh=meshes, mode="mean")
            )
        else:
            self.conv1 = MeshConv(in_channels, out_channels, mesh=meshes, stride=stride, **kw)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = MeshConv(out_channels, out_channels, mesh=meshes[-1], **kw)
        self.bn2 = nn.BatchNorm1d(out_channels)
        shortcut: list[nn.Module] = []
        if stride == 2:
            shortcut.append(MeshPool(mesh=meshes, mode="mean"))
        if in_channels != out_channels:
            shortcut += [nn.Conv1d(in_channels, out_channels, 1, bias=False), nn.BatchNorm1d(out_channels)]
        self.shortcut = nn.Sequential(*shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class SphericalUNet(ConstantBuffers):
    r"""U-Net on the icosphere hierarchy (or any :class:`~meshcnn.geometry.MeshHierarchy`),
    ``(B, in_channels, V_max) -> (B, out_channels, V_max)``.

    The encoder goes from ``max_level`` down to ``min_level`` with stride-2
    residual blocks, doubling the channels at every level
    (``width * 2**(max_level - l)`` channels on level ``l``); the decoder comes
    back up with :class:`MeshConvTranspose`, concatenates the encoder's features
    of the same level (skip connection) and applies a residual block. A 1x1
    convolution gives per-vertex logits. ``orientation`` (one of
    :data:`meshcnn.ORIENTATIONS`) is that of every MeshConv and MeshConvTranspose.
    ``flip_channels``: input channels that are northward vector components (e.g. the
    meridional winds), multiplied by ``sign(latitude)`` on the way in
    (:func:`meshcnn.hemisphere_flip`), the input transform that goes with
    ``orientation="poleward"``.

    Parameters
    ----------
    in_channels, out_channels : int
    max_level, min_level : int
        Levels of the input (and output) and of the bottleneck, ``min_level < max_level``
        (default 5 and 0); not with ``hierarchy``.
    width : int
        Channels on ``max_level``.
    orientation : one of :data:`meshcnn.ORIENTATIONS`
    flip_channels : sequence of int
        Input channels multiplied by ``sign(latitude)``.
    mesh_dir : path, optional
        Where meshes are cached.
    hierarchy : MeshHierarchy, keyword only
        Instead of the levels: the meshes from the input's (``hierarchy[0]``) to the
        bottleneck's (``hierarchy[-1]``), at least two; ``width * 2**i`` channels on
        ``hierarchy[i]``. A HEALPix hierarchy (:meth:`meshcnn.grids.HealpixGrid.hierarchy`),
        a native model grid over icospheres, or any other.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        max_level: int | None = None,
        min_level: int | None = None,
        width: int = 16,
        orientation: str = "fixed",
        flip_channels: Sequence[int] = (),
        mesh_dir: str | os.PathLike | None = None,
        *,
        hierarchy: MeshHierarchy | None = None,
    ) -> None:
        super().__init__()
        hierarchy = _model_hierarchy(max_level, min_level, hierarchy, mesh_dir, (5, 0))
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hierarchy = hierarchy  # immutable and shared: not copied by deepcopy, not in state_dict()
        self.max_level, self.min_level = hierarchy[0].level, hierarchy[-1].level
        self.orientation = check_orientation(orientation)
        self.flip_channels = tuple(int(c) for c in flip_channels)
        if any(not 0 <= c < in_channels for c in self.flip_channels):
            raise ValueError(f"flip_channels {self.flip_channels} out of range for {in_channels} input channels")
        if self.flip_channels:  # (C, V) input multiplier: sign(latitude) on the flipped channels, 1 elsewhere
            flip = hemisphere_flip(
                torch.ones(in_channels, hierarchy[0].num_vertices, dtype=torch.float64, device="cpu"),
                hierarchy[0],
                self.flip_channels,
            )
            self.register_constant("input_sign", flip)
        kw = {"orientation": orientation}
        depth = len(hierarchy) - 1

        def ch(i: int) -> int:
            return width * 2**i

        self.stem = nn.Sequential(
            MeshConv(in_channels, width, mesh=hierarchy[0], bias=False, **kw), nn.BatchNorm1d(width), nn.ReLU()
        )
        self.down = nn.ModuleList(
            ResBlock(ch(i), ch(i + 1), hierarchy[i : i + 2], stride=2, **kw) for i in range(depth)
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                MeshConvTranspose(ch(i + 1), ch(i), mesh=hierarchy[i : i + 2], bias=False, **kw),
                nn.BatchNorm1d(ch(i)),
                nn.ReLU(),
            )
            for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(ResBlock(2 * ch(i), ch(i), hierarchy[i], **kw) for i in reversed(range(depth)))
        self.head = nn.Conv1d(width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_signal(x, self.in_channels, self.hierarchy[0], "SphericalUNet")
        if self.flip_channels:
            x = x * self.input_sign.to(x.dtype)
        x = self.stem(x)
        skips = []
        for block in self.down:
            skips.append(x)
            x = block(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


class SphericalResNet(ConstantBuffers):
    r"""Residual classifier on the icosphere, ``(B, in_channels, V_level) -> (B, num_classes)`` logits.

    A MeshConv stem on ``level``, then ``depth`` stages, each a stride-2
    residual block (down one level, channels doubled) followed by a stride-1
    block; an area-weighted global average over the vertices of the last level
    (:math:`\bar x_c = \sum_v a_v x_{c,v} / \sum_v a_v`) and a linear layer.
    ``orientation`` (one of :data:`meshcnn.ORIENTATIONS`) is that of every MeshConv; with
    ``"isotropic"`` or ``"invariant"`` the whole classifier is invariant to the 60
    icosahedral rotations (the global pool is) and approximately to all of SO(3).
    ``downsample`` (``"stride"`` or ``"pool"``) is that of the stride-2 blocks, see
    :class:`ResBlock`; with ``"none"`` every stage stays on ``level`` (stride-1 blocks,
    channels still doubling), so the global average is taken over the input's own
    resolution. Subsampled features alias: their average over a coarse level moves
    with the position of the pattern relative to the coarse vertices, while the
    average over a fine level is the integral of well-resolved features, which is what
    makes the ``"isotropic"`` and ``"invariant"`` classifiers invariant in practice
    (see ``experiments/spherical_digits/README.md``).

    Parameters
    ----------
    in_channels, num_classes : int
    level : int
        Level of the input.
    width : int
        Channels of the stem; doubled by every stage.
    depth : int
        Stages, ``0 <= depth <= level`` (``len(hierarchy) - 1`` with a hierarchy, unless
        ``downsample="none"``).
    orientation : one of :data:`meshcnn.ORIENTATIONS`
    downsample : one of :data:`DOWNSAMPLE`
    mesh_dir : path, optional
        Where meshes are cached.
    hierarchy : MeshHierarchy, keyword only
        Instead of ``level``: the input lives on ``hierarchy[0]`` and stage ``i`` goes down to
        ``hierarchy[i + 1]``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        level: int | None = None,
        width: int = 16,
        depth: int = 3,
        orientation: str = "fixed",
        downsample: str = "stride",
        mesh_dir: str | os.PathLike | None = None,
        *,
        hierarchy: MeshHierarchy | None = None,
    ) -> None:
        super().__init__()
        if downsample not in DOWNSAMPLE:
            raise ValueError(f"downsample must be one of {DOWNSAMPLE}, got {downsample!r}")
        stride = 1 if downsample == "none" else 2
        if hierarchy is None:
            level = check_level(5 if level is None else level)
            if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= level:
                raise ValueError(f"depth must be an integer in 0..level ({level}), got {depth!r}")
        depth_levels = 0 if stride == 1 else depth
        if hierarchy is not None and (
            isinstance(depth, bool)
            or not isinstance(depth, int)
            or not 0 <= depth_levels <= len(hierarchy) - 1
            or depth < 0
        ):
            raise ValueError(
                f"depth must be an integer in 0..{len(hierarchy) - 1} (the hierarchy's coarser meshes), got {depth!r}"
            )
        hierarchy = _model_hierarchy(
            level, None if hierarchy is not None else level - depth_levels, hierarchy, mesh_dir, None
        )
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        self.in_channels, self.num_classes, self.level = in_channels, num_classes, hierarchy[0].level
        self.hierarchy = hierarchy  # immutable and shared: not copied by deepcopy, not in state_dict()
        self.orientation = check_orientation(orientation)
        kw = {"orientation": orientation}
        self.stem = nn.Sequential(
            MeshConv(in_channels, width, mesh=hierarchy[0], bias=False, **kw), nn.BatchNorm1d(width), nn.ReLU()
        )
        stages = []
        channels = width
        for i in range(depth):
            meshes = hierarchy[0] if stride == 1 else hierarchy[i : i + 2]
            stages += [
                ResBlock(
                    channels,
                    2 * channels,
                    meshes,
                    stride=stride,
                    downsample="stride" if stride == 1 else downsample,
                    **kw,
                ),
                ResBlock(2 * channels, 2 * channels, hierarchy[0] if stride == 1 else hierarchy[i + 1], **kw),
            ]
            channels *= 2
        self.stages = nn.Sequential(*stages)
        areas = torch.as_tensor(hierarchy[depth_levels].vertex_areas, dtype=torch.float64, device="cpu")
        self.register_constant("pool_weight", areas / areas.sum())
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_signal(x, self.in_channels, self.hierarchy[0], "SphericalResNet")
        x = self.stages(self.stem(x))
        return self.fc(x @ self.pool_weight.to(x.dtype))


def _model_hierarchy(
    max_level: int | None,
    min_level: int | None,
    hierarchy: MeshHierarchy | None,
    mesh_dir: str | os.PathLike | None,
    defaults: tuple[int, int] | None,
) -> MeshHierarchy:
    """A model's meshes: the given hierarchy, or the icosphere levels ``max_level`` down to ``min_level``."""
    if hierarchy is not None:
        if max_level is not None or min_level is not None:
            raise ValueError("give the icosphere levels or hierarchy=, not both")
        if not isinstance(hierarchy, MeshHierarchy):
            raise ValueError(f"hierarchy must be a meshcnn.geometry.MeshHierarchy, got {type(hierarchy).__name__}")
        if defaults is not None and len(hierarchy) < 2:
            raise ValueError(f"a U-Net needs a hierarchy of at least two meshes, got {hierarchy!r}")
        return hierarchy
    if defaults is not None:
        max_level = defaults[0] if max_level is None else max_level
        min_level = defaults[1] if min_level is None else min_level
    max_level = check_level(max_level, "max_level")
    min_level = check_level(min_level, "min_level")
    if defaults is not None and min_level >= max_level:
        raise ValueError(f"min_level ({min_level}) must be below max_level ({max_level})")
    return MeshHierarchy.icosphere(max_level, min_level, mesh_dir)
