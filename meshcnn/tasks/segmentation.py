r"""Per-vertex segmentation on the icosphere: mesh predictions, metrics by latitude band.

Shared by the climate segmentation experiment's ``train.py``, ``evaluate.py`` and
``main.py``. Two model kinds segment the same data (:class:`meshcnn.tasks.SegmenterConfig`,
built by :func:`meshcnn.tasks.build_model`):

* ``"spherical"``: :class:`meshcnn.models.SphericalUNet` on the icosphere,
  ``(B, C, V) -> (B, K, V)`` logits;
* ``"planar"``: :class:`meshcnn.models.PlanarUNet` on the lat-lon grid
  (circular padding in longitude), ``(B, C, H, W) -> (B, K, H, W)`` logits.

Whatever the model, predictions are compared on the mesh vertices: planar class
probabilities are interpolated bilinearly to the vertices
(:func:`meshcnn.grids.latlon_to_mesh`) and both are scored against the same
nearest-neighbour mesh labels with the area-weighted :mod:`meshcnn.metrics`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .. import metrics
from ..grids.base import Grid
from ..grids.families import as_sphere_grid
from .registry import SegmenterConfig, matched_width, model_config

__all__ = ["SegmenterRun", "matching_planar_width", "mesh_probabilities", "segmentation_report", "flat_metrics"]


@dataclass(frozen=True)
class SegmenterRun:
    """What a segmentation run stores besides the weights: the checkpoint's ``extra`` entry.

    Written by ``experiments/climate_segmentation/train.py`` (``fit(extra_state=run.to_extra())``)
    and read back by ``evaluate.py``, a resumed run and ``meshcnn predict``
    (:func:`meshcnn.predict.load_predictor`) with :meth:`from_extra`: everything a model needs
    to be rebuilt and applied to new data comes from here, nothing from the data.

    Parameters
    ----------
    config : dict
        The model config, as stored (:meth:`meshcnn.tasks.SegmenterConfig.to_dict`, plus
        information such as ``num_params``): a segmentation config that
        :func:`meshcnn.tasks.build_model` builds.
    stats : dict
        The normalisation statistics of the training split
        (:func:`meshcnn.data.climate.compute_stats`): ``mean`` and ``std`` per input
        channel and, optionally, ``variables`` (the channels' names), ``classes``,
        ``class_fraction``, ``num_samples``.
    class_weights : list of float
        The cross-entropy class weights of training.
    splits : dict of str to list of str
        The files of each split (``train``, ``val``, ``test``).
    bad_files : list of list of str
        ``[file, reason]`` of the files skipped as unusable.
    args : dict
        The training script's settings (compared on ``--resume``).

    Raises
    ------
    ValueError
        For a config that is not a segmentation model config, or statistics without a
        ``mean`` and ``std`` of one value per input channel.
    """

    config: dict[str, Any]
    stats: dict[str, Any]
    class_weights: list[float] = field(default_factory=list)
    splits: dict[str, list[str]] = field(default_factory=dict)
    bad_files: list[list[str]] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.config, Mapping):
            raise ValueError(f"the model config must be a dict, got {type(self.config).__name__}")
        if not isinstance(self.stats, Mapping):
            raise ValueError(f"the normalisation statistics must be a dict, got {type(self.stats).__name__}")
        config = self.model_config  # a ValueError for an unknown task or kind, or a missing field
        if config.task != "segmentation":
            raise ValueError(f"the model config is a {config.task} config, not a segmentation config")
        for key in ("mean", "std"):
            if key not in self.stats:
                raise ValueError(f"the normalisation statistics have no {key!r}")
            values = np.asarray(self.stats[key], dtype=np.float64)
            if values.shape != (config.in_channels,) or not np.all(np.isfinite(values)):
                raise ValueError(
                    f"the normalisation statistics' {key!r} must be {config.in_channels} finite numbers "
                    f"(one per input channel of the model), got shape {values.shape}"
                )
        variables = self.stats.get("variables")
        if variables is not None and len(variables) != config.in_channels:
            raise ValueError(f"{len(variables)} variables in the statistics for a model of {config.in_channels} inputs")

    @property
    def model_config(self) -> SegmenterConfig:
        """The typed model config (:func:`meshcnn.tasks.model_config` of :attr:`config`)."""
        return model_config(dict(self.config))

    def to_extra(self) -> dict[str, Any]:
        """The dict to store as the checkpoint's ``extra`` (``fit(extra_state=...)``).

        Returns
        -------
        dict
            ``config``, ``stats``, ``class_weights``, ``splits``, ``bad_files`` and ``args``:
            numbers, strings, lists and dicts (loadable with ``torch.load(weights_only=True)``).
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_extra(cls, extra: Any) -> SegmenterRun:
        """Read back a checkpoint's ``extra`` written by :meth:`to_extra`.

        Parameters
        ----------
        extra : dict
            ``load_checkpoint(path)["extra"]``.

        Returns
        -------
        SegmenterRun

        Raises
        ------
        ValueError
            ``extra`` is not a dict, lacks ``config`` or ``stats`` (e.g. a classification run),
            has keys that are not fields, or its config or statistics are invalid (see the class).
        """
        if not isinstance(extra, Mapping):
            raise ValueError(f"the checkpoint's 'extra' is a {type(extra).__name__}, not a dict of the run")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [k for k in ("config", "stats") if k not in extra]
        if missing:
            raise ValueError(
                f"the checkpoint's 'extra' has no {' and no '.join(map(repr, missing))} (keys: {sorted(extra)}): "
                "not a segmentation run (a run stores them with SegmenterRun(...).to_extra())"
            )
        unknown = sorted(set(extra) - set(names))
        if unknown:
            raise ValueError(f"the checkpoint's 'extra' has keys {unknown} that a segmentation run does not have")
        values = {k: extra[k] for k in names if k in extra}
        if "class_weights" in values:
            values["class_weights"] = [float(w) for w in np.asarray(values["class_weights"]).reshape(-1)]
        return cls(**values)


def matching_planar_width(target: int, in_channels: int, num_classes: int, depth: int) -> int:
    """The :class:`~meshcnn.models.PlanarUNet` ``width`` whose parameter count is closest to ``target``.

    Parameters
    ----------
    target : int
        The parameter count to match (e.g. the spherical U-Net's).
    in_channels, num_classes, depth : int
        The planar U-Net's other settings.

    Returns
    -------
    int
        Between 1 and 128 (:func:`meshcnn.tasks.matched_width`).
    """
    from ..models.planar import PlanarUNet

    return matched_width(lambda width: PlanarUNet(in_channels, num_classes, width, depth), target, max_width=128)


@torch.no_grad()
def mesh_probabilities(
    model: nn.Module,
    dataset: Dataset | torch.Tensor,
    level: int | Grid,
    *,
    latlon: tuple[np.ndarray, np.ndarray] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 4,
    progress: bool = False,
) -> torch.Tensor:
    """Softmax class probabilities on the vertices of ``level``, ``(N, K, V)`` float32 on the CPU.

    Parameters
    ----------
    model : nn.Module
        A spherical ``(B, C, V) -> (B, K, V)`` or planar ``(B, C, H, W) -> (B, K, H, W)`` segmenter.
    dataset : Dataset or torch.Tensor
        Its inputs: a dataset of ``(input, target)`` pairs (the targets are not used), or a
        tensor of inputs, one sample per row (e.g. the time steps of a chunk of ``meshcnn predict``).
    level : int or grid
        The icosphere level of the vertices, or their sphere grid
        (:func:`meshcnn.grids.sphere_grid`, e.g. a :class:`~meshcnn.grids.HealpixGrid`).
    latlon : (lat, lon), optional
        For a planar model: degrees, the grid of the dataset's images, rows in image
        order. Its probabilities are interpolated bilinearly to the mesh vertices; each
        vertex's probabilities still sum to 1 (the interpolation rows sum to 1).
    device, batch_size, progress
        How :func:`meshcnn.train.predict` runs.

    Returns
    -------
    torch.Tensor
        ``(N, K, V)`` float32 on the CPU.
    """
    from ..grids import LatLonGrid, Regridder
    from ..train.loop import predict

    if isinstance(dataset, torch.Tensor):
        dataset = _Inputs(dataset)
    outputs, _ = predict(model, dataset, batch_size=batch_size, device=device, progress=progress)
    probs = torch.softmax(outputs.float(), dim=1)
    if latlon is None:
        if probs.dim() != 3:
            raise ValueError(
                f"expected mesh outputs (N, K, V), got {tuple(probs.shape)}; pass latlon= for a planar model"
            )
        return probs
    if probs.dim() != 4:
        raise ValueError(f"expected lat-lon outputs (N, K, H, W), got {tuple(probs.shape)}")
    lat, lon = latlon
    if probs.shape[-2:] != (len(lat), len(lon)):
        raise ValueError(f"outputs are {tuple(probs.shape[-2:])} but the grid is {len(lat)} x {len(lon)}")
    return Regridder(LatLonGrid(lat, lon), level, "bilinear")(probs).float()  # the tensor path: no NumPy copy


class _Inputs(Dataset):
    """The rows of a tensor of inputs as a dataset of ``(input, 0)`` pairs, for :func:`meshcnn.train.predict`."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], 0


def segmentation_report(
    probs: torch.Tensor, targets: torch.Tensor, level: int | Grid, class_names: Sequence[str], bands: bool = True
) -> dict[str, Any]:
    """Area-weighted metrics of mesh predictions (:func:`meshcnn.metrics.segmentation_report`).

    Every vertex counts by its cell area (:meth:`meshcnn.grids.Grid.cell_areas`: the lumped
    :attr:`meshcnn.Mesh.vertex_areas` on the icosphere, the exact equal areas on HEALPix).

    Parameters
    ----------
    probs : torch.Tensor
        ``(N, K, V)`` class probabilities on the vertices of ``level``.
    targets : torch.Tensor
        ``(N, V)`` labels.
    level : int or grid
        The icosphere level, or the sphere grid of the vertices.
    class_names : sequence of str
        ``K`` names.
    bands : bool
        Also the IoU per latitude band (:data:`meshcnn.metrics.LAT_ZONES`).

    Returns
    -------
    dict
        The report of :func:`meshcnn.metrics.segmentation_report`.
    """
    k = len(class_names)
    if probs.dim() != 3 or probs.shape[1] != k or tuple(targets.shape) != (probs.shape[0], probs.shape[2]):
        raise ValueError(
            f"expected probs (N, {k}, V) and targets (N, V), got {tuple(probs.shape)} and {tuple(targets.shape)}"
        )
    grid = as_sphere_grid(level)
    return metrics.segmentation_report(
        probs,
        targets,
        k,
        weights=grid.cell_areas(),
        lat=np.deg2rad(grid.lat) if bands else None,
        class_names=class_names,
    )


def flat_metrics(report: dict[str, Any], prefix: str = "val_") -> dict[str, float]:
    """One-level ``{name: float}`` view of a report for per-epoch logs.

    Parameters
    ----------
    report : dict
        A :func:`segmentation_report`.
    prefix : str
        Put before every name.

    Returns
    -------
    dict of str to float
        Mean IoU and AP, and each class's IoU (and AP); NaN where undefined.
    """

    def num(x: Any) -> float:
        return float("nan") if x is None else float(x)

    out = {f"{prefix}mean_iou": num(report["mean_iou"]), f"{prefix}mean_ap": num(report.get("mean_ap"))}
    for name in report["class_names"]:
        out[f"{prefix}iou_{name}"] = num(report["iou"][name])
        if "ap" in report:
            out[f"{prefix}ap_{name}"] = num(report["ap"][name])
    return out
