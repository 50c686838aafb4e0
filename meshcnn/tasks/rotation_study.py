"""The rotation study: N/N, N/R and R/R test accuracy of several classifiers, over seeds.

Settings are ``<train>/<test>``: ``N`` is the data in its canonical pose, ``R``
each sample turned by a uniform random rotation of SO(3) (fresh in every training
epoch, or a cached bank; one fixed rotation per test sample). Each model variant is
trained once per seed and train mode (``N`` for N/N and N/R, ``R`` for R/R) in its
own folder ``<run_dir>/<tag>_<N|R>_s<seed>`` (:func:`run_folder`), and tested on the
settings of that mode. Training is :func:`meshcnn.tasks.train_and_test` (checkpoints,
``resume``: a finished run is only re-evaluated). The table gives the mean and
standard deviation over seeds (:func:`meshcnn.tasks.classification.summarize_rows`); it and every
row go to ``<run_dir>/results.json``.

The experiment scripts (``experiments/spherical_digits/train.py``,
``experiments/shape_classification/rotation_study.py``) only describe their
variants (:class:`StudyVariant`) and hand them to :func:`run_rotation_study`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ..io import save_json
from ..train import seed_everything
from ..train.settings import check_resume_settings
from .classification import summarize_rows, train_and_test
from .registry import count_parameters

__all__ = [
    "SETTINGS",
    "TRAIN_MODES",
    "StudyVariant",
    "RotationStudy",
    "run_folder",
    "run_rotation_study",
    "check_study_resume",
]

SETTINGS = ("N/N", "N/R", "R/R")
TRAIN_MODES = ("N", "R")


@dataclass
class StudyVariant:
    """One model variant of a rotation study.

    Parameters
    ----------
    name : str
        The model's name in the result rows and the table.
    tag : str
        Run-folder prefix: the runs live in ``<run_dir>/<tag>_<N|R>_s<seed>``.
    build : callable
        ``() -> nn.Module``: a fresh model, called right after the run's seed is set.
    dataset : callable
        ``(split, rotated, seed) -> Dataset`` with ``split`` ``"train"`` or ``"test"``
        and ``rotated`` the ``R`` of the setting. The seed is the run's for the
        training set and the run's plus one for the test sets.
    row : dict
        Extra fields of every result row (e.g. ``kind``, ``orientation``, ``width``).
    extra_state : callable, optional
        ``train_set -> dict`` stored in each checkpoint besides the settings.
    """

    name: str
    tag: str
    build: Callable[[], nn.Module]
    dataset: Callable[[str, bool, int], Dataset]
    row: dict[str, Any] = field(default_factory=dict)
    extra_state: Callable[[Dataset], dict[str, Any]] | None = None


@dataclass
class RotationStudy:
    """How the runs of a study train and where they go.

    Parameters
    ----------
    run_dir : path-like
        The study's folder: one sub-folder per run and ``results.json``.
    seeds : sequence of int
        One run per seed (model initialisation, shuffling, rotations).
    settings : sequence of str
        A subset of :data:`SETTINGS`.
    epochs, batch_size, lr, weight_decay
        The recipe of :func:`meshcnn.tasks.train_and_test` (Adam, cosine decay).
    device, num_workers, progress, resume
        How to run; with ``resume`` each run continues from its checkpoint.
    args : argparse.Namespace, optional
        The script's settings: stored (as text) in every checkpoint and in
        ``results.json``, and compared on ``resume`` (:func:`meshcnn.train.settings.check_resume_settings`).
    may_change : sequence of str
        The settings that may differ on ``resume``.
    """

    run_dir: str | os.PathLike
    seeds: Sequence[int] = (0,)
    settings: Sequence[str] = SETTINGS
    epochs: int = 8
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    device: str = "cpu"
    num_workers: int = 0
    progress: bool = True
    resume: bool = False
    args: argparse.Namespace | None = None
    may_change: Sequence[str] = ()

    def __post_init__(self) -> None:
        unknown = [s for s in self.settings if s not in SETTINGS]
        if unknown:
            raise ValueError(f"settings must be among {SETTINGS}, got {unknown}")

    @property
    def train_modes(self) -> list[str]:
        """The train modes the settings need, ``"N"`` and/or ``"R"``."""
        return sorted({s[0] for s in self.settings})

    def stored_args(self) -> dict[str, str]:
        """The settings as stored in checkpoints and ``results.json``: ``{name: str(value)}``."""
        return {} if self.args is None else {k: str(v) for k, v in vars(self.args).items()}


def run_folder(run_dir: str | os.PathLike, tag: str, train_mode: str, seed: int) -> Path:
    """The folder of one training run's checkpoint and metrics.

    Parameters
    ----------
    run_dir : path-like
        The study's folder.
    tag : str
        The variant's tag.
    train_mode : str
        ``"N"`` or ``"R"``.
    seed : int

    Returns
    -------
    Path
        ``<run_dir>/<tag>_<N|R>_s<seed>``.
    """
    return Path(run_dir) / f"{tag}_{train_mode}_s{seed}"


def check_study_resume(study: RotationStudy, variants: Sequence[StudyVariant]) -> None:
    """Before any training: every run to continue was made with the study's settings.

    Parameters
    ----------
    study : RotationStudy
        Its settings (``args``; nothing is checked when None), seeds, train modes and run folder.
    variants : sequence of StudyVariant
        The variants whose runs are checked.

    Raises
    ------
    meshcnn.train.ResumeSettingsError
        Naming the run and each setting that differs.
    """
    if study.args is None:
        return
    for seed in study.seeds:
        for variant in variants:
            for train_mode in study.train_modes:
                check_resume_settings(
                    run_folder(study.run_dir, variant.tag, train_mode, seed), study.args, may_change=study.may_change
                )


def _train_and_test_one(
    study: RotationStudy, variant: StudyVariant, train_mode: str, seed: int
) -> list[dict[str, Any]]:
    """One run: train ``variant`` on ``train_mode`` with ``seed``, test on that mode's settings."""
    train_set = variant.dataset("train", train_mode == "R", seed)
    seed_everything(seed)
    model = variant.build()
    run_dir = run_folder(study.run_dir, variant.tag, train_mode, seed)
    print(
        f"== {variant.name}, width {variant.row.get('width', '-')} ({count_parameters(model):,} parameters), "
        f"seed {seed}, training on {train_mode} -> {run_dir}"
    )
    settings = [s for s in study.settings if s[0] == train_mode]
    tests = {s: variant.dataset("test", s[2] == "R", seed + 1) for s in settings}
    extra = dict(variant.extra_state(train_set)) if variant.extra_state is not None else {}
    results = train_and_test(
        model,
        train_set,
        tests,
        run_dir=run_dir,
        epochs=study.epochs,
        batch_size=study.batch_size,
        lr=study.lr,
        weight_decay=study.weight_decay,
        device=study.device,
        seed=seed,
        resume=study.resume,
        num_workers=study.num_workers,
        progress=study.progress,
        extra_state={**extra, "args": study.stored_args()},
    )
    rows = []
    for result in results:
        rows.append({"model": variant.name, **variant.row, "seed": seed, **result})
        print(f"   {result['setting']}: test accuracy {100 * result['accuracy']:.1f} %")
    return rows


def run_rotation_study(study: RotationStudy, variants: Sequence[StudyVariant]) -> list[dict[str, Any]]:
    """Train and test every variant for every seed and train mode; print and save the table.

    Parameters
    ----------
    study : RotationStudy
    variants : sequence of StudyVariant

    Returns
    -------
    list of dict
        One row per run and test setting: ``model`` (the variant's name), the
        variant's ``row`` fields, ``seed`` and those of :func:`meshcnn.tasks.train_and_test`
        (``setting``, ``accuracy``, ``params``, ...). Also written, with the table
        and the settings, to ``<run_dir>/results.json``.
    """
    if study.resume:
        check_study_resume(study, variants)
    rows: list[dict[str, Any]] = []
    for seed in study.seeds:
        for variant in variants:
            for train_mode in study.train_modes:
                rows += _train_and_test_one(study, variant, train_mode, seed)
    table = summarize_rows(rows, [s for s in SETTINGS if s in study.settings])
    print("\ntest accuracy, %: mean ± standard deviation over seeds\n")
    print("\n".join(table))
    save_json(Path(study.run_dir) / "results.json", {"args": study.stored_args(), "rows": rows, "table": table})
    return rows
