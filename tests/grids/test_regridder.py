"""Tests of meshcnn.grids.Regridder: NumPy, torch, module, save/load, na_thres as in xESMF, methods."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.special import sph_harm_y

from meshcnn.geometry import icosphere
from meshcnn.grids import (
    METHODS,
    HealpixGrid,
    IcosphereGrid,
    LatLonGrid,
    Regridder,
    latlon_to_mesh,
    mesh_to_latlon,
    regrid_dataarray,
    sphere_grid,
)
from meshcnn.grids.regrid import apply

TEN = (np.linspace(-90.0, 90.0, 19), np.arange(0.0, 360.0, 10.0))
FIVE = (np.linspace(90.0, -90.0, 37), np.arange(-180.0, 180.0, 5.0))


def smooth(lat_deg, lon_deg, degree=5):
    """A sum of real spherical harmonics up to ``degree`` (lat, lon in degrees)."""
    theta = np.deg2rad(90.0 - np.asarray(lat_deg, dtype=np.float64))
    phi = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    out = np.zeros(np.broadcast(theta, phi).shape)
    for l, m, c in [(1, 1, 1.0), (2, 0, 0.7), (3, 2, 0.5), (4, -3, 0.3), (5, 4, 0.4), (5, -1, 0.3)]:
        if l <= degree:
            y = sph_harm_y(l, abs(m), theta, phi)
            out += c * (y.real if m >= 0 else y.imag)
    return out


def on_grid(lat, lon, **kw):
    return smooth(*np.meshgrid(lat, lon, indexing="ij"), **kw)


# ------------------------------------------------------------------ the wrappers are the Regridder
@pytest.mark.parametrize("method", ["bilinear", "nearest", "conservative"])
def test_wrappers_are_the_regridder_weights_and_kernel(method):
    lat, lon = FIVE
    grid = LatLonGrid(lat, lon)
    to_mesh, to_grid = Regridder(grid, 3, method), Regridder(3, grid, method)
    assert (latlon_to_mesh(lat, lon, 3, method) != to_mesh.weights).nnz == 0
    assert (mesh_to_latlon(3, lat, lon, method) != to_grid.weights).nnz == 0
    assert to_mesh.src_shape == (37, 72) and to_mesh.dst_shape == (642,) and to_grid.dst_shape == (37, 72)
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.normal(size=(2, 3, 37, 72)).astype(dtype)
        out = to_mesh(x)
        assert out.shape == (2, 3, 642) and out.dtype == dtype
        assert np.array_equal(out, apply(latlon_to_mesh(lat, lon, 3, method), x))
        back = to_grid(out)
        assert back.shape == (2, 3, 37, 72)
        assert np.array_equal(back.reshape(2, 3, -1), apply(mesh_to_latlon(3, lat, lon, method), out))
    with pytest.raises(ValueError, match="transposed"):
        to_mesh(np.zeros((72, 37)))
    with pytest.raises(ValueError, match="source grid"):
        to_grid(np.zeros(643))


def test_grids_of_every_kind_are_accepted():
    lat, lon = TEN
    grid = LatLonGrid(lat, lon)
    by_level = Regridder(grid, 2).weights
    for same in (icosphere(2), IcosphereGrid(2), sphere_grid("icosphere", 2)):
        assert (Regridder(grid, same).weights != by_level).nnz == 0
    assert Regridder(grid, HealpixGrid(4)).dst_shape == (192,)
    with pytest.raises(ValueError, match="grid"):
        Regridder(grid, "icosphere")
    with pytest.raises(ValueError, match="method"):
        Regridder(grid, 2, "cubic")


# ------------------------------------------------------------------ na_thres: xESMF's definition
def xesmf_reference(weights, x, na_thres):
    """xESMF's skipna (xesmf.frontend.BaseRegridder.regrid_array): NaN where the valid weight
    W @ valid is below 1 - na_thres (clipped to [1e-6, 1 - 1e-6]), else W @ filled / W @ valid."""
    missing = np.isnan(x)
    num = weights @ np.where(missing, 0.0, x)
    valid = weights @ (~missing).astype(float)
    bad = valid < np.clip(1 - na_thres, 1e-6, 1 - 1e-6)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bad, np.nan, num / np.where(bad, 1.0, valid))


def test_na_thres_is_xesmf_definition_on_a_hand_built_case():
    # three inputs, rows with valid fractions 0, 0.25, 0.5, 0.75 and 1 under the mask below
    weights = sp.csr_matrix(
        np.array(
            [
                [1.0, 0.0, 0.0],  # only the missing input: valid 0
                [0.75, 0.25, 0.0],  # valid 0.25
                [0.5, 0.5, 0.0],  # valid 0.5
                [0.25, 0.75, 0.0],  # valid 0.75
                [0.0, 0.5, 0.5],  # valid 1
            ]
        )
    )
    x = np.array([np.nan, 2.0, 4.0])
    expected_nan = {0.0: [1, 1, 1, 1, 0], 0.5: [1, 1, 0, 0, 0], 1.0: [1, 0, 0, 0, 0]}
    for na_thres, nan_rows in expected_nan.items():
        out = apply(weights, x, skipna=True, na_thres=na_thres)
        ref = xesmf_reference(weights, x, na_thres)
        np.testing.assert_array_equal(np.isnan(out), np.array(nan_rows, dtype=bool))
        np.testing.assert_allclose(out, ref, rtol=1e-15)  # NaN in the same places, the same values
        assert out[4] == 3.0 and (na_thres == 0.0 or out[3] == 2.0)  # renormalised: the valid mean
        # the same through a Regridder built on these weights (torch too)
        rg = Regridder.from_weights(
            weights, SimpleNamespace(shape=(3,)), SimpleNamespace(shape=(5,)), skipna=True, na_thres=na_thres
        )
        np.testing.assert_array_equal(rg(x), out)
        np.testing.assert_allclose(rg(torch.tensor(x)).numpy(), out, rtol=1e-15)


@pytest.mark.parametrize("na_thres", [0.0, 0.5, 1.0])
def test_na_thres_on_a_real_grid_matches_xesmf(na_thres):
    lat, lon = TEN
    rg = Regridder(LatLonGrid(lat, lon), 2, "conservative", skipna=True, na_thres=na_thres)
    field = on_grid(lat, lon)
    field[4:9, 5:20] = np.nan
    out = rg(field)
    ref = xesmf_reference(rg.weights, field.reshape(-1), na_thres)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_old_na_thresh_keyword_warns_and_is_converted():
    lat, lon = TEN
    W = latlon_to_mesh(lat, lon, 2)
    field = np.ones((19, 36))
    field[:, :18] = np.nan
    for old in (0.0, 0.3, 1.0):
        with pytest.warns(DeprecationWarning, match="na_thres.*xESMF"):
            legacy = apply(W, field, skipna=True, na_thresh=old)
        np.testing.assert_array_equal(legacy, apply(W, field, skipna=True, na_thres=1.0 - old))
    xr = pytest.importorskip("xarray")
    da = xr.DataArray(field, dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    with pytest.warns(DeprecationWarning, match="na_thresh"):
        regrid_dataarray(da, 2, skipna=True, na_thresh=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regrid_dataarray(da, 2, skipna=True, na_thres=0.5)  # the new keyword: no warning


# ------------------------------------------------------------------ torch
@pytest.mark.parametrize("method", ["bilinear", "conservative", "patch"])
def test_torch_matches_numpy_and_gradcheck(method):
    lat, lon = TEN
    rg = Regridder(LatLonGrid(lat, lon), 2, method)
    x = np.random.default_rng(1).normal(size=(3, 19, 36))
    out = rg(torch.tensor(x))
    assert isinstance(out, torch.Tensor) and out.shape == (3, 162) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), rg(x), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(
        rg(torch.tensor(x, dtype=torch.float32)).numpy(), rg(x.astype(np.float32)), rtol=1e-5, atol=1e-5
    )
    small = Regridder(LatLonGrid(np.linspace(-90.0, 90.0, 7), np.arange(0.0, 360.0, 30.0)), 1, method)
    assert torch.autograd.gradcheck(small, (torch.randn(2, 7, 12, dtype=torch.float64, requires_grad=True),))
    masked = x.copy()
    masked[:, 3:7, 2:9] = np.nan
    rg_nan = Regridder(LatLonGrid(lat, lon), 2, method, skipna=True, na_thres=0.5)
    np.testing.assert_allclose(rg_nan(torch.tensor(masked)).numpy(), rg_nan(masked), rtol=1e-12, atol=1e-12)
    xt = torch.tensor(masked[:1], requires_grad=True)
    rg_nan(xt).nan_to_num().sum().backward()  # NaN outputs do not poison the gradient
    assert torch.isfinite(xt.grad).all() and (xt.grad[torch.isnan(xt.detach())] == 0).all()


def test_torch_integer_labels_and_module():
    lat, lon = TEN
    grid = LatLonGrid(lat, lon)
    labels = np.random.default_rng(2).integers(0, 3, size=(2, 19, 36))
    nearest = Regridder(grid, 2, "nearest")
    out = nearest(torch.tensor(labels))
    assert out.dtype == torch.int64 and np.array_equal(out.numpy(), nearest(labels))
    rg = Regridder(grid, 2, "bilinear")
    module = rg.to_module()
    assert isinstance(module, torch.nn.Module)
    x = torch.randn(4, 19, 36, dtype=torch.float64)
    np.testing.assert_allclose(module(x).numpy(), rg(x.numpy()), rtol=1e-13, atol=1e-13)
    small = Regridder(LatLonGrid(np.linspace(-90.0, 90.0, 7), np.arange(0.0, 360.0, 30.0)), 1).to_module()
    assert torch.autograd.gradcheck(small, (torch.randn(2, 7, 12, dtype=torch.float64, requires_grad=True),))
    state = module.state_dict()
    assert {"w_crow", "w_col", "w_val", "wt_crow", "wt_col", "wt_val"} <= set(state)
    fresh = rg.to_module()
    with torch.no_grad():
        fresh.w_val.zero_()
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh(x).numpy(), module(x).numpy())
    model = torch.nn.Sequential(module, torch.nn.Linear(162, 1, dtype=torch.float64))
    model(x.float().double()).sum().backward()
    with pytest.raises(ValueError, match="last axes"):
        module(torch.zeros(36, 19))


# ------------------------------------------------------------------ save and load
def test_save_load_round_trip_and_checksum(tmp_path):
    lat, lon = FIVE
    for src, dst in ((LatLonGrid(lat, lon), HealpixGrid(4)), (3, LatLonGrid(lat, lon))):
        rg = Regridder(src, dst, "conservative", skipna=True, na_thres=0.25)
        path = tmp_path / "weights.npz"
        rg.save(path)
        with np.load(path, allow_pickle=False) as f:  # no pickled objects
            assert "checksum" in f.files
        loaded = Regridder.load(path)
        assert (loaded.weights != rg.weights).nnz == 0 and loaded.method == "conservative"
        assert loaded.skipna and loaded.na_thres == 0.25
        assert loaded.src_shape == rg.src_shape and loaded.dst_shape == rg.dst_shape
        x = np.random.default_rng(0).normal(size=(2,) + rg.src_shape)
        x[0, ..., :5] = np.nan
        np.testing.assert_array_equal(loaded(x), rg(x))
        sphere = loaded.dst if rg.dst_shape != (37, 72) else loaded.src
        np.testing.assert_allclose(sphere.cell_areas().sum(), 4 * np.pi)
    # a flipped byte: refused
    raw = bytearray(path.read_bytes())
    data = np.load(path)["data"]
    at = raw.find(data.tobytes()[:64])
    raw[at + 10] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum"):
        Regridder.load(tmp_path / "bad.npz")
    # changed weights with a sound zip: refused by the SHA-256
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["data"] = arrays["data"] * 1.5
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(ValueError, match="SHA-256"):
        Regridder.load(tmp_path / "edited.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="not a regridder"):
        Regridder.load(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        Regridder.load(tmp_path / "missing.npz")


# ------------------------------------------------------------------ methods
def test_method_list():
    assert set(METHODS) == {"bilinear", "nearest", "conservative", "patch", "nearest_s2d", "nearest_d2s"}
    lat, lon = TEN
    grid = LatLonGrid(lat, lon)
    assert (Regridder(grid, 2, "nearest_s2d").weights != Regridder(grid, 2, "nearest").weights).nnz == 0


def test_nearest_d2s_maps_each_source_to_its_nearest_destination():
    lat, lon = TEN
    grid = LatLonGrid(lat, lon)
    for src, dst in ((grid, 3), (3, grid), (HealpixGrid(4), 2)):
        rg = Regridder(src, dst, "nearest_d2s")
        w = rg.weights
        # every source point goes to one destination with weight 1 (a file's duplicate column: none)
        assert np.all(w.data == 1.0) and np.all(np.asarray(w.sum(axis=0)).ravel() == 1.0)
        src_pts = rg.src.points() if hasattr(rg.src, "points") else None
        dst_pts = rg.dst.points()
        cos = src_pts @ dst_pts.T
        coo = w.tocoo()
        np.testing.assert_allclose(cos[coo.col, coo.row], cos.max(axis=1)[coo.col], atol=1e-12)


def test_patch_round_trip_one_degree_level6_below_1e3():
    """1-degree -> icosphere level 6 -> 1-degree of harmonics up to degree 5: max error < 1e-3 of the
    amplitude with patch (and smaller than bilinear's)."""
    lat, lon = np.linspace(-90.0, 90.0, 181), np.arange(0.0, 360.0, 1.0)
    grid = LatLonGrid(lat, lon)
    field = on_grid(lat, lon)
    amplitude = np.abs(field).max()
    errors = {}
    for method in ("patch", "bilinear"):
        back = Regridder(6, grid, method)(Regridder(grid, 6, method)(field))
        errors[method] = np.abs(back - field).max() / amplitude
    assert errors["patch"] < 1e-4 < errors["bilinear"]


@pytest.mark.parametrize(
    "lat, lon",
    [
        (np.arange(89.0, -90.0, -2.0), np.arange(-180.0, 180.0, 2.0)),  # no pole rows, descending
        (np.linspace(-90.0, 90.0, 91), np.arange(0.0, 360.1, 2.0)),  # pole rows, duplicated column
    ],
)
def test_patch_is_higher_order_at_the_poles_too(lat, lon):
    """lat-lon -> mesh patch: third-order accurate everywhere (poles included), error far below bilinear's."""
    mesh = icosphere(4)
    exact = smooth(np.rad2deg(mesh.lat), np.rad2deg(mesh.lon))
    field = on_grid(lat, lon)
    grid = LatLonGrid(lat, lon)
    patch = np.abs(Regridder(grid, 4, "patch")(field) - exact)
    bilinear = np.abs(Regridder(grid, 4, "bilinear")(field) - exact)
    assert patch.max() < 0.05 * bilinear.max()
    assert patch[[0, 11]].max() < 1e-4  # the pole vertices
    np.testing.assert_allclose(np.asarray(Regridder(grid, 4, "patch").weights.sum(axis=1)).ravel(), 1.0, atol=1e-12)


def test_same_kind_pairs():
    coarse, fine = LatLonGrid(*TEN), LatLonGrid(*FIVE)
    field = on_grid(*TEN, degree=2)
    for method in ("bilinear", "patch"):
        out = Regridder(coarse, fine, method)(field)
        err = np.abs(out - on_grid(*FIVE, degree=2)).max()
        assert err < (0.05 if method == "bilinear" else 0.01)
    healpix = HealpixGrid(8)
    values = smooth(healpix.lat, healpix.lon, degree=3)
    mesh = icosphere(3)
    exact = smooth(np.rad2deg(mesh.lat), np.rad2deg(mesh.lon), degree=3)
    for method, tol in (("bilinear", 0.05), ("patch", 0.01), ("nearest", 0.3)):
        assert np.abs(Regridder(healpix, 3, method)(values) - exact).max() < tol
    with pytest.raises(ValueError, match="conservative"):
        Regridder(coarse, fine, "conservative")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_on_cuda_matches_the_cpu_and_gradcheck():
    lat, lon = TEN
    rg = Regridder(LatLonGrid(lat, lon), 2, "bilinear", skipna=True)
    x = torch.randn(3, 19, 36, dtype=torch.float64)
    x[0, 2:5, 3:9] = float("nan")
    out = rg(x.cuda())
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), rg(x.numpy()), rtol=1e-12, atol=1e-12, equal_nan=True)
    module = rg.to_module().cuda()
    np.testing.assert_allclose(module(x.cuda()).cpu().numpy(), rg(x.numpy()), rtol=1e-12, atol=1e-12, equal_nan=True)
    small = Regridder(LatLonGrid(np.linspace(-90.0, 90.0, 7), np.arange(0.0, 360.0, 30.0)), 1)
    assert torch.autograd.gradcheck(
        small, (torch.randn(2, 7, 12, dtype=torch.float64, device="cuda", requires_grad=True),)
    )
