"""Where :class:`~meshcnn.data.shapes.ModelNet` keeps its projections: per file on disk, or in memory.

On disk a projection of ``ROOT/<class>/<split>/<name>.off`` is
``cache_dir/<variant>/<class>/<split>/<name>.npz`` (atomic writes; arrays ``signal``
and ``checksum``, the SHA-256 of the signal), where ``<variant>`` names the
projection version, the grid and the rotation bank. A file older than its OFF file
is stale; one that is unreadable, fails its checksum or has another shape or dtype
than expected is recomputed with a warning naming it. Without ``cache_dir`` the
projections are kept in memory (per process).
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ...io import array_checksum, save_npz

__all__ = ["ProjectionStore"]


class ProjectionStore:
    """Projections of the shape files under ``root``, one per file and variant.

    Parameters
    ----------
    root : path-like
        The dataset root: cache files mirror the paths below it.
    cache_dir : path-like, optional
        The cache folder; ``None`` keeps the projections in memory.
    """

    def __init__(self, root: str | os.PathLike, cache_dir: str | os.PathLike | None) -> None:
        self.root = Path(root)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._memory: dict[tuple[Path, str], np.ndarray] = {}

    def path(self, file: Path, variant: str) -> Path | None:
        """The cache file of ``file``'s ``variant`` (``None`` without a cache folder).

        Parameters
        ----------
        file : pathlib.Path
            A shape file under ``root``.
        variant : str
            Projection version, grid and rotation bank.
        """
        if self.cache_dir is None:
            return None
        return self.cache_dir / variant / file.relative_to(self.root).with_suffix(".npz")

    def load(self, file: Path, variant: str, shape: tuple[int, ...]) -> np.ndarray | None:
        """The stored float32 projection of ``file``, or ``None`` if missing, stale or invalid (with a warning).

        Parameters
        ----------
        file : pathlib.Path
            A shape file under ``root``.
        variant : str
            Projection version, grid and rotation bank.
        shape : tuple of int
            The expected shape.
        """
        cache = self.path(file, variant)
        if cache is None:
            return self._memory.get((file, variant))
        if not cache.is_file() or cache.stat().st_mtime < file.stat().st_mtime:
            return None
        try:
            with np.load(cache, allow_pickle=False) as f:
                signal, checksum = f["signal"], f["checksum"]
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            warnings.warn(f"{cache}: unreadable projection cache ({err}); recomputing", stacklevel=4)
            return None
        if checksum.shape != () or str(checksum) != array_checksum({"signal": signal}):
            warnings.warn(f"{cache}: projection cache fails its checksum (corrupt); recomputing", stacklevel=4)
            return None
        if signal.shape != shape or signal.dtype != np.float32 or not np.isfinite(signal).all():
            warnings.warn(
                f"{cache}: projection cache has shape {signal.shape} {signal.dtype}, expected "
                f"{shape} float32; recomputing",
                stacklevel=4,
            )
            return None
        return signal

    def save(self, file: Path, variant: str, signal: np.ndarray) -> None:
        """Store ``signal`` as ``file``'s ``variant`` (atomically, with its checksum).

        Parameters
        ----------
        file : pathlib.Path
            A shape file under ``root``.
        variant : str
            Projection version, grid and rotation bank.
        signal : float32 array
        """
        cache = self.path(file, variant)
        if cache is None:
            self._memory[(file, variant)] = signal
        else:
            save_npz(cache, signal=signal, checksum=np.array(array_checksum({"signal": signal})))
