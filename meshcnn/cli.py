"""Command-line options shared by the experiment scripts: one definition and one default each.

Each function returns a fresh *parent* parser (``add_help=False``) to pass as
``argparse.ArgumentParser(parents=[...])``; a script that needs another default
for a hyperparameter (``--epochs``, ``--lr``, ``--level``, ...) calls
``parser.set_defaults(...)``, so its stored runs keep resuming with their settings.

* :func:`run_options`: how a job runs: ``--device``, ``--threads``,
  ``--num-workers``, ``--resume``, ``--no-progress``;
* :func:`seed_option`: ``--seed`` (one, or several: one run each);
* :func:`level_option`: ``--level``; :func:`grid_option`: ``--grid``;
* :func:`training_options`: ``--epochs``, ``--batch-size``, ``--lr``;
* :func:`orientation_option`: ``--orientation`` (one, or several: one model each).

:func:`apply_threads` sets torch's thread count from ``--threads`` and
:func:`option_names` spells a setting's option, for ``--resume`` help texts.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import torch

__all__ = [
    "THREADS",
    "run_options",
    "seed_option",
    "level_option",
    "grid_option",
    "training_options",
    "orientation_option",
    "apply_threads",
    "option_names",
    "HELP_FORMATTER",
]

THREADS = 1  # the recorded experiments' setting, fastest on shared cores; 0 is torch's default (all cores)
HELP_FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False, formatter_class=HELP_FORMATTER)


def option_names(names: Iterable[str]) -> str:
    """``"--num-workers, --device"`` for the ``argparse`` destinations ``num_workers``, ``device``."""
    return ", ".join("--" + n.replace("_", "-") for n in names)


def run_options(
    *,
    resume: bool = True,
    workers: bool = True,
    device: bool = True,
    resume_may_change: Iterable[str] = (),
    resume_help: str | None = None,
) -> argparse.ArgumentParser:
    """``--device``, ``--threads``, ``--num-workers``, ``--resume``, ``--no-progress``.

    Parameters
    ----------
    resume, workers, device : bool
        Whether the script has ``--resume`` / ``--num-workers`` / ``--device``.
    resume_may_change : iterable of str
        The settings that may differ on ``--resume`` (named in its help).
    resume_help : str, optional
        The help of ``--resume`` (default: continue the runs, refused on other settings).
    """
    p = _parent()
    if device:
        p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help="torch intra-op CPU threads (0: torch's default, all cores; 1 is much faster on shared cores)",
    )
    if workers:
        p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    if resume:
        may = list(resume_may_change)
        p.add_argument(
            "--resume",
            action="store_true",
            help=resume_help
            or (
                "continue the runs from their checkpoints (finished ones are only "
                "re-evaluated); refused if a setting differs from the runs'"
                + (" except " + option_names(may) if may else "")
            ),
        )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def seed_option(
    *, many: bool = False, default: int | list[int] | None = 0, help: str | None = None
) -> argparse.ArgumentParser:
    """``--seed``: one integer, or with ``many`` one or more (``nargs="+"``, one run each)."""
    p = _parent()
    if many:
        p.add_argument(
            "--seed",
            type=int,
            nargs="+",
            default=[0] if default == 0 else default,
            help=help or "one or more seeds (initialisation, shuffling, rotations); one run each",
        )
    else:
        p.add_argument("--seed", type=int, default=default, help=help or "initialisation, shuffling and rotations")
    return p


def level_option(
    default: int = 5, help: str = "icosphere level of the data (the mesh has 10 * 4**level + 2 vertices)"
) -> argparse.ArgumentParser:
    """``--level``: the icosphere level.

    Parameters
    ----------
    default : int, default 5
        Default level.
    help : str
        Help text of the option.

    Returns
    -------
    argparse.ArgumentParser
        A parent parser holding the one option.
    """
    p = _parent()
    p.add_argument("--level", type=int, default=default, help=help)
    return p


def grid_option(
    *,
    many: bool = False,
    help: str = "sphere grid of the data and the spherical model: the icosphere of --level, or HEALPix "
    "of order --level (nside = 2**level)",
) -> argparse.ArgumentParser:
    """``--grid``: one of :data:`meshcnn.grids.GRID_FAMILIES` (default ``icosphere``); with ``many``, several.

    Parameters
    ----------
    many : bool
        Accept one or more grids (``nargs="+"``, one run each).
    help : str
        Help text of the option.

    Returns
    -------
    argparse.ArgumentParser
        A parent parser holding the one option.
    """
    from .grids.families import GRID_FAMILIES

    p = _parent()
    if many:
        p.add_argument("--grid", choices=GRID_FAMILIES, nargs="+", default=[GRID_FAMILIES[0]], help=help)
    else:
        p.add_argument("--grid", choices=GRID_FAMILIES, default=GRID_FAMILIES[0], help=help)
    return p


def training_options(
    *, epochs: int = 8, batch_size: int | None = 32, lr: float | None = 3e-3, lr_help: str = "Adam learning rate"
) -> argparse.ArgumentParser:
    """``--epochs`` and, unless given as ``None``, ``--batch-size`` and ``--lr``."""
    p = _parent()
    p.add_argument("--epochs", type=int, default=epochs)
    if batch_size is not None:
        p.add_argument("--batch-size", type=int, default=batch_size, help="samples per step (per process)")
    if lr is not None:
        p.add_argument("--lr", type=float, default=lr, help=lr_help)
    return p


def orientation_option(
    *, many: bool = False, default: str | list[str] = "fixed", help: str | None = None
) -> argparse.ArgumentParser:
    """``--orientation``: the MeshConv orientation (:data:`meshcnn.nn.ORIENTATIONS`); with ``many``, several."""
    from .nn import ORIENTATIONS

    p = _parent()
    if many:
        p.add_argument(
            "--orientation",
            nargs="+",
            choices=ORIENTATIONS,
            default=[default] if isinstance(default, str) else list(default),
            help=help or "MeshConv orientation(s) of the spherical model; one model each",
        )
    else:
        p.add_argument(
            "--orientation",
            choices=ORIENTATIONS,
            default=default,
            help=help or "MeshConv orientation of the spherical model",
        )
    return p


def apply_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` when ``threads > 0`` (0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)
