"""Helpers shared by the test modules (importable as ``_helpers``: pytest puts ``tests/`` on the path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"


def load_script(path: str | Path, name: str | None = None) -> ModuleType:
    """An experiment script imported by path (scripts are not a package), to call its functions in-process.

    Parameters
    ----------
    path : str or Path
        The script, absolute or relative to ``experiments/`` (e.g. ``"benchmark/operators.py"``).
    name : str, optional
        Module name; default ``"script_"`` and the path's parts.
    """
    path = Path(path)
    if not path.is_absolute():
        path = EXPERIMENTS / path
    name = name or "script_" + "_".join(path.with_suffix("").parts[-2:])
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
