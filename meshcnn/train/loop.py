"""The training entry point :func:`fit` (a thin function over :class:`meshcnn.train.Trainer`) and :func:`predict`.

:func:`fit` trains any ``nn.Module`` on any map-style dataset of ``(input, target)``
pairs with exact resume, seeded per-epoch shuffling, data parallel training under
``torchrun``, mixed precision, gradient clipping and accumulation, hooks, early
stopping and ``torch.compile``: see :mod:`meshcnn.train.trainer`.

``run_dir/metrics.json`` holds the history: one dict per epoch with ``epoch``,
``train_loss``, ``lr``, ``time_s`` and whatever ``evaluate`` returned.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._progress import progress_bar
from .distributed import resolve_device
from .trainer import EarlyStopping, Trainer, _to_device, seed_everything

__all__ = ["fit", "predict", "seed_everything"]


def fit(
    model: nn.Module,
    train_set: Dataset,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    epochs: int,
    batch_size: int,
    run_dir: str | os.PathLike,
    val_set: Dataset | None = None,
    evaluate: Callable[[nn.Module, Dataset, torch.device], dict[str, float]] | None = None,
    scheduler: Any | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    resume: bool = False,
    extra_state: dict[str, Any] | None = None,
    num_workers: int = 0,
    progress: bool = True,
    collate_fn: Callable | None = None,
    log: Callable[[str], None] = print,
    precision: str = "fp32",
    grad_clip: float | None = None,
    accumulate: int = 1,
    callbacks: Iterable[Any] = (),
    early_stopping: EarlyStopping | None = None,
    compile: bool | dict[str, Any] = False,
) -> list[dict[str, Any]]:
    """Train ``model`` for ``epochs`` epochs (in total, counting resumed ones).

    ``Trainer(**settings).fit(model, train_set, val_set, evaluate, epochs=epochs,
    resume=resume)``: the parameters are those of :class:`meshcnn.train.Trainer` and
    :meth:`meshcnn.train.Trainer.fit`.

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
    precision : {"fp32", "bf16", "fp16"}
        Mixed precision of the training steps (``"fp16"`` on CUDA only).
    grad_clip : float, optional
        Clip the gradients' total 2-norm to this before each step.
    accumulate : int
        Batches per optimizer step.
    callbacks : iterable of Callback
        ``on_validation(trainer, metrics)``, ``on_epoch_end(trainer, record)`` (rank 0).
    early_stopping : EarlyStopping, optional
        Stop when its metric stops improving.
    compile : bool or dict
        Train through ``torch.compile`` (a dict: its keyword arguments).

    Returns
    -------
    list of dict
        The history: one record per epoch.

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or infinite (naming epoch and batch), instead of
        silently training on garbage.
    ValueError
        For invalid settings (see :class:`meshcnn.train.Trainer`); a
        :class:`meshcnn.train.ResumeSettingsError` when resuming with another precision,
        accumulation or clipping than the run's.
    """
    trainer = Trainer(
        optimizer=optimizer,
        loss_fn=loss_fn,
        batch_size=batch_size,
        run_dir=run_dir,
        scheduler=scheduler,
        device=device,
        seed=seed,
        precision=precision,
        grad_clip=grad_clip,
        accumulate=accumulate,
        callbacks=callbacks,
        early_stopping=early_stopping,
        compile=compile,
        extra_state=extra_state,
        num_workers=num_workers,
        collate_fn=collate_fn,
        progress=progress,
        log=log,
    )
    return trainer.fit(model, train_set, val_set, evaluate, epochs=epochs, resume=resume)


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    progress: bool = False,
    collate_fn: Callable | None = None,
    num_workers: int = 0,
) -> tuple[Any, Any]:
    """Run ``model`` in eval mode over ``dataset`` in order.

    Parameters
    ----------
    model : nn.Module
        Moved to ``device``; its training mode is restored afterwards.
    dataset : Dataset
        Map-style dataset of ``(input, target)``, as :func:`fit` takes: inputs and
        targets may be tensors or (nested) tuples, lists or dicts of tensors (or numbers).
    batch_size, num_workers, collate_fn
        Passed to the ``DataLoader``.
    device : str or torch.device
        Resolved as :func:`fit` does: a bare ``"cuda"`` under ``torchrun`` is this process's GPU.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    tuple
        ``(outputs, targets)``: the model outputs and the dataset targets, on the CPU,
        concatenated along the batch dimension; each a tensor, or the structure of
        tuples, lists and dicts of the batches with concatenated tensors in it.

    Raises
    ------
    ValueError
        For an empty dataset.
    """
    device = resolve_device(device)
    was_training = model.training
    model.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn, num_workers=num_workers)
    outputs, targets = [], []
    try:
        for inputs, target in progress_bar(loader, enabled=progress, desc="predict", leave=False):
            outputs.append(_as_tensors(model(_to_device(inputs, device))))
            targets.append(_as_tensors(target))
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("predict() got an empty dataset")
    return _concat(outputs), _concat(targets)


def _as_tensors(obj: Any) -> Any:
    """``obj`` on the CPU: tensors (also in tuples, lists and dicts) kept, a list or tuple of numbers as one tensor."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _as_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and any(isinstance(o, (torch.Tensor, dict, list, tuple)) for o in obj):
        return (
            type(obj)(_as_tensors(o) for o in obj)
            if type(obj) in (list, tuple)
            else type(obj)(*(_as_tensors(o) for o in obj))
        )  # a named tuple
    return torch.as_tensor(obj)


def _concat(batches: list[Any]) -> Any:
    """The batches (same structure each) with their tensors concatenated along dimension 0."""
    first = batches[0]
    if isinstance(first, torch.Tensor):
        return torch.cat([b.reshape(1) if b.ndim == 0 else b for b in batches])
    if isinstance(first, dict):
        return {k: _concat([b[k] for b in batches]) for k in first}
    parts = [_concat(list(items)) for items in zip(*batches)]
    return type(first)(parts) if type(first) in (list, tuple) else type(first)(*parts)
