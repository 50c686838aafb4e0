"""Lazy regridding: Dask arrays, Dask-backed xarray objects, a Zarr and a netCDF archive of 730 daily steps."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from meshcnn.grids import HealpixGrid, LatLonGrid, Regridder, regrid_dataarray
from meshcnn.grids.regridder import import_dask

da = pytest.importorskip("dask.array")
xr = pytest.importorskip("xarray")
from dask.callbacks import Callback

LAT, LON = np.linspace(90.0, -90.0, 19), np.arange(0.0, 360.0, 10.0)  # 10 degrees, north to south
STEPS, CHUNK = 730, 73  # two years of daily steps in 10 chunks


class CountTasks(Callback):
    """Counts the Dask tasks run while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def _pretask(self, key, dsk, state) -> None:
        self.count += 1


def archive_dataset() -> xr.Dataset:
    """Two years of daily 10-degree fields, a CF-described grid with bounds."""
    rng = np.random.default_rng(0)
    t = np.arange(STEPS)
    base = np.cos(np.deg2rad(LAT))[:, None] * np.sin(np.deg2rad(LON))[None, :]
    tas = (
        280.0 + 10 * base[None] * np.cos(2 * np.pi * t / 365.0)[:, None, None] + rng.normal(size=(STEPS, 19, 36))
    ).astype(np.float32)
    pr = rng.gamma(1.0, size=(STEPS, 19, 36))
    pr[:, 3:6, 10:20] = np.nan  # a masked region
    lat = xr.DataArray(
        LAT, dims="lat", attrs={"units": "degrees_north", "standard_name": "latitude", "bounds": "lat_bnds"}
    )
    lon = xr.DataArray(LON, dims="lon", attrs={"units": "degrees_east", "standard_name": "longitude"})
    return xr.Dataset(
        {
            "tas": (
                ("time", "lat", "lon"),
                tas,
                {"units": "K", "cell_methods": "time: mean", "cell_measures": "area: areacella"},
            ),
            "pr": (("time", "lat", "lon"), pr, {"units": "kg m-2 s-1"}),
            "lat_bnds": (("lat", "nv"), np.stack([LAT - 5, LAT + 5], 1)),
            "step": ("time", t),
        },
        coords={"time": ("time", t, {"units": "days since 2000-01-01", "calendar": "noleap"}), "lat": lat, "lon": lon},
        attrs={"title": "archive", "Conventions": "CF-1.8"},
    )


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """The archive as a Zarr store in 10 time chunks, and as 10 netCDF files."""
    pytest.importorskip("zarr")
    root = tmp_path_factory.mktemp("archive")
    ds = archive_dataset()
    ds.chunk({"time": CHUNK}).to_zarr(root / "archive.zarr", mode="w", consolidated=False)
    files = []
    for i in range(0, STEPS, CHUNK):
        path = root / f"part{i // CHUNK:02d}.nc"
        ds.isel(time=slice(i, i + CHUNK)).to_netcdf(path)
        files.append(path)
    return {"eager": ds, "zarr": root / "archive.zarr", "netcdf": files}


@pytest.mark.parametrize("kind", ["zarr", "netcdf"])
@pytest.mark.parametrize("method", ["bilinear", "conservative"])
def test_archive_stays_lazy_and_equals_eager_to_the_last_bit(archives, kind, method):
    if kind == "zarr":
        lazy = xr.open_zarr(archives[kind], consolidated=False)
    else:
        lazy = xr.open_mfdataset(
            archives[kind], combine="by_coords", data_vars="minimal", coords="minimal", compat="override"
        )
    assert lazy["tas"].chunks[0] == (CHUNK,) * 10
    rg = Regridder(LatLonGrid(LAT, LON), HealpixGrid(4), method, skipna=True)
    with CountTasks() as counter:
        out = rg(lazy)
        assert counter.count == 0  # building the graph computed nothing
    assert set(out.data_vars) == {"tas", "pr", "step"}  # lat_bnds (on the old grid) dropped
    for name in ("tas", "pr"):
        assert out[name].dims == ("time", "vertex") and out[name].chunks == ((CHUNK,) * 10, (192,))
    assert out["tas"].dtype == np.float32 and out["pr"].dtype == np.float64
    eager = rg(archives["eager"])
    with CountTasks() as counter:
        computed = out.compute()
    assert counter.count > 0
    for name in ("tas", "pr"):
        assert np.array_equal(computed[name].values, eager[name].values, equal_nan=True)
    # attributes, CF coordinates and the variables off the grid
    assert computed["tas"].attrs["units"] == "K" and computed["tas"].attrs["cell_methods"] == "time: mean"
    assert "cell_measures" not in computed["tas"].attrs
    assert computed["tas"].attrs["regrid_method"] == method and computed.attrs["mesh_name"] == "healpix4n"
    assert computed.attrs["title"] == "archive"
    assert computed["lat"].attrs["standard_name"] == "latitude" and computed["lon"].attrs["units"] == "degrees_east"
    np.testing.assert_array_equal(computed["step"].values, np.arange(STEPS))
    np.testing.assert_array_equal(computed["time"].values, lazy["time"].values)


def test_mesh_to_latlon_lazy_and_back_to_the_grid(archives):
    lazy = xr.open_zarr(archives["zarr"], consolidated=False)["tas"]
    grid = LatLonGrid(LAT, LON)
    on_mesh = regrid_dataarray(lazy, 3)
    back = Regridder(3, grid, "bilinear")(on_mesh)
    assert back.dims == ("time", "lat", "lon") and back.chunks[0] == (CHUNK,) * 10
    np.testing.assert_array_equal(back["lat"].values, LAT)
    eager = Regridder(3, grid)(Regridder(grid, 3)(archives["eager"]["tas"].values))
    assert np.array_equal(back.values, eager)


def test_dask_array_and_chunked_grid_dimensions():
    x = np.random.default_rng(1).normal(size=(40, 19, 36))
    rg = Regridder(LatLonGrid(LAT, LON), 3, "patch")
    lazy = da.from_array(x, chunks=(7, 10, 12))  # grid axes split too: brought into one chunk
    out = rg(lazy)
    assert isinstance(out, da.Array) and out.chunks == ((7,) * 5 + (5,), (642,))
    assert np.array_equal(out.compute(), rg(x))
    back = Regridder(3, LatLonGrid(LAT, LON))(out)
    assert back.shape == (40, 19, 36) and back.chunks[1:] == ((19,), (36,))
    labels = da.from_array(np.arange(19 * 36).reshape(19, 36), chunks=(19, 36))
    nearest = Regridder(LatLonGrid(LAT, LON), 3, "nearest")
    picked = nearest(labels)
    assert picked.dtype == labels.dtype and np.array_equal(picked.compute(), nearest(labels.compute()))


def test_without_dask_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"meshcnn\[dask\]"):
        import_dask()
