r"""3-D shapes in the ModelNet layout, projected onto the sphere for classification.

Layout (the official Princeton ModelNet10/ModelNet40 archives, unzipped)::

    ROOT/<class>/train/<class>_0001.off
    ROOT/<class>/test/<class>_0890.off

The class list is the sorted names of the folders in ``ROOT`` (folders whose
name starts with ``.`` or ``__``, such as the ``__MACOSX`` folder inside
``ModelNet10.zip``, are ignored). Each item of :class:`ModelNet` is the
6-channel spherical projection of :mod:`meshcnn.geometry.project` (``(6, V)`` on the
icosphere, or ``(6, H, W)`` on an equiangular lat-lon grid for planar
baselines) and the class index.

OFF files are read by :func:`read_off`, which accepts the header quirk of the
real ModelNet files (``OFF490 518 0`` on one line). Polygons with more than three
corners are an error by default (the ModelNet files are all triangles, so a
polygon usually means a different kind of file); ``triangulate=True``
fan-triangulates them instead (exact for convex polygons).

An offline stand-in for ModelNet, written in the same layout::

    python -m meshcnn.data.shapes synth --out data/synthshapes --per-class 60 --seed 0

builds 12 classes (:data:`SYNTH_CLASSES`) from trimesh primitives and
assemblies of them with random proportions, non-uniform scaling, a random yaw
and vertex noise, so that neighbouring classes (box/pyramid, cone/pyramid,
capsule/ellipsoid, table/stool, ...) overlap.
"""
from __future__ import annotations

import argparse
import io
import logging
import math
import os
import re
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .._progress import progress_bar
from ..io import atomic_write, save_json, save_npz
from ..geometry.mesh import _checksum, check_level
from ..geometry.project import ShapeProjector, check_mesh, latlon_shape
from ..geometry.rotations import random_rotation

__all__ = [
    "read_off",
    "write_off",
    "find_classes",
    "ModelNet",
    "SYNTH_CLASSES",
    "synth_shape",
    "make_synthetic",
    "PROJECTION_VERSION",
]

SPLITS = ("train", "test")
PROJECTION_VERSION = 1  # bump when the projection changes, so old caches are not reused
GRIDS = ("mesh", "latlon")  # the icosphere's vertices, or a lat-lon grid (as in meshcnn.data.climate)
_GRID_ALIASES = {"ico": "mesh"}  # the older name of "mesh"
_log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- OFF files
_OFF_HEADER = re.compile(r"(?i)(st)?c?n?off(?![a-z])")


def read_off(path: str | os.PathLike, triangulate: bool = False, validate: bool = True):
    """Read an OFF file into a :class:`trimesh.Trimesh` (not processed: vertices and faces as in the file).

    Accepted headers: ``OFF`` alone on its line with the counts ``nv nf ne`` on
    the next, ``OFF nv nf ne`` and the ModelNet quirk ``OFFnv nf ne``; also the
    Geomview variants ``COFF``, ``NOFF``, ``CNOFF`` and ``STOFF`` (vertex colours,
    normals, texture coordinates: read and ignored), in any letter case, and a
    UTF-8 byte-order mark before the header. ``#`` comments and blank lines are
    skipped; numbers after the three coordinates of a vertex or the indices of a
    face (colours) are ignored.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError``, naming
    the file, for: a missing or malformed header, too few or non-numeric
    entries, faces with fewer than 3 corners, polygons (unless
    ``triangulate=True``), face indices out of range, and, with ``validate``,
    degenerate meshes (NaN vertices, zero volume; see
    :func:`meshcnn.geometry.check_mesh`).
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such OFF file")
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark (some Windows tools write one)
        raw = raw[3:]
    text = raw.decode("latin-1")
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    header = _OFF_HEADER.match(lines[0]) if lines else None
    if header is None:
        first = lines[0][:40] if lines else "<empty file>"
        hint = " (4OFF/nOFF, homogeneous or n-dimensional vertices, are not supported)" \
            if lines and re.match(r"(?i)(st)?c?n?(4|n)off", lines[0]) else ""
        raise ValueError(f"{path}: not an OFF file (first line {first!r}){hint}")
    rest = lines[0][header.end():].strip()
    count_line, body = (rest, lines[1:]) if rest else ((lines[1] if len(lines) > 1 else ""), lines[2:])
    try:
        counts = [int(c) for c in count_line.split()]
    except ValueError:
        counts = []
    if len(counts) < 2 or min(counts[:2]) < 0:
        raise ValueError(f"{path}: malformed OFF header, expected 'nv nf ne', got {count_line!r}")
    nv, nf = counts[:2]

    vertices = faces = None
    try:
        values = np.array(" ".join(body).split(), dtype=np.float64)
    except ValueError:
        values = None  # non-numeric somewhere: let the line-by-line parser say where
    if values is not None and len(body) == nv + nf and len(values) == 3 * nv + 4 * nf \
            and np.all(values[3 * nv::4] == 3):  # one vertex or triangle a line, nothing else: all at once
        vertices = values[: 3 * nv].reshape(nv, 3)
        faces = values[3 * nv:].reshape(nf, 4)[:, 1:]
    else:
        vertices, faces = _parse_off_lines(path, body, nv, nf, triangulate)
    if faces.size and np.any(faces != np.round(faces)):
        raise ValueError(f"{path}: non-integer face indices")
    faces = faces.astype(np.int64).reshape(-1, 3)
    if faces.size and (faces.min() < 0 or faces.max() >= nv):
        raise ValueError(f"{path}: face index out of range 0..{nv - 1}")
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False, validate=False)
    mesh.metadata["file_path"] = str(path)
    if validate:
        check_mesh(mesh, str(path))
    return mesh


def _parse_off_lines(path: Path, body: list[str], nv: int, nf: int,
                     triangulate: bool) -> tuple[np.ndarray, np.ndarray]:
    if len(body) < nv + nf:
        raise ValueError(f"{path}: truncated: header announces {nv} vertices and {nf} faces, "
                         f"found only {len(body)} data lines")
    vertices = np.empty((nv, 3))
    for i, line in enumerate(body[:nv]):
        parts = line.split()
        try:
            if len(parts) < 3:
                raise ValueError
            vertices[i] = [float(x) for x in parts[:3]]
        except ValueError:
            raise ValueError(f"{path}: vertex {i}: expected 3 numbers, got {line!r}") from None
    triangles: list[tuple[int, int, int]] = []
    for k, line in enumerate(body[nv: nv + nf]):
        tokens = line.split()
        try:
            n = int(tokens[0])
            corners = [int(x) for x in tokens[1: n + 1]]  # anything after the corners (colour) is ignored
        except (ValueError, IndexError):
            raise ValueError(f"{path}: face {k}: expected a count and integer indices, got {line!r}") from None
        if n < 3 or len(corners) < n:
            raise ValueError(f"{path}: face {k} is not a polygon of at least 3 corners: {line!r}")
        if n > 3 and not triangulate:
            raise ValueError(f"{path}: face {k} has {n} corners; only triangle meshes are read "
                             "(pass triangulate=True, or --triangulate, to fan-triangulate polygons)")
        triangles += [(corners[0], corners[j], corners[j + 1]) for j in range(1, n - 1)]
    return vertices, np.array(triangles, dtype=np.float64).reshape(-1, 3)


def write_off(path: str | os.PathLike, mesh, header_quirk: bool = False) -> None:
    """Write a triangle mesh as OFF, atomically. ``header_quirk=True`` writes ``OFFnv nf 0`` on one line
    (as some real ModelNet files do). Coordinates are written with 6 decimals, or with 9 significant
    digits where 6 decimals would lose more than 1e-4 of the shape's size (a shape in tiny units)."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    buf = io.StringIO()
    buf.write(f"OFF{len(vertices)} {len(faces)} 0\n" if header_quirk else f"OFF\n{len(vertices)} {len(faces)} 0\n")
    size = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    np.savetxt(buf, vertices, fmt="%.6f" if size * 1e-4 >= 5e-7 else "%.9g")
    np.savetxt(buf, np.column_stack([np.full(len(faces), 3), faces]), fmt="%d")
    with atomic_write(path, "w") as f:
        f.write(buf.getvalue())


# ---------------------------------------------------------------------------------------------- dataset
def find_classes(root: str | os.PathLike) -> list[str]:
    """Sorted class folder names in ``root`` (``FileNotFoundError`` / ``ValueError`` if none)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset root folder not found")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))
    if not classes:
        raise ValueError(f"{root}: no class folders (expected ROOT/<class>/{{train,test}}/*.off)")
    return classes


def _stable_key(relpath: str) -> int:
    return zlib.crc32(relpath.encode())


class ModelNet(Dataset):
    r"""ModelNet-layout shapes as spherical projections: items ``(signal, class_index)``.

    ``signal`` is a float32 tensor ``(6, V)`` with ``V = 10 * 4**level + 2``
    (``grid="mesh"``; ``"ico"`` is accepted as an older name) or ``(6, H, W)`` (``grid="latlon"``, ``latlon=(H, W)``,
    default :func:`meshcnn.geometry.latlon_shape`\ ``(level)``: about as many
    samples as the icosphere), channels :data:`meshcnn.geometry.CHANNELS`.

    Rotations: with ``rotate=True`` each item is the projection of the shape
    turned by a uniform random rotation; a fresh one is drawn for every epoch
    (:meth:`set_epoch`, which :func:`meshcnn.train.fit` calls), from a generator
    seeded by ``(seed, epoch, file)``, so runs are reproducible and items that
    are read twice in one epoch agree. Each such item is projected anew (a few ms
    at level 4). With ``cache_rotations=N`` every file instead gets a fixed bank
    of ``N`` rotations, projected once and cached; each epoch picks one of them.
    ``mesh_cache=K`` keeps the last ``K`` shapes read (normalized, with their
    convex hulls and ray-acceleration structures: :class:`meshcnn.geometry.ShapeProjector`)
    in memory, so fresh rotations cost only the ray casts (mind the memory for
    large meshes; per DataLoader worker).
    An evaluation set that never calls :meth:`set_epoch` always sees epoch 0,
    hence the same rotations.

    Caching: unrotated projections (and rotation banks) are stored per file as
    ``cache_dir/<variant>/<class>/<split>/<name>.npz`` (atomic writes; arrays
    ``signal`` and ``checksum``, the SHA-256 of the signal), where ``<variant>``
    names the projection version, the grid and the rotation bank; a cache file
    older than its OFF file is recomputed, and one that is unreadable or fails its
    checksum is recomputed with a warning naming it. Without
    ``cache_dir`` they are kept in memory (per process: DataLoader workers do not
    share it). :meth:`precompute` fills the cache up front.

    Bad files: by default reading one raises ``ValueError`` naming it when its
    item is first loaded. With ``skip_bad=True`` every file without a cache entry
    is read and checked once here (progress bar), and bad ones are logged and
    left out (:attr:`skipped` lists ``(path, reason)``). An empty class folder is
    always an error.

    Attributes: ``classes`` (sorted folder names), ``files`` (paths),
    ``targets`` (class indices), ``signal_shape``.
    """

    def __init__(self, root: str | os.PathLike, split: str, level: int, rotate: bool = False,
                 cache_dir: str | os.PathLike | None = None, cache_rotations: int | None = None,
                 skip_bad: bool = False, *, grid: str = "mesh", latlon: tuple[int, int] | None = None,
                 seed: int = 0, triangulate: bool = False, engine: str | None = None, mesh_cache: int = 0,
                 progress: bool = True, log: Callable[[str], None] | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        grid = _GRID_ALIASES.get(grid, grid)
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
        if cache_rotations is not None:
            if isinstance(cache_rotations, bool) or not isinstance(cache_rotations, int) or cache_rotations < 1:
                raise ValueError(f"cache_rotations must be a positive integer or None, got {cache_rotations!r}")
            if not rotate:
                raise ValueError("cache_rotations needs rotate=True")
        self.root = Path(root)
        self.split, self.level, self.rotate = split, check_level(level), bool(rotate)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.cache_rotations, self.grid, self.seed = cache_rotations, grid, int(seed)
        self.triangulate, self.engine = triangulate, engine
        self.latlon = tuple(latlon) if latlon is not None else latlon_shape(self.level)
        if grid == "latlon" and (len(self.latlon) != 2 or min(self.latlon) < 1):
            raise ValueError(f"latlon must be (H, W) with positive sizes, got {latlon!r}")
        self.signal_shape = (6, 10 * 4**self.level + 2) if grid == "mesh" else (6, *self.latlon)
        self._log = log or _log.warning
        self.epoch = 0
        self._memory: dict[tuple[Path, bool], np.ndarray] = {}
        if isinstance(mesh_cache, bool) or not isinstance(mesh_cache, int) or mesh_cache < 0:
            raise ValueError(f"mesh_cache must be a non-negative integer, got {mesh_cache!r}")
        self.mesh_cache = mesh_cache
        self._projectors: dict[Path, ShapeProjector] = {}

        self.classes = find_classes(self.root)
        files, targets = [], []
        for label, name in enumerate(self.classes):
            folder = self.root / name / split
            found = sorted(p for p in folder.glob("*") if p.suffix.lower() == ".off" and p.is_file()) \
                if folder.is_dir() else []
            if not found:
                raise ValueError(f"{folder}: class {name!r} has no .off files in split {split!r}")
            files += found
            targets += [label] * len(found)
        self.skipped: list[tuple[Path, str]] = []
        if skip_bad:
            keep = []
            for path, label in progress_bar(list(zip(files, targets)), enabled=progress,
                                            desc=f"checking {split} files", leave=False):
                if self._cached(path) is None:
                    try:
                        read_off(path, triangulate=self.triangulate)
                    except (ValueError, OSError) as err:
                        self.skipped.append((path, str(err)))
                        self._log(f"skipping {path}: {err}")
                        continue
                keep.append((path, label))
            files, targets = [p for p, _ in keep], [t for _, t in keep]
            if not files:
                raise ValueError(f"{self.root}: every {split} file is bad")
        self.files: list[Path] = files
        self.targets: list[int] = targets

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
        """The ``(3, 3)`` rotation applied to item ``index`` in ``epoch`` (default: current); ``None`` if not rotating."""
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
        rot = "none" if not self.rotate else ("fresh" if self.cache_rotations is None else f"bank of {self.cache_rotations}")
        return (f"ModelNet(root={str(self.root)!r}, split={self.split!r}, level={self.level}, grid={self.grid!r}, "
                f"shapes={len(self)}, classes={self.num_classes}, rotations={rot})")

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

    def _cache_path(self, path: Path, bank: bool) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / self._variant(bank) / Path(self._relpath(path)).with_suffix(".npz")

    def _expected_shape(self, bank: bool) -> tuple[int, ...]:
        return ((self.cache_rotations,) if bank else ()) + self.signal_shape

    def _cached(self, path: Path, bank: bool | None = None) -> np.ndarray | None:
        bank = self.rotate and self.cache_rotations is not None if bank is None else bank
        cache = self._cache_path(path, bank)
        if cache is None:
            return self._memory.get((path, bank))
        if not cache.is_file() or cache.stat().st_mtime < path.stat().st_mtime:
            return None
        try:
            with np.load(cache, allow_pickle=False) as f:
                signal, checksum = f["signal"], f["checksum"]
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            warnings.warn(f"{cache}: unreadable projection cache ({err}); recomputing", stacklevel=3)
            return None
        if checksum.shape != () or str(checksum) != _checksum({"signal": signal}):
            warnings.warn(f"{cache}: projection cache fails its checksum (corrupt); recomputing", stacklevel=3)
            return None
        if signal.shape != self._expected_shape(bank) or signal.dtype != np.float32 or not np.isfinite(signal).all():
            warnings.warn(f"{cache}: projection cache has shape {signal.shape} {signal.dtype}, expected "
                          f"{self._expected_shape(bank)} float32; recomputing", stacklevel=3)
            return None
        return signal

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
            signal = np.stack([self._project(projector, self._bank_rotation(key, k))
                               for k in range(self.cache_rotations)])
        else:
            signal = self._project(projector, None)
        cache = self._cache_path(path, bank)
        if cache is None:
            self._memory[(path, bank)] = signal
        else:
            save_npz(cache, signal=signal, checksum=np.array(_checksum({"signal": signal})))
        return signal


# ---------------------------------------------------------------------------------------------- synthetic set
def _frustum(r_bottom: tuple[float, float], r_top: tuple[float, float], height: float, sections: int):
    """Convex frustum between two ellipses (semi-axes ``r``) at ``z = 0`` and ``z = height``; ``r_top = 0`` gives a cone."""
    import trimesh

    angle = np.linspace(0, 2 * np.pi, sections, endpoint=False) + np.pi / sections
    ring = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    bottom = np.column_stack([ring * r_bottom, np.zeros(sections)])
    top = np.column_stack([ring * r_top, np.full(sections, height)]) if max(r_top) > 0 else [[0.0, 0.0, height]]
    return trimesh.convex.convex_hull(np.concatenate([bottom, top]))


def _at(mesh, x: float = 0.0, y: float = 0.0, z: float = 0.0):
    mesh.apply_translation((x, y, z))
    return mesh


def _legs(rng: np.random.Generator, width: float, depth: float, height: float, count: int = 4,
          round_legs: bool | None = None, thickness: float | None = None) -> list:
    """Vertical legs under a ``width x depth`` top, from ``z = 0`` to ``height``."""
    import trimesh

    t = thickness if thickness is not None else rng.uniform(0.03, 0.08)
    round_legs = rng.random() < 0.5 if round_legs is None else round_legs
    inset = rng.uniform(0.0, 0.15)
    if count == 4:
        xs = [(sx * (width / 2 - t - inset * width / 2), sy * (depth / 2 - t - inset * depth / 2))
              for sx in (-1, 1) for sy in (-1, 1)]
    else:
        radius = min(width, depth) / 2 - t
        xs = [(radius * math.cos(a), radius * math.sin(a)) for a in np.linspace(0, 2 * np.pi, count, endpoint=False)]
    legs = []
    for x, y in xs:
        leg = trimesh.creation.cylinder(radius=t / 2 + 0.005, height=height, sections=10) if round_legs \
            else trimesh.creation.box((t, t, height))
        legs.append(_at(leg, x, y, height / 2))
    return legs


def _box(rng):
    import trimesh

    return trimesh.creation.box(rng.uniform(0.5, 1.5, 3))


def _cylinder(rng):
    import trimesh

    return trimesh.creation.cylinder(radius=rng.uniform(0.25, 0.6), height=rng.uniform(0.4, 1.6),
                                     sections=int(rng.integers(6, 33)))


def _cone(rng):
    r = rng.uniform(0.3, 0.7)
    return _frustum((r, r), (0.0, 0.0), rng.uniform(0.5, 1.5), int(rng.integers(5, 33)))


def _capsule(rng):
    import trimesh

    return trimesh.creation.capsule(height=rng.uniform(0.2, 1.2), radius=rng.uniform(0.2, 0.5), count=[16, 16])


def _torus(rng):
    import trimesh

    major = rng.uniform(0.5, 0.8)
    return trimesh.creation.torus(major, major * rng.uniform(0.15, 0.55), major_sections=32, minor_sections=16)


def _ellipsoid(rng):
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3)
    sphere.apply_scale(rng.uniform(0.35, 1.0, 3))
    return sphere


def _pyramid(rng):
    a, b = rng.uniform(0.5, 1.2, 2)
    top = rng.uniform(0.0, 0.6) if rng.random() < 0.6 else 0.0
    return _frustum((a, b), (a * top, b * top), rng.uniform(0.4, 1.2), 4)


def _table(rng):
    import trimesh

    width, depth = rng.uniform(0.9, 2.0), rng.uniform(0.5, 1.2)
    height, thick = rng.uniform(0.6, 1.0), rng.uniform(0.03, 0.1)
    round_top = rng.random() < 0.3
    top = trimesh.creation.cylinder(radius=width / 2, height=thick, sections=32) if round_top \
        else trimesh.creation.box((width, depth, thick))
    parts = [_at(top, z=height - thick / 2)]
    if rng.random() < 0.25:  # pedestal table
        parts += [_at(trimesh.creation.cylinder(radius=rng.uniform(0.04, 0.1), height=height, sections=12), z=height / 2),
                  _at(trimesh.creation.cylinder(radius=rng.uniform(0.2, 0.4), height=0.04, sections=24), z=0.02)]
    else:
        d = width if round_top else depth
        parts += _legs(rng, width * 0.75 if round_top else width, d * 0.75 if round_top else d, height - thick)
    return trimesh.util.concatenate(parts)


def _chair(rng):
    import trimesh

    width, depth = rng.uniform(0.4, 0.65), rng.uniform(0.4, 0.6)
    seat_h, thick = rng.uniform(0.35, 0.55), rng.uniform(0.04, 0.09)
    parts = [_at(trimesh.creation.box((width, depth, thick)), z=seat_h - thick / 2)]
    parts += _legs(rng, width, depth, seat_h - thick)
    back_h, back_t = rng.uniform(0.3, 0.7), rng.uniform(0.03, 0.08)
    if rng.random() < 0.7:  # solid back
        parts.append(_at(trimesh.creation.box((width, back_t, back_h)), y=-depth / 2 + back_t / 2, z=seat_h + back_h / 2))
    else:  # two posts and a rail
        for sx in (-1, 1):
            parts.append(_at(trimesh.creation.box((back_t, back_t, back_h)), sx * (width / 2 - back_t / 2),
                             -depth / 2 + back_t / 2, seat_h + back_h / 2))
        parts.append(_at(trimesh.creation.box((width, back_t, back_h * 0.3)), y=-depth / 2 + back_t / 2,
                         z=seat_h + back_h * 0.85))
    if rng.random() < 0.4:  # armrests
        for sx in (-1, 1):
            parts.append(_at(trimesh.creation.box((0.04, depth, 0.04)), sx * width / 2, 0, seat_h + 0.2))
    return trimesh.util.concatenate(parts)


def _stool(rng):
    import trimesh

    height, thick = rng.uniform(0.4, 0.9), rng.uniform(0.03, 0.08)
    if rng.random() < 0.6:
        radius = rng.uniform(0.15, 0.3)
        seat = trimesh.creation.cylinder(radius=radius, height=thick, sections=24)
        width = depth = 2 * radius
    else:
        width, depth = rng.uniform(0.3, 0.55, 2)
        seat = trimesh.creation.box((width, depth, thick))
    count = int(rng.choice([3, 4]))
    parts = [_at(seat, z=height - thick / 2)] + _legs(rng, width, depth, height - thick, count=count)
    if rng.random() < 0.5:  # foot ring / crossbar
        parts.append(_at(trimesh.creation.torus(min(width, depth) / 2 * 0.8, 0.015, major_sections=24,
                                                minor_sections=6), z=height * 0.3))
    return trimesh.util.concatenate(parts)


def _lamp(rng):
    import trimesh

    base_r, pole_h = rng.uniform(0.12, 0.3), rng.uniform(0.5, 1.3)
    shade_h = rng.uniform(0.15, 0.4)
    r_bottom = rng.uniform(0.15, 0.35)
    parts = [_at(trimesh.creation.cylinder(radius=base_r, height=0.05, sections=24), z=0.025),
             _at(trimesh.creation.cylinder(radius=rng.uniform(0.015, 0.04), height=pole_h, sections=10), z=pole_h / 2),
             _at(_frustum((r_bottom, r_bottom), (r_bottom * rng.uniform(0.4, 0.9),) * 2, shade_h, 24),
                 z=pole_h - shade_h * rng.uniform(0.2, 0.8))]
    return trimesh.util.concatenate(parts)


def _bottle(rng):
    import trimesh

    r, body_h = rng.uniform(0.15, 0.35), rng.uniform(0.5, 1.1)
    shoulder_h, neck_r, neck_h = rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.12), rng.uniform(0.1, 0.35)
    sections = 24
    parts = [_at(trimesh.creation.cylinder(radius=r, height=body_h, sections=sections), z=body_h / 2),
             _at(_frustum((r, r), (neck_r, neck_r), shoulder_h, sections), z=body_h),
             _at(trimesh.creation.cylinder(radius=neck_r, height=neck_h, sections=sections),
                 z=body_h + shoulder_h + neck_h / 2)]
    return trimesh.util.concatenate(parts)


_SYNTH = {
    "box": _box, "bottle": _bottle, "capsule": _capsule, "chair": _chair, "cone": _cone, "cylinder": _cylinder,
    "ellipsoid": _ellipsoid, "lamp": _lamp, "pyramid": _pyramid, "stool": _stool, "table": _table, "torus": _torus,
}
SYNTH_CLASSES: tuple[str, ...] = tuple(sorted(_SYNTH))


def synth_shape(name: str, rng: np.random.Generator, noise: tuple[float, float] = (0.002, 0.012),
                scale: tuple[float, float] = (0.75, 1.33), yaw: float = math.pi / 6):
    """One random shape of class ``name`` (:data:`SYNTH_CLASSES`), upright along ``+z``.

    The class's parts with random proportions, then non-uniform scaling by
    factors drawn from ``scale`` per axis, a rotation about ``z`` by an angle
    in ``[-yaw, yaw]`` radians, subdivision to edges under 1/20 of the size and
    Gaussian vertex noise with a standard deviation drawn from ``noise``
    (fraction of the bounding-box diagonal).
    """
    import trimesh

    if name not in _SYNTH:
        raise ValueError(f"unknown synthetic class {name!r}; choose from {SYNTH_CLASSES}")
    mesh = _SYNTH[name](rng)
    mesh.vertices = mesh.vertices * rng.uniform(*scale, 3)
    angle = rng.uniform(-yaw, yaw)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(angle, (0, 0, 1)))
    diag = float(np.linalg.norm(mesh.extents))
    vertices, faces = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=diag / 20, max_iter=6)
    mesh = trimesh.Trimesh(vertices, faces, process=True)  # merge duplicates so noise does not open cracks
    mesh.vertices = mesh.vertices + rng.normal(0.0, rng.uniform(*noise) * diag, mesh.vertices.shape)
    return mesh


def make_synthetic(out: str | os.PathLike, per_class: int = 60, seed: int = 0, test_fraction: float = 0.2,
                   classes: tuple[str, ...] | list[str] | None = None, quirk_fraction: float = 0.1,
                   progress: bool = True) -> dict:
    """Write a synthetic shape set in the ModelNet layout; returns its description (also ``out/synth.json``).

    ``per_class`` shapes per class, the last ``round(per_class * test_fraction)``
    of them in ``test/``; files numbered ``<class>_0001.off`` ... across both
    splits, like ModelNet. A ``quirk_fraction`` of the files get the one-line
    ``OFFnv nf ne`` header. Shape ``i`` of class ``c`` is drawn from a generator
    seeded by ``(seed, c, i)``, so the set is reproducible.
    """
    classes = tuple(classes) if classes is not None else SYNTH_CLASSES
    if per_class < 2:
        raise ValueError(f"per_class must be at least 2, got {per_class}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = min(per_class - 1, max(1, round(per_class * test_fraction)))
    out = Path(out)
    jobs = [(c, i) for c in classes for i in range(per_class)]
    for c, i in progress_bar(jobs, enabled=progress, desc="synthesizing", unit="shape"):
        rng = np.random.default_rng([seed, SYNTH_CLASSES.index(c) if c in SYNTH_CLASSES else 0, i])
        mesh = synth_shape(c, rng)
        split = "test" if i >= per_class - n_test else "train"
        write_off(out / c / split / f"{c}_{i + 1:04d}.off", mesh, header_quirk=rng.random() < quirk_fraction)
    info = {"classes": list(classes), "per_class": per_class, "train_per_class": per_class - n_test,
            "test_per_class": n_test, "seed": seed, "quirk_fraction": quirk_fraction}
    save_json(out / "synth.json", info)
    return info


# ---------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m meshcnn.data.shapes",
                                     description="Shape data in the ModelNet layout.")
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth", help="write the offline synthetic shape set")
    synth.add_argument("--out", required=True, help="output root folder")
    synth.add_argument("--per-class", type=int, default=60, help="shapes per class, train + test (default 60)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--test-fraction", type=float, default=0.2, help="fraction of each class in test/ (0.2)")
    synth.add_argument("--classes", nargs="+", choices=SYNTH_CLASSES, default=None, help="subset of classes")
    synth.add_argument("--quirk-fraction", type=float, default=0.1,
                       help="fraction of files written with the one-line 'OFFnv nf ne' header (0.1)")
    pre = sub.add_parser("project", help="project and cache a ModelNet-layout folder")
    pre.add_argument("--root", required=True)
    pre.add_argument("--cache-dir", required=True)
    pre.add_argument("--level", type=int, default=5)
    pre.add_argument("--split", choices=SPLITS + ("both",), default="both")
    pre.add_argument("--grid", choices=GRIDS + tuple(_GRID_ALIASES), default="mesh")
    pre.add_argument("--skip-bad", action="store_true")
    pre.add_argument("--triangulate", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "synth":
        info = make_synthetic(args.out, args.per_class, args.seed, args.test_fraction, args.classes,
                              args.quirk_fraction)
        print(f"wrote {len(info['classes'])} classes x {info['per_class']} shapes "
              f"({info['train_per_class']} train + {info['test_per_class']} test) to {args.out}")
    else:
        for split in SPLITS if args.split == "both" else (args.split,):
            data = ModelNet(args.root, split, args.level, cache_dir=args.cache_dir, skip_bad=args.skip_bad,
                            grid=args.grid, triangulate=args.triangulate, log=print)
            data.precompute()
            print(f"{data}: cached under {args.cache_dir}")


if __name__ == "__main__":
    main()
