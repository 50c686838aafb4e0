"""ClimateNet reader, errors, dataset, stats, UGSCNN format, cache, splits, synthetic generator."""

from __future__ import annotations

import os

import netCDF4
import numpy as np
import pytest
import torch

import meshcnn.data.climate.cli as climate_cli
from meshcnn.data import climate as C
from meshcnn.data.climate.files import read_split_list, write_split_lists
from meshcnn.data.climate.reader import read_ugscnn
from meshcnn.data.climate.synth import default_grid, synthesize_sample
from meshcnn.geometry import icosphere

NLAT, NLON = 24, 36


def grid(nlat: int = NLAT, nlon: int = NLON):
    return default_grid(nlat, nlon)


def constant_fields(nlat: int = NLAT, nlon: int = NLON) -> dict[str, np.ndarray]:
    """Channel c is the constant c + 1 everywhere."""
    return {name: np.full((nlat, nlon), c + 1.0, np.float32) for c, name in enumerate(C.VARIABLES)}


def write_raw(
    path,
    variables: dict[str, np.ndarray],
    lat,
    lon,
    time_dim: bool = True,
    units: tuple[str | None, str | None] = (None, None),
) -> None:
    """A netCDF file with exactly the given variables (fields (1, lat, lon), LABELS (lat, lon))."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", 1)
        ds.createDimension("lat", len(lat))
        ds.createDimension("lon", len(lon))
        for name, values, unit in (("lat", lat, units[0]), ("lon", lon, units[1])):
            var = ds.createVariable(name, "f8", (name,))
            var[:] = values
            if unit is not None:
                var.units = unit
        for name, values in variables.items():
            if name == "LABELS":
                ds.createVariable(name, "i8", ("lat", "lon"))[:] = values
            else:
                dims = ("time", "lat", "lon") if time_dim else ("lat", "lon")
                ds.createVariable(name, "f4", dims)[:] = values[None] if time_dim else values


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    C.generate_synthetic(out, num=6, nlat=46, nlon=72, seed=3, progress=False)
    return out


# ------------------------------------------------------------------------------------------ reader
def test_reader_constant_and_smooth_fields(tmp_path):
    lat, lon = grid()
    fields = constant_fields()
    lat2d = np.deg2rad(lat)[:, None] * np.ones(NLON)
    fields["TS"] = (280 + 20 * np.sin(lat2d)).astype(np.float32)  # smooth, known on the mesh
    labels = np.zeros((NLAT, NLON), np.int64)
    labels[lat > 45] = 2
    C.write_climatenet(tmp_path / "a.nc", fields, labels, lat, lon)
    data, mesh_labels = C.read_climatenet(tmp_path / "a.nc", 3)
    mesh = icosphere(3)
    assert data.shape == (16, mesh.num_vertices) and data.dtype == np.float32
    assert mesh_labels.shape == (mesh.num_vertices,) and mesh_labels.dtype == np.int64
    for c, name in enumerate(C.VARIABLES):
        if name != "TS":
            np.testing.assert_allclose(data[c], c + 1.0, rtol=1e-6)
    expected = 280 + 20 * np.sin(mesh.lat)
    # bilinear interpolation of sin(lat) on a 7.8-degree grid: error <= 20 * (dlat^2 / 8) ~ 0.19
    assert np.abs(data[C.VARIABLES.index("TS")] - expected).max() < 0.2
    assert set(np.unique(mesh_labels)) == {0, 2}
    lat_v = np.rad2deg(mesh.lat)
    assert np.all(mesh_labels[lat_v > 50] == 2) and np.all(mesh_labels[lat_v < 40] == 0)


def test_reader_accepts_no_time_dim_and_descending_lat(tmp_path):
    lat, lon = grid()
    fields = constant_fields()
    fields["TS"] = np.repeat(lat[:, None], NLON, 1).astype(np.float32)  # TS = latitude in degrees
    variables = {**fields, "LABELS": np.zeros((NLAT, NLON), np.int64)}
    write_raw(tmp_path / "up.nc", variables, lat, lon, time_dim=False)
    flipped = {k: v[::-1] for k, v in variables.items()}
    write_raw(tmp_path / "down.nc", flipped, lat[::-1], lon)
    a, _ = C.read_climatenet(tmp_path / "up.nc", 2)
    b, _ = C.read_climatenet(tmp_path / "down.nc", 2)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4)
    ds = C.ClimateNetDataset([tmp_path / "down.nc"], 2, grid="latlon")
    x, y = ds[0]
    assert x.shape == (16, NLAT, NLON) and y.shape == (NLAT, NLON)
    assert np.all(np.diff(ds.latlon[0]) > 0)
    np.testing.assert_allclose(x[C.VARIABLES.index("TS"), :, 0].numpy(), lat, atol=1e-4)


def _good_variables():
    return {**constant_fields(), "LABELS": np.zeros((NLAT, NLON), np.int64)}


def test_missing_variables_named(tmp_path):
    variables = _good_variables()
    del variables["PRECT"], variables["Z200"]
    lat, lon = grid()
    write_raw(tmp_path / "miss.nc", variables, lat, lon)
    with pytest.raises(C.ClimateFileError, match=r"miss\.nc.*PRECT, Z200"):
        C.read_climatenet(tmp_path / "miss.nc", 2)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_named(tmp_path, bad):
    variables = _good_variables()
    variables["T500"][3, 4] = bad
    lat, lon = grid()
    write_raw(tmp_path / "nan.nc", variables, lat, lon)
    with pytest.raises(C.ClimateFileError, match=r"nan\.nc.*'T500'.*NaN or Inf"):
        C.read_climatenet(tmp_path / "nan.nc", 2)


def test_labels_outside_range(tmp_path):
    variables = _good_variables()
    variables["LABELS"][0, 0] = 3
    lat, lon = grid()
    write_raw(tmp_path / "lab.nc", variables, lat, lon)
    with pytest.raises(C.ClimateFileError, match=r"lab\.nc.*LABELS.*\[3\]"):
        C.read_climatenet(tmp_path / "lab.nc", 2)


def test_non_monotonic_grid(tmp_path):
    lat, lon = grid()
    lat = lat.copy()
    lat[[3, 4]] = lat[[4, 3]]
    write_raw(tmp_path / "grid.nc", _good_variables(), lat, lon)
    with pytest.raises(C.ClimateFileError, match=r"grid\.nc.*'lat' is not monotonic"):
        C.read_climatenet(tmp_path / "grid.nc", 2)


def test_unreadable_and_missing_file(tmp_path):
    (tmp_path / "junk.nc").write_bytes(b"this is not netCDF" * 10)
    with pytest.raises(C.ClimateFileError, match=r"junk\.nc.*unreadable"):
        C.read_climatenet(tmp_path / "junk.nc", 2)
    with pytest.raises(FileNotFoundError, match="nothere.nc"):
        C.read_climatenet(tmp_path / "nothere.nc", 2)


def test_dataset_bad_file_raises_or_is_skipped(tmp_path, synth_dir):
    files = sorted(synth_dir.glob("*.nc"))[:2]
    junk = tmp_path / "data-junk.nc"
    junk.write_bytes(b"\x89HDF garbage")
    ds = C.ClimateNetDataset([files[0], junk, files[1]], 2)
    ds[0]
    with pytest.raises(C.ClimateFileError, match="data-junk.nc"):
        ds[1]
    messages = []
    ds = C.ClimateNetDataset([files[0], junk, files[1]], 2, skip_bad=True, log=messages.append)
    assert len(ds) == 2 and ds.files == files
    assert [b[0] for b in ds.bad_files] == [str(junk)]
    assert len(messages) == 1 and "data-junk.nc" in messages[0]


# --------------------------------------------------------------------------------- stats/weights
def test_stats_and_normalization(synth_dir):
    files = sorted(synth_dir.glob("*.nc"))
    ds = C.ClimateNetDataset(files, 3)
    stats = C.compute_stats(ds, progress=False)
    areas = icosphere(3).vertex_areas
    w = areas / areas.sum()
    raw = np.stack([ds.raw(i)[0] for i in range(len(ds))]).astype(np.float64)  # (S, 16, V)
    mean = np.einsum("scv,v->c", raw, w) / len(ds)
    std = np.sqrt(np.einsum("scv,v->c", (raw - mean[None, :, None]) ** 2, w) / len(ds))
    np.testing.assert_allclose(stats["mean"], mean, rtol=1e-9)
    np.testing.assert_allclose(stats["std"], std, rtol=1e-6)
    assert abs(sum(stats["class_fraction"]) - 1) < 1e-12
    ds.set_stats(stats)
    x = torch.stack([ds[i][0] for i in range(len(ds))]).double().numpy()
    np.testing.assert_allclose(np.einsum("scv,v->c", x, w) / len(ds), 0, atol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.einsum("scv,v->c", x**2, w) / len(ds)), 1, atol=1e-4)
    with pytest.raises(ValueError, match="positive"):
        ds.set_stats({"mean": [0] * 16, "std": [0] * 16})


def test_class_weights():
    w = C.class_weights([0.9, 0.02, 0.08])
    np.testing.assert_allclose(w.numpy() * [0.9, 0.02, 0.08], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(C.class_weights([0.9, 0.02, 0.08], power=0).numpy(), 1, rtol=1e-6)
    assert C.class_weights([0.95, 0.0, 0.05])[1] == 0


# ----------------------------------------------------------------------------------- UGSCNN/splits
def test_ugscnn_roundtrip_and_errors(tmp_path):
    v = icosphere(5).num_vertices
    rng = np.random.default_rng(0)
    data = rng.normal(size=(16, v)).astype(np.float32)
    labels = rng.integers(0, 3, v)
    C.reader.write_ugscnn(tmp_path / "data-1.npz", data, labels)
    with np.load(tmp_path / "data-1.npz", allow_pickle=False) as f:
        assert f["labels"].shape == (3, v) and np.all(f["labels"].sum(0) == 1)
    d, l = read_ugscnn(tmp_path / "data-1.npz")
    np.testing.assert_array_equal(d, data)
    np.testing.assert_array_equal(l, labels)
    ds = C.ClimateNetDataset([tmp_path / "data-1.npz"], 5)
    x, y = ds[0]
    assert x.shape == (16, v) and torch.equal(y, torch.from_numpy(labels))
    with pytest.raises(C.ClimateFileError, match="level 4"):
        read_ugscnn(tmp_path / "data-1.npz", level=4)
    np.savez(tmp_path / "bad.npz", data=data, labels=np.full((3, v), 0.5, np.float32))
    with pytest.raises(C.ClimateFileError, match="bad.npz.*one-hot"):
        read_ugscnn(tmp_path / "bad.npz")


def test_splits_deterministic_and_lists(tmp_path):
    files = [tmp_path / f"data-{i:03d}.npz" for i in range(20)]
    for f in files:
        f.write_bytes(b"")
    a = C.split_files(files, (0.7, 0.15, 0.15), seed=1)
    b = C.split_files(list(reversed(files)), (0.7, 0.15, 0.15), seed=1)
    assert a == b
    assert [len(a[k]) for k in ("train", "val", "test")] == [14, 3, 3]
    assert sorted(sum(a.values(), [])) == sorted(files)
    assert a != C.split_files(files, seed=2)
    blocks = C.split_files(files, seed=1, contiguous=True)
    assert blocks["train"] == files[:14] and blocks["test"] == files[17:]
    write_split_lists(a, tmp_path)
    assert (tmp_path / "train_split.txt").read_text().splitlines()[0] == a["train"][0].name
    assert read_split_list(tmp_path / "val_split.txt") == a["val"]
    os.unlink(a["val"][0])
    with pytest.raises(FileNotFoundError, match="val_split.txt"):
        read_split_list(tmp_path / "val_split.txt")


# ------------------------------------------------------------------------------------------ cache
def test_cache_hit_invalidation_and_corruption(tmp_path, monkeypatch):
    lat, lon = grid()
    src = tmp_path / "s.nc"
    C.write_climatenet(src, constant_fields(), np.zeros((NLAT, NLON), np.int64), lat, lon)
    cache = tmp_path / "cache"
    ds = C.ClimateNetDataset([src], 2, cache_dir=cache)
    first = ds.raw(0)[0].copy()
    cached = list(cache.glob("*.npz"))
    assert len(cached) == 1 and "L2" in cached[0].name
    calls = []
    real = C.read_latlon
    monkeypatch.setattr(C.dataset, "read_latlon", lambda *a, **k: calls.append(1) or real(*a, **k))
    np.testing.assert_array_equal(ds.raw(0)[0], first)
    assert calls == []  # served from the cache
    # a changed source file (new content, size, mtime) is re-read, not served stale
    fields = constant_fields()
    fields["TMQ"][:] = 42.0
    C.write_climatenet(src, fields, np.zeros((NLAT, NLON), np.int64), lat, lon, attrs={"changed": "yes"})
    os.utime(src, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns + 10**9))
    assert np.allclose(ds.raw(0)[0][0], 42.0) and calls == [1]
    # a corrupt cache file is ignored (with a warning) and rewritten
    for f in cache.glob("*.npz"):
        f.write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match="cache file"):
        assert np.allclose(ds.raw(0)[0][0], 42.0)
    assert calls == [1, 1]


# -------------------------------------------------------------------------------------- synthetic
def test_synthetic_deterministic_and_readable(tmp_path, synth_dir):
    lat, lon = grid(46, 72)
    f1, l1, e1 = synthesize_sample(3, 1, lat, lon)
    f2, l2, e2 = synthesize_sample(3, 1, lat, lon)
    assert e1 == e2 and np.array_equal(l1, l2) and all(np.array_equal(f1[k], f2[k]) for k in f1)
    f3, _, _ = synthesize_sample(4, 1, lat, lon)
    assert not np.array_equal(f1["TMQ"], f3["TMQ"])
    files = sorted(synth_dir.glob("data-*.nc"))
    assert len(files) == 6 and files[0].name.startswith("data-2000-01-01")
    again = C.generate_synthetic(tmp_path / "again", num=2, nlat=46, nlon=72, seed=3, progress=False)
    for f in again:
        a, la, _, _ = C.read_latlon(f)
        b, lb, _, _ = C.read_latlon(synth_dir / f.name)
        assert np.array_equal(a, b) and np.array_equal(la, lb)


def test_synthetic_physics(synth_dir):
    report = C.verify_synthetic(synth_dir, progress=False)
    bg, tc, ar = report["class_fraction"]
    assert bg > 0.9 and ar > tc > 0
    assert report["num_tc"] > 0 and report["tc_cyclonic_fraction"] == 1.0
    assert report["tc_warm_core_k"] > 1.0 and report["tc_pressure_drop_hpa"] > 10
    lo, hi = report["tc_abs_lat_range"]
    assert 5 <= lo and hi <= 35
    assert report["ar_length_km"][0] > 2000 and report["ar_width_km"][1] < 1000
    assert report["ar_poleward_fraction"] == 1.0
    assert report["tmq_ar_over_background"] > 1.3
    # measured on the label regions themselves: long (> 2000 km) and narrow (< 1000 km)
    assert report["ar_label_length_km_p10_p50_p90"][1] > 2000
    assert report["ar_label_width_km_p10_p50_p90"][2] < 1000
    # plausible global means (CAM5 climatology: TMQ ~26 kg/m2, PSL ~1010 hPa, TS ~289 K)
    data, _, lat, _ = C.read_latlon(sorted(synth_dir.glob("*.nc"))[0])
    w = np.cos(np.deg2rad(lat))[:, None] * np.ones(data.shape[-1])
    mean = {v: np.average(data[c], weights=w) for c, v in enumerate(C.VARIABLES)}
    assert 15 < mean["TMQ"] < 35 and 100000 < mean["PSL"] < 102500 and 280 < mean["TS"] < 295
    assert np.all(data[C.VARIABLES.index("PS")] <= data[C.VARIABLES.index("PSL")] + 1e-3)
    assert np.all(data[C.VARIABLES.index("PRECT")] >= 0)


def test_cli_synth_and_check(tmp_path, capsys):
    climate_cli.main(
        ["synth", "--out", str(tmp_path / "s"), "--num", "2", "--nlat", "19", "--nlon", "24", "--seed", "0"]
    )
    assert "wrote 2 files" in capsys.readouterr().out
    climate_cli.main(["check", str(tmp_path / "s")])
    assert capsys.readouterr().out.count("ok ") == 2
    # conversion to the UGSCNN layout: one .npz per sample plus split lists, read back like the netCDF
    climate_cli.main(["to-ugscnn", "--data", str(tmp_path / "s"), "--out", str(tmp_path / "u"), "--level", "2"])
    listed = sum((read_split_list(tmp_path / "u" / f"{k}_split.txt") for k in ("train", "val", "test")), [])
    assert sorted(p.name for p in listed) == sorted(p.stem + ".npz" for p in (tmp_path / "s").glob("*.nc"))
    for npz in listed:
        nc = tmp_path / "s" / (npz.stem + ".nc")
        a, la = read_ugscnn(npz, level=2)
        b, lb = C.read_climatenet(nc, 2)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)


# ------------------------------------------------------------------- grid validation (issue 13)
def _grid_case(tmp_path, name, lat, lon, units=(None, None)):
    nlat, nlon = len(lat), len(lon)
    variables = {**constant_fields(nlat, nlon), "LABELS": np.zeros((nlat, nlon), np.int64)}
    write_raw(tmp_path / name, variables, lat, lon, units=units)
    return tmp_path / name


@pytest.mark.parametrize(
    "case, message",
    [
        ("regional", r"regional\.nc: not a global lat-lon grid"),
        ("radian_values", r"radian_values\.nc: .*looks like radians"),
        ("radian_units", r"radian_units\.nc: coordinate 'lat' is in radians"),
        ("other_units", r"other_units\.nc: coordinate 'lon' has units 'm'"),
        ("curvilinear", r"curvilinear\.nc: coordinate 'lat' is 2-D .*curvilinear"),
    ],
)
def test_bad_grids_are_file_errors_that_check_reports_and_skip_bad_skips(tmp_path, capsys, case, message):
    lat, lon = grid()
    if case == "regional":  # 20..60 N, 100..160 E
        path = _grid_case(tmp_path, "regional.nc", np.linspace(20, 60, NLAT), np.linspace(100, 160, NLON))
    elif case == "radian_values":
        path = _grid_case(tmp_path, "radian_values.nc", np.deg2rad(lat), np.deg2rad(lon))
    elif case == "radian_units":
        path = _grid_case(tmp_path, "radian_units.nc", lat, lon, units=("radians", "degrees_east"))
    elif case == "other_units":
        path = _grid_case(tmp_path, "other_units.nc", lat, lon, units=("degrees_north", "m"))
    else:
        path = tmp_path / "curvilinear.nc"
        with netCDF4.Dataset(path, "w") as ds:
            ds.createDimension("y", NLAT)
            ds.createDimension("x", NLON)
            lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
            ds.createVariable("lat", "f8", ("y", "x"))[:] = lat2
            ds.createVariable("lon", "f8", ("y", "x"))[:] = lon2
            for name, values in _good_variables().items():
                ds.createVariable(name, "i8" if name == "LABELS" else "f4", ("y", "x"))[:] = values
    with pytest.raises(C.ClimateFileError, match=message):
        C.read_latlon(path)
    with pytest.raises(SystemExit, match="1 bad files"):
        climate_cli.main(["check", str(path)])
    assert "BAD" in capsys.readouterr().out
    good = tmp_path / "good.nc"
    C.write_climatenet(good, constant_fields(), np.zeros((NLAT, NLON), np.int64), lat, lon)
    ds = C.ClimateNetDataset([good, path], 2, skip_bad=True, log=lambda msg: None)
    assert ds.files == [good] and ds.bad_files[0][0] == str(path)


def test_descending_longitude_and_duplicate_column_as_regrid_supports(tmp_path):
    lat, lon = grid()
    fields = constant_fields()
    lon2d = np.ones(NLAT)[:, None] * np.cos(np.deg2rad(lon))[None, :]
    fields["TS"] = (280 + 10 * lon2d).astype(np.float32)
    labels = np.zeros((NLAT, NLON), np.int64)
    C.write_climatenet(tmp_path / "ref.nc", fields, labels, lat, lon)
    ref, _ = C.read_climatenet(tmp_path / "ref.nc", 2)
    flipped = {k: v[:, ::-1] for k, v in fields.items()}
    C.write_climatenet(tmp_path / "desc.nc", flipped, labels, lat, lon[::-1])
    dup = {k: np.concatenate([v, v[:, :1]], axis=1) for k, v in fields.items()}
    lon_dup = np.append(lon, 360.0)
    C.write_climatenet(tmp_path / "dup.nc", dup, np.zeros((NLAT, NLON + 1), np.int64), lat, lon_dup)
    for name in ("desc.nc", "dup.nc"):
        data, _ = C.read_climatenet(tmp_path / name, 2)
        np.testing.assert_allclose(data, ref, rtol=1e-6, atol=1e-4)
        x, _ = C.ClimateNetDataset([tmp_path / name], 2, grid="latlon")[0]  # planar view: canonical grid
        np.testing.assert_array_equal(x.numpy(), C.ClimateNetDataset([tmp_path / "ref.nc"], 2, grid="latlon")[0][0])


def test_folder_named_like_a_file_and_missing_netcdf4(tmp_path, monkeypatch):
    (tmp_path / "x.nc").mkdir()
    with pytest.raises(C.ClimateFileError, match=r"x\.nc: is a folder"):
        C.read_latlon(tmp_path / "x.nc")
    with pytest.raises(C.ClimateFileError, match=r"x\.nc: is a folder"):
        C.ClimateNetDataset([tmp_path / "x.nc"], 2).raw(0)
    lat, lon = grid()
    C.write_climatenet(tmp_path / "a.nc", constant_fields(), np.zeros((NLAT, NLON), np.int64), lat, lon)
    monkeypatch.setitem(__import__("sys").modules, "netCDF4", None)
    with pytest.raises(ImportError, match=r"pip install 'meshcnn\[climate\]'"):
        C.read_latlon(tmp_path / "a.nc")
    with pytest.raises(ImportError, match=r"meshcnn\[climate\]"):
        C.write_climatenet(tmp_path / "b.nc", constant_fields(), np.zeros((NLAT, NLON), np.int64), lat, lon)


def test_sample_cache_checksum_mismatch_is_recomputed_with_a_warning(tmp_path, monkeypatch):
    lat, lon = grid()
    src = tmp_path / "s.nc"
    C.write_climatenet(src, constant_fields(), np.zeros((NLAT, NLON), np.int64), lat, lon)
    ds = C.ClimateNetDataset([src], 2, cache_dir=tmp_path / "cache")
    first = ds.raw(0)[0].copy()
    (cache,) = (tmp_path / "cache").glob("*.npz")
    with np.load(cache, allow_pickle=False) as f:
        assert "checksum" in f.files
    # a well-formed archive (its zip CRCs are right) whose data no longer match its checksum
    with np.load(cache, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["data"] = arrays["data"].copy()
    arrays["data"][3, 5] += 1.0
    np.savez(cache, **arrays)
    calls = []
    real = C.read_latlon
    monkeypatch.setattr(C.dataset, "read_latlon", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.warns(UserWarning, match=r"cache file .*\.npz fails its checksum"):
        np.testing.assert_array_equal(ds.raw(0)[0], first)
    assert calls == [1]
    np.testing.assert_array_equal(ds.raw(0)[0], first)  # rewritten: served from the cache again
    assert calls == [1]


# ------------------------------------------------------------------- synth folders (issue 13)
def test_synth_refuses_a_non_empty_folder_and_overwrite_removes_exactly_its_files(tmp_path, capsys):
    out = tmp_path / "s"
    climate_cli.main(["synth", "--out", str(out), "--num", "3", "--nlat", "19", "--nlon", "24"])
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not empty.*--overwrite"):
        climate_cli.main(["synth", "--out", str(out), "--num", "2", "--nlat", "19", "--nlon", "24"])
    assert len(list(out.glob("*.nc"))) == 3
    climate_cli.main(["synth", "--out", str(out), "--num", "2", "--nlat", "19", "--nlon", "24", "--overwrite"])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["notes.txt", "synth.json", "data-2000-01-01-01-1_0.nc", "data-2000-01-03-01-1_1.nc"]
    )
    # a stale sample file that synth.json does not list is not used by the dataset
    import shutil

    shutil.copy(out / "data-2000-01-01-01-1_0.nc", out / "data-1999-12-31-01-1_7.nc")
    with pytest.warns(UserWarning, match="ignoring 1 other sample files"):
        files = C.find_files(out)
    assert [f.name for f in files] == ["data-2000-01-01-01-1_0.nc", "data-2000-01-03-01-1_1.nc"]


def test_verify_coarse_grid_and_missing_summary(tmp_path, capsys):
    out = tmp_path / "coarse"
    C.generate_synthetic(out, num=2, nlat=48, nlon=72, seed=0, progress=False)
    report = C.verify_synthetic(out, progress=False)
    assert report["num_files"] == 2 and np.isfinite(report["tc_pressure_drop_hpa"])
    C.generate_synthetic(tmp_path / "tiny", num=1, nlat=3, nlon=4, seed=0, progress=False)
    assert C.verify_synthetic(tmp_path / "tiny", progress=False)["num_files"] == 1
    with pytest.raises(FileNotFoundError, match=r"synth\.json: not found.*synth --out"):
        C.verify_synthetic(tmp_path, progress=False)
    with pytest.raises(SystemExit, match=r"verify: .*synth\.json: not found"):
        climate_cli.main(["verify", str(tmp_path)])


def test_netcdf_default_fill_values_are_missing_values(tmp_path):
    # a damaged chunk index makes netCDF return the default fill value (9.97e36) for a whole field
    variables = _good_variables()
    variables["PSL"][:2] = netCDF4.default_fillvals["f4"]
    lat, lon = grid()
    write_raw(tmp_path / "fill.nc", variables, lat, lon)
    with pytest.raises(C.ClimateFileError, match=r"fill\.nc: variable 'PSL' contains missing values"):
        C.read_latlon(tmp_path / "fill.nc")


def test_written_files_are_standard_netcdf4_that_opens_for_appending(tmp_path):
    lat, lon = grid()
    rng = np.random.default_rng(0)
    fields = {name: rng.normal(300.0, 5.0, (NLAT, NLON)).astype(np.float32) for name in C.VARIABLES}
    path = tmp_path / "s.nc"
    C.write_climatenet(path, fields, np.zeros((NLAT, NLON), np.int64), lat, lon)
    written = path.read_bytes()
    assert b"meshcnn-sha256:" not in written  # no trailer of our own after the HDF5 data
    with netCDF4.Dataset(path, "r+") as ds:  # before issue 21: "NetCDF: Can't write file"
        assert all(ds[name].filters()["fletcher32"] for name in ds.variables)
        ds.history = "edited by another tool"
        ds.createVariable("EXTRA", "f4", ("lat", "lon"))[:] = 1.0
    got, labels, _, _ = C.read_latlon(path)  # still a valid ClimateNet file
    np.testing.assert_array_equal(got, np.stack([fields[name] for name in C.VARIABLES]))
    with netCDF4.Dataset(path) as ds:
        assert ds.history == "edited by another tool" and ds["EXTRA"][:].sum() == NLAT * NLON

    # damaged data: the Fletcher-32 checksum of its chunk refuses it
    raw = bytearray(written)
    raw[len(raw) // 2] ^= 0x01  # inside the (incompressible) field data
    (tmp_path / "damaged.nc").write_bytes(bytes(raw))
    with pytest.raises(C.ClimateFileError, match=r"damaged\.nc: unreadable netCDF file"):
        C.read_latlon(tmp_path / "damaged.nc")


def test_files_with_the_legacy_checksum_trailer_are_still_checked(tmp_path):
    import hashlib

    lat, lon = grid()
    path = tmp_path / "old.nc"
    C.write_climatenet(path, constant_fields(), np.zeros((NLAT, NLON), np.int64), lat, lon)
    body = path.read_bytes()
    path.write_bytes(body + b"\nmeshcnn-sha256:" + hashlib.sha256(body).hexdigest().encode() + b"\n")
    assert C.read_latlon(path)[0][:, 0, 0].tolist() == list(range(1, 17))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(C.ClimateFileError, match=r"old\.nc: damaged file: its SHA-256 checksum does not match"):
        C.read_latlon(path)


# ------------------------------------------------------------------ an archive read a time window at a time
def _archive(files):
    """The synthetic files as one Dataset along time (LABELS given the time axis too)."""
    xr = pytest.importorskip("xarray")
    parts = []
    for f in files:
        with xr.open_dataset(f, decode_times=False) as ds:
            ds = ds.load()
        ds["LABELS"] = ds["LABELS"].expand_dims(time=ds["time"])
        parts.append(ds)
    return xr.concat(parts, dim="time", data_vars="all")


@pytest.mark.filterwarnings("ignore:Failed to open Zarr store with consolidated metadata:RuntimeWarning")
@pytest.mark.parametrize("grid", ["mesh", "healpix"])
def test_lazy_archive_items_equal_the_file_dataset(synth_dir, tmp_path, grid):
    pytest.importorskip("dask")
    pytest.importorskip("zarr")
    from meshcnn.data.climate.dataset import LazyClimateDataset

    files = sorted(synth_dir.glob("*.nc"))
    archive = _archive(files)
    archive.chunk({"time": 4}).to_zarr(tmp_path / "a.zarr", mode="w", consolidated=False)
    archive.to_netcdf(tmp_path / "a.nc")
    eager = C.ClimateNetDataset(files, 2, grid=grid)
    stats = C.compute_stats(eager, progress=False)
    eager.set_stats(stats)
    for source in (tmp_path / "a.zarr", [tmp_path / "a.nc"], archive.chunk({"time": 2})):
        lazy = LazyClimateDataset(source, 2, grid=grid, stats=stats)
        assert len(lazy) == len(files) and lazy.window in (2, 4, len(files))
        for i in (0, 5, 1):  # out of order: windows re-read as needed
            x, y = lazy[i]
            x0, y0 = eager[i]
            assert torch.equal(x, x0) and torch.equal(y, y0)
            assert lazy._block[1].shape[0] <= lazy.window  # one window in memory
    lazy = LazyClimateDataset(tmp_path / "a.zarr", 2, grid=grid, window=1)
    assert C.compute_stats(lazy, progress=False)["mean"] == pytest.approx(stats["mean"], rel=1e-6)
    assert LazyClimateDataset(archive, 2, grid=grid, labels=None)[3].shape == x.shape
    with pytest.raises(ValueError, match="no variable"):
        LazyClimateDataset(archive, 2, variables=["TMQ", "NOPE"])
    with pytest.raises(FileNotFoundError):
        LazyClimateDataset(tmp_path / "missing.zarr", 2)
