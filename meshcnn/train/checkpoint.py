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

__all__ = ["load_checkpoint", "checkpoint_checksum", "CheckpointError"]

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
