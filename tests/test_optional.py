"""meshcnn._optional.optional_import: one way to import an optional dependency, one error message."""

from __future__ import annotations

import sys

import pytest

from meshcnn._optional import optional_import


def test_an_installed_module_is_returned():
    import json
    import os.path

    assert optional_import("json", "x needs json", "all") is json
    assert optional_import("os.path", "x needs os.path", "all") is os.path


def test_a_missing_module_names_what_needs_it_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.array", None)  # as if it were not installed
    with pytest.raises(ImportError) as info:
        optional_import("dask.array", "lazy (Dask) regridding needs dask", "dask")
    assert (
        str(info.value) == "lazy (Dask) regridding needs dask; install the optional extra: pip install 'meshcnn[dask]'"
    )
    assert isinstance(info.value.__cause__, ImportError)


def _import_xarray():
    from meshcnn.grids._xarray import _import_xarray

    return _import_xarray()


def _import_dask():
    from meshcnn.grids.regridder import import_dask

    return import_dask()


def _netcdf4():
    from meshcnn.data.climate._format import _netcdf4

    return _netcdf4()


def _import_distributed():
    from meshcnn.predict.distributed import import_distributed

    return import_distributed()


def _lazy_climate_dataset():
    from meshcnn.data.climate import LazyClimateDataset

    return LazyClimateDataset("archive.zarr", 1)


def _load_digits():
    from meshcnn.data.digits import load_digits_arrays

    return load_digits_arrays()


@pytest.mark.parametrize(
    "importer, module, message",
    [
        (
            _import_xarray,
            "xarray",
            "regrid_dataarray needs xarray; install the optional extra: pip install 'meshcnn[climate]'",
        ),
        (
            _import_dask,
            "dask.array",
            "lazy (Dask) regridding needs dask; install the optional extra: pip install 'meshcnn[dask]'",
        ),
        (
            _netcdf4,
            "netCDF4",
            "reading ClimateNet netCDF files needs netCDF4; install the optional extra: pip install 'meshcnn[climate]'",
        ),
        (
            _import_distributed,
            "distributed",
            "meshcnn predict --dask needs dask.distributed; install the optional extra: pip install 'meshcnn[dask]'",
        ),
        (_lazy_climate_dataset, "xarray", "LazyClimateDataset needs xarray; install the optional extra"),
        (_load_digits, "sklearn.datasets", "the digits dataset needs scikit-learn"),
    ],
)
def test_the_lazy_imports_go_through_it(monkeypatch, importer, module, message):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError) as info:
        importer()
    assert str(info.value).startswith(message)
