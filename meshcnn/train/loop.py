"""The one training loop every experiment uses.

:func:`fit` trains any ``nn.Module`` on any map-style dataset of ``(input, target)``
pairs and owns everything around the optimisation step:

* **Exact resume.** After every epoch ``run_dir/checkpoint.pt`` is written
  atomically with the model, optimizer and scheduler states, the epoch, the
  history, caller-supplied ``extra_state`` (normalisation statistics, model
  configuration) and the RNG states of Python, NumPy and torch. Shuffling is
  drawn from a generator seeded with ``seed + epoch``, so ``fit(..., epochs=2)``
  followed by ``fit(..., epochs=4, resume=True)`` ends with the same parameters
  as ``fit(..., epochs=4)``.
* **No pickles.** Checkpoints hold only tensors, numbers, strings, lists, tuples
  and dicts, and are read back with ``torch.load(weights_only=True)``.
* **Integrity.** Every checkpoint carries a SHA-256 checksum of its content
  (:func:`checkpoint_checksum`), verified by :func:`load_checkpoint`: a damaged
  file is a :class:`CheckpointError` naming it, never a silent resume from
  corrupted state; an empty or truncated file says so. Temporary files left by a
  run killed while writing are removed when the next run starts in that folder.
* **Same settings.** :func:`check_resume_settings` refuses to resume a run with
  settings (command-line arguments) other than those it was started with, naming
  each difference; the experiment scripts call it before training.
* **Data parallel.** Under ``torchrun`` call :func:`init_distributed` first; ``fit``
  then wraps the model in ``DistributedDataParallel``, shards the data with a
  ``DistributedSampler`` and lets only rank 0 evaluate and write files.
* **Per-epoch data.** A dataset with a ``set_epoch(epoch)`` method (fresh random
  rotations each epoch, say) has it called before each epoch.

``run_dir/metrics.json`` holds the history: one dict per epoch with ``epoch``,
``train_loss``, ``lr``, ``time_s`` and whatever ``evaluate`` returned.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import struct
import time
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from .._progress import progress_bar

from ..io import remove_stale_temporaries, save_json, save_torch

__all__ = ["fit", "predict", "load_checkpoint", "init_distributed", "seed_everything", "constant_buffer_names",
           "checkpoint_checksum", "check_resume_settings", "CheckpointError", "ResumeSettingsError"]

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
CHECKPOINT_FORMAT = 2  # 2: with a "checksum"; 1 (no checksum) still loads, with a warning
READABLE_FORMATS = (1, 2)
ALWAYS_RESUMABLE = ("resume",)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: empty, truncated, damaged (checksum), or not a checkpoint."""


class ResumeSettingsError(ValueError):
    """``--resume`` with settings other than those the run was started with."""


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def init_distributed(device: str | torch.device = "cpu") -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment.

    Uses the ``gloo`` backend for CPU training and ``nccl`` for CUDA, and pins each
    CUDA process to ``cuda:LOCAL_RANK``. Outside ``torchrun`` (``WORLD_SIZE`` unset
    or 1) it does nothing.

    Returns:
        ``(rank, world_size)``; ``(0, 1)`` when not distributed.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _resolve_device(device: str | torch.device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and _distributed()[1] > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _weights_only_safe(obj: Any) -> Any:
    """Turn NumPy arrays and scalars into tensors and numbers so ``weights_only`` loads them."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _weights_only_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_weights_only_safe(o) for o in obj)
    return obj


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _digest(obj: Any, h: "hashlib._Hash") -> None:
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
    """``"sha256:<hex>"`` of a checkpoint dict's content, its ``"checksum"`` entry left out.

    Computed from the values (tensor dtypes, shapes and bytes; numbers; strings; the
    nesting of dicts, lists and tuples), not from the file's bytes, so it is the same
    before ``torch.save`` and after ``torch.load(weights_only=True)``, on any device.
    """
    h = hashlib.sha256()
    _digest({k: v for k, v in ckpt.items() if k != "checksum"}, h)
    return "sha256:" + h.hexdigest()


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`fit`, verify it and restore the given objects from it.

    The file is read with ``torch.load(weights_only=True)``: no code is unpickled.

    Returns:
        The checkpoint dict: ``model``, ``optimizer``, ``scheduler`` (state dicts),
        ``epoch`` (epochs completed), ``history``, ``extra`` (the ``extra_state``
        given to :func:`fit`), ``rng``, ``seed``, ``format``, ``checksum``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: (a ``ValueError``) naming the file, when it is empty,
            truncated or unreadable, not a meshcnn checkpoint, or fails its checksum
            (damaged on disk). A checkpoint written before checksums existed
            (format 1) loads with a warning.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): it was not written completely; "
                              "restore it from a backup or start the run again")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated, damaged or foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        what = ("is truncated or not a torch checkpoint (no zip directory at its end)" if not zipfile.is_zipfile(path)
                else "is damaged or not a meshcnn checkpoint")
        raise CheckpointError(f"cannot read checkpoint {path} ({size} bytes): it {what}: {reason}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") not in READABLE_FORMATS:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a meshcnn checkpoint of format {' or '.join(map(str, READABLE_FORMATS))} "
                              f"(found {found!r})")
    stored = ckpt.get("checksum")
    if stored is None and ckpt["format"] >= 2:
        raise CheckpointError(f"checkpoint {path} has no checksum although its format ({ckpt['format']}) has one: "
                              "the file is damaged")
    if stored is None:
        warnings.warn(f"checkpoint {path} was written without a checksum (format 1): its integrity cannot be "
                      "verified", stacklevel=2)
    elif stored != checkpoint_checksum(ckpt):
        raise CheckpointError(f"checkpoint {path} fails its checksum: the file is damaged (a changed byte on disk); "
                              "restore it from a backup or start the run again")
    if model is not None:
        model.load_state_dict(ckpt["model"])
    if optimizer is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    return ckpt


def _setting_text(value: Any) -> str:
    """A setting as the text it is compared by: scripts store ``str(value)`` or plain values."""
    if isinstance(value, tuple):
        value = list(value)
    return str(value)


def check_resume_settings(run_dir: str | os.PathLike, settings: Mapping[str, Any] | argparse.Namespace, *,
                          may_change: Iterable[str] = (), key: str = "args",
                          log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Refuse to resume the run in ``run_dir`` with other settings than it was started with.

    Compares ``settings`` (a script's parsed arguments) with those stored in the
    run's checkpoint as ``extra_state[key]`` (as values or as their ``str``), setting
    by setting, ignoring ``may_change`` (those that may differ on resume: the
    device, thread and worker counts, progress bars; ``resume`` itself always).

    Parameters
    ----------
    run_dir : the run folder (or its ``checkpoint.pt``)
    settings : ``argparse.Namespace`` or dict of the new settings
    may_change : names (``dest``, e.g. ``"num_workers"``) of the settings that may differ
    key : where in the checkpoint's ``extra`` state the settings are stored
    log : told about settings that the run did not record (options newer than the run)

    Returns
    -------
    The checkpoint's ``extra`` state, or ``None`` when ``run_dir`` has no checkpoint
    (a fresh start: nothing to compare).

    Raises
    ------
    ResumeSettingsError
        (a ``ValueError``) naming the checkpoint and, for each differing setting, its
        option, the run's value and the new one, and listing those that may change.
    CheckpointError
        If the checkpoint cannot be read (see :func:`load_checkpoint`).
    """
    path = Path(run_dir)
    if path.is_dir() or path.suffix != ".pt":
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        return None
    extra = load_checkpoint(path)["extra"]
    new = vars(settings) if isinstance(settings, argparse.Namespace) else dict(settings)
    stored = extra.get(key) if isinstance(extra, dict) else None
    if not isinstance(stored, dict):
        log(f"warning: {path} does not record the settings it was trained with; they cannot be checked")
        return extra
    allowed = set(may_change) | set(ALWAYS_RESUMABLE)

    def option(name: str) -> str:
        return "--" + name.replace("_", "-")

    differences = [f"  {option(name)}: the run has {_setting_text(stored[name])}, now {_setting_text(value)}"
                   for name, value in new.items()
                   if name not in allowed and name in stored and _setting_text(stored[name]) != _setting_text(value)]
    unrecorded = sorted(name for name in new if name not in allowed and name not in stored)
    if differences:
        may = ", ".join(option(n) for n in sorted(allowed))
        raise ResumeSettingsError(f"cannot resume {path} with other settings than the run's:\n" + "\n".join(differences)
                                  + f"\nResume with the run's settings or use a new run folder "
                                  f"(settings that may change on resume: {may})")
    if unrecorded:
        log(f"warning: {path} does not record {', '.join(option(n) for n in unrecorded)} (options newer than the "
            "run); they are assumed to match")
    return extra


def _loader(dataset: Dataset, batch_size: int, sampler, num_workers: int, collate_fn, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_fn, generator=generator, persistent_workers=False)


def constant_buffer_names(model: nn.Module) -> list[str]:
    """Fully qualified names of ``model``'s non-persistent buffers.

    In this library those are derived constants (the meshes' sparse operators and
    their block indices, pooling rings, area weights), rebuilt the same on every
    rank, so distributed training need not broadcast them (for a level-5
    SphericalUNet on a GPU they hold 66-81 MB).
    """
    return [f"{prefix}.{name}" if prefix else name for prefix, module in model.named_modules()
            for name in module._non_persistent_buffers_set if module._buffers.get(name) is not None]


def fit(model: nn.Module, train_set: Dataset, *, optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[Any, Any], torch.Tensor], epochs: int, batch_size: int,
        run_dir: str | os.PathLike, val_set: Dataset | None = None,
        evaluate: Callable[[nn.Module, Dataset, torch.device], dict[str, float]] | None = None,
        scheduler: Any | None = None, device: str | torch.device = "cpu", seed: int = 0,
        resume: bool = False, extra_state: dict[str, Any] | None = None, num_workers: int = 0,
        progress: bool = True, collate_fn: Callable | None = None,
        log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train ``model`` for ``epochs`` epochs (in total, counting resumed ones).

    Args:
        model: any module; moved to ``device``. Build it after seeding if its
            initialisation must be reproducible.
        train_set: map-style dataset of ``(input, target)``; inputs and targets may
            be tensors or (nested) tuples/lists/dicts of tensors.
        optimizer, scheduler: ``scheduler.step()`` is called once per epoch.
        loss_fn: ``loss_fn(model(input), target) -> scalar tensor``.
        epochs: total number of epochs; with ``resume`` training continues from
            the checkpoint's epoch up to this number.
        batch_size: per process.
        run_dir: where ``checkpoint.pt`` and ``metrics.json`` are written.
        val_set, evaluate: after each epoch rank 0 calls
            ``evaluate(model, val_set, device) -> dict`` (the unwrapped model, in
            eval mode) and adds the result to the epoch's record.
        seed: seeds the global generators on a fresh start and the per-epoch
            shuffling (``seed + epoch``).
        resume: continue from ``run_dir/checkpoint.pt`` if it exists.
        extra_state: saved in the checkpoint as ``"extra"`` (NumPy arrays are
            stored as tensors).
        progress: show a tqdm bar per epoch (rank 0 only).
        log: called with a one-line summary per epoch.

    Returns:
        The history: one dict per epoch.

    Raises:
        FloatingPointError: when the loss becomes NaN or infinite (naming epoch
            and batch), instead of silently training on garbage.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    rank, world_size = _distributed()
    device = _resolve_device(device)
    model.to(device)
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT_NAME

    if rank == 0:  # debris of a run killed while writing (never renamed into place: not part of any result)
        for stale in remove_stale_temporaries(ckpt_path) + remove_stale_temporaries(run_dir / METRICS_NAME):
            log(f"removed {stale}, left by an interrupted checkpoint write")

    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, model, optimizer, scheduler, map_location=device)
        start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
        _set_rng_state(ckpt["rng"])
        log(f"resumed from {ckpt_path} after epoch {start_epoch}")
    else:
        if resume:
            log(f"no checkpoint in {run_dir}; starting from scratch")
        seed_everything(seed)
    if start_epoch >= epochs:
        log(f"already trained for {start_epoch} >= {epochs} epochs; nothing to do")
        return history

    train_model: nn.Module = model
    if world_size > 1:
        # constant buffers are built identically on every rank: not broadcast at every step
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            model, constant_buffer_names(model))
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    else:
        sampler = None

    for epoch in range(start_epoch, epochs):
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
            epoch_sampler = sampler
        else:
            epoch_sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(seed + epoch))
        loader = _loader(train_set, batch_size, epoch_sampler, num_workers, collate_fn, seed + epoch)

        train_model.train()
        start = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        count = torch.zeros((), dtype=torch.float64, device=device)
        bar = progress_bar(loader, enabled=progress and rank == 0, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                           dynamic_ncols=True)
        for step, (inputs, targets) in enumerate(bar):
            inputs, targets = _to_device(inputs, device), _to_device(targets, device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(train_model(inputs), targets)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, batch {step}")
            loss.backward()
            optimizer.step()
            n = len(inputs) if isinstance(inputs, torch.Tensor) else batch_size
            loss_sum += loss.detach().double() * n
            count += n
            if progress:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        if world_size > 1:
            totals = torch.stack([loss_sum, count])
            dist.all_reduce(totals)
            loss_sum, count = totals[0], totals[1]
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()

        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(loss_sum / count), "lr": lr,
                                  "time_s": time.perf_counter() - start}
        if rank == 0:
            if val_set is not None and evaluate is not None:
                model.eval()
                with torch.no_grad():
                    record.update({k: _weights_only_safe(v) for k, v in evaluate(model, val_set, device).items()})
            history.append(record)
            state = {
                "format": CHECKPOINT_FORMAT,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "epoch": epoch + 1,
                "history": history,
                "rng": _rng_state(),
                "extra": _weights_only_safe(extra_state or {}),
                "seed": seed,
            }
            state["checksum"] = checkpoint_checksum(state)
            save_torch(ckpt_path, state)
            save_json(run_dir / METRICS_NAME, _jsonable(history))
            log(_summary(record))
        else:
            history.append(record)
        if world_size > 1:
            dist.barrier()
    return history


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(o) for o in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def _summary(record: dict[str, Any]) -> str:
    parts = []
    for key, value in record.items():
        if isinstance(value, float):
            parts.append(f"{key} {value:.4g}")
        elif isinstance(value, int):
            parts.append(f"{key} {value}")
    return " | ".join(parts)


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, *, batch_size: int = 8, device: str | torch.device = "cpu",
            progress: bool = False, collate_fn: Callable | None = None,
            num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` in eval mode over ``dataset`` in order.

    Returns:
        ``(outputs, targets)``: the model outputs and the dataset targets,
        concatenated along the batch dimension, on the CPU.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn,
                        num_workers=num_workers)
    outputs, targets = [], []
    for inputs, target in progress_bar(loader, enabled=progress, desc="predict", leave=False):
        outputs.append(model(_to_device(inputs, device)).cpu())
        targets.append(target if isinstance(target, torch.Tensor) else torch.as_tensor(target))
    model.train(was_training)
    if not outputs:
        raise ValueError("predict() got an empty dataset")
    return torch.cat(outputs), torch.cat(targets)
