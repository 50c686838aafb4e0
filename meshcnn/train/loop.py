"""The one training loop every experiment uses.

:func:`fit` trains any ``nn.Module`` on any map-style dataset of ``(input, target)``
pairs and owns everything around the optimisation step:

* **Exact resume.** After every epoch ``run_dir/checkpoint.pt`` is written
  atomically (:mod:`.checkpoint`) with the model, optimizer and scheduler states,
  the epoch, the history, caller-supplied ``extra_state`` (normalisation statistics,
  model configuration) and the RNG states of Python, NumPy and torch. Shuffling is
  drawn from a generator seeded with ``seed + epoch``, so ``fit(..., epochs=2)``
  followed by ``fit(..., epochs=4, resume=True)`` ends with the same parameters
  as ``fit(..., epochs=4)``. Temporary files left by a run killed while writing are
  removed when the next run starts in that folder.
* **Same settings.** :func:`meshcnn.train.check_resume_settings` (:mod:`.settings`)
  refuses to resume a run with other settings than it was started with.
* **Data parallel.** Under ``torchrun`` call :func:`meshcnn.train.init_distributed`
  first (:mod:`.distributed`); ``fit`` then trains a ``DistributedDataParallel``
  model on a sharded dataset and lets only rank 0 evaluate and write files.
* **Per-epoch data.** A dataset with a ``set_epoch(epoch)`` method (fresh random
  rotations each epoch, say) has it called before each epoch.

``run_dir/metrics.json`` holds the history: one dict per epoch with ``epoch``,
``train_loss``, ``lr``, ``time_s`` and whatever ``evaluate`` returned.
"""
from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from .._progress import progress_bar
from ..io import remove_stale_temporaries, save_json
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, set_rng_state, weights_only_safe
from .distributed import all_reduce_sum, barrier, data_parallel, rank_and_world_size, resolve_device

__all__ = ["fit", "predict", "seed_everything"]

METRICS_NAME = "metrics.json"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices).

    Parameters
    ----------
    seed : int
        NumPy gets ``seed % 2**32``.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit(model: nn.Module, train_set: Dataset, *, optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[Any, Any], torch.Tensor], epochs: int, batch_size: int,
        run_dir: str | os.PathLike, val_set: Dataset | None = None,
        evaluate: Callable[[nn.Module, Dataset, torch.device], dict[str, float]] | None = None,
        scheduler: Any | None = None, device: str | torch.device = "cpu", seed: int = 0,
        resume: bool = False, extra_state: dict[str, Any] | None = None, num_workers: int = 0,
        progress: bool = True, collate_fn: Callable | None = None,
        log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train ``model`` for ``epochs`` epochs (in total, counting resumed ones).

    Parameters
    ----------
    model : nn.Module
        Moved to ``device``. Build it after seeding if its initialisation must be reproducible.
    train_set : Dataset
        Map-style dataset of ``(input, target)``; inputs and targets may be tensors or
        (nested) tuples, lists or dicts of tensors.
    optimizer : torch.optim.Optimizer
    loss_fn : callable
        ``loss_fn(model(input), target) -> scalar tensor``.
    epochs : int
        Total number of epochs; with ``resume`` training continues from the
        checkpoint's epoch up to this number.
    batch_size : int
        Per process.
    run_dir : path-like
        Where ``checkpoint.pt`` and ``metrics.json`` are written.
    val_set, evaluate : optional
        After each epoch rank 0 calls ``evaluate(model, val_set, device) -> dict`` (the
        unwrapped model, in eval mode, without gradients) and adds the result to the
        epoch's record.
    scheduler : optional
        ``scheduler.step()`` is called once per epoch.
    device : str or torch.device
    seed : int
        Seeds the global generators on a fresh start and the per-epoch shuffling
        (``seed + epoch``).
    resume : bool
        Continue from ``run_dir/checkpoint.pt`` if it exists.
    extra_state : dict, optional
        Saved in the checkpoint as ``"extra"`` (NumPy arrays are stored as tensors).
    num_workers, collate_fn
        Passed to the ``DataLoader``.
    progress : bool
        Show a tqdm bar per epoch (rank 0 only).
    log : callable
        Called with a one-line summary per epoch.

    Returns
    -------
    list of dict
        The history: one record per epoch.

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or infinite (naming epoch and batch), instead of
        silently training on garbage.
    """
    # over 60 lines only by its docstring (18 parameters); the steps are the functions below
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    rank = rank_and_world_size()[0]
    device = resolve_device(device)
    model.to(device)
    run_dir = Path(run_dir)
    if rank == 0:
        _remove_debris(run_dir, log)
    start_epoch, history = _resume_or_seed(run_dir, model, optimizer, scheduler, device=device, seed=seed,
                                           resume=resume, log=log)
    if start_epoch >= epochs:
        if rank == 0 and history:  # a run killed between its last checkpoint and metrics.json leaves it stale
            save_json(run_dir / METRICS_NAME, _jsonable(history))
        log(f"already trained for {start_epoch} >= {epochs} epochs; nothing to do")
        return history
    train_model, sampler = data_parallel(model, train_set, device, seed)
    for epoch in range(start_epoch, epochs):
        loader = _epoch_loader(train_set, sampler, epoch, seed=seed, batch_size=batch_size,
                               num_workers=num_workers, collate_fn=collate_fn)
        start = time.perf_counter()
        loss_sum, count = _train_epoch(train_model, loader, optimizer, loss_fn, device, batch_size,
                                       epoch=epoch, epochs=epochs, bar=progress and rank == 0)
        loss_sum, count = all_reduce_sum(loss_sum, count)
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(loss_sum / count), "lr": lr,
                                  "time_s": time.perf_counter() - start}
        if rank == 0 and val_set is not None and evaluate is not None:
            record.update(_evaluate(model, val_set, evaluate, device))
        history.append(record)
        if rank == 0:
            save_checkpoint(run_dir / CHECKPOINT_NAME, model, optimizer, scheduler, epoch=epoch + 1,
                            history=history, extra_state=extra_state, seed=seed)
            save_json(run_dir / METRICS_NAME, _jsonable(history))
            log(_summary(record))
        barrier()
    return history


def _remove_debris(run_dir: Path, log: Callable[[str], None]) -> None:
    """Delete the temporary files of a run killed while writing (never renamed into place: not part of any result)."""
    for stale in remove_stale_temporaries(run_dir / CHECKPOINT_NAME) + remove_stale_temporaries(run_dir / METRICS_NAME):
        log(f"removed {stale}, left by an interrupted checkpoint write")


def _resume_or_seed(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any | None, *,
                    device: torch.device, seed: int, resume: bool,
                    log: Callable[[str], None]) -> tuple[int, list[dict[str, Any]]]:
    """Restore the run's checkpoint (states and RNGs) when resuming from one, else seed the generators.

    Returns
    -------
    tuple
        ``(epochs completed, history)``; ``(0, [])`` on a fresh start.
    """
    ckpt_path = run_dir / CHECKPOINT_NAME
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, model, optimizer, scheduler, map_location=device)
        set_rng_state(ckpt["rng"])
        log(f"resumed from {ckpt_path} after epoch {int(ckpt['epoch'])}")
        return int(ckpt["epoch"]), list(ckpt["history"])
    if resume:
        log(f"no checkpoint in {run_dir}; starting from scratch")
    seed_everything(seed)
    return 0, []


def _epoch_loader(train_set: Dataset, sampler: Sampler | None, epoch: int, *, seed: int, batch_size: int,
                  num_workers: int, collate_fn: Callable | None) -> DataLoader:
    """The loader of one epoch: its shuffling (and the workers' seeds) drawn from ``seed + epoch``."""
    if hasattr(train_set, "set_epoch"):
        train_set.set_epoch(epoch)
    if sampler is not None:  # distributed: the sampler shuffles with seed + epoch itself
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(seed + epoch))
    return DataLoader(train_set, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_fn, generator=torch.Generator().manual_seed(seed + epoch),
                      persistent_workers=False)


def _train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                 loss_fn: Callable[[Any, Any], torch.Tensor], device: torch.device, batch_size: int, *,
                 epoch: int, epochs: int, bar: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Epoch ``epoch`` (0-based) of ``epochs``: one pass over ``loader``, one optimizer step per batch.

    Returns
    -------
    tuple of torch.Tensor
        ``(loss_sum, count)``, float64 scalars on ``device``: the sum of the batch
        losses weighted by the batch sizes, and the number of samples (a batch whose
        input is not one tensor counts as ``batch_size``).
    """
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    batches = progress_bar(loader, enabled=bar, desc=f"epoch {epoch + 1}/{epochs}", leave=False, dynamic_ncols=True)
    for step, (inputs, targets) in enumerate(batches):
        inputs, targets = _to_device(inputs, device), _to_device(targets, device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, batch {step}")
        loss.backward()
        optimizer.step()
        n = len(inputs) if isinstance(inputs, torch.Tensor) else batch_size
        loss_sum += loss.detach().double() * n
        count += n
        if bar:
            batches.set_postfix(loss=f"{loss.item():.4f}")
    batches.close()
    return loss_sum, count


def _evaluate(model: nn.Module, val_set: Dataset, evaluate: Callable, device: torch.device) -> dict[str, Any]:
    """``evaluate(model, val_set, device)`` in eval mode without gradients, its values checkpoint-safe."""
    model.eval()
    with torch.no_grad():
        return {k: weights_only_safe(v) for k, v in evaluate(model, val_set, device).items()}


def _to_device(obj: Any, device: torch.device) -> Any:
    """Tensors in ``obj`` (also inside lists, tuples and dicts) moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _jsonable(obj: Any) -> Any:
    """``obj`` as JSON can hold it: tensors as lists, non-finite floats as strings."""
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
    """One line: ``epoch 3 | train_loss 0.1234 | ...`` (the numbers of the record)."""
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

    Parameters
    ----------
    model : nn.Module
        Moved to ``device``; its training mode is restored afterwards.
    dataset : Dataset
        Map-style dataset of ``(input, target)``.
    batch_size, num_workers, collate_fn
        Passed to the ``DataLoader``.
    device : str or torch.device
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    tuple of torch.Tensor
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
