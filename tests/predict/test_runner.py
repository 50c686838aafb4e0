"""meshcnn predict end to end (meshcnn.predict.runner and the ``meshcnn predict`` command) on a tiny trained
checkpoint and synthetic ClimateNet files."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("netCDF4")
xr = pytest.importorskip("xarray")

from meshcnn import __version__
from meshcnn.data import climate as C
from meshcnn.geometry import icosphere, locate
from meshcnn.grids import regrid
from meshcnn.predict import PredictError, frequency_path, predict_files
from meshcnn.predict.predictor import file_sha256

ROOT = Path(__file__).resolve().parents[2]
LEVEL = 2


pytestmark = pytest.mark.usefixtures("one_thread")


def predict(run, inputs, out, **kw):
    kw.setdefault("progress", False)
    return predict_files(inputs, run["checkpoint"], out, **kw)


def open_nc(path):
    return xr.open_dataset(path, decode_times=False)


def test_labels_follow_the_mesh_predictions(run, tmp_path):
    out = tmp_path / "out"
    result = predict(run, [run["data"]], out, events=tmp_path / "events.csv", probabilities=True)
    assert (
        result["written"] == 6
        and result["files"] == 6
        and set(result["seconds"]) == {"read", "regrid", "model", "regrid_back", "write"}
    )
    assert sorted(p.name for p in out.iterdir()) == [f.name for f in run["files"]]  # nothing else left
    sha = file_sha256(run["checkpoint"])
    mesh = icosphere(LEVEL)

    # the mesh labels are the model's argmax on the regridded, normalised file (as in training)
    from meshcnn.tasks import build_model, segmentation

    ckpt = torch.load(run["checkpoint"], weights_only=True)
    model = build_model(ckpt["extra"]["config"])
    model.load_state_dict(ckpt["model"])
    dataset = C.ClimateNetDataset(run["files"], LEVEL, stats=ckpt["extra"]["stats"])
    expected = segmentation.mesh_probabilities(model, dataset, LEVEL).argmax(1).numpy()

    for i, f in enumerate(run["files"]):
        with open_nc(out / f.name) as ds, open_nc(f) as src:
            assert ds["LABELS"].dims == ("time", "lat", "lon") and ds["LABELS"].dtype == np.int8
            np.testing.assert_array_equal(ds["lat"].values, src["lat"].values)
            np.testing.assert_array_equal(ds["lon"].values, src["lon"].values)
            np.testing.assert_array_equal(ds["time"].values, src["time"].values)
            assert ds["time"].attrs.get("units") == src["time"].attrs.get("units")
            assert list(ds["LABELS"].attrs["flag_values"]) == [0, 1, 2]
            assert ds["LABELS"].attrs["flag_meanings"] == "background tropical_cyclone atmospheric_river"
            assert ds.attrs["checkpoint_sha256"] == sha and ds.attrs["meshcnn_version"] == __version__
            assert int(ds.attrs["mesh_level"]) == LEVEL
            labels = ds["LABELS"].values[0]
            mesh_labels = ds["MESH_LABELS"].values[0]
            probs = ds["PROBABILITIES"].values[0]
        assert np.mean(mesh_labels == expected[i]) > 0.995
        np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
        np.testing.assert_array_equal(labels, probs.argmax(0))
        # nearest-neighbour regridding of the mesh labels agrees except along class boundaries:
        # inside a triangle whose corners share a label the interpolated argmax is that label
        lat, lon = np.meshgrid(src["lat"].values, src["lon"].values, indexing="ij")
        points = np.stack(
            [
                np.cos(np.deg2rad(lat)) * np.cos(np.deg2rad(lon)),
                np.cos(np.deg2rad(lat)) * np.sin(np.deg2rad(lon)),
                np.sin(np.deg2rad(lat)),
            ],
            -1,
        )
        face, _ = locate(mesh, points.reshape(-1, 3))
        corners = mesh_labels[mesh.faces[face]]
        uniform = (corners == corners[:, :1]).all(1)
        np.testing.assert_array_equal(labels.reshape(-1)[uniform], corners[uniform, 0])
        nearest = regrid.apply(
            regrid.mesh_to_latlon(LEVEL, src["lat"].values, src["lon"].values, "nearest"), mesh_labels
        )
        assert np.all((nearest == labels.reshape(-1)) | ~uniform)
    with open(tmp_path / "events.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == result["events"]
    assert frequency_path(tmp_path / "events.csv").is_file()


def _variant(src: Path, dst: Path, *, flip_lat=False, lon180=False, time="keep", steps=None):
    with xr.open_dataset(src, decode_times=False) as ds:
        ds = ds.load()
    if steps is not None:
        ds = xr.concat([xr.open_dataset(s, decode_times=False).load() for s in steps], dim="time", data_vars="all")
    if flip_lat:
        ds = ds.isel(lat=slice(None, None, -1))
    if lon180:
        ds = ds.assign_coords(lon=((ds["lon"] + 180.0) % 360.0) - 180.0).sortby("lon")
        ds["lon"].attrs["units"] = "degrees_east"
    if time == "drop":
        ds = ds.isel(time=0, drop=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(dst)
    return dst


@pytest.mark.slow
def test_grid_conventions_time_axes_and_cli(run, tmp_path):
    base = run["files"][0]
    inputs = tmp_path / "inputs"
    variants = {
        "north_to_south.nc": dict(flip_lat=True),
        "lon180.nc": dict(lon180=True),
        "both.nc": dict(flip_lat=True, lon180=True),
        "no_time.nc": dict(time="drop"),
        "three_steps.nc": dict(steps=run["files"][:3]),
    }
    for name, kw in variants.items():
        _variant(base, inputs / name, **kw)
    shutil.copy(base, inputs / "base.nc")
    out = tmp_path / "out"
    from meshcnn.__main__ import main  # in this process (test_resume_after_a_kill runs it as a subprocess)

    with contextlib.redirect_stdout(io.StringIO()) as stdout, contextlib.redirect_stderr(io.StringIO()):
        assert (
            main(
                [
                    "predict",
                    "--checkpoint",
                    str(run["checkpoint"]),
                    "--out",
                    str(out),
                    "--events",
                    str(tmp_path / "ev.csv"),
                    "--num-workers",
                    "1",
                    "--threads",
                    "1",
                    "--no-progress",
                    str(inputs),
                ]
            )
            == 0
        )
    assert "6 written" in stdout.getvalue()

    with open_nc(out / "base.nc") as ds:
        ref = ds["LABELS"].values[0]
        ref_lat, ref_lon = ds["lat"].values, ds["lon"].values
    for name in ("north_to_south.nc", "lon180.nc", "both.nc"):
        with open_nc(out / name) as ds, open_nc(inputs / name) as src:
            np.testing.assert_array_equal(ds["lat"].values, src["lat"].values)  # the input's own order
            np.testing.assert_array_equal(ds["lon"].values, src["lon"].values)
            canon = ds.sortby("lat").assign_coords(lon=ds["lon"] % 360.0).sortby("lon")
            np.testing.assert_array_equal(canon["lat"].values, ref_lat)
            np.testing.assert_array_equal(canon["lon"].values, ref_lon)
            assert np.mean(canon["LABELS"].values[0] == ref) > 0.999
    with open_nc(out / "no_time.nc") as ds:
        assert ds["LABELS"].dims == ("lat", "lon") and ds["MESH_LABELS"].dims == ("vertex",)
        np.testing.assert_array_equal(ds["LABELS"].values, ref)
    with open_nc(out / "three_steps.nc") as ds, open_nc(inputs / "three_steps.nc") as src:
        assert ds["LABELS"].shape == (3, 48, 72)
        np.testing.assert_array_equal(ds["time"].values, src["time"].values)
        np.testing.assert_array_equal(ds["LABELS"].values[0], ref)
    single = predict(run, run["files"][1:3], tmp_path / "single")
    assert single["written"] == 2
    for t, f in enumerate(run["files"][1:3], start=1):
        with open_nc(out / "three_steps.nc") as ds, open_nc(tmp_path / "single" / f.name) as one:
            np.testing.assert_array_equal(ds["LABELS"].values[t], one["LABELS"].values[0])
    with open(tmp_path / "ev.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["file"] == "three_steps.nc"]
    assert {r["time_index"] for r in rows} <= {"0", "1", "2"}
    assert all(r["time"].startswith("2000-01-") for r in rows)

    # a long file goes through in chunks of batch_size time steps: same labels, same events
    chunked = predict(
        run, [inputs / "three_steps.nc"], tmp_path / "chunked", batch_size=2, events=tmp_path / "chunked.csv"
    )
    assert chunked["written"] == 1 and chunked["time_steps"] == 3
    with open_nc(out / "three_steps.nc") as a, open_nc(tmp_path / "chunked" / "three_steps.nc") as b:
        np.testing.assert_array_equal(a["LABELS"].values, b["LABELS"].values)
        np.testing.assert_array_equal(a["event_area_km2"].values, b["event_area_km2"].values)
    with open(tmp_path / "chunked.csv") as fh:
        assert [r for r in csv.DictReader(fh)] == rows

    # events summary from the command line (in this process): maps and counts
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["events", "summary", str(tmp_path / "ev.csv"), "--out", str(tmp_path / "summary")]) == 0
    for name in ("counts.csv", "counts.md", "frequency_tropical_cyclone.png", "frequency_atmospheric_river.png"):
        assert (tmp_path / "summary" / name).is_file()


# --------------------------------------------------------------------------------- resume
@pytest.mark.slow
def test_resume_after_a_kill(run, tmp_path, monkeypatch):
    full = predict(run, run["files"], tmp_path / "full", events=tmp_path / "full.csv")
    out = tmp_path / "out"
    import meshcnn.predict as P

    real_replace, calls = os.replace, []

    def killed_on_third(src, dst):  # the process dies after writing the 3rd output's temporary file
        calls.append(dst)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(P.runner.os, "replace", killed_on_third)
    with pytest.raises(KeyboardInterrupt):
        predict(run, run["files"], out, events=tmp_path / "ev.csv")
    monkeypatch.setattr(P.runner.os, "replace", real_replace)
    assert sorted(p.name for p in out.iterdir()) == [f.name for f in run["files"][:2]]  # no partial file
    assert not (tmp_path / "ev.csv").exists() and not list(tmp_path.glob(".ev.csv*"))

    # a real kill (SIGKILL) in the middle of a command-line run, then --resume
    out2 = tmp_path / "out2"
    cmd = [
        sys.executable,
        "-m",
        "meshcnn",
        "predict",
        "--checkpoint",
        str(run["checkpoint"]),
        "--out",
        str(out2),
        "--num-workers",
        "0",
        "--threads",
        "1",
        "--no-progress",
        *map(str, run["files"]),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None and not list(out2.glob("*.nc")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(out2.glob("*.nc")), "the command wrote no output in 90 s"
    import netCDF4

    for f in out2.glob("*.nc"):  # whatever is there is complete
        with netCDF4.Dataset(f) as ds:
            assert ds.meshcnn_complete == 1 and ds["LABELS"].shape == (1, 48, 72)

    for target in (out, out2):
        resumed = predict(run, run["files"], target, events=tmp_path / "ev.csv", resume=True)
        assert resumed["skipped_complete"] >= (2 if target == out else 0)
        assert resumed["written"] + resumed["skipped_complete"] == 6
        assert sorted(p.name for p in target.iterdir()) == [f.name for f in run["files"]]
        with open(tmp_path / "ev.csv") as a, open(tmp_path / "full.csv") as b:
            assert a.read() == b.read()  # events of skipped files come from their outputs
        for f in run["files"]:
            with open_nc(target / f.name) as x, open_nc(tmp_path / "full" / f.name) as y:
                np.testing.assert_array_equal(x["LABELS"].values, y["LABELS"].values)
    np.testing.assert_array_equal(
        np.load(frequency_path(tmp_path / "ev.csv"))["counts"], np.load(frequency_path(tmp_path / "full.csv"))["counts"]
    )
    assert full["written"] == 6


# ------------------------------------------------------------------------------ bad input
def test_bad_inputs_name_the_file_and_write_nothing_for_it(run, tmp_path):
    good = run["files"][0]
    out = tmp_path / "out"

    def fails(inputs, match, **kw):
        with pytest.raises(PredictError, match=match) as info:
            predict(run, inputs, out, **kw)
        return str(info.value)

    # a missing variable
    with xr.open_dataset(good, decode_times=False) as ds:
        (tmp_path / "bad").mkdir()
        ds.drop_vars("PSL").to_netcdf(tmp_path / "bad" / "no_psl.nc")
    msg = fails([tmp_path / "bad" / "no_psl.nc"], "PSL")
    assert "no_psl.nc" in msg and not (out / "no_psl.nc").exists()

    # NaN in a required field; accepted with allow_nan
    with xr.open_dataset(good, decode_times=False) as ds:
        ds = ds.load()
    tmq = ds["TMQ"].values.copy()
    tmq[0, :, :10] = np.nan
    ds["TMQ"] = (ds["TMQ"].dims, tmq, ds["TMQ"].attrs)
    ds.to_netcdf(tmp_path / "bad" / "nan.nc")
    msg = fails([tmp_path / "bad" / "nan.nc"], "nan.nc.*TMQ.*NaN")
    assert not (out / "nan.nc").exists()
    # a strip of 10 of the 72 longitudes, pole to pole, is more of the globe than allow_nan fills by default
    fails(
        [tmp_path / "bad" / "nan.nc"],
        r"nan\.nc: variable 'TMQ' is missing on 1[0-5]\.\d% of the globe at "
        r"time step 0: more than --max-nan-fraction 0\.05",
        allow_nan=True,
    )
    assert predict(run, [tmp_path / "bad" / "nan.nc"], out, allow_nan=True, max_nan_fraction=0.2)["written"] == 1
    with open_nc(out / "nan.nc") as res:
        assert set(np.unique(res["LABELS"].values)) <= {0, 1, 2}
        assert res.attrs["nan_variables"] == "TMQ" and res.attrs["nan_filled_variables"] == "TMQ"
        assert res.attrs["nan_fraction_TMQ"] == pytest.approx(10 / 72)
        assert 0.10 < res.attrs["nan_filled_fraction_TMQ"] == res.attrs["nan_filled_fraction_max_TMQ"] < 0.16
        assert res.attrs["max_nan_fraction"] == 0.2

    # NaN in a later time step of a long file read in chunks: no output, no temporary file left
    _variant(good, tmp_path / "bad" / "steps.nc", steps=run["files"][:3])
    with xr.open_dataset(tmp_path / "bad" / "steps.nc", decode_times=False) as ds:
        ds = ds.load()
    psl = ds["PSL"].values.copy()
    psl[2, 5, 5] = np.nan
    ds["PSL"] = (ds["PSL"].dims, psl, ds["PSL"].attrs)
    ds.to_netcdf(tmp_path / "bad" / "late_nan.nc")
    fails([tmp_path / "bad" / "late_nan.nc"], "late_nan.nc.*PSL.*NaN", batch_size=1)
    assert not [p for p in out.iterdir() if "late_nan" in p.name]

    # a regional grid
    with xr.open_dataset(good, decode_times=False) as ds:
        ds.sel(lat=slice(-30.0, 60.0)).to_netcdf(tmp_path / "bad" / "regional.nc")
    msg = fails([tmp_path / "bad" / "regional.nc"], "regional.nc.*global")
    assert not (out / "regional.nc").exists()

    # an output folder that is an existing file
    (tmp_path / "file_out").write_text("x")
    with pytest.raises(PredictError, match="file_out.*not a folder"):
        predict(run, [good], tmp_path / "file_out")

    # two inputs with the same file name
    twin = tmp_path / "twin" / good.name
    twin.parent.mkdir()
    shutil.copy(good, twin)
    fails([good, twin], good.name)

    # a damaged file is refused with its name: by the Fletcher-32 checksum of the damaged chunk, or for
    # a file written before issue 21, by its SHA-256 trailer before HDF5 parses it
    body = good.read_bytes()
    assert b"meshcnn-sha256:" not in body
    damaged = bytearray(body)
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / "bad" / "damaged.nc").write_bytes(bytes(damaged))
    fails([tmp_path / "bad" / "damaged.nc"], "damaged.nc.*unreadable netCDF file")
    assert not (out / "damaged.nc").exists()
    legacy = bytearray(body + b"\nmeshcnn-sha256:" + hashlib.sha256(body).hexdigest().encode() + b"\n")
    legacy[len(legacy) // 2] ^= 0xFF
    (tmp_path / "bad" / "legacy.nc").write_bytes(bytes(legacy))
    fails([tmp_path / "bad" / "legacy.nc"], "legacy.nc.*damaged file")
    assert not (out / "legacy.nc").exists()

    # an unreadable file in the middle stops the run with its name; skip_bad logs and skips it
    broken = tmp_path / "bad" / "broken.nc"
    broken.write_bytes(b"\x89HDF\r\n garbage")
    inputs = [run["files"][1], broken, run["files"][2]]
    out2 = tmp_path / "out2"
    with pytest.raises(PredictError, match="broken.nc"):
        predict(run, inputs, out2)
    assert sorted(p.name for p in out2.iterdir()) == [run["files"][1].name]
    messages = []
    result = predict(run, inputs, out2, skip_bad=True, resume=True, log_fn=messages.append)
    assert result["written"] == 1 and result["skipped_complete"] == 1 and len(result["bad"]) == 1
    assert any("broken.nc" in m for m in messages)
    assert not (out2 / "broken.nc").exists()


def test_cli_error_exit(run, tmp_path, capsys):
    from meshcnn.__main__ import main

    (tmp_path / "file_out").write_text("x")
    with pytest.raises(SystemExit) as info:
        main(
            [
                "predict",
                "--checkpoint",
                str(run["checkpoint"]),
                "--out",
                str(tmp_path / "file_out"),
                str(run["files"][0]),
            ]
        )
    err = capsys.readouterr().err
    assert info.value.code == 1 and "meshcnn: error:" in err and "file_out" in err


# ----------------------------------------------------------------- outputs never replace inputs
def _inputs(run, folder: Path, n: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(f, folder / f.name)) for f in run["files"][:n]]


def _unchanged(files: list[Path], run) -> None:
    for f in files:
        assert f.read_bytes() == (run["data"] / f.name).read_bytes(), f"{f} was changed"
        with open_nc(f) as ds:
            assert "TMQ" in ds and "LABELS" in ds


def test_output_folder_that_holds_the_inputs_is_refused_before_anything_is_written(run, tmp_path):
    data = tmp_path / "data"
    files = _inputs(run, data)
    before = sorted(p.name for p in data.iterdir())
    for out in (data, tmp_path / "data" / ".." / "data", Path(os.path.relpath(data))):
        with pytest.raises(PredictError, match="is the input file") as info:
            predict(run, [data], out)
        assert str(out / files[0].name) in str(info.value) and str(files[0]) in str(info.value)
        assert sorted(p.name for p in data.iterdir()) == before  # no output, no temporary file
        _unchanged(files, run)
    # also one input file, not the folder; and from the command line (exit status 1, both paths named)
    with pytest.raises(PredictError, match="is the input file"):
        predict(run, [files[1]], data, resume=True)
    from meshcnn.__main__ import main

    with contextlib.redirect_stdout(io.StringIO()) as stdout, contextlib.redirect_stderr(io.StringIO()) as stderr:
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "predict",
                    "--checkpoint",
                    str(run["checkpoint"]),
                    "--out",
                    str(data),
                    "--no-progress",
                    "--num-workers",
                    "0",
                    str(data),
                ]
            )
    assert exit_info.value.code == 1 and "written" not in stdout.getvalue()
    assert "is the input file" in stderr.getvalue() and str(files[0]) in stderr.getvalue()
    assert sorted(p.name for p in data.iterdir()) == before
    _unchanged(files, run)


def test_outputs_reaching_an_input_through_links_are_refused(run, tmp_path):
    data = tmp_path / "data"
    files = _inputs(run, data)
    (tmp_path / "linked_out").symlink_to(data, target_is_directory=True)  # --out is a link to the input folder
    sym = tmp_path / "sym"
    sym.mkdir()
    (sym / files[0].name).symlink_to(files[0])  # an output path that is a link to an input
    hard = tmp_path / "hard"
    hard.mkdir()
    os.link(files[1], hard / files[1].name)  # an output path that is a hard link to an input
    for out in (tmp_path / "linked_out", sym, hard):
        listing = sorted(p.name for p in out.iterdir())
        with pytest.raises(PredictError, match="is the input file.*through a link") as info:
            predict(run, [data], out)
        assert str(out) in str(info.value)
        assert sorted(p.name for p in out.iterdir()) == listing
        _unchanged(files, run)
    # an input reached through a link to the output folder
    (tmp_path / "inputs_link").symlink_to(data, target_is_directory=True)
    with pytest.raises(PredictError, match="is the input file"):
        predict(run, [tmp_path / "inputs_link"], data)
    # the events CSV (or its .frequency.npz) must not be an input either
    with pytest.raises(PredictError, match="--events: the output .* is the input file"):
        predict(run, [data], tmp_path / "out", events=files[0])
    assert not (tmp_path / "out").exists()
    _unchanged(files, run)
    # a link elsewhere is fine: outputs are written beside it, the inputs stay as they are
    assert predict(run, [sym / files[0].name], tmp_path / "out")["written"] == 1
    _unchanged(files, run)


# ---------------------------------------------------------------- a variable missing everywhere
def _with_missing_tmq(src: Path, dst: Path, where) -> Path:
    with xr.open_dataset(src, decode_times=False) as ds:
        ds = ds.load()
    tmq = ds["TMQ"].values.copy()
    tmq[where] = np.nan
    ds["TMQ"] = (ds["TMQ"].dims, tmq, ds["TMQ"].attrs)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(dst)
    return dst


def test_a_variable_missing_everywhere_without_allow_nan_says_so(run, tmp_path):
    all_nan = _with_missing_tmq(run["files"][0], tmp_path / "bad" / "no_tmq.nc", np.s_[:])
    with pytest.raises(
        PredictError,
        match=r"no_tmq\.nc: variable 'TMQ' contains NaN or missing values "
        r"\(3456 points, 100\.0% of those read\): it is missing everywhere",
    ):
        predict(run, [all_nan], tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())


def test_a_variable_missing_everywhere_with_allow_nan_stops_the_file(run, tmp_path):
    all_nan = _with_missing_tmq(run["files"][0], tmp_path / "bad" / "no_tmq.nc", np.s_[:])
    out = tmp_path / "out"
    with pytest.raises(
        PredictError,
        match=r"no_tmq\.nc: variable 'TMQ' is missing on 100\.0% of the globe at time "
        r"step 0: more than --max-nan-fraction 0\.05",
    ):
        predict(run, [all_nan], out, allow_nan=True)
    assert not out.exists() or not list(out.iterdir())
    skipped = predict(run, [all_nan, run["files"][1]], out, allow_nan=True, skip_bad=True, log_fn=lambda m: None)
    assert skipped["written"] == 1 and "TMQ" in skipped["bad"][0][1]
    assert not (out / all_nan.name).exists()


def test_fills_are_recorded_in_the_output_attributes(run, tmp_path):
    all_nan = _with_missing_tmq(run["files"][0], tmp_path / "bad" / "no_tmq.nc", np.s_[:])
    out = tmp_path / "out"
    # asked for (max_nan_fraction=1), the fill happens and the output says so
    assert predict(run, [all_nan], out, allow_nan=True, max_nan_fraction=1.0)["written"] == 1
    with open_nc(out / all_nan.name) as res:
        assert res.attrs["nan_variables"] == "TMQ" and res.attrs["nan_filled_variables"] == "TMQ"
        assert res.attrs["nan_fraction_TMQ"] == 1.0 and res.attrs["nan_filled_fraction_TMQ"] == pytest.approx(1.0)
        assert res.attrs["max_nan_fraction"] == 1.0
    # scattered missing points: regridded from the valid points, little or nothing filled, and recorded
    scattered = _with_missing_tmq(run["files"][0], tmp_path / "bad" / "scattered.nc", np.s_[:, 3::7, ::5])
    assert predict(run, [scattered], out, allow_nan=True)["written"] == 1
    with open_nc(out / scattered.name) as res:
        assert res.attrs["nan_variables"] == "TMQ" and res.attrs["nan_fraction_TMQ"] == pytest.approx(7 * 15 / 3456)
        filled = res.attrs["nan_filled_fraction_TMQ"]
        assert 0.0 <= filled < 0.05 and res.attrs["nan_filled_variables"] == ("TMQ" if filled > 0 else "")
    with pytest.raises(PredictError, match="--max-nan-fraction must be within"):
        predict(run, [scattered], out, allow_nan=True, max_nan_fraction=1.5)


def test_outputs_are_standard_netcdf4_that_opens_for_appending(run, tmp_path):
    import netCDF4

    predict(run, run["files"][:1], tmp_path / "out", probabilities=True)
    with netCDF4.Dataset(tmp_path / "out" / run["files"][0].name, "r+") as ds:
        ds.history = "edited by another tool"
        ds.createVariable("EXTRA", "f4", ("lat", "lon"))[:] = 1.0
    with open_nc(tmp_path / "out" / run["files"][0].name) as ds:
        assert ds.attrs["history"] == "edited by another tool" and float(ds["EXTRA"].sum()) == 48 * 72
        assert ds["LABELS"].shape == (1, 48, 72)


def test_cli_default_max_nan_fraction_is_the_library_default():
    from meshcnn.__main__ import MAX_NAN_FRACTION, _parser
    from meshcnn.predict.stages import MAX_NAN_FRACTION as library

    assert MAX_NAN_FRACTION == library
    args = _parser().parse_args(
        ["predict", "--checkpoint", "c", "--out", "o", "--allow-nan", "--max-nan-fraction", "0.3", "x.nc"]
    )
    assert args.allow_nan and args.max_nan_fraction == 0.3
