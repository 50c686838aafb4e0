"""OFF mesh files: :func:`read_off` (with the header quirk of the real ModelNet files) and :func:`write_off`.

OFF files are read by :func:`read_off`, which accepts the header quirk of the
real ModelNet files (``OFF490 518 0`` on one line). Polygons with more than three
corners are an error by default (the ModelNet files are all triangles, so a
polygon usually means a different kind of file); ``triangulate=True``
fan-triangulates them instead (exact for convex polygons).

Accepted headers: ``OFF`` alone on its line with the counts ``nv nf ne`` on
the next, ``OFF nv nf ne`` and the ModelNet quirk ``OFFnv nf ne``; also the
Geomview variants ``COFF``, ``NOFF``, ``CNOFF`` and ``STOFF`` (vertex colours,
normals, texture coordinates: read and ignored), in any letter case, and a
UTF-8 byte-order mark before the header. ``#`` comments and blank lines are
skipped; numbers after the three coordinates of a vertex or the indices of a
face (colours) are ignored.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np

from ...geometry.project import check_mesh
from ...io import atomic_write

__all__ = ["read_off", "write_off"]

_OFF_HEADER = re.compile(r"(?i)(st)?c?n?off(?![a-z])")


def read_off(path: str | os.PathLike, triangulate: bool = False, validate: bool = True):
    """Read an OFF file into a :class:`trimesh.Trimesh` (not processed: vertices and faces as in the file).

    The headers and lines accepted are those of the module description.

    Parameters
    ----------
    path : path-like
        The OFF file.
    triangulate : bool
        Fan-triangulate polygons with more than three corners instead of refusing them.
    validate : bool
        Refuse degenerate meshes (:func:`meshcnn.geometry.project.check_mesh`).

    Returns
    -------
    trimesh.Trimesh
        Vertices ``(nv, 3)`` float64 and triangles ``(nf, 3)`` as in the file.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        Naming the file, for: a missing or malformed header, too few or non-numeric
        entries, faces with fewer than 3 corners, polygons (unless ``triangulate``),
        face indices out of range, and, with ``validate``, degenerate meshes (NaN
        vertices, zero volume).
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such OFF file")
    nv, nf, body = _read_header(path)

    vertices = faces = None
    try:
        values = np.array(" ".join(body).split(), dtype=np.float64)
    except ValueError:
        values = None  # non-numeric somewhere: let the line-by-line parser say where
    if (
        values is not None
        and len(body) == nv + nf
        and len(values) == 3 * nv + 4 * nf
        and np.all(values[3 * nv :: 4] == 3)
    ):  # one vertex or triangle a line, nothing else: all at once
        vertices = values[: 3 * nv].reshape(nv, 3)
        faces = values[3 * nv :].reshape(nf, 4)[:, 1:]
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


def _read_header(path: Path) -> tuple[int, int, list[str]]:
    """``(nv, nf, data lines)`` of an OFF file: comments and blank lines dropped; ``ValueError`` for a bad header."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark (some Windows tools write one)
        raw = raw[3:]
    text = raw.decode("latin-1")
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    header = _OFF_HEADER.match(lines[0]) if lines else None
    if header is None:
        first = lines[0][:40] if lines else "<empty file>"
        hint = (
            " (4OFF/nOFF, homogeneous or n-dimensional vertices, are not supported)"
            if lines and re.match(r"(?i)(st)?c?n?(4|n)off", lines[0])
            else ""
        )
        raise ValueError(f"{path}: not an OFF file (first line {first!r}){hint}")
    rest = lines[0][header.end() :].strip()
    count_line, body = (rest, lines[1:]) if rest else ((lines[1] if len(lines) > 1 else ""), lines[2:])
    try:
        counts = [int(c) for c in count_line.split()]
    except ValueError:
        counts = []
    if len(counts) < 2 or min(counts[:2]) < 0:
        raise ValueError(f"{path}: malformed OFF header, expected 'nv nf ne', got {count_line!r}")
    nv, nf = counts[:2]
    return nv, nf, body


def _parse_off_lines(path: Path, body: list[str], nv: int, nf: int, triangulate: bool) -> tuple[np.ndarray, np.ndarray]:
    if len(body) < nv + nf:
        raise ValueError(
            f"{path}: truncated: header announces {nv} vertices and {nf} faces, found only {len(body)} data lines"
        )
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
    for k, line in enumerate(body[nv : nv + nf]):
        tokens = line.split()
        try:
            n = int(tokens[0])
            corners = [int(x) for x in tokens[1 : n + 1]]  # anything after the corners (colour) is ignored
        except (ValueError, IndexError):
            raise ValueError(f"{path}: face {k}: expected a count and integer indices, got {line!r}") from None
        if n < 3 or len(corners) < n:
            raise ValueError(f"{path}: face {k} is not a polygon of at least 3 corners: {line!r}")
        if n > 3 and not triangulate:
            raise ValueError(
                f"{path}: face {k} has {n} corners; only triangle meshes are read "
                "(pass triangulate=True, or --triangulate, to fan-triangulate polygons)"
            )
        triangles += [(corners[0], corners[j], corners[j + 1]) for j in range(1, n - 1)]
    return vertices, np.array(triangles, dtype=np.float64).reshape(-1, 3)


def write_off(path: str | os.PathLike, mesh, header_quirk: bool = False) -> None:
    """Write a triangle mesh as OFF, atomically.

    Coordinates are written with 6 decimals, or with 9 significant digits where 6 decimals
    would lose more than 1e-4 of the shape's size (a shape in tiny units).

    Parameters
    ----------
    path : str or path-like
    mesh : trimesh.Trimesh
        Or anything with ``vertices`` ``(V, 3)`` and ``faces`` ``(F, 3)``.
    header_quirk : bool
        Write ``OFFnv nf 0`` on one line (as some real ModelNet files do); default ``False``.
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    buf = io.StringIO()
    buf.write(f"OFF{len(vertices)} {len(faces)} 0\n" if header_quirk else f"OFF\n{len(vertices)} {len(faces)} 0\n")
    size = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    np.savetxt(buf, vertices, fmt="%.6f" if size * 1e-4 >= 5e-7 else "%.9g")
    np.savetxt(buf, np.column_stack([np.full(len(faces), 3), faces]), fmt="%d")
    with atomic_write(path, "w") as f:
        f.write(buf.getvalue())
