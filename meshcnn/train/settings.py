"""Resume a run only with the settings it was started with.

The experiment scripts store their parsed command-line arguments in the checkpoint
(``extra_state["args"]``) and call :func:`check_resume_settings` before training with
``--resume``: a difference is a :class:`ResumeSettingsError` naming each setting.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .checkpoint import CHECKPOINT_NAME, load_checkpoint

__all__ = ["check_resume_settings", "ResumeSettingsError"]

ALWAYS_RESUMABLE = ("resume",)


class ResumeSettingsError(ValueError):
    """``--resume`` with settings other than those the run was started with."""


def _setting_text(value: Any) -> str:
    """A setting as the text it is compared by: scripts store ``str(value)`` or plain values."""
    if isinstance(value, tuple):
        value = list(value)
    return str(value)


def _option(name: str) -> str:
    """The command-line option of an ``argparse`` destination: ``num_workers`` -> ``--num-workers``."""
    return "--" + name.replace("_", "-")


def _differences(stored: Mapping[str, Any], new: Mapping[str, Any], allowed: set[str]) -> list[str]:
    """One line per setting recorded by the run whose text differs from the new value (``allowed`` left out)."""
    return [
        f"  {_option(name)}: the run has {_setting_text(stored[name])}, now {_setting_text(value)}"
        for name, value in new.items()
        if name not in allowed and name in stored and _setting_text(stored[name]) != _setting_text(value)
    ]


def check_resume_settings(
    run_dir: str | os.PathLike,
    settings: Mapping[str, Any] | argparse.Namespace,
    *,
    may_change: Iterable[str] = (),
    key: str = "args",
    log: Callable[[str], None] = print,
) -> dict[str, Any] | None:
    """Refuse to resume the run in ``run_dir`` with other settings than it was started with.

    Compares ``settings`` (a script's parsed arguments) with those stored in the
    run's checkpoint as ``extra_state[key]`` (as values or as their ``str``), setting
    by setting, ignoring ``may_change`` (those that may differ on resume: the
    device, thread and worker counts, progress bars; ``resume`` itself always).

    Parameters
    ----------
    run_dir : path-like
        The run folder (or its ``checkpoint.pt``).
    settings : argparse.Namespace or Mapping
        The new settings.
    may_change : iterable of str
        Names (``dest``, e.g. ``"num_workers"``) of the settings that may differ.
    key : str
        Where in the checkpoint's ``extra`` state the settings are stored.
    log : callable
        Told about settings that the run did not record (options newer than the run).

    Returns
    -------
    dict or None
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
    differences = _differences(stored, new, allowed)
    if differences:
        may = ", ".join(_option(n) for n in sorted(allowed))
        raise ResumeSettingsError(
            f"cannot resume {path} with other settings than the run's:\n"
            + "\n".join(differences)
            + f"\nResume with the run's settings or use a new run folder "
            f"(settings that may change on resume: {may})"
        )
    unrecorded = sorted(name for name in new if name not in allowed and name not in stored)
    if unrecorded:
        log(
            f"warning: {path} does not record {', '.join(_option(n) for n in unrecorded)} (options newer than the "
            "run); they are assumed to match"
        )
    return extra
