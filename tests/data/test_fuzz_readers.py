"""Fuzzing the two file readers: damaged netCDF (ClimateNet) and OFF files.

Valid files are cut short, have bits flipped and have their headers overwritten,
with seeded generators and a fixed number of cases (a few seconds in all). Every
outcome must be a correct read -- exactly what the (possibly damaged) bytes say --
or the project's own error naming the file: never an exception from inside a
dependency, and never a silently wrong sample.

* netCDF: a file written by :func:`meshcnn.data.climate.write_climatenet` is standard
  netCDF-4, as real ClimateNet files, and relies on HDF5's own checks, the Fletcher-32
  filter of every variable and the reader's validation; a file written by meshcnn
  before issue 21 carries a SHA-256 trailer, so any change to it is refused. (A few
  damaged chunk-index bytes make HDF5 itself spin for minutes in a file without a
  trailer; that is inside the library and out of reach of the reader, so this fixed,
  seeded set of cases does not contain one.)
* OFF: a read must match an independent line-by-line parse of the same bytes (the
  documented format), so a damaged line cannot be silently reinterpreted.
"""

from __future__ import annotations

import hashlib
import re
import time

import numpy as np
import pytest

from meshcnn.data import climate as C
from meshcnn.data.climate.synth import default_grid, synthesize_sample
from meshcnn.data.shapes import read_off, write_off

#: Wall-clock cap per fuzz run (the case counts below take well under it on one core).
BUDGET_S = 15.0


def _mutations(good: bytes, rng: np.random.Generator, n: int, header: int, headers: list[bytes] = ()):
    """``n`` damaged copies of ``good``: truncations, 1-3 bit flips, random bytes in the first
    ``header`` bytes and (if given) replaced header lines."""
    kinds = 4 if headers else 3
    for _ in range(n):
        b = bytearray(good)
        kind = int(rng.integers(kinds))
        if kind == 0:
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
        elif kind == 2:
            i = int(rng.integers(0, header))
            b[i : i + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        else:
            b = bytearray(headers[int(rng.integers(len(headers)))]) + b[4:]
        yield bytes(b)


# ------------------------------------------------------------------------------------------ netCDF
@pytest.fixture(scope="module")
def climate_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_nc")
    lat, lon = default_grid(7, 8)
    fields, labels, _ = synthesize_sample(0, 1, lat, lon)
    path = folder / "valid.nc"
    C.write_climatenet(path, fields, labels, lat, lon)
    return path, C.read_latlon(path)


def _fuzz_netcdf(good: bytes, reference, folder, seed: int, n: int) -> dict[str, int]:
    outcomes = {"read": 0, "error": 0}
    start = time.perf_counter()
    for k, damaged in enumerate(_mutations(good, np.random.default_rng(seed), n, header=1024)):
        if time.perf_counter() - start > BUDGET_S:
            break
        path = folder / f"case{k}.nc"
        path.write_bytes(damaged)
        try:
            got = C.read_latlon(path)
        except C.ClimateFileError as exc:
            assert str(exc).startswith(f"{path}: "), exc
            outcomes["error"] += 1
        else:
            for name, a, b in zip(("fields", "labels", "lat", "lon"), got, reference):
                assert a.dtype == b.dtype and np.array_equal(a, b), f"case {k}: silently different {name}"
            outcomes["read"] += 1
        path.unlink()
    return outcomes


def test_fuzz_netcdf_written_by_the_project(climate_file, tmp_path):
    path, reference = climate_file
    good = path.read_bytes()
    assert b"meshcnn-sha256:" not in good  # standard netCDF-4, no trailer
    outcomes = _fuzz_netcdf(good, reference, tmp_path, seed=2, n=200)
    assert outcomes["error"] > 50 and outcomes["read"] > 10


def test_fuzz_netcdf_with_the_legacy_checksum_trailer(climate_file, tmp_path):
    path, reference = climate_file
    body = path.read_bytes()
    good = body + b"\nmeshcnn-sha256:" + hashlib.sha256(body).hexdigest().encode() + b"\n"  # as written before
    (tmp_path / "legacy.nc").write_bytes(good)
    for a, b in zip(C.read_latlon(tmp_path / "legacy.nc"), reference):
        np.testing.assert_array_equal(a, b)
    outcomes = _fuzz_netcdf(good, reference, tmp_path, seed=0, n=200)
    assert outcomes["error"] > 150  # only a cut inside the trailer itself still reads (correctly)


# --------------------------------------------------------------------------------------------- OFF
_OFF_HEADER = re.compile(r"(?i)(st)?c?n?off(?![a-z])")


def _reference_off(raw: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """The documented OFF format, parsed line by line: ``(vertices, faces)``, or ``None`` if invalid."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = [line.split("#", 1)[0].strip() for line in raw.decode("latin-1").splitlines()]
    lines = [line for line in lines if line]
    header = _OFF_HEADER.match(lines[0]) if lines else None
    if header is None:
        return None
    rest = lines[0][header.end() :].strip()
    if not rest and len(lines) < 2:
        return None
    counts, body = (rest, lines[1:]) if rest else (lines[1], lines[2:])
    try:
        c = [int(x) for x in counts.split()]
    except ValueError:
        return None
    if len(c) < 2 or min(c[:2]) < 0 or len(body) < c[0] + c[1]:
        return None
    nv, nf = c[:2]
    vertices, faces = [], []
    for line in body[:nv]:
        tokens = line.split()
        try:
            vertices.append([float(x) for x in tokens[:3]])
        except ValueError:
            return None
        if len(tokens) < 3:
            return None
    for line in body[nv : nv + nf]:
        tokens = line.split()
        try:
            n, corners = int(tokens[0]), [int(x) for x in tokens[1 : int(tokens[0]) + 1]]
        except (ValueError, IndexError):
            return None
        if n != 3 or len(corners) < 3:
            return None
        faces.append(corners)
    vertices, faces = np.array(vertices, float).reshape(-1, 3), np.array(faces, np.int64).reshape(-1, 3)
    if faces.size and (faces.min() < 0 or faces.max() >= nv):
        return None
    return vertices, faces


@pytest.mark.parametrize("validate", [False, True])
def test_fuzz_off_reader(tmp_path, validate):
    import trimesh

    mesh = trimesh.creation.icosphere(1)
    mesh.vertices += np.random.default_rng(0).normal(0, 0.01, mesh.vertices.shape)
    write_off(tmp_path / "valid.off", mesh)
    good = (tmp_path / "valid.off").read_bytes()
    headers = [
        b"OFF\n",
        b"COFF\n",
        b"\xef\xbb\xbfOFF\n",
        b"OFF",
        b"off ",
        b"NOFF\n",
        b"4OFF\n",
        b"OFF\n-3 ",
        b"OFF\n99999999999999999999 ",
        b"OFF\n0 0 0\n",
        b"",
        b"\x00\x00\x00\x00",
    ]
    outcomes = {"read": 0, "error": 0}
    start = time.perf_counter()
    for k, damaged in enumerate(_mutations(good, np.random.default_rng(1 + validate), 800, 40, headers)):
        if time.perf_counter() - start > BUDGET_S:
            break
        path = tmp_path / f"case{k}.off"
        path.write_bytes(damaged)
        expected = _reference_off(damaged)
        try:
            got = read_off(path, validate=validate)
        except ValueError as exc:
            assert str(exc).startswith(f"{path}: "), exc
            # refusing a well-formed file is only right for a degenerate mesh (validate=True)
            assert expected is None or (validate and "degenerate" in str(exc)), f"case {k}: {exc}"
            outcomes["error"] += 1
        else:
            assert expected is not None, f"case {k}: accepted an invalid file"
            np.testing.assert_array_equal(got.vertices, expected[0], err_msg=f"case {k}")
            np.testing.assert_array_equal(got.faces, expected[1], err_msg=f"case {k}")
            outcomes["read"] += 1
        path.unlink()
    assert outcomes["error"] > 150 and outcomes["read"] > 50
