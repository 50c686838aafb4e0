"""Crash-safe file writing.

Every file this library writes (mesh caches, checkpoints, projection caches,
metrics) goes through :func:`atomic_write`: the content is written to a
temporary file in the destination folder, flushed to disk, and renamed over the
destination. A crash at any moment leaves either the old file or the new one,
never a truncated mix.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

__all__ = ["atomic_write", "save_npz", "save_npy", "save_json", "save_torch", "remove_stale_temporaries"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left beside ``path`` when a process
    writing ``path`` was killed (``.<name>.*.tmp``); return the paths removed.

    Call it only where no other process is writing ``path`` at the same time (at the start
    of the run that owns it): a temporary file is never part of a result, since only the
    rename makes the content visible as ``path``.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if tmp.is_file():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return sorted(removed)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Atomically write an uncompressed ``.npz`` archive (no pickled objects)."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Atomically write a ``.npy`` file (no pickled objects)."""
    with atomic_write(path) as f:
        np.save(f, np.asarray(array), allow_pickle=False)


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """Atomically ``torch.save`` an object (load it back with ``weights_only=True``)."""
    import torch

    with atomic_write(path) as f:
        torch.save(obj, f)
