"""Weights-only training checkpoints with a content checksum.

A checkpoint is one ``torch.save`` file, ``run_dir/checkpoint.pt``, written atomically
(:func:`meshcnn.io.save_torch`: a temporary file renamed into place) after every epoch.

* **No pickles.** It holds only tensors, numbers, strings, lists, tuples and dicts,
  and is read back with ``torch.load(weights_only=True)``.
* **Integrity.** It carries a SHA-256 checksum of its content
  (:func:`checkpoint_checksum`), verified by :func:`load_checkpoint`: a damaged file
  is a :class:`CheckpointError` naming it, never a silent resume from corrupted
  state; an empty or truncated file says so.
* **Exact resume.** Besides the model, optimizer and scheduler states it stores the
  RNG states of Python, NumPy and torch (:func:`rng_state`), restored by
  :func:`set_rng_state`, and the trainer's state (``GradScaler``, early stopping).

Format 2 has a ``"checksum"`` entry; format 1 (written before checksums existed) still
loads, with a warning.

:func:`export_safetensors` (``meshcnn export``) writes a checkpoint's model weights to a
``.safetensors`` file with the model config as metadata, for deployment and other tools;
:func:`load_safetensors_model` rebuilds the model from one (optional extra ``weights``).
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import save_torch

__all__ = ["load_checkpoint", "checkpoint_checksum", "CheckpointError", "export_safetensors", "load_safetensors_model"]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 2  # 2: with a "checksum"; 1 (no checksum) still loads, with a warning
READABLE_FORMATS = (1, 2)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: empty, truncated, damaged (checksum), or not a checkpoint."""


# ------------------------------------------------------------------------------------ content
def weights_only_safe(obj: Any) -> Any:
    """``obj`` with NumPy arrays as tensors and NumPy scalars as Python numbers.

    Parameters
    ----------
    obj : Any
        A value, or (nested) dicts, lists and tuples of values.

    Returns
    -------
    Any
        The same structure, loadable by ``torch.load(weights_only=True)``.
    """
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: weights_only_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(weights_only_safe(o) for o in obj)
    return obj


def rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (and CUDA's, when present).

    Returns
    -------
    dict
        ``{"python", "numpy", "torch"[, "cuda"]}``; the NumPy state as a dict of a tensor
        and numbers, so that a weights-only checkpoint can hold it.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators from a :func:`rng_state` dict (CUDA's only when present in both)."""
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _digest(obj: Any, h: hashlib._Hash) -> None:
    """Feed a canonical byte form of ``obj`` (what a weights-only checkpoint can hold) to ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().resolve_conj().resolve_neg().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, Mapping):
        h.update(f"D{len(obj)}:".encode())
        for key, value in obj.items():
            _digest(key, h)
            _digest(value, h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}:".encode())
        for item in obj:
            _digest(item, h)
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(f"S{len(data)}:".encode() + data)
    elif isinstance(obj, (bytes, bytearray)):
        h.update(f"B{len(obj)}:".encode() + bytes(obj))
    elif obj is None or isinstance(obj, (bool, int)):
        h.update(f"I{obj!r};".encode())
    elif isinstance(obj, float):
        h.update(b"F" + struct.pack("<d", obj))
    else:  # complex, torch.dtype, torch.device, torch.Size, ...: their repr is deterministic
        h.update(f"O{type(obj).__name__}:{obj!r};".encode())


def checkpoint_checksum(ckpt: Mapping[str, Any]) -> str:
    """The SHA-256 of a checkpoint dict's content, its ``"checksum"`` entry left out.

    Computed from the values (tensor dtypes, shapes and bytes; numbers; strings; the
    nesting of dicts, lists and tuples), not from the file's bytes, so it is the same
    before ``torch.save`` and after ``torch.load(weights_only=True)``, on any device.

    Parameters
    ----------
    ckpt : Mapping
        A checkpoint dict.

    Returns
    -------
    str
        ``"sha256:<hex>"``.
    """
    h = hashlib.sha256()
    _digest({k: v for k, v in ckpt.items() if k != "checksum"}, h)
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------------------------- write / read
def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    *,
    epoch: int,
    history: list[dict[str, Any]],
    extra_state: dict[str, Any] | None,
    seed: int,
    trainer_state: dict[str, Any] | None = None,
) -> None:
    """Atomically write a format-2 checkpoint after ``epoch`` epochs, with the current RNG states.

    Parameters
    ----------
    path : path-like
        The checkpoint file (``run_dir/checkpoint.pt``).
    model, optimizer, scheduler
        Their ``state_dict()`` are stored (``scheduler`` may be ``None``).
    epoch : int
        Epochs completed.
    history : list of dict
        One record per epoch completed.
    extra_state : dict or None
        Stored as ``"extra"`` (NumPy arrays as tensors).
    seed : int
        The run's seed.
    trainer_state : dict, optional
        Stored as ``"trainer"``: the :class:`meshcnn.train.Trainer`'s settings that a
        resume must match, its fp16 ``GradScaler`` and early-stopping states.
    """
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "history": history,
        "rng": rng_state(),
        "extra": weights_only_safe(extra_state or {}),
        "seed": seed,
        "trainer": weights_only_safe(trainer_state),
    }
    state["checksum"] = checkpoint_checksum(state)
    save_torch(path, state)


def _read(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """The checkpoint dict in ``path``, unverified; a :class:`CheckpointError` for an unreadable file."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(
            f"checkpoint {path} is empty (0 bytes): it was not written completely; "
            "restore it from a backup or start the run again"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated, damaged or foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        what = (
            "is truncated or not a torch checkpoint (no zip directory at its end)"
            if not zipfile.is_zipfile(path)
            else "is damaged or not a meshcnn checkpoint"
        )
        raise CheckpointError(f"cannot read checkpoint {path} ({size} bytes): it {what}: {reason}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") not in READABLE_FORMATS:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path} is not a meshcnn checkpoint of format {' or '.join(map(str, READABLE_FORMATS))} (found {found!r})"
        )
    return ckpt


def _verify(path: Path, ckpt: dict[str, Any]) -> None:
    """Check the stored checksum (format 2) or warn that there is none (format 1)."""
    stored = ckpt.get("checksum")
    if stored is None and ckpt["format"] >= 2:
        raise CheckpointError(
            f"checkpoint {path} has no checksum although its format ({ckpt['format']}) has one: the file is damaged"
        )
    if stored is None:
        warnings.warn(
            f"checkpoint {path} was written without a checksum (format 1): its integrity cannot be verified",
            stacklevel=3,
        )
    elif stored != checkpoint_checksum(ckpt):
        raise CheckpointError(
            f"checkpoint {path} fails its checksum: the file is damaged (a changed byte on disk); "
            "restore it from a backup or start the run again"
        )


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`meshcnn.train.fit` (a Trainer), verify it and restore the given objects.

    The file is read with ``torch.load(weights_only=True)``: no code is unpickled.

    Parameters
    ----------
    path : path-like
        The checkpoint file, or the run folder holding ``checkpoint.pt``.
    model, optimizer, scheduler : optional
        Loaded from the checkpoint's state dicts when given (the scheduler only when the
        checkpoint has one).
    map_location : str or torch.device
        Where the tensors are loaded.

    Returns
    -------
    dict
        ``model``, ``optimizer``, ``scheduler`` (state dicts), ``epoch`` (epochs
        completed), ``history``, ``extra`` (the ``extra_state`` given to ``fit``),
        ``rng``, ``seed``, ``format``, ``checksum`` and, from runs of the
        :class:`meshcnn.train.Trainer`, ``trainer`` (precision, accumulation, clipping,
        ``GradScaler`` and early-stopping states).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        (a ``ValueError``) naming the file, when it is empty, truncated or unreadable,
        not a meshcnn checkpoint, or fails its checksum (damaged on disk). A checkpoint
        written before checksums existed (format 1) loads with a warning.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = _read(path, map_location)
    _verify(path, ckpt)
    if model is not None:
        model.load_state_dict(ckpt["model"])
    if optimizer is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    return ckpt


# ---------------------------------------------------------------------------------- safetensors export
#: ``"format"`` in the metadata of the ``.safetensors`` files of :func:`export_safetensors`.
SAFETENSORS_FORMAT = "meshcnn-model"
#: ``"format_version"`` in that metadata: the layout of the metadata below.
SAFETENSORS_FORMAT_VERSION = "1"


def _stored_model_config(ckpt: Mapping[str, Any], path: Path) -> Any:
    """The typed model config of a checkpoint (``extra["config"]``); a :class:`CheckpointError` without one."""
    from ..tasks.registry import model_config

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
    import json

    from .. import __version__
    from .._optional import optional_import
    from ..io import atomic_write

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
    import json

    from .._optional import optional_import
    from ..tasks.registry import build_model

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
            "write it with meshcnn.train.export_safetensors (meshcnn export)"
        )
    try:
        model = build_model(json.loads(metadata["config"]), mesh_dir)
        model.load_state_dict(tensors, strict=True)
    except (ValueError, RuntimeError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: the weights do not fit the model of its config: {err}") from err
    return model.to(device).eval()
