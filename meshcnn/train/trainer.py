"""The Trainer: the one training loop every experiment uses, with its settings in one object.

:class:`Trainer` trains any ``nn.Module`` on any map-style dataset of ``(input, target)``
pairs and owns everything around the optimisation step; :func:`meshcnn.train.fit` is a
thin function over it.

* **Exact resume.** After every epoch ``run_dir/checkpoint.pt`` is written
  atomically (:mod:`.checkpoint`) with the model, optimizer and scheduler states,
  the epoch, the history, caller-supplied ``extra_state`` (normalisation statistics,
  model configuration), the RNG states of Python, NumPy and torch, and the trainer's
  own state (the fp16 ``GradScaler``, early stopping). Shuffling is drawn from a
  generator seeded with ``seed + epoch``, so ``fit(epochs=2)`` followed by
  ``fit(epochs=4, resume=True)`` ends with the same parameters as ``fit(epochs=4)``,
  with every option below. Temporary files left by a run killed while writing are
  removed when the next run starts in that folder.
* **Same settings.** A run resumes only with the precision, accumulation and clipping
  it was started with (:class:`meshcnn.train.ResumeSettingsError`);
  :func:`meshcnn.train.settings.check_resume_settings` checks a script's other settings.
* **Mixed precision.** ``precision="bf16"`` runs the forward pass and the loss under
  :func:`torch.autocast` with bfloat16 (CPU and CUDA); ``"fp16"`` uses float16 with a
  ``GradScaler`` (CUDA only). Parameters, optimizer state and evaluation stay float32.
* **Gradient clipping and accumulation.** ``grad_clip`` bounds the total 2-norm of the
  gradients before each optimizer step; ``accumulate=k`` makes one step per ``k``
  batches, each batch's loss weighted by its share of the samples of its group, so
  that ``k`` batches of ``b`` give the step of one batch of ``k * b`` (for a loss that
  is a mean over samples and a model without batch-dependent layers).
* **Hooks.** :class:`Callback` objects are told each validation and each epoch end;
  :class:`EarlyStopping` ends training when a metric stops improving.
* **Compilation.** ``compile=True`` trains through :func:`torch.compile` (the
  checkpoint holds the plain module's state).
* **Data parallel.** Under ``torchrun`` call :func:`meshcnn.train.init_distributed`
  first (:mod:`.distributed`); the trainer then trains a ``DistributedDataParallel``
  model on a sharded dataset and lets only rank 0 evaluate, call the callbacks and
  write files.
* **Per-epoch data.** A dataset with a ``set_epoch(epoch)`` method (fresh random
  rotations each epoch, say) has it called before each epoch.

``run_dir/metrics.json`` holds the history: one dict per epoch with ``epoch``,
``train_loss``, ``lr``, ``time_s`` and whatever ``evaluate`` returned.

Why not PyTorch Lightning: its checkpoints are pickles of arbitrary objects, not the
weights-only, checksummed files of :mod:`.checkpoint`; its resume does not restore the
generators and per-epoch shuffling that make a resumed run bit-identical (tested by
killing runs, ``tests/train/test_fault_injection.py``); and it would be a heavy
dependency for the few hundred lines here.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from .._progress import progress_bar
from ..io import remove_stale_temporaries, save_json
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, set_rng_state, weights_only_safe
from .distributed import all_reduce_sum, any_process, barrier, data_parallel, rank_and_world_size, resolve_device
from .settings import ResumeSettingsError

__all__ = ["Trainer", "Callback", "EarlyStopping", "seed_everything", "PRECISIONS"]

METRICS_NAME = "metrics.json"
PRECISIONS = ("fp32", "bf16", "fp16")
# device types on which precision="fp16" (autocast float16 with a GradScaler) is offered
FP16_DEVICE_TYPES = ("cuda",)
# what a checkpoint written before the trainer state existed was trained with
_DEFAULT_SETTINGS = {"precision": "fp32", "accumulate": 1, "grad_clip": None}


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


class Callback:
    """Hooks that :meth:`Trainer.fit` calls on rank 0; subclass and override those you need.

    Any object with either method works (a missing one is skipped). A hook may set
    ``trainer.should_stop = True`` to end training after the current epoch (its
    checkpoint is written first), and may add entries to ``record`` (they are saved
    in the history).
    """

    def on_validation(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """After ``evaluate`` ran: ``metrics`` is what it returned (``trainer.epoch`` counts this epoch)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After each epoch, before its checkpoint is written: ``record`` is the epoch's history entry."""


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved for ``patience`` epochs; its state is checkpointed.

    Parameters
    ----------
    monitor : str
        A key of the epoch records: one of the metrics ``evaluate`` returns (or ``"train_loss"``).
    mode : {"min", "max"}
        Whether smaller or larger values are better.
    patience : int
        Epochs without improvement after which training stops (at least 1).
    min_delta : float
        An improvement must exceed this (non-negative).

    Attributes
    ----------
    best : float or None
        The best value so far.
    wait : int
        Epochs since the last improvement.
    stopped_epoch : int or None
        The epoch (1-based) after which training stopped.
    """

    monitor: str
    mode: str = "min"
    patience: int = 3
    min_delta: float = 0.0
    best: float | None = field(default=None, init=False)
    wait: int = field(default=0, init=False)
    stopped_epoch: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min' or 'max', got {self.mode!r}")
        if self.patience < 1 or not self.min_delta >= 0:
            raise ValueError(
                f"EarlyStopping needs patience >= 1 and min_delta >= 0, got {self.patience} and {self.min_delta}"
            )

    @property
    def stopped(self) -> bool:
        """Whether training has been stopped."""
        return self.stopped_epoch is not None

    def update(self, record: dict[str, Any]) -> bool:
        """Take the epoch's ``record``; return whether training should stop (a NaN never improves).

        Raises
        ------
        ValueError
            If the record has no ``monitor`` entry (naming those it has).
        """
        if self.monitor not in record:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which epoch {record.get('epoch')} did not "
                f"record (it has {', '.join(map(repr, record))}); without an evaluate function only "
                "'train_loss' is recorded"
            )
        value = float(record[self.monitor])
        sign = 1.0 if self.mode == "min" else -1.0
        if math.isfinite(value) and (self.best is None or sign * (value - self.best) < -self.min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(record["epoch"])
        return self.stopped

    def state_dict(self) -> dict[str, Any]:
        """The settings and the running state, as a checkpoint holds them."""
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "best": self.best,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the running state (``best``, ``wait``, ``stopped_epoch``) of a run with the same monitor and mode.

        Raises
        ------
        ResumeSettingsError
            If the run monitored another metric or in another mode.
        """
        if (state["monitor"], state["mode"]) != (self.monitor, self.mode):
            raise ResumeSettingsError(
                f"cannot resume early stopping on {state['monitor']!r} ({state['mode']}) as "
                f"{self.monitor!r} ({self.mode}): use the run's monitor and mode"
            )
        self.best, self.wait, self.stopped_epoch = state["best"], int(state["wait"]), state["stopped_epoch"]


class Trainer:
    """Train models with fixed settings; :meth:`fit` runs the loop (see the module docstring).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Over the parameters of the model given to :meth:`fit`.
    loss_fn : callable
        ``loss_fn(model(input), target) -> scalar tensor``, a mean over the batch's samples
        for ``accumulate`` to match a larger batch.
    batch_size : int
        Samples per batch, per process.
    run_dir : path-like
        Where ``checkpoint.pt`` and ``metrics.json`` are written.
    scheduler : optional
        ``scheduler.step()`` is called once per epoch.
    device : str or torch.device
        Where to train; a bare ``"cuda"`` under ``torchrun`` is this process's GPU.
    seed : int
        Seeds the global generators on a fresh start and the per-epoch shuffling
        (``seed + epoch``).
    precision : {"fp32", "bf16", "fp16"}
        ``"bf16"``: forward pass and loss under ``torch.autocast`` with bfloat16 (CPU and
        CUDA). ``"fp16"``: float16 autocast with a ``GradScaler`` (CUDA only).
    grad_clip : float, optional
        Clip the total 2-norm of the gradients to this before each optimizer step.
    accumulate : int
        Batches per optimizer step (gradient accumulation); the last step of an epoch
        takes the batches that are left.
    callbacks : iterable of Callback
        Told each validation and epoch end (rank 0).
    early_stopping : EarlyStopping, optional
        Ends training when its metric stops improving; its state is checkpointed.
    compile : bool or dict
        Train through ``torch.compile(model)`` (a dict: its keyword arguments).
    extra_state : dict, optional
        Saved in the checkpoint as ``"extra"`` (NumPy arrays are stored as tensors).
    num_workers, collate_fn
        Passed to the ``DataLoader``.
    progress : bool
        Show a tqdm bar per epoch (rank 0 only).
    log : callable
        Called with a one-line summary per epoch.

    Attributes
    ----------
    model : nn.Module or None
        The model being trained (during and after :meth:`fit`).
    epoch : int
        Epochs completed.
    history : list of dict
        One record per epoch completed.
    should_stop : bool
        Set it (from a callback) to stop after the current epoch.
    rank : int
        This process's rank (0 without ``torchrun``).

    Raises
    ------
    ValueError
        For a non-positive ``batch_size`` or ``accumulate``, a non-positive ``grad_clip``,
        an unknown ``precision``, or ``"fp16"`` on a device other than CUDA.
    """

    def __init__(
        self,
        *,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[Any, Any], torch.Tensor],
        batch_size: int,
        run_dir: str | os.PathLike,
        scheduler: Any | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        precision: str = "fp32",
        grad_clip: float | None = None,
        accumulate: int = 1,
        callbacks: Iterable[Any] = (),
        early_stopping: EarlyStopping | None = None,
        compile: bool | dict[str, Any] = False,
        extra_state: dict[str, Any] | None = None,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
    ) -> None:
        if batch_size < 1 or accumulate < 1:
            raise ValueError(f"batch_size and accumulate must be positive, got {batch_size} and {accumulate}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive (or None), got {grad_clip}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = resolve_device(device)
        if precision == "fp16" and self.device.type not in FP16_DEVICE_TYPES:
            raise ValueError(
                f"precision='fp16' needs a CUDA device (float16 autocast with a GradScaler), got "
                f"device {self.device}; use precision='bf16' on the CPU"
            )
        self.optimizer, self.loss_fn, self.scheduler = optimizer, loss_fn, scheduler
        self.batch_size, self.run_dir, self.seed = batch_size, Path(run_dir), seed
        self.precision, self.grad_clip, self.accumulate = precision, grad_clip, accumulate
        self.callbacks, self.early_stopping, self.compile = list(callbacks), early_stopping, compile
        self.extra_state, self.num_workers, self.collate_fn = extra_state, num_workers, collate_fn
        self.progress, self.log = progress, log
        self.scaler = _grad_scaler(self.device) if precision == "fp16" else None
        self.model: nn.Module | None = None
        self.epoch, self.history, self.should_stop = 0, [], False
        self.rank = rank_and_world_size()[0]

    # ------------------------------------------------------------------------------------ the loop
    def fit(
        self,
        model: nn.Module,
        train_set: Dataset,
        val_set: Dataset | None = None,
        evaluate: Callable[[nn.Module, Dataset, torch.device], dict[str, float]] | None = None,
        *,
        epochs: int,
        resume: bool = False,
    ) -> list[dict[str, Any]]:
        """Train ``model`` for ``epochs`` epochs (in total, counting resumed ones).

        Parameters
        ----------
        model : nn.Module
            Moved to the device. Build it after seeding if its initialisation must be reproducible.
        train_set : Dataset
            Map-style dataset of ``(input, target)``; inputs and targets may be tensors or
            (nested) tuples, lists or dicts of tensors.
        val_set, evaluate : optional
            After each epoch rank 0 calls ``evaluate(model, val_set, device) -> dict`` (the
            plain model, in eval mode, without gradients, in float32) and adds the result
            to the epoch's record.
        epochs : int
            Total number of epochs; with ``resume`` training continues from the
            checkpoint's epoch up to this number (or until early stopping).
        resume : bool
            Continue from ``run_dir/checkpoint.pt`` if it exists.

        Returns
        -------
        list of dict
            The history: one record per epoch.

        Raises
        ------
        FloatingPointError
            When the loss becomes NaN or infinite (naming epoch and batch), instead of
            silently training on garbage.
        ResumeSettingsError
            Resuming a run started with another precision, accumulation, clipping or
            early-stopping metric.
        """
        if epochs < 1:
            raise ValueError(f"epochs must be positive, got {epochs}")
        model.to(self.device)
        self.model, self.should_stop = model, False
        if self.rank == 0:
            self._remove_debris()
        self.epoch, self.history = self._resume_or_seed(resume)
        if self.epoch >= epochs or (self.early_stopping is not None and self.early_stopping.stopped):
            if self.rank == 0 and self.history:  # a run killed between its last checkpoint and metrics.json
                save_json(self.run_dir / METRICS_NAME, _jsonable(self.history))
            self.log(
                self._stopped_message()
                if self.epoch < epochs
                else f"already trained for {self.epoch} >= {epochs} epochs; nothing to do"
            )
            return self.history
        ddp_model, sampler = data_parallel(model, train_set, self.device, self.seed)
        train_model = ddp_model
        if self.compile:
            train_model = torch.compile(ddp_model, **(self.compile if isinstance(self.compile, dict) else {}))
        for epoch in range(self.epoch, epochs):
            self._run_epoch(train_model, ddp_model, train_set, sampler, val_set, evaluate, epoch, epochs)
            if self.should_stop:
                self.log(self._stopped_message())
                break
        return self.history

    def _run_epoch(
        self,
        train_model: nn.Module,
        ddp_model: nn.Module,
        train_set: Dataset,
        sampler: Sampler | None,
        val_set: Dataset | None,
        evaluate: Callable | None,
        epoch: int,
        epochs: int,
    ) -> None:
        """Epoch ``epoch`` (0-based): train, evaluate, call the hooks, checkpoint, decide whether to stop."""
        loader = _epoch_loader(
            train_set,
            sampler,
            epoch,
            seed=self.seed,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
        )
        start = time.perf_counter()
        loss_sum, count = self._train_epoch(train_model, ddp_model, loader, epoch=epoch, epochs=epochs)
        loss_sum, count = all_reduce_sum(loss_sum, count)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum / count),
            "lr": lr,
            "time_s": time.perf_counter() - start,
        }
        self.epoch = epoch + 1
        if self.rank == 0 and val_set is not None and evaluate is not None:
            metrics = _evaluate(self.model, val_set, evaluate, self.device)
            record.update(metrics)
            self._call("on_validation", metrics)
        self.history.append(record)
        if self.rank == 0:
            if self.early_stopping is not None and self.early_stopping.update(record):
                self.should_stop = True
            self._call("on_epoch_end", record)
            save_checkpoint(
                self.run_dir / CHECKPOINT_NAME,
                self.model,
                self.optimizer,
                self.scheduler,
                epoch=epoch + 1,
                history=self.history,
                extra_state=self.extra_state,
                seed=self.seed,
                trainer_state=self._state(),
            )
            save_json(self.run_dir / METRICS_NAME, _jsonable(self.history))
            self.log(_summary(record))
        barrier()
        self.should_stop = any_process(self.should_stop, self.device)  # rank 0 decides for every process

    def _train_epoch(
        self, model: nn.Module, ddp_model: nn.Module, loader: DataLoader, *, epoch: int, epochs: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass over ``loader``: one optimizer step per ``accumulate`` batches.

        Returns
        -------
        tuple of torch.Tensor
            ``(loss_sum, count)``, float64 scalars on the device: the sum of the batch
            losses weighted by the batch sizes, and the number of samples.
        """
        model.train()
        device = self.device
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        count = torch.zeros((), dtype=torch.float64, device=device)
        sizes = _batch_sizes(loader)
        bar = self.progress and self.rank == 0
        batches = progress_bar(loader, enabled=bar, desc=f"epoch {epoch + 1}/{epochs}", leave=False, dynamic_ncols=True)
        self.optimizer.zero_grad(set_to_none=True)
        for step, (inputs, targets) in enumerate(batches):
            inputs, targets = _to_device(inputs, device), _to_device(targets, device)
            first = step - step % self.accumulate
            group = sizes[first : first + self.accumulate]  # the batches of this optimizer step
            last = step == first + len(group) - 1
            with self._no_sync(ddp_model, not last):
                with self._autocast():
                    loss = self.loss_fn(model(inputs), targets)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, batch {step}")
                # each batch weighted by its share of the group's samples: the gradient of one big batch
                scaled = loss if len(group) == 1 else loss * (sizes[step] / sum(group))
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            if last:
                self._step()
            loss_sum += loss.detach().double() * sizes[step]
            count += sizes[step]
            if bar:
                batches.set_postfix(loss=f"{loss.item():.4f}")
        batches.close()
        return loss_sum, count

    def _step(self) -> None:
        """Clip (after unscaling), step the optimizer (through the scaler for fp16), clear the gradients."""
        if self.grad_clip is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(params, self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` on the device in the precision's dtype; nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    @staticmethod
    def _no_sync(ddp_model: nn.Module, skip: bool) -> contextlib.AbstractContextManager:
        """DDP's ``no_sync()`` for the batches of a step but its last (no gradient all-reduce yet)."""
        if skip and isinstance(ddp_model, nn.parallel.DistributedDataParallel):
            return ddp_model.no_sync()
        return contextlib.nullcontext()

    def _call(self, hook: str, arg: dict[str, Any]) -> None:
        """Call ``hook`` of every callback that has it."""
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self, arg)

    def _stopped_message(self) -> str:
        es = self.early_stopping
        if es is not None and es.stopped:
            return (
                f"stopped early after epoch {es.stopped_epoch}: {es.monitor} has not improved on "
                f"{es.best} for {es.wait} epochs"
            )
        return f"stopped after epoch {self.epoch} (a callback set should_stop)"

    # ------------------------------------------------------------------------------- state, resume
    def _state(self) -> dict[str, Any]:
        """What the checkpoint keeps of the trainer: its settings that resuming must match, scaler, early stopping."""
        return {
            "precision": self.precision,
            "accumulate": self.accumulate,
            "grad_clip": self.grad_clip,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "early_stopping": self.early_stopping.state_dict() if self.early_stopping is not None else None,
        }

    def _load_state(self, state: dict[str, Any] | None, path: Path) -> None:
        """Restore the scaler and early stopping from a checkpoint's trainer state, after checking the settings."""
        state = state or dict(_DEFAULT_SETTINGS)  # a checkpoint from before the trainer state: fp32, no options
        differences = [
            f"  {name}: the run has {state.get(name)!r}, now {getattr(self, name)!r}"
            for name in _DEFAULT_SETTINGS
            if state.get(name) != getattr(self, name)
        ]
        if differences:
            raise ResumeSettingsError(
                f"cannot resume {path} with other training settings than the run's:\n" + "\n".join(differences)
            )
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.early_stopping is not None and state.get("early_stopping"):
            self.early_stopping.load_state_dict(state["early_stopping"])

    def _resume_or_seed(self, resume: bool) -> tuple[int, list[dict[str, Any]]]:
        """Restore the run's checkpoint (states and RNGs) when resuming from one, else seed the generators.

        Returns
        -------
        tuple
            ``(epochs completed, history)``; ``(0, [])`` on a fresh start.
        """
        ckpt_path = self.run_dir / CHECKPOINT_NAME
        if resume and ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path, self.model, self.optimizer, self.scheduler, map_location=self.device)
            self._load_state(ckpt.get("trainer"), ckpt_path)
            set_rng_state(ckpt["rng"])
            self.log(f"resumed from {ckpt_path} after epoch {int(ckpt['epoch'])}")
            return int(ckpt["epoch"]), list(ckpt["history"])
        if resume:
            self.log(f"no checkpoint in {self.run_dir}; starting from scratch")
        seed_everything(self.seed)
        return 0, []

    def _remove_debris(self) -> None:
        """Delete the temporary files of a run killed while writing (never renamed into place: no result)."""
        stale = remove_stale_temporaries(self.run_dir / CHECKPOINT_NAME) + remove_stale_temporaries(
            self.run_dir / METRICS_NAME
        )
        for path in stale:
            self.log(f"removed {path}, left by an interrupted checkpoint write")


# ------------------------------------------------------------------------------------------ helpers
def _epoch_loader(
    train_set: Dataset,
    sampler: Sampler | None,
    epoch: int,
    *,
    seed: int,
    batch_size: int,
    num_workers: int,
    collate_fn: Callable | None,
) -> DataLoader:
    """The loader of one epoch: its shuffling (and the workers' seeds) drawn from ``seed + epoch``."""
    if hasattr(train_set, "set_epoch"):
        train_set.set_epoch(epoch)
    if sampler is not None:  # distributed: the sampler shuffles with seed + epoch itself
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(seed + epoch))
    return DataLoader(
        train_set,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        generator=torch.Generator().manual_seed(seed + epoch),
        persistent_workers=False,
    )


def _grad_scaler(device: torch.device) -> Any:
    """A ``GradScaler`` for ``device`` (``torch.amp``'s, or ``torch.cuda.amp``'s in a torch before 2.3)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()


def _batch_sizes(loader: DataLoader) -> list[int]:
    """The number of samples in each batch of ``loader`` (its sampler's length cut in ``batch_size`` pieces)."""
    total, size = len(loader.sampler), loader.batch_size
    return [min(size, total - start) for start in range(0, total, size)]


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
