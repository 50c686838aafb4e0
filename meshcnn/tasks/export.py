"""Model weights people can share: a checkpoint's model exported to ``.safetensors`` with its config.

The file holds the ``state_dict`` and, as metadata, the model config of the task registry
(:mod:`.registry`), so that :func:`load_safetensors_model` rebuilds the model with
:func:`~meshcnn.tasks.build_model`. It lives here, over :mod:`meshcnn.train`'s checkpoints and the
registry, so that ``train`` does not import ``tasks``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from .._optional import optional_import
from ..io import atomic_write
from ..train.checkpoint import CheckpointError, load_checkpoint
from .registry import build_model, model_config

__all__ = ["export_safetensors", "load_safetensors_model", "SAFETENSORS_FORMAT"]

#: ``"format"`` in the metadata of the ``.safetensors`` files of :func:`export_safetensors`.
SAFETENSORS_FORMAT = "meshcnn-model"
#: ``"format_version"`` in that metadata: the layout of the metadata below.
SAFETENSORS_FORMAT_VERSION = "1"


def _stored_model_config(ckpt: Mapping[str, Any], path: Path) -> Any:
    """The typed model config of a checkpoint (``extra["config"]``); a :class:`CheckpointError` without one."""
    extra = ckpt.get("extra")
    config = extra.get("config") if isinstance(extra, Mapping) else None
    if not isinstance(config, Mapping):
        raise CheckpointError(
            f"checkpoint {path} has no model config (a dict in its extra state under 'config', as the "
            "experiments' train.py scripts store with fit(extra_state=...)): the model cannot be rebuilt from it"
        )
    try:
        return model_config(dict(config))
    except ValueError as err:
        raise CheckpointError(f"checkpoint {path} has an invalid model config: {err}") from err


def export_safetensors(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write a checkpoint's model weights to a ``.safetensors`` file, with the model config as metadata.

    The file holds the model's ``state_dict`` (no optimizer, no RNG states, no pickles) and,
    as its string metadata: ``format`` (:data:`SAFETENSORS_FORMAT`), ``format_version``,
    ``meshcnn_version``, ``task`` and ``kind`` of the model, ``config`` (the model config as
    JSON, :meth:`meshcnn.tasks.SegmenterConfig.to_dict` / :meth:`~meshcnn.tasks.ClassifierConfig.to_dict`),
    and the source checkpoint's ``epoch`` and ``checkpoint_checksum``. It is written atomically
    (a temporary file beside ``out``, renamed into place). :func:`load_safetensors_model`
    rebuilds the model from it; any safetensors reader (Python, Rust, JavaScript) reads the weights.

    Needs the optional extra ``weights`` (``pip install 'meshcnn[weights]'``).

    Parameters
    ----------
    checkpoint : path-like
        A checkpoint of :func:`meshcnn.train.fit` (or its run folder) whose extra state holds the
        model config under ``"config"`` (the climate segmentation and shape classification runs).
    out : path-like
        The ``.safetensors`` file, replaced if it exists.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    CheckpointError
        The checkpoint cannot be read (see :func:`load_checkpoint`), has no model config or an
        invalid one, or its model state holds something other than tensors.
    ImportError
        safetensors is not installed.
    """
    st = optional_import("safetensors.torch", "exporting a checkpoint to .safetensors needs safetensors", "weights")
    path = Path(checkpoint)
    ckpt = load_checkpoint(path)
    config = _stored_model_config(ckpt, path)
    state = ckpt.get("model")
    bad = [k for k, v in (state or {}).items() if not isinstance(v, torch.Tensor)] if isinstance(state, Mapping) else []
    if not isinstance(state, Mapping) or bad:
        raise CheckpointError(f"checkpoint {path}: its model state is not a dict of tensors (entries {bad[:5]})")
    # own, dense, contiguous CPU copies: safetensors refuses tensors that share memory
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    metadata = {
        "format": SAFETENSORS_FORMAT,
        "format_version": SAFETENSORS_FORMAT_VERSION,
        "meshcnn_version": __version__,
        "task": config.task,
        "kind": config.kind,
        "config": json.dumps(config.to_dict(), sort_keys=True),
        "epoch": str(ckpt.get("epoch", "")),
        "checkpoint_checksum": str(ckpt.get("checksum") or ""),
    }
    out = Path(out)
    with atomic_write(out) as f:
        f.write(st.save(tensors, metadata=metadata))
    return out


def load_safetensors_model(
    path: str | os.PathLike, *, mesh_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """The model of a ``.safetensors`` file of :func:`export_safetensors`: rebuilt from its config, weights loaded.

    The model is built by :func:`meshcnn.tasks.build_model` from the ``config`` metadata and
    its weights loaded with ``load_state_dict(strict=True)``: every tensor must fit.

    Parameters
    ----------
    path : path-like
        The ``.safetensors`` file.
    mesh_dir : path-like, optional
        Folder of cached meshes for a spherical model.
    device : str or torch.device
        Where the model is put.

    Returns
    -------
    torch.nn.Module
        In eval mode.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        The file is not a safetensors file, has no meshcnn model config in its metadata, or its
        tensors do not fit the model of the config (missing, unexpected or misshapen).
    ImportError
        safetensors is not installed.
    """
    safetensors = optional_import("safetensors", "loading a .safetensors model needs safetensors", "weights")
    st = optional_import("safetensors.torch", "loading a .safetensors model needs safetensors", "weights")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .safetensors file at {path}")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = st.load_file(str(path))
    except Exception as err:  # safetensors raises its own SafetensorError for a damaged or foreign file
        raise CheckpointError(f"cannot read {path} as a safetensors file: {err}") from err
    if metadata.get("format") != SAFETENSORS_FORMAT or "config" not in metadata:
        raise CheckpointError(
            f"{path} has no meshcnn model config in its metadata (keys {sorted(metadata)}): "
            "write it with meshcnn.tasks.export_safetensors (meshcnn export)"
        )
    try:
        model = build_model(json.loads(metadata["config"]), mesh_dir)
        model.load_state_dict(tensors, strict=True)
    except (ValueError, RuntimeError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: the weights do not fit the model of its config: {err}") from err
    return model.to(device).eval()
