"""Whole-signal classification: accuracy, the training recipe of the rotation studies, result tables.

The models come from the registry (:mod:`meshcnn.tasks.registry`): a
:class:`~meshcnn.tasks.ClassifierConfig`, stored in the checkpoint's ``extra``
state as a dict, rebuilds the same model in every script (train, evaluate,
rotation study).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..metrics import mean_std
from ..train.loop import fit, predict
from .registry import count_parameters

__all__ = [
    "accuracy",
    "accuracy_evaluator",
    "train_and_test",
    "summarize_rows",
]


def accuracy(
    model: nn.Module, dataset: Dataset, device: str | torch.device = "cpu", batch_size: int = 32, num_workers: int = 0
) -> float:
    """Fraction of ``dataset`` items whose arg-max logit is the target (model in eval mode).

    Parameters
    ----------
    model : nn.Module
        A classifier ``(B, ...) -> (B, num_classes)`` logits.
    dataset : Dataset
        Items ``(input, class index)``.
    device, batch_size, num_workers
        How :func:`meshcnn.train.predict` runs.

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    outputs, targets = predict(model, dataset, batch_size=batch_size, device=device, num_workers=num_workers)
    return float((outputs.argmax(dim=1) == targets).double().mean())


def accuracy_evaluator(
    batch_size: int = 32, name: str = "val_accuracy"
) -> Callable[[nn.Module, Dataset, torch.device], dict[str, float]]:
    """An ``evaluate`` callback for :func:`meshcnn.train.fit`.

    Parameters
    ----------
    batch_size : int
        Prediction batch size.
    name : str
        The metric's name in the epoch records.

    Returns
    -------
    callable
        ``(model, dataset, device) -> {name: accuracy}`` (see :func:`accuracy`).
    """

    def evaluate(model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        """The accuracy of ``model`` on ``dataset``.

        Parameters
        ----------
        model : nn.Module
        dataset : Dataset
        device : torch.device

        Returns
        -------
        dict of str to float
            ``{name: accuracy}``.
        """
        return {name: accuracy(model, dataset, device, batch_size)}

    return evaluate


def train_and_test(
    model: nn.Module,
    train_set: Dataset,
    test_sets: dict[str, Dataset],
    *,
    run_dir: str | os.PathLike,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    device: str | torch.device = "cpu",
    seed: int = 0,
    resume: bool = False,
    num_workers: int = 0,
    progress: bool = True,
    extra_state: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train a classifier with :func:`meshcnn.train.fit` and report its accuracy on several test sets.

    The recipe of the rotation studies: cross-entropy, Adam with cosine learning-rate
    decay over ``epochs``.

    Parameters
    ----------
    model : nn.Module
        The classifier, freshly built (or to be resumed from ``run_dir``).
    train_set : Dataset
        Items ``(input, class index)``.
    test_sets : dict of str to Dataset
        The sets to test on, by setting name (e.g. ``"N/R"``).
    run_dir : path-like
        The run's folder (``checkpoint.pt``, ``metrics.json``).
    epochs, batch_size, lr, weight_decay
        The recipe; testing uses batches of ``4 * batch_size``.
    device, seed, resume, num_workers, progress, extra_state
        As for :func:`meshcnn.train.fit`; a finished run resumed is only tested.

    Returns
    -------
    list of dict
        One row per test set: ``setting`` (its key in ``test_sets``), ``accuracy``
        (fraction), ``params``, ``train_time_s`` (sum of the epochs' times, seconds),
        ``epochs`` and ``final_train_loss``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    start = time.perf_counter()
    history = fit(
        model,
        train_set,
        optimizer=optimizer,
        scheduler=scheduler,
        loss_fn=nn.functional.cross_entropy,
        epochs=epochs,
        batch_size=batch_size,
        run_dir=run_dir,
        device=device,
        seed=seed,
        resume=resume,
        num_workers=num_workers,
        progress=progress,
        extra_state=extra_state,
    )
    train_time = sum(float(h.get("time_s", 0.0)) for h in history) or time.perf_counter() - start
    common = {
        "params": count_parameters(model),
        "train_time_s": train_time,
        "epochs": len(history),
        "final_train_loss": float(history[-1]["train_loss"]) if history else None,
    }
    return [
        {"setting": name, "accuracy": accuracy(model, data, device, 4 * batch_size, num_workers), **common}
        for name, data in test_sets.items()
    ]


def summarize_rows(rows: list[dict[str, Any]], settings: tuple[str, ...] | list[str]) -> list[str]:
    """A markdown table of accuracies: one line per model, mean ± standard deviation over seeds.

    Parameters
    ----------
    rows : list of dict
        Each with ``model``, ``setting``, ``seed``, ``accuracy`` (fraction) and ``params``.
    settings : sequence of str
        The columns, in order.

    Returns
    -------
    list of str
        The table's lines: model, parameter count, each setting's accuracy in % (mean ±
        std over seeds, :func:`meshcnn.metrics.mean_std`) and the number of seeds.
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    lines = [
        "| model | parameters | " + " | ".join(settings) + " | seeds |",
        "|---|---|" + "---|" * len(settings) + "---|",
    ]
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        cells = [mean_std([100 * r["accuracy"] for r in mine if r["setting"] == s], digits=1) for s in settings]
        seeds = sorted({r.get("seed", 0) for r in mine})
        lines.append(f"| {model} | {mine[0]['params']:,} | " + " | ".join(cells) + f" | {len(seeds)} |")
    return lines
