"""The model registry: typed configs for every task model, built by one :func:`build_model`.

A config is a frozen dataclass naming the ``task`` and the ``kind`` of model:

* :class:`ClassifierConfig` (``task="classification"``): whole-signal logits
  ``(B, C, ...) -> (B, num_classes)``; ``kind="spherical"`` is a
  :class:`meshcnn.models.SphericalResNet` on the icosphere of ``level``, input
  ``(B, C, V)``; ``kind="planar"`` a :class:`meshcnn.models.PlanarCNN` on a
  lat-lon (or image) grid, input ``(B, C, H, W)``.
* :class:`SegmenterConfig` (``task="segmentation"``): per-point logits;
  ``kind="spherical"`` is a :class:`meshcnn.models.SphericalUNet`,
  ``(B, C, V) -> (B, K, V)``; ``kind="planar"`` a :class:`meshcnn.models.PlanarUNet`,
  ``(B, C, H, W) -> (B, K, H, W)``.

Checkpoints store a config as the plain dict of :meth:`to_dict` (numbers, strings
and lists: loadable with ``torch.load(weights_only=True)``); :func:`model_config`
reads it back, also the dicts written before the registry existed (no ``task`` key:
a segmentation config is recognised by its ``min_level`` or ``planar_width``).
Keys that are not fields (e.g. ``num_params``) are ignored when building.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..grids.families import check_grid_family, sphere_hierarchy
from ..models.planar import PlanarCNN, PlanarUNet
from ..models.spherical import DOWNSAMPLE, SphericalResNet, SphericalUNet
from ..nn import check_orientation

__all__ = [
    "MODEL_KINDS",
    "TASKS",
    "ClassifierConfig",
    "SegmenterConfig",
    "ModelConfig",
    "model_config",
    "build_model",
    "count_parameters",
    "matched_width",
]

MODEL_KINDS = ("spherical", "planar")
TASKS = ("classification", "segmentation")


def _check_kind(kind: str) -> None:
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")


@dataclass(frozen=True)
class ClassifierConfig:
    """A whole-signal classifier.

    Parameters
    ----------
    kind : {"spherical", "planar"}
        :class:`~meshcnn.models.SphericalResNet` or :class:`~meshcnn.models.PlanarCNN`.
    in_channels, num_classes : int
        Input channels ``C`` and output logits.
    level : int
        Icosphere level of the spherical input (recorded for planar models too: the
        lat-lon grid is sized after it).
    width, depth : int
        Channels after the stem and number of stride-2 stages (both kinds).
    orientation, downsample : str
        Spherical only: the MeshConv orientation (:data:`meshcnn.nn.ORIENTATIONS`) and
        how stride-2 blocks subsample (:data:`meshcnn.models.spherical.DOWNSAMPLE`).
    circular : bool
        Planar only: periodic padding in longitude (``False`` for plain images).
    """

    kind: str
    in_channels: int
    num_classes: int
    level: int
    width: int = 16
    depth: int = 3
    orientation: str = "fixed"
    downsample: str = "stride"
    circular: bool = True
    task = "classification"

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        check_orientation(self.orientation)
        if self.downsample not in DOWNSAMPLE:
            raise ValueError(f"downsample must be one of {DOWNSAMPLE}, got {self.downsample!r}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict stored in checkpoints (``circular`` only where it is not the default)."""
        out = {"task": self.task, **dataclasses.asdict(self)}
        if self.circular:
            del out["circular"]
        return out


@dataclass(frozen=True)
class SegmenterConfig:
    """A per-point segmentation model.

    Parameters
    ----------
    kind : {"spherical", "planar"}
        :class:`~meshcnn.models.SphericalUNet` or :class:`~meshcnn.models.PlanarUNet`
        (periodic in longitude).
    in_channels, num_classes : int
        Input channels ``C`` and classes ``K``.
    level : int
        Level of the data on its sphere grid (:func:`meshcnn.grids.sphere_grid`): the
        spherical U-Net's top level.
    min_level, width, orientation, flip_channels
        Spherical only: coarsest level, channels on the top level, MeshConv
        orientation and the input channels multiplied by ``sign(latitude)``.
    grid : one of :data:`meshcnn.grids.GRID_FAMILIES`
        The sphere grid of the data and of the spherical U-Net: ``"icosphere"`` (default)
        or ``"healpix"`` (order ``level``, ``nside = 2**level``).
    planar_width, planar_depth : int
        Planar only: channels and downsamplings of the planar U-Net.
    """

    kind: str
    in_channels: int
    num_classes: int
    level: int
    min_level: int = 0
    width: int = 8
    orientation: str = "fixed"
    flip_channels: tuple[int, ...] = ()
    planar_width: int | None = None
    planar_depth: int = 4
    grid: str = "icosphere"
    task = "segmentation"

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        check_orientation(self.orientation)
        check_grid_family(self.grid)
        object.__setattr__(self, "flip_channels", tuple(int(c) for c in self.flip_channels))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict stored in checkpoints: the fields of this ``kind`` of model."""
        common = {
            "task": self.task,
            "kind": self.kind,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "level": self.level,
        }
        if self.grid != "icosphere":  # configs of icosphere models stay as they were written before grids
            common["grid"] = self.grid
        if self.kind == "spherical":
            return {
                **common,
                "min_level": self.min_level,
                "width": self.width,
                "orientation": self.orientation,
                "flip_channels": list(self.flip_channels),
            }
        return {**common, "planar_width": self.planar_width, "planar_depth": self.planar_depth}


ModelConfig = ClassifierConfig | SegmenterConfig
_CONFIGS: dict[str, type] = {"classification": ClassifierConfig, "segmentation": SegmenterConfig}


def model_config(config: ModelConfig | dict[str, Any]) -> ModelConfig:
    """The typed config of ``config``: a dataclass as it is, or a stored dict read back.

    Parameters
    ----------
    config : ClassifierConfig, SegmenterConfig or dict
        A dict as stored in a checkpoint (:meth:`ClassifierConfig.to_dict`), or as
        written before the registry: without ``task``, a dict with ``min_level`` or
        ``planar_width`` is a segmentation config. Unknown keys are ignored.

    Returns
    -------
    ClassifierConfig or SegmenterConfig

    Raises
    ------
    ValueError
        For an unknown ``task`` or ``kind``, or a missing field.
    """
    if isinstance(config, (ClassifierConfig, SegmenterConfig)):
        return config
    task = config.get("task") or (
        "segmentation" if "min_level" in config or "planar_width" in config else "classification"
    )
    if task not in _CONFIGS:
        raise ValueError(f"config['task'] must be one of {TASKS}, got {task!r}")
    if config.get("kind") not in MODEL_KINDS:
        raise ValueError(f"config['kind'] must be one of {MODEL_KINDS}, got {config.get('kind')!r}")
    cls = _CONFIGS[task]
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in config.items() if k in names})
    except TypeError as err:
        raise ValueError(f"incomplete {task} config {config!r}: {err}") from None


def _spherical_classifier(c: ClassifierConfig, mesh_dir: str | os.PathLike | None) -> nn.Module:
    return SphericalResNet(
        c.in_channels,
        c.num_classes,
        level=c.level,
        width=c.width,
        depth=c.depth,
        orientation=c.orientation,
        downsample=c.downsample,
        mesh_dir=mesh_dir,
    )


def _planar_classifier(c: ClassifierConfig, mesh_dir: str | os.PathLike | None) -> nn.Module:
    return PlanarCNN(c.in_channels, c.num_classes, width=c.width, depth=c.depth, circular=c.circular)


def _spherical_segmenter(c: SegmenterConfig, mesh_dir: str | os.PathLike | None) -> nn.Module:
    return SphericalUNet(
        c.in_channels,
        c.num_classes,
        width=c.width,
        orientation=c.orientation,
        flip_channels=c.flip_channels,
        hierarchy=sphere_hierarchy(c.grid, c.level, c.min_level, mesh_dir),
    )


def _planar_segmenter(c: SegmenterConfig, mesh_dir: str | os.PathLike | None) -> nn.Module:
    if c.planar_width is None:
        raise ValueError("a planar segmentation config needs planar_width")
    return PlanarUNet(c.in_channels, c.num_classes, c.planar_width, c.planar_depth, circular=True)


_BUILDERS: dict[tuple[str, str], Callable[[Any, Any], nn.Module]] = {
    ("classification", "spherical"): _spherical_classifier,
    ("classification", "planar"): _planar_classifier,
    ("segmentation", "spherical"): _spherical_segmenter,
    ("segmentation", "planar"): _planar_segmenter,
}


def build_model(config: ModelConfig | dict[str, Any], mesh_dir: str | os.PathLike | None = None) -> nn.Module:
    """A freshly initialised model for ``config`` (a typed config or a stored dict).

    Parameters
    ----------
    config : ClassifierConfig, SegmenterConfig or dict
        See :func:`model_config`.
    mesh_dir : path-like, optional
        Folder of cached meshes for the spherical models.

    Returns
    -------
    torch.nn.Module
        Initialised from torch's global generator: seed it first for a reproducible model.
    """
    config = model_config(config)
    return _BUILDERS[(config.task, config.kind)](config, mesh_dir)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def matched_width(make_model: Callable[[int], nn.Module], target: int, max_width: int = 256) -> int:
    r"""The width ``w`` whose ``make_model(w)`` has the parameter count closest to ``target``.

    For comparisons at equal parameter count: e.g. an ``"isotropic"`` SphericalResNet has
    about half the parameters of a ``"fixed"`` one of the same width, and needs a width
    about :math:`\sqrt 2` larger. Parameter counts grow with the width, so the search
    stops at the first width past ``target``; ties go to the smaller width.

    Parameters
    ----------
    make_model : callable
        ``width -> model``.
    target : int
        The parameter count to match.
    max_width : int
        The largest width tried.

    Returns
    -------
    int
    """
    best, best_gap = 1, None
    for width in range(1, max_width + 1):
        count = count_parameters(make_model(width))
        gap = abs(count - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = width, gap
        if count >= target:
            break
    return best
