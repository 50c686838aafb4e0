"""Crash-safe file writing.

Every file this library writes (mesh caches, checkpoints, projection caches,
metrics) goes through :func:`atomic_write`: the content is written to a
temporary file in the destination folder, flushed to disk, and renamed over the
destination. A crash at any moment leaves either the old file or the new one,
never a truncated mix. Files written by another library from a path (netCDF
outputs) take the same steps by hand: :func:`temporary_beside`, then
:func:`publish` or :func:`discard`. Cached arrays carry an :func:`array_checksum`, checked
when they are read back.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_write",
    "save_npz",
    "save_npy",
    "save_json",
    "save_torch",
    "remove_stale_temporaries",
    "temporary_beside",
    "publish",
    "discard",
    "array_checksum",
]


def temporary_beside(path: str | os.PathLike) -> Path:
    """Create an empty temporary file beside ``path`` (``.<name>.<random>.tmp``) and return its path.

    It has the usual permissions (``0o666`` less the umask). Make it ``path`` with
    :func:`publish`, or remove it with :func:`discard`; a process killed before either
    leaves it for :func:`remove_stale_temporaries`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
    return Path(tmp)


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Flush the closed temporary file ``tmp`` to disk and rename it over ``path``.

    Parameters
    ----------
    tmp : str or path-like
        From :func:`temporary_beside`, closed.
    path : str or path-like
        The destination, replaced if it exists.
    """
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def discard(tmp: str | os.PathLike) -> None:
    """Remove the temporary file ``tmp`` if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : path-like
        The destination.
    mode : str
        ``"wb"`` or ``"w"`` (any writing mode of :func:`open`).
    newline : str, optional
        As for :func:`open` in text mode (``""`` for the :mod:`csv` module).
    """
    tmp = temporary_beside(path)
    try:
        with open(tmp, mode, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
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


def array_checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of named arrays: their names, dtypes, shapes and bytes, in name order.

    The checksum stored in the ``.npz`` caches (meshes, regridders, regridded samples,
    projected shapes) and compared when they are read back: equal arrays under the same
    names give the same digest, whatever the order of the dict or the arrays' memory layout.

    Parameters
    ----------
    arrays : dict of str to array_like
        The arrays, by name.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    digest = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
        digest.update(a.reshape(-1).view(np.uint8))  # the array's bytes, without a copy
    return digest.hexdigest()


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Atomically write an uncompressed ``.npz`` archive (no pickled objects)."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Atomically write a ``.npy`` file (no pickled objects).

    Parameters
    ----------
    path : str or path-like
    array : array_like
    """
    with atomic_write(path) as f:
        np.save(f, np.asarray(array), allow_pickle=False)


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON.

    Parameters
    ----------
    path : str or path-like
    obj : JSON-serializable object
        Written with sorted keys and a final newline.
    """
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """Atomically ``torch.save`` an object (load it back with ``weights_only=True``).

    Parameters
    ----------
    path : str or path-like
    obj : object
        Anything :func:`torch.save` takes.
    """
    import torch

    with atomic_write(path) as f:
        torch.save(obj, f)
