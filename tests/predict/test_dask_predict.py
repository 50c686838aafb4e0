"""meshcnn predict --dask: the chunks on a dask.distributed cluster give the same outputs as the serial run."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil

import numpy as np
import pytest

pytest.importorskip("netCDF4")
xr = pytest.importorskip("xarray")
distributed = pytest.importorskip("distributed")

from meshcnn.predict import predict_files

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def client():
    with distributed.Client(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


def _same_outputs(a, b, names):
    for name in names:
        with xr.open_dataset(a / name, decode_times=False) as x, xr.open_dataset(b / name, decode_times=False) as y:
            assert set(x.variables) == set(y.variables)
            for var in x.variables:
                np.testing.assert_array_equal(x[var].values, y[var].values, err_msg=f"{name}:{var}")
            for key, value in x.attrs.items():
                assert np.array_equal(np.asarray(value), np.asarray(y.attrs[key])), key


@pytest.mark.slow
def test_dask_outputs_equal_the_serial_run_and_resume(run, tmp_path, client):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for f in run["files"]:
        shutil.copy(f, inputs / f.name)
    # a long file: its chunks of --batch-size steps spread over the workers
    with contextlib.ExitStack() as stack:
        parts = [stack.enter_context(xr.open_dataset(f, decode_times=False)).load() for f in run["files"]]
    xr.concat([p.drop_vars("LABELS") for p in parts], dim="time", data_vars="minimal").to_netcdf(inputs / "long.nc")
    names = sorted(p.name for p in inputs.iterdir())
    kw = dict(events=None, probabilities=True, batch_size=2, progress=False)
    serial = predict_files(
        [inputs],
        run["checkpoint"],
        tmp_path / "serial",
        events=tmp_path / "serial.csv",
        **{k: v for k, v in kw.items() if k != "events"},
    )
    dask = predict_files(
        [inputs],
        run["checkpoint"],
        tmp_path / "dask",
        events=tmp_path / "dask.csv",
        client=client,
        **{k: v for k, v in kw.items() if k != "events"},
    )
    assert dask["written"] == serial["written"] == 7 and dask["time_steps"] == serial["time_steps"] == 12
    assert dask["events"] == serial["events"]
    _same_outputs(tmp_path / "serial", tmp_path / "dask", names)
    assert (tmp_path / "serial.csv").read_text() == (tmp_path / "dask.csv").read_text()
    assert set(dask["seconds"]) == set(serial["seconds"]) and dask["seconds"]["model"] > 0
    # resume: complete outputs are kept, a removed one is written again, identical
    (tmp_path / "dask" / "long.nc").unlink()
    again = predict_files(
        [inputs],
        run["checkpoint"],
        tmp_path / "dask",
        resume=True,
        client=client,
        **{k: v for k, v in kw.items() if k != "events"},
    )
    assert again["skipped_complete"] == 6 and again["written"] == 1
    _same_outputs(tmp_path / "serial", tmp_path / "dask", ["long.nc"])
    assert sorted(p.name for p in (tmp_path / "dask").iterdir()) == names  # no temporary left


@pytest.mark.slow
def test_dask_bad_file_is_reported_like_the_serial_run(run, tmp_path, client):
    from meshcnn.predict import PredictError

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(run["files"][0], inputs / "a.nc")
    with xr.open_dataset(run["files"][1], decode_times=False) as ds:
        bad = ds.load()
    bad["TMQ"][:] = np.nan
    bad.to_netcdf(inputs / "b.nc")
    with pytest.raises(PredictError, match="b.nc"):
        predict_files([inputs], run["checkpoint"], tmp_path / "out", client=client, progress=False)
    result = predict_files([inputs], run["checkpoint"], tmp_path / "out", client=client, progress=False, skip_bad=True)
    assert result["written"] == 1 and len(result["bad"]) == 1 and "b.nc" in result["bad"][0][0]


@pytest.mark.slow
def test_cli_dask_local_cluster(run, tmp_path):
    from meshcnn.__main__ import main

    with contextlib.redirect_stdout(io.StringIO()) as stdout, contextlib.redirect_stderr(io.StringIO()):
        assert (
            main(
                [
                    "predict",
                    "--checkpoint",
                    str(run["checkpoint"]),
                    "--out",
                    str(tmp_path / "out"),
                    "--dask",
                    "--workers",
                    "1",
                    "--threads",
                    "1",
                    "--no-progress",
                    "--events",
                    str(tmp_path / "ev.csv"),
                    str(run["files"][0]),
                    str(run["files"][1]),
                ]
            )
            == 0
        )
    assert "2 written" in stdout.getvalue()
    with open(tmp_path / "ev.csv") as fh:
        assert next(csv.reader(fh))[0]
    with pytest.raises(SystemExit):
        with contextlib.redirect_stderr(io.StringIO()):
            main(
                [
                    "predict",
                    "--checkpoint",
                    str(run["checkpoint"]),
                    "--out",
                    str(tmp_path / "o2"),
                    "--scheduler",
                    "tcp://127.0.0.1:1",
                    str(run["files"][0]),
                ]
            )


def test_zarr_inputs_give_the_netcdf_outputs(run, tmp_path):
    """A Zarr store (NAME.zarr) is an input like a netCDF file; its output NAME.nc equals the netCDF input's."""
    pytest.importorskip("zarr")
    nc = tmp_path / "nc"
    nc.mkdir()
    stores = tmp_path / "stores"
    for f in run["files"][:2]:
        shutil.copy(f, nc / f.name)
        with xr.open_dataset(f, decode_times=False, mask_and_scale=False) as ds:
            ds.load().to_zarr(stores / f"{f.stem}.zarr", mode="w", consolidated=False)
    a = predict_files([nc], run["checkpoint"], tmp_path / "a", probabilities=True, progress=False)
    b = predict_files([stores], run["checkpoint"], tmp_path / "b", probabilities=True, progress=False)
    assert a["written"] == b["written"] == 2
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        with (
            xr.open_dataset(tmp_path / "a" / name, decode_times=False) as x,
            xr.open_dataset(tmp_path / "b" / name, decode_times=False) as y,
        ):
            for var in ("LABELS", "PROBABILITIES", "MESH_LABELS", "lat", "lon", "time"):
                np.testing.assert_array_equal(x[var].values, y[var].values)
            assert x["time"].attrs == y["time"].attrs
    again = predict_files([stores], run["checkpoint"], tmp_path / "b", resume=True, progress=False)
    assert again["skipped_complete"] == 2


def test_tasks_are_files_or_chunks():
    from meshcnn.predict.distributed import _tasks

    chunks = [(0, 0, 4), (0, 4, 8), (1, 0, 4), (2, 0, 2)]
    assert _tasks(chunks, 2) == [[(0, 0, 4), (0, 4, 8)], [(1, 0, 4)], [(2, 0, 2)]]  # a file read by one worker
    assert _tasks(chunks, 4) == [[c] for c in chunks]  # fewer files than workers: chunks spread
    assert _tasks([(0, 0, 4), (0, 4, 8)], 2) == [[(0, 0, 4)], [(0, 4, 8)]]  # one long file over the workers
