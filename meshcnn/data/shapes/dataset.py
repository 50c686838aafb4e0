"""The :class:`ModelNet` dataset: ModelNet-layout shapes as spherical projections, with a projection cache."""

from __future__ import annotations

import dataclasses
import logging
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..._progress import progress_bar
from ...geometry.coords import num_vertices_at
from ...geometry.mesh import check_level
from ...geometry.project import ShapeProjector, latlon_shape
from ...geometry.rotations import random_rotation
from .cache import ProjectionStore
from .off import read_off

__all__ = ["find_classes", "ModelNet", "ProjectionOptions", "PROJECTION_VERSION", "SPLITS", "GRIDS"]


SPLITS = ("train", "test")
PROJECTION_VERSION = 1  # bump when the projection changes, so old caches are not reused
GRIDS = ("mesh", "latlon")  # the icosphere's vertices, or a lat-lon grid (as in meshcnn.data.climate)
_GRID_ALIASES = {"ico": "mesh"}  # the older name of "mesh"
_log = logging.getLogger(__name__)


def find_classes(root: str | os.PathLike) -> list[str]:
    """Sorted class folder names in ``root`` (``FileNotFoundError`` / ``ValueError`` if none)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset root folder not found")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))
    if not classes:
        raise ValueError(f"{root}: no class folders (expected ROOT/<class>/{{train,test}}/*.off)")
    return classes


@dataclass(frozen=True)
class ProjectionOptions:
    """How :class:`ModelNet` reads and projects its shapes.

    Parameters
    ----------
    grid : {"mesh", "latlon"}
        Project onto the icosphere's vertices, or onto an equiangular lat-lon grid
        (for planar baselines); ``"ico"`` is accepted as an older name of ``"mesh"``.
    latlon : (H, W), optional
        The lat-lon grid's size (default :func:`meshcnn.geometry.project.latlon_shape` of the level).
    triangulate : bool
        Fan-triangulate polygon faces instead of refusing them (:func:`read_off`).
    engine : str, optional
        The ray engine of :class:`meshcnn.geometry.ShapeProjector` (default: the fastest installed).
    mesh_cache : int
        Keep the last ``mesh_cache`` shapes read (with their ray structures) in memory.
    """

    grid: str = "mesh"
    latlon: tuple[int, int] | None = None
    triangulate: bool = False
    engine: str | None = None
    mesh_cache: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", _GRID_ALIASES.get(self.grid, self.grid))
        if self.grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {self.grid!r}")
        mesh_cache = self.mesh_cache
        if isinstance(mesh_cache, bool) or not isinstance(mesh_cache, int) or mesh_cache < 0:
            raise ValueError(f"mesh_cache must be a non-negative integer, got {mesh_cache!r}")


def _check_arguments(split: str, rotate: bool, cache_rotations: int | None) -> None:
    """``ValueError`` for an unknown split or a bad rotation bank."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if cache_rotations is not None:
        if isinstance(cache_rotations, bool) or not isinstance(cache_rotations, int) or cache_rotations < 1:
            raise ValueError(f"cache_rotations must be a positive integer or None, got {cache_rotations!r}")
        if not rotate:
            raise ValueError("cache_rotations needs rotate=True")


def _list_split(root: Path, classes: list[str], split: str) -> tuple[list[Path], list[int]]:
    """The ``.off`` files of ``split`` (sorted per class) and their class indices; ``ValueError`` for an empty class."""
    files, targets = [], []
    for label, name in enumerate(classes):
        folder = root / name / split
        found = (
            sorted(p for p in folder.glob("*") if p.suffix.lower() == ".off" and p.is_file()) if folder.is_dir() else []
        )
        if not found:
            raise ValueError(f"{folder}: class {name!r} has no .off files in split {split!r}")
        files += found
        targets += [label] * len(found)
    return files, targets


def _stable_key(relpath: str) -> int:
    return zlib.crc32(relpath.encode())


class ModelNet(Dataset):
    r"""ModelNet-layout shapes as spherical projections: items ``(signal, class_index)``.

    ``signal`` is a float32 tensor ``(6, V)`` with ``V = 10 * 4**level + 2``
    (``grid="mesh"``; ``"ico"`` is accepted as an older name) or ``(6, H, W)`` (``grid="latlon"``, ``latlon=(H, W)``,
    default :func:`meshcnn.geometry.project.latlon_shape`\ ``(level)``: about as many
    samples as the icosphere), channels :data:`meshcnn.geometry.project.CHANNELS`.

    Rotations: with ``rotate=True`` each item is the projection of the shape
    turned by a uniform random rotation; a fresh one is drawn for every epoch
    (:meth:`set_epoch`, which :func:`meshcnn.train.fit` calls), from a generator
    seeded by ``(seed, epoch, file)``, so runs are reproducible and items that
    are read twice in one epoch agree. Each such item is projected anew (ray
    casts per item: see the projection benchmark). With ``cache_rotations=N`` every file instead gets a fixed bank
    of ``N`` rotations, projected once and cached; each epoch picks one of them.
    ``mesh_cache=K`` keeps the last ``K`` shapes read (normalized, with their
    convex hulls and ray-acceleration structures: :class:`meshcnn.geometry.ShapeProjector`)
    in memory, so fresh rotations cost only the ray casts (mind the memory for
    large meshes; per DataLoader worker).
    An evaluation set that never calls :meth:`set_epoch` always sees epoch 0,
    hence the same rotations.

    Caching: unrotated projections (and rotation banks) are stored per file as
    ``cache_dir/<variant>/<class>/<split>/<name>.npz``, or kept in memory without
    ``cache_dir`` (per process: DataLoader workers do not share it); see
    :class:`~meshcnn.data.shapes.cache.ProjectionStore`. :meth:`precompute` fills the cache up front.

    Bad files: by default reading one raises ``ValueError`` naming it when its
    item is first loaded. With ``skip_bad=True`` every file without a cache entry
    is read and checked once here (progress bar), and bad ones are logged and
    left out (:attr:`skipped` lists ``(path, reason)``). An empty class folder is
    always an error.

    Parameters
    ----------
    root : path-like
        The ModelNet-layout folder ``ROOT/<class>/<split>/*.off``.
    split : {"train", "test"}
    level : int
        Icosphere level of the projection (and size of the default lat-lon grid).
    rotate : bool
        Project each shape turned by a random rotation (see above).
    cache_dir : path-like, optional
        Where projections are cached (default: in memory).
    cache_rotations : int, optional
        A fixed bank of this many rotations per file instead of fresh ones (needs ``rotate``).
    skip_bad : bool
        Leave out unreadable or degenerate files (see above).
    seed : int
        Seed of the rotations.
    options : ProjectionOptions, optional
        The projection settings; the keywords ``grid``, ``latlon``, ``triangulate``,
        ``engine`` and ``mesh_cache`` override its fields.
    progress : bool
        Progress bar while checking files.
    log : callable, optional
        Told about skipped files (default: a ``logging`` warning).

    Attributes
    ----------
    classes : list of str
        Sorted class folder names.
    files : list of Path
    targets : list of int
        Class indices.
    signal_shape : tuple of int
        ``(6, V)`` or ``(6, H, W)``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        level: int,
        rotate: bool = False,
        cache_dir: str | os.PathLike | None = None,
        cache_rotations: int | None = None,
        skip_bad: bool = False,
        *,
        seed: int = 0,
        options: ProjectionOptions | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
        **projection: Any,
    ) -> None:
        options = dataclasses.replace(options or ProjectionOptions(), **projection)
        _check_arguments(split, rotate, cache_rotations)
        self.root = Path(root)
        self.split, self.level, self.rotate = split, check_level(level), bool(rotate)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._store = ProjectionStore(self.root, self.cache_dir)
        self.cache_rotations, self.seed, self.options = cache_rotations, int(seed), options
        self.grid, self.triangulate, self.engine = options.grid, options.triangulate, options.engine
        self.latlon = tuple(options.latlon) if options.latlon is not None else latlon_shape(self.level)
        if self.grid == "latlon" and (len(self.latlon) != 2 or min(self.latlon) < 1):
            raise ValueError(f"latlon must be (H, W) with positive sizes, got {options.latlon!r}")
        self.signal_shape = (6, num_vertices_at(self.level)) if self.grid == "mesh" else (6, *self.latlon)
        self._log = log or _log.warning
        self.epoch = 0
        self.mesh_cache = options.mesh_cache
        self._projectors: dict[Path, ShapeProjector] = {}
        self.classes = find_classes(self.root)
        files, targets = _list_split(self.root, self.classes, split)
        self.skipped: list[tuple[Path, str]] = []
        if skip_bad:
            files, targets = self._drop_bad(files, targets, progress)
        self.files: list[Path] = files
        self.targets: list[int] = targets

    def _drop_bad(self, files: list[Path], targets: list[int], progress: bool) -> tuple[list[Path], list[int]]:
        """``files`` and ``targets`` without the unreadable or degenerate files (checked unless cached)."""
        keep = []
        for path, label in progress_bar(
            list(zip(files, targets)), enabled=progress, desc=f"checking {self.split} files", leave=False
        ):
            if self._cached(path) is None:
                try:
                    read_off(path, triangulate=self.triangulate)
                except (ValueError, OSError) as err:
                    self.skipped.append((path, str(err)))
                    self._log(f"skipping {path}: {err}")
                    continue
            keep.append((path, label))
        if not keep:
            raise ValueError(f"{self.root}: every {self.split} file is bad")
        return [p for p, _ in keep], [t for _, t in keep]

    # ------------------------------------------------------------------ public
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        """Select the rotations of ``epoch`` (only matters with ``rotate=True``)."""
        self.epoch = int(epoch)

    def rotation(self, index: int, epoch: int | None = None) -> np.ndarray | None:
        """The ``(3, 3)`` rotation applied to item ``index`` in ``epoch``; ``None`` if not rotating.

        Parameters
        ----------
        index : int
        epoch : int, optional
            Default: the current epoch (:meth:`set_epoch`).
        """
        if not self.rotate:
            return None
        epoch = self.epoch if epoch is None else int(epoch)
        key = _stable_key(self._relpath(self.files[index]))
        if self.cache_rotations is None:
            return random_rotation(np.random.default_rng([self.seed, 0, epoch, key]))
        return self._bank_rotation(key, self._bank_index(key, epoch))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} shapes")
        index = index % len(self)
        path = self.files[index]
        if not self.rotate:
            signal = self._load_or_project(path, bank=False)
        elif self.cache_rotations is None:
            signal = self._project(self._projector(path, keep=True), self.rotation(index))
        else:
            key = _stable_key(self._relpath(path))
            signal = self._load_or_project(path, bank=True)[self._bank_index(key, self.epoch)]
        return torch.from_numpy(np.ascontiguousarray(signal)), self.targets[index]

    def precompute(self, progress: bool = True) -> None:
        """Project and cache every file that the current settings can cache (unrotated or rotation banks)."""
        if self.rotate and self.cache_rotations is None:
            return  # fresh rotations are never cached
        for path in progress_bar(self.files, enabled=progress, desc=f"projecting {self.split}", unit="shape"):
            self._load_or_project(path, bank=self.rotate)

    def __repr__(self) -> str:
        rot = (
            "none"
            if not self.rotate
            else ("fresh" if self.cache_rotations is None else f"bank of {self.cache_rotations}")
        )
        return (
            f"ModelNet(root={str(self.root)!r}, split={self.split!r}, level={self.level}, grid={self.grid!r}, "
            f"shapes={len(self)}, classes={self.num_classes}, rotations={rot})"
        )

    # ------------------------------------------------------------------ internals
    def _relpath(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _bank_rotation(self, key: int, k: int) -> np.ndarray:
        return random_rotation(np.random.default_rng([self.seed, 1, key, k]))

    def _bank_index(self, key: int, epoch: int) -> int:
        return int(np.random.default_rng([self.seed, 2, epoch, key]).integers(self.cache_rotations))

    def _variant(self, bank: bool) -> str:
        grid = f"ico{self.level}" if self.grid == "mesh" else f"latlon{self.latlon[0]}x{self.latlon[1]}"
        name = f"v{PROJECTION_VERSION}_{grid}"
        return f"{name}_rot{self.cache_rotations}_seed{self.seed}" if bank else name

    def _expected_shape(self, bank: bool) -> tuple[int, ...]:
        return ((self.cache_rotations,) if bank else ()) + self.signal_shape

    def _cached(self, path: Path, bank: bool | None = None) -> np.ndarray | None:
        bank = self.rotate and self.cache_rotations is not None if bank is None else bank
        return self._store.load(path, self._variant(bank), self._expected_shape(bank))

    def _projector(self, path: Path, keep: bool = False) -> ShapeProjector:
        """The shape at ``path`` ready to project; with ``keep``, held in an LRU of ``mesh_cache`` shapes."""
        projector = self._projectors.pop(path, None)
        if projector is None:
            projector = ShapeProjector(read_off(path, self.triangulate), engine=self.engine)
        if keep and self.mesh_cache > 0:
            self._projectors[path] = projector  # most recently used last
            while len(self._projectors) > self.mesh_cache:
                self._projectors.pop(next(iter(self._projectors)))
        return projector

    def _project(self, projector: ShapeProjector, rotation: np.ndarray | None) -> np.ndarray:
        if self.grid == "mesh":
            return projector.icosphere(self.level, rotation)
        return projector.latlon(*self.latlon, rotation)

    def _load_or_project(self, path: Path, bank: bool) -> np.ndarray:
        signal = self._cached(path, bank)
        if signal is not None:
            return signal
        projector = self._projector(path)
        if bank:
            key = _stable_key(self._relpath(path))
            signal = np.stack(
                [self._project(projector, self._bank_rotation(key, k)) for k in range(self.cache_rotations)]
            )
        else:
            signal = self._project(projector, None)
        self._store.save(path, self._variant(bank), signal)
        return signal
