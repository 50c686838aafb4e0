"""The trained model of ``meshcnn predict``, loaded from a climate segmentation checkpoint.

Everything the model needs comes from the checkpoint written by
``experiments/climate_segmentation/train.py`` (``extra``, a :class:`meshcnn.tasks.SegmenterRun`:
the model ``config`` with level, orientation and hemisphere flip, and the normalisation
``stats`` with the variable names); nothing is re-derived from the new files.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.climate import CLASSES, VARIABLES
from ..grids.families import sphere_grid
from ..tasks.segmentation import SegmenterRun

__all__ = ["PredictError", "Predictor", "load_predictor", "file_sha256"]


class PredictError(RuntimeError):
    """A problem that stops ``meshcnn predict`` (a bad checkpoint, output folder or input file)."""


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (read in blocks of 2**20 bytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Predictor:
    """A trained spherical segmentation model with everything needed to apply it.

    Attributes
    ----------
    model : torch.nn.Module
        In eval mode, on the prediction device.
    level : int
        Level of the model's input and output on its sphere grid.
    variables : tuple of str
        Input variables, in channel order.
    mean, std : np.ndarray
        ``(C,)`` float32 normalisation statistics: the model sees ``(x - mean) / std``.
    class_names : tuple of str
        Name of each output class index (index 0 is the background).
    checkpoint : str
        Path of the checkpoint file.
    sha256 : str
        Its SHA-256, recorded in every output.
    config : dict
        The model configuration stored in the checkpoint.
    grid : IcosphereGrid or HealpixGrid
        The sphere grid of the model's input and output (:func:`meshcnn.grids.sphere_grid` of the
        config's ``grid`` and ``level``): what the fields are regridded to and back from.
    """

    model: torch.nn.Module
    level: int
    variables: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    class_names: tuple[str, ...]
    checkpoint: str
    sha256: str
    config: dict[str, Any] = field(default_factory=dict)
    grid: Any = None

    def __post_init__(self) -> None:
        if self.grid is None:
            self.grid = sphere_grid(self.config.get("grid", "icosphere"), self.level)


def _checkpoint_and_run(path: Path) -> tuple[dict[str, Any], SegmenterRun]:
    """The checkpoint dict and its :class:`~meshcnn.tasks.SegmenterRun` of a spherical segmentation checkpoint;
    a :class:`PredictError` otherwise."""
    from ..train.checkpoint import load_checkpoint

    if not path.is_file():
        raise PredictError(f"{path}: no such checkpoint")
    try:
        ckpt = load_checkpoint(path)
    except (ValueError, FileNotFoundError) as exc:
        raise PredictError(f"{path}: not a meshcnn segmentation checkpoint ({exc})") from exc
    try:
        run = SegmenterRun.from_extra(ckpt.get("extra"))
    except ValueError as exc:
        raise PredictError(
            f"{path}: not a meshcnn segmentation checkpoint ({exc}; write it with "
            "experiments/climate_segmentation/train.py)"
        ) from exc
    if run.config["kind"] != "spherical":
        raise PredictError(f"{path}: a {run.config['kind']!r} model; meshcnn predict runs spherical U-Nets only")
    return ckpt, run


def load_predictor(path: str | os.PathLike, device: str | torch.device = "cpu") -> Predictor:
    """Load a checkpoint of ``experiments/climate_segmentation/train.py`` for prediction.

    Parameters
    ----------
    path : path-like
        ``RUN/checkpoint.pt``, or the run folder.
    device : str or torch.device
        Where the model runs.

    Returns
    -------
    Predictor

    Raises
    ------
    PredictError
        The file is missing, unreadable, not a meshcnn checkpoint, or not a spherical
        segmentation checkpoint (no model config or normalisation statistics, a planar model).
    """
    from ..tasks.registry import build_model

    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    ckpt, run = _checkpoint_and_run(path)
    config, stats = dict(run.config), run.stats
    variables = tuple(stats.get("variables") or VARIABLES)
    mean = np.asarray(stats["mean"], dtype=np.float32)
    std = np.asarray(stats["std"], dtype=np.float32)
    if mean.shape != (len(variables),) or std.shape != (len(variables),) or config.get("in_channels") != len(variables):
        raise PredictError(
            f"{path}: normalisation statistics do not match the model's {config.get('in_channels')} inputs"
        )
    class_names = tuple(stats.get("classes") or CLASSES)
    try:
        model = build_model(config)
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise PredictError(f"{path}: the weights do not fit the model config ({exc})") from exc
    model.eval().to(device)
    return Predictor(
        model=model,
        level=int(config["level"]),
        variables=variables,
        mean=mean,
        std=std,
        class_names=class_names,
        checkpoint=str(path),
        sha256=file_sha256(path),
        config=config,
    )
