"""Reading inputs for meshcnn predict (meshcnn.predict.inputs): file selection, packed and missing values,
dimension orders, time chunks, and errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest

netCDF4 = pytest.importorskip("netCDF4")

from meshcnn.data.climate import ClimateFileError
from meshcnn.predict import PredictError, find_inputs
from meshcnn.predict.inputs import read_fields

LAT = np.linspace(-90.0, 90.0, 5)
LON = np.arange(0.0, 360.0, 45.0)


def _write(path, variables, *, time=3):
    """A small netCDF file: ``variables`` maps a name to ``(dims, values, attributes)``."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("lat", len(LAT))
        ds.createDimension("lon", len(LON))
        if time:
            ds.createDimension("time", None)
            t = ds.createVariable("time", "f8", ("time",))
            t.units = "hours since 2000-01-01"
            t[:] = np.arange(time) * 3.0
        ds.createVariable("lat", "f8", ("lat",))[:] = LAT
        ds.createVariable("lon", "f8", ("lon",))[:] = LON
        for name, (dims, values, attrs) in variables.items():
            fill = attrs.pop("_FillValue", None)
            var = ds.createVariable(name, values.dtype, dims, fill_value=fill)
            var.set_auto_maskandscale(False)
            var.setncatts(attrs)
            var[:] = values
    return path


def test_find_inputs_searches_folders_and_refuses_name_clashes(tmp_path):
    for name in ("b/2.nc", "b/sub/1.nc", "b/.hidden.nc", "b/notes.txt", "c/2.nc"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in find_inputs([tmp_path / "b"])] == ["b/2.nc", "b/sub/1.nc"]
    with pytest.raises(PredictError, match="same file name"):
        find_inputs([tmp_path / "b", tmp_path / "c"])
    with pytest.raises(PredictError, match="no such file or folder"):
        find_inputs([tmp_path / "missing"])
    with pytest.raises(PredictError, match="no input netCDF files"):
        find_inputs([tmp_path / "b" / "sub" / "1.nc"][:0])


def test_packed_and_missing_values_and_any_dimension_order(tmp_path):
    rng = np.random.default_rng(0)
    packed = rng.integers(-100, 100, (3, 5, 8)).astype(np.int16)
    packed[1, 2, 3] = -999
    plain = rng.standard_normal((8, 3, 5)).astype(np.float32)  # (lon, time, lat) order
    path = _write(
        tmp_path / "f.nc",
        {
            "A": (
                ("time", "lat", "lon"),
                packed,
                {"scale_factor": 0.5, "add_offset": 10.0, "_FillValue": np.int16(-999)},
            ),
            "B": (("lon", "time", "lat"), plain, {}),
        },
    )
    with pytest.raises(
        ClimateFileError, match=r"f\.nc.*'A' contains NaN or missing values \(1 points, 0\.8% of those read\)"
    ):
        read_fields(path, ["A", "B"])
    got = read_fields(path, ["A", "B"], allow_nan=True)
    assert got["fields"].shape == (3, 2, 5, 8) and got["fields"].dtype == np.float32
    expected = packed.astype(np.float32) * np.float32(0.5) + np.float32(10.0)
    expected[1, 2, 3] = np.nan
    np.testing.assert_array_equal(got["fields"][:, 0], expected)
    np.testing.assert_array_equal(got["fields"][:, 1], plain.transpose(1, 2, 0))
    assert (got["lat_name"], got["lon_name"], got["time_name"], got["num_steps"]) == ("lat", "lon", "time", 3)
    chunk = read_fields(path, ["B"], steps=(1, 3))
    np.testing.assert_array_equal(chunk["fields"][:, 0], plain.transpose(1, 2, 0)[1:3])
    np.testing.assert_array_equal(chunk["time"], [3.0, 6.0])
    header = read_fields(path, ["A", "B"], header_only=True)
    assert "fields" not in header and header["num_steps"] == 3


def test_fields_without_time_and_bad_layouts_are_named(tmp_path):
    field = np.ones((5, 8), dtype=np.float32)
    path = _write(tmp_path / "still.nc", {"A": (("lat", "lon"), field, {})}, time=0)
    got = read_fields(path, ["A"])
    assert got["time_name"] is None and got["num_steps"] == 1 and got["fields"].shape == (1, 1, 5, 8)
    with pytest.raises(ClimateFileError, match=r"still\.nc.*missing variables the checkpoint needs: B, C"):
        read_fields(path, ["A", "B", "C"])
    inf = _write(tmp_path / "inf.nc", {"A": (("time", "lat", "lon"), np.full((3, 5, 8), np.inf, np.float32), {})})
    with pytest.raises(ClimateFileError, match=r"inf\.nc.*'A' contains Inf"):
        read_fields(inf, ["A"])
    steps = _write(
        tmp_path / "steps.nc",
        {"A": (("time", "lat", "lon"), np.zeros((3, 5, 8), np.float32), {}), "B": (("lat", "lon"), field, {})},
    )
    with pytest.raises(ClimateFileError, match="'B' has 1 time steps, others 3"):
        read_fields(steps, ["A", "B"])
    with pytest.raises(ClimateFileError, match="no such file"):
        read_fields(tmp_path / "missing.nc", ["A"])


def _chunked(path, steps, chunk, *, time_axis_first=True):
    """``A`` of ``steps`` steps on the 5 x 8 grid, zlib-compressed in HDF5 chunks of ``chunk`` steps."""
    values = np.arange(steps * 40, dtype=np.float32).reshape(steps, 5, 8)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", steps)
        ds.createDimension("lat", 5)
        ds.createDimension("lon", 8)
        ds.createVariable("lat", "f8", ("lat",))[:] = LAT
        ds.createVariable("lon", "f8", ("lon",))[:] = LON
        ds.createVariable("time", "f8", ("time",))[:] = np.arange(steps)
        if time_axis_first:
            ds.createVariable("A", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(chunk, 5, 8))[:] = values
        else:
            ds.createVariable("A", "f4", ("lat", "time", "lon"), zlib=True, chunksizes=(5, chunk, 8))[:] = (
                values.transpose(1, 0, 2)
            )
    return path, values


class _Recording:
    """A netCDF4 variable that records the time steps of every read from the file."""

    def __init__(self, var, time_axis):
        self.var, self.time_axis, self.reads = var, time_axis, []

    def __getitem__(self, index):
        self.reads.append((index[self.time_axis].start, index[self.time_axis].stop))
        return self.var[index]

    def __getattr__(self, name):
        return getattr(self.var, name)


@pytest.mark.parametrize("time_axis_first", [True, False])
def test_a_file_read_in_chunks_of_steps_reads_each_hdf5_chunk_once(tmp_path, time_axis_first):
    from meshcnn.predict.inputs import FileReader

    path, values = _chunked(tmp_path / "c.nc", 23, 10, time_axis_first=time_axis_first)
    for read_ahead, reads in ((0, [(0, 10), (10, 20), (20, 23)]), (20 * 160, [(0, 20), (20, 23)])):
        with FileReader(path, ["A"], read_ahead_bytes=read_ahead) as reader:
            v = reader.vars[0]
            v.var = _Recording(v.var, v.time_axis)
            got = [reader.read((t0, min(t0 + 4, 23))) for t0 in range(0, 23, 4)]
            np.testing.assert_array_equal(np.concatenate([g["fields"][:, 0] for g in got]), values)
            np.testing.assert_array_equal(np.concatenate([g["time"] for g in got]), np.arange(23))
            assert v.var.reads == reads  # whole HDF5 chunks, each read (and decompressed) once
            assert v.block[2].nbytes <= max(read_ahead, 2 * 10 * 160)


def test_memory_stays_bounded_by_the_steps_asked_for_and_the_read_ahead(tmp_path):
    from meshcnn.predict.inputs import FileReader

    path, values = _chunked(tmp_path / "steps.nc", 50, 1)  # one step per chunk, as model history files
    with FileReader(path, ["A"], read_ahead_bytes=0) as reader:
        np.testing.assert_array_equal(reader.read((20, 24))["fields"][:, 0], values[20:24])
        assert reader.vars[0].block[:2] == (20, 24)
    with FileReader(path, ["A"], read_ahead_bytes=10 * 160) as reader:  # 10 steps of 160 bytes
        np.testing.assert_array_equal(reader.read((20, 24))["fields"][:, 0], values[20:24])
        assert reader.vars[0].block[:2] == (20, 30)
        np.testing.assert_array_equal(reader.read((28, 40))["fields"][:, 0], values[28:40])  # more than the budget
        assert reader.vars[0].block[:2] == (28, 40)
