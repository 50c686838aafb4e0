"""Sample files and splits: finding files (honouring a synthetic set's ``synth.json``), train/val/test
splits and UGSCNN split lists."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ...io import atomic_write
from ._format import ClimateFileError

__all__ = ["synth_listed_files", "find_files", "split_files", "write_split_lists", "read_split_list"]


def synth_listed_files(folder: str | os.PathLike) -> list[Path] | None:
    """The files that ``synth`` wrote into ``folder``, as its ``synth.json`` lists them (``None`` without one).

    Raises :class:`ClimateFileError` naming ``synth.json`` if it is unreadable or
    malformed (a listed name that is not a plain file name included).
    """
    summary = Path(folder) / "synth.json"
    if not summary.is_file():
        return None
    try:
        with open(summary, encoding="utf-8") as f:
            records = json.load(f)["files"]
        names = [r["file"] for r in records]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClimateFileError(summary, f"unreadable synthetic-set description ({type(exc).__name__}: {exc})") from exc
    bad = [n for n in names if not isinstance(n, str) or not n or Path(n).name != n or n in (".", "..")]
    if bad:
        raise ClimateFileError(summary, f"lists names that are not plain file names: {bad[:3]}")
    return [Path(folder) / n for n in names]


def find_files(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Sorted ``.nc``/``.npz`` sample files from files and folders (folders are not recursed).

    A folder with a ``synth.json`` (written by ``synth``) gives exactly the files it
    lists (``FileNotFoundError`` naming it if one is missing); other sample files in
    that folder are left out, with a warning.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in (".nc", ".npz") and not q.name.startswith("."))
            listed = synth_listed_files(p)
            if listed is not None:
                missing = [str(q) for q in listed if not q.exists()]
                if missing:
                    raise FileNotFoundError(
                        f"{p / 'synth.json'}: {len(missing)} listed files do not exist, e.g. {missing[:3]}"
                    )
                extra = sorted(set(found) - set(listed))
                if extra:
                    warnings.warn(
                        f"{p}: using the {len(listed)} files that synth.json lists; ignoring "
                        f"{len(extra)} other sample files there, e.g. {extra[0].name}",
                        stacklevel=2,
                    )
                found = sorted(listed)
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def split_files(
    files: Sequence[str | os.PathLike],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    contiguous: bool = False,
) -> dict[str, list[Path]]:
    """Split files into ``train``/``val``/``test``, deterministically.

    Files are sorted by name first, so the result does not depend on the input
    order. ``contiguous=False`` shuffles with ``numpy.random.default_rng(seed)``;
    ``contiguous=True`` keeps time order (ClimateNet names sort by date) and cuts
    it into consecutive blocks, which avoids leaking neighbouring, correlated time
    steps between splits. Every split with a positive fraction gets at least one
    file when there are enough files.

    Parameters
    ----------
    files : sequence of str or path-like
    fractions : three floats
        ``(train, val, test)``, non-negative with a positive sum (normalized); default
        ``(0.7, 0.15, 0.15)``.
    seed : int
        Default 0.
    contiguous : bool
        Default ``False``.

    Returns
    -------
    dict
        ``{"train": [...], "val": [...], "test": [...]}``, lists of paths sorted by name.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.shape != (3,) or np.any(fractions < 0) or fractions.sum() <= 0:
        raise ValueError(f"fractions must be three non-negative numbers (train, val, test), got {fractions.tolist()}")
    files = sorted(Path(f) for f in files)
    n = len(files)
    order = np.arange(n) if contiguous else np.random.default_rng(seed).permutation(n)
    counts = np.floor(fractions / fractions.sum() * n).astype(int)
    for i in np.argsort(-fractions):  # distribute the remainder, largest fraction first
        if counts.sum() < n:
            counts[i] += 1
    for i in (1, 2):  # val/test get one file if asked for and train can spare it
        if fractions[i] > 0 and counts[i] == 0 and counts[0] > 1:
            counts[i], counts[0] = 1, counts[0] - 1
    bounds = np.cumsum(counts)
    parts = np.split(order, bounds[:2])
    return {name: [files[i] for i in sorted(part)] for name, part in zip(("train", "val", "test"), parts)}


def write_split_lists(splits: dict[str, Sequence[str | os.PathLike]], folder: str | os.PathLike) -> None:
    """Write UGSCNN-style ``{train,val,test}_split.txt`` (file names relative to ``folder``).

    Parameters
    ----------
    splits : dict of str to sequence of paths
        As :func:`split_files` returns; one list file per key.
    folder : str or path-like
        Where the lists are written.
    """
    folder = Path(folder)
    for name, files in splits.items():
        lines = [os.path.relpath(Path(f).resolve(), folder.resolve()) for f in files]
        with atomic_write(folder / f"{name}_split.txt", "w") as f:
            f.write("".join(line + "\n" for line in lines))


def read_split_list(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Read a UGSCNN split list (one file name per line).

    Parameters
    ----------
    path : str or path-like
    data_dir : str or path-like, optional
        What the names are relative to; default: the list's folder.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    FileNotFoundError
        If the list or a listed file is missing (naming them).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such split list")
    base = Path(data_dir) if data_dir is not None else path.parent
    files = [base / line.strip() for line in path.read_text().splitlines() if line.strip()]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"{path}: {len(missing)} listed files do not exist, e.g. {missing[:3]}")
    return files
