"""Tests of meshcnn.grids.regrid against analytic fields and exact invariants."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import sph_harm_y

from meshcnn.geometry import Mesh, icosphere, locate
from meshcnn.grids import (
    HealpixGrid,
    IcosphereGrid,
    latlon_to_mesh,
    mesh_dataarray_to_latlon,
    mesh_to_latlon,
    regrid_dataarray,
)
from meshcnn.grids.healpix import healpix_nest_to_ring
from meshcnn.grids.icosphere import mesh_cell_areas
from meshcnn.grids.regrid import apply, grid_cell_areas

# a few real spherical harmonics: (degree, order, coefficient); negative order = sine part
HARMONICS = [(1, 1, 1.0), (2, 0, 0.7), (3, 2, 0.5), (4, -3, 0.3)]


def harmonics(lat_deg, lon_deg):
    theta = np.deg2rad(90.0 - np.asarray(lat_deg, dtype=np.float64))
    phi = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    out = np.zeros(np.broadcast(theta, phi).shape)
    for l, m, c in HARMONICS:
        y = sph_harm_y(l, abs(m), theta, phi)
        out += c * (y.real if m >= 0 else y.imag)
    return out


def on_grid(lat, lon):
    return harmonics(*np.meshgrid(lat, lon, indexing="ij"))


def on_mesh(level):
    mesh = icosphere(level)
    return harmonics(np.rad2deg(mesh.lat), np.rad2deg(mesh.lon))


def gaussian_latitudes(n):
    x, _ = np.polynomial.legendre.leggauss(n)
    return np.rad2deg(np.arcsin(x))[::-1]  # north to south, as in ECMWF files


ONE_DEGREE = (np.linspace(-90.0, 90.0, 181), np.arange(0.0, 360.0, 1.0))


def test_round_trip_one_degree_level6():
    """1-degree grid -> level 6 -> 1-degree grid: max error < 1e-3 of the amplitude."""
    lat, lon = ONE_DEGREE
    field = on_grid(lat, lon)
    amplitude = np.abs(field).max()
    mesh_values = apply(latlon_to_mesh(lat, lon, 6), field)
    assert mesh_values.shape == (icosphere(6).num_vertices,)
    assert np.abs(mesh_values - on_mesh(6)).max() < 5e-4 * amplitude
    back = apply(mesh_to_latlon(6, lat, lon), mesh_values).reshape(field.shape)
    assert np.abs(back - field).max() < 1e-3 * amplitude


@pytest.mark.parametrize(
    "lat, lon",
    [
        (np.arange(89.0, -90.0, -2.0), np.arange(-180.0, 180.0, 2.0)),  # descending, no pole rows, -180..180
        (np.linspace(-90.0, 90.0, 91), np.arange(0.0, 360.1, 2.0)),  # pole rows, duplicated 0/360 column
        (gaussian_latitudes(96), np.arange(0.0, 360.0, 1.875)),  # Gaussian N48 (no pole rows)
        (np.linspace(90.0, -90.0, 91), np.arange(359.0, 0.0, -2.0)),  # both descending, lon 0 in the wrap interval
    ],
    ids=["descending-offset", "poles-duplicate-column", "gaussian", "lon-descending"],
)
def test_bilinear_grid_conventions(lat, lon):
    """Every grid convention gives the analytic values at the vertices, poles included."""
    level = 4
    field = on_grid(lat, lon)
    amplitude = np.abs(field).max()
    W = latlon_to_mesh(lat, lon, level)
    assert W.shape == (icosphere(level).num_vertices, len(lat) * len(lon))
    exact = on_mesh(level)
    err = np.abs(apply(W, field) - exact)
    assert err.max() < 3e-3 * amplitude
    assert err[[0, 11]].max() < 3e-3 * amplitude  # vertices 0 and 11 are the poles
    M = mesh_to_latlon(level, lat, lon)
    assert M.shape == (len(lat) * len(lon), icosphere(level).num_vertices)
    assert np.abs(apply(M, exact).reshape(field.shape) - field).max() < 1e-2 * amplitude


def test_pole_vertex_uses_polar_limit():
    """Without pole rows, a pole vertex gets the polar limit: sin(lat) -> +-1, cos(lat)cos(lon) -> 0."""
    lat = np.arange(-87.5, 90.0, 5.0)
    lon = np.arange(0.0, 360.0, 5.0)
    LAT, LON = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    W = latlon_to_mesh(lat, lon, 2)
    z = apply(W, np.sin(LAT))
    x = apply(W, np.cos(LAT) * np.cos(LON))
    assert z[0] == pytest.approx(1.0, abs=1e-3) and z[11] == pytest.approx(-1.0, abs=1e-3)
    assert abs(x[0]) < 1e-12 and abs(x[11]) < 1e-12


def test_pole_row_values_are_averaged():
    """A row at the pole counts as its mean (files often store a varying pole row)."""
    lat = np.linspace(-90.0, 90.0, 19)
    lon = np.arange(0.0, 360.0, 10.0)
    field = np.zeros((19, 36))
    field[-1] = np.arange(36)  # north pole row varies with longitude
    values = apply(latlon_to_mesh(lat, lon, 2), field)
    assert values[0] == pytest.approx(np.arange(36).mean())


@pytest.mark.parametrize("method", ["bilinear", "nearest", "conservative"])
def test_rows_sum_to_one(method):
    lat, lon = np.arange(-88.0, 90.0, 4.0), np.arange(-180.0, 180.0, 4.0)
    for matrix in (latlon_to_mesh(lat, lon, 3, method), mesh_to_latlon(3, lat, lon, method)):
        assert isinstance(matrix, sp.csr_matrix)
        assert np.all(matrix.data >= 0)
        np.testing.assert_allclose(np.asarray(matrix.sum(axis=1)).ravel(), 1.0, atol=1e-12)


def test_nearest_is_geodesic_nearest_and_keeps_labels():
    lat, lon = np.linspace(80.0, -80.0, 17), np.arange(0.0, 360.0, 15.0)
    level = 3
    mesh = icosphere(level)
    LAT, LON = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    grid_xyz = np.stack([np.cos(LAT) * np.cos(LON), np.cos(LAT) * np.sin(LON), np.sin(LAT)], -1).reshape(-1, 3)
    labels = np.arange(grid_xyz.shape[0], dtype=np.int64)  # each grid point its own label
    out = apply(latlon_to_mesh(lat, lon, level, "nearest"), labels)
    assert out.dtype == np.int64
    cos = mesh.vertices @ grid_xyz.T  # max cosine = min great-circle distance (ties at the poles)
    np.testing.assert_allclose(cos[np.arange(mesh.num_vertices), out], cos.max(axis=1), atol=1e-12)
    back = apply(mesh_to_latlon(level, lat, lon, "nearest"), np.arange(mesh.num_vertices))
    np.testing.assert_allclose(cos[back, np.arange(len(grid_xyz))], cos.max(axis=0), atol=1e-12)


@pytest.mark.parametrize(
    "lat, lon, level",
    [
        (np.linspace(-90.0, 90.0, 37), np.arange(0.0, 360.0, 5.0), 3),  # grid finer than the mesh
        (np.arange(85.0, -90.0, -10.0), np.arange(-180.0, 181.0, 10.0), 4),  # coarser, duplicate column
    ],
)
def test_conservative_preserves_area_integral(lat, lon, level):
    rng = np.random.default_rng(0)
    grid_areas = grid_cell_areas(lat, lon)
    mesh_areas = mesh_cell_areas(level)
    assert grid_areas.sum() == pytest.approx(4 * np.pi, rel=1e-12)
    assert mesh_areas.sum() == pytest.approx(4 * np.pi, rel=1e-12)
    g = rng.uniform(0.0, 1.0, grid_areas.shape) + on_grid(lat, lon)
    m = apply(latlon_to_mesh(lat, lon, level, "conservative"), g)
    assert (mesh_areas @ m) == pytest.approx((grid_areas * g).sum(), rel=1e-6)
    h = rng.uniform(0.0, 1.0, mesh_areas.shape) + on_mesh(level)
    back = apply(mesh_to_latlon(level, lat, lon, "conservative"), h)
    assert (grid_areas.reshape(-1) @ back) == pytest.approx(mesh_areas @ h, rel=1e-6)


def test_conservative_is_a_local_average():
    """On a smooth field, conservative remapping stays close to point values (no mass moved far)."""
    lat, lon = np.linspace(-90.0, 90.0, 91), np.arange(0.0, 360.0, 2.0)
    m = apply(latlon_to_mesh(lat, lon, 4, "conservative"), on_grid(lat, lon))
    assert np.abs(m - on_mesh(4)).max() < 0.05 * np.abs(on_mesh(4)).max()


def test_locate_barycentric_coordinates():
    mesh = icosphere(3)
    rng = np.random.default_rng(1)
    p = rng.normal(size=(500, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    p = np.concatenate([p, mesh.vertices[:20], [[0, 0, 1.0], [0, 0, -1.0]]])
    face, bary = locate(mesh, p)
    assert np.all(bary >= 0) and np.allclose(bary.sum(1), 1.0)
    q = np.einsum("pk,pkc->pc", bary, mesh.vertices[mesh.faces[face]])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(q, p, atol=1e-12)  # the point lies on the ray through the triangle point


@pytest.mark.parametrize(
    "lat, lon, message",
    [
        (np.array([-90.0, 0.0, -45.0, 90.0]), np.arange(0.0, 360.0, 10.0), "monotonic"),
        (np.linspace(-90.0, 90.0, 19), np.array([0.0, 10.0, 5.0, 20.0]), "monotonic"),
        (np.linspace(-60.0, 60.0, 13), np.arange(0.0, 360.0, 10.0), "pole"),
        (np.linspace(-90.0, 90.0, 19), np.arange(0.0, 90.0, 10.0), "globe"),
        (np.linspace(-90.0, 90.0, 19) * 60, np.arange(0.0, 360.0, 10.0), "degrees"),
        (np.linspace(-90.0, 90.0, 19), np.array([0.0, np.nan, 20.0]), "NaN"),
        (np.zeros((3, 3)), np.arange(0.0, 360.0, 10.0), "1-D"),
    ],
)
def test_bad_grids_raise(lat, lon, message):
    with pytest.raises(ValueError, match=message):
        latlon_to_mesh(lat, lon, 2)


def test_bad_method_and_level():
    lat, lon = np.linspace(-90.0, 90.0, 19), np.arange(0.0, 360.0, 10.0)
    with pytest.raises(ValueError, match="method"):
        latlon_to_mesh(lat, lon, 2, "cubic")
    with pytest.raises(ValueError, match="level"):
        mesh_to_latlon(12, lat, lon)
    with pytest.raises(ValueError, match="do not match"):
        apply(latlon_to_mesh(lat, lon, 2), np.zeros(7))


def test_cache_returns_independent_copies():
    lat, lon = np.linspace(-90.0, 90.0, 19), np.arange(0.0, 360.0, 10.0)
    first = latlon_to_mesh(lat, lon, 2)
    first.data[:] = 0.0
    second = latlon_to_mesh(list(lat), tuple(lon), 2)
    np.testing.assert_allclose(np.asarray(second.sum(axis=1)).ravel(), 1.0)


def test_apply_shapes_and_dtypes():
    lat, lon = np.linspace(-90.0, 90.0, 19), np.arange(0.0, 360.0, 10.0)
    W = latlon_to_mesh(lat, lon, 2)
    batch = np.random.default_rng(0).normal(size=(2, 3, 19, 36)).astype(np.float32)
    out = apply(W, batch)
    assert out.shape == (2, 3, 162) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 2], W @ batch[1, 2].reshape(-1).astype(np.float64), rtol=1e-5, atol=1e-5)


def test_regrid_dataarray_and_dataset():
    xr = pytest.importorskip("xarray")
    lat, lon = np.linspace(90.0, -90.0, 37), np.arange(-180.0, 180.0, 5.0)
    level = 3
    field = on_grid(lat, lon)
    data = np.stack([field, 2 * field])
    da = xr.DataArray(
        data,
        dims=("time", "lat", "lon"),
        coords={"time": [0, 1], "lat": lat, "lon": lon},
        name="TMQ",
        attrs={"units": "kg m-2"},
    )
    out = regrid_dataarray(da, level)
    V = icosphere(level).num_vertices
    assert out.dims == ("time", "vertex") and out.shape == (2, V)
    assert out.name == "TMQ" and out.attrs["units"] == "kg m-2" and out.attrs["mesh_level"] == level
    np.testing.assert_allclose(out["lat"].values, np.rad2deg(icosphere(level).lat))
    np.testing.assert_allclose(out["lon"].values, np.rad2deg(icosphere(level).lon))
    np.testing.assert_allclose(out.values[1], apply(latlon_to_mesh(lat, lon, level), 2 * field))
    # transposed input gives the same answer
    np.testing.assert_allclose(regrid_dataarray(da.transpose("lon", "time", "lat"), level).values, out.values)

    labels = xr.DataArray(
        np.zeros((37, 72), dtype=np.int8), dims=("latitude", "longitude"), coords={"latitude": lat, "longitude": lon}
    )
    ds = xr.Dataset({"TMQ": da, "LABELS": labels.rename(latitude="lat", longitude="lon"), "step": ("time", [5, 6])})
    out_ds = regrid_dataarray(ds, level, "nearest")
    assert set(out_ds.data_vars) == {"TMQ", "LABELS", "step"}
    assert out_ds["LABELS"].dtype == np.int8 and out_ds["LABELS"].dims == ("vertex",)
    assert regrid_dataarray(labels, level, "nearest").dims == ("vertex",)
    with pytest.raises(ValueError, match="lat"):
        regrid_dataarray(xr.DataArray(np.zeros((3, 4)), dims=("a", "b")), level)


# ------------------------------------------------------------------ missing values (skipna)
TWO_DEGREE = (np.linspace(90.0, -90.0, 91), np.arange(-180.0, 180.0, 2.0))  # north to south, -180..180


def land_mask(lat_deg, lon_deg):
    """A realistic land-sea mask: smooth 'continents' (about 30% of the area) with ragged
    coasts, a polar continent (Antarctica-like cap) and small islands."""
    lat, lon = np.deg2rad(lat_deg), np.deg2rad(lon_deg)
    blobs = (
        np.sin(2 * lon) * np.cos(lat) ** 2
        + 0.6 * np.cos(3 * lon + 1.0) * np.sin(2 * lat)
        + 0.25 * np.sin(9 * lon) * np.cos(7 * lat)
        + 0.15 * np.cos(17 * lon + 2 * lat)
    )
    return (blobs > 0.55) | (lat_deg < -70.0)


def sst(lat_deg, lon_deg):
    """A sea-surface-temperature-like field, K."""
    return 273.0 + 28.0 * np.cos(np.deg2rad(lat_deg)) ** 2 + 2.0 * np.sin(np.deg2rad(3 * lon_deg))


def _great_circle_nearest(points_from, points_to):
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(points_to).query(points_from)
    return 2 * np.arcsin(np.clip(dist / 2, 0, 1))  # chord -> angle, radians


def _unit(lat_deg, lon_deg):
    lat, lon = np.deg2rad(np.ravel(lat_deg)), np.deg2rad(np.ravel(lon_deg))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], 1)


def _sides(direction, level):
    """(matrix builder, input points, output points, input spacing in radians) of a direction."""
    lat, lon = TWO_DEGREE
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    mesh = icosphere(level)
    grid_pts = _unit(glat, glon)
    if direction == "to_mesh":
        return (lambda m: latlon_to_mesh(lat, lon, level, m)), grid_pts, mesh.vertices, np.deg2rad(2.0) * np.sqrt(2)
    return (lambda m: mesh_to_latlon(level, lat, lon, m)), mesh.vertices, grid_pts, 1.2 * mesh.mean_edge_length


@pytest.mark.parametrize("method", ["bilinear", "nearest", "conservative"])
@pytest.mark.parametrize("direction", ["to_mesh", "to_grid"])
def test_skipna_land_mask_footprint_and_no_overshoot(method, direction):
    level = 4
    build, pts_in, pts_out, spacing = _sides(direction, level)
    W = build(method)
    lat_in = np.rad2deg(np.arcsin(pts_in[:, 2]))
    lon_in = np.rad2deg(np.arctan2(pts_in[:, 1], pts_in[:, 0]))
    land = land_mask(lat_in, lon_in)
    assert 0.2 < land.mean() < 0.5
    field = np.where(land, np.nan, sst(lat_in, lon_in))
    if direction == "to_mesh":
        field = field.reshape(len(TWO_DEGREE[0]), len(TWO_DEGREE[1]))  # a 2-D (lat, lon) field
    out = apply(W, field, skipna=True, na_thres=0.5)
    flat_in = field.reshape(-1)
    nan_out = np.isnan(out)

    # NaN only within about one input spacing of land: no smear along the coasts
    dist_to_land = _great_circle_nearest(pts_out, pts_in[land])
    assert np.all(dist_to_land[nan_out] <= spacing), dist_to_land[nan_out].max() / spacing
    # every output far from land is valid; and today's skipna=False smears NaN further
    assert not nan_out[dist_to_land > spacing].any()
    smeared = np.isnan(apply(W, field))
    assert smeared.sum() >= nan_out.sum()
    if method != "nearest":
        assert smeared.sum() > 1.1 * nan_out.sum()
    # the NaN area is about the land area
    assert (
        abs(
            nan_out.mean()
            - np.mean(
                land_mask(np.rad2deg(np.arcsin(pts_out[:, 2])), np.rad2deg(np.arctan2(pts_out[:, 1], pts_out[:, 0])))
            )
        )
        < 0.05
    )

    # no overshoot: each valid output lies within the range of the valid inputs it mixes
    csr = sp.csr_matrix(W)
    for row in np.nonzero(~nan_out)[0]:
        cols = csr.indices[csr.indptr[row] : csr.indptr[row + 1]]
        vals = flat_in[cols]
        vals = vals[~np.isnan(vals)]
        assert vals.min() - 1e-9 <= out[row] <= vals.max() + 1e-9


@pytest.mark.parametrize("method", ["bilinear", "nearest", "conservative"])
@pytest.mark.parametrize("direction", ["to_mesh", "to_grid"])
def test_skipna_unmasked_is_bit_identical(method, direction):
    level = 3
    build, pts_in, _, _ = _sides(direction, level)
    W = build(method)
    lat_in = np.rad2deg(np.arcsin(pts_in[:, 2]))
    lon_in = np.rad2deg(np.arctan2(pts_in[:, 1], pts_in[:, 0]))
    field = np.stack([sst(lat_in, lon_in), harmonics(lat_in, lon_in)])
    for dtype in (np.float64, np.float32):
        plain = apply(W, field.astype(dtype))
        same = apply(W, field.astype(dtype), skipna=True, na_thres=0.5)
        assert same.dtype == plain.dtype and np.array_equal(same, plain)
    # with a mask, the rows that see no missing input are still bit-identical
    masked = field.copy()
    masked[:, land_mask(lat_in, lon_in)] = np.nan
    out = apply(W, masked, skipna=True, na_thres=0.5)
    untouched = ~np.asarray(sp.csr_matrix(W).astype(bool).astype(float) @ np.isnan(masked[0]) > 0)
    assert untouched.sum() > 0.3 * len(untouched)
    assert np.array_equal(out[:, untouched], apply(W, field)[:, untouched])


@pytest.mark.parametrize("direction", ["to_mesh", "to_grid"])
def test_skipna_conservative_keeps_the_valid_integral(direction):
    level = 4
    lat, lon = TWO_DEGREE
    build, pts_in, _, _ = _sides(direction, level)
    W = build("conservative")
    lat_in = np.rad2deg(np.arcsin(pts_in[:, 2]))
    lon_in = np.rad2deg(np.arctan2(pts_in[:, 1], pts_in[:, 0]))
    valid = ~land_mask(lat_in, lon_in)
    field = np.where(valid, sst(lat_in, lon_in), np.nan)
    grid_areas, mesh_areas = grid_cell_areas(lat, lon).reshape(-1), mesh_cell_areas(level)
    area_in, area_out = (grid_areas, mesh_areas) if direction == "to_mesh" else (mesh_areas, grid_areas)
    out = apply(W, field, skipna=True, na_thres=1.0)
    valid_fraction = apply(W, valid.astype(np.float64))
    integral_in = np.sum(area_in[valid] * field[valid])
    kept = ~np.isnan(out)
    assert np.all(kept == (valid_fraction > 0))
    integral_out = np.sum(area_out * valid_fraction * np.where(kept, out, 0.0))
    assert abs(integral_out / integral_in - 1) < 1e-9
    # the valid area is kept too
    assert abs(np.sum(area_out * valid_fraction) / np.sum(area_in[valid]) - 1) < 1e-9


def test_skipna_thresholds_and_all_missing():
    lat, lon = np.linspace(-90.0, 90.0, 19), np.arange(0.0, 360.0, 10.0)
    W = latlon_to_mesh(lat, lon, 2)
    field = np.ones((19, 36))
    field[:, :18] = np.nan
    loose = apply(W, field, skipna=True, na_thres=1.0)
    strict = apply(W, field, skipna=True, na_thres=0.0)
    assert np.isnan(strict).sum() > np.isnan(loose).sum() > 0
    np.testing.assert_allclose(loose[~np.isnan(loose)], 1.0, rtol=1e-14)  # renormalised: a constant stays constant
    assert np.isnan(apply(W, np.full((19, 36), np.nan), skipna=True, na_thres=1.0)).all()
    with pytest.raises(ValueError, match="na_thres"):
        apply(W, field, skipna=True, na_thres=1.5)


def test_regrid_dataarray_skipna():
    xr = pytest.importorskip("xarray")
    lat, lon = TWO_DEGREE
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    field = np.where(land_mask(glat, glon), np.nan, sst(glat, glon))
    da = xr.DataArray(field, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="SST")
    out = regrid_dataarray(da, 4, "conservative", skipna=True, na_thres=0.5)
    np.testing.assert_array_equal(
        out.values, apply(latlon_to_mesh(lat, lon, 4, "conservative"), field, skipna=True, na_thres=0.5)
    )
    assert 0 < np.isnan(out.values).mean() < 0.5
    ds = xr.Dataset({"SST": da})
    assert np.isnan(regrid_dataarray(ds, 4, skipna=False)["SST"].values).mean() > np.isnan(out.values).mean()
    # and back to the grid (the other direction), NaN over land only
    from meshcnn.grids import mesh_dataarray_to_latlon

    back = mesh_dataarray_to_latlon(out, lat, lon, "conservative", skipna=True, na_thres=0.5)
    assert back.dims == ("lat", "lon") and back.shape == field.shape
    np.testing.assert_array_equal(back["lat"].values, lat)
    np.testing.assert_array_equal(
        back.values.reshape(-1),
        apply(mesh_to_latlon(4, lat, lon, "conservative"), out.values, skipna=True, na_thres=0.5),
    )
    sea = ~np.isnan(field)
    assert abs(np.isnan(back.values).mean() - (~sea).mean()) < 0.05
    ok = sea & ~np.isnan(back.values)
    assert np.nanmax(np.abs(back.values[ok] - field[ok])) < 6.0  # K, a level-4 round trip of a 2-degree field


def test_apply_checks_the_field_shape_not_only_its_size():
    lat, lon = np.linspace(-90.0, 90.0, 19), np.arange(0.0, 360.0, 10.0)
    W = latlon_to_mesh(lat, lon, 2)
    field = on_grid(lat, lon)
    with pytest.raises(ValueError, match="transposed"):
        apply(W, field.T)  # (nlon, nlat): same number of elements
    with pytest.raises(ValueError, match="transposed"):
        apply(W, np.stack([field.T, field.T]))
    with pytest.raises(ValueError, match="transposed"):
        apply(sp.csr_matrix(W), field.T, grid_shape=(19, 36))
    np.testing.assert_array_equal(apply(W, field), apply(W, field.reshape(-1)))
    M = mesh_to_latlon(2, lat, lon)
    assert M.grid_shape == (19, 36) and apply(M, apply(W, field)).shape == (19 * 36,)


@pytest.mark.parametrize("method", ["bilinear", "nearest", "conservative"])
def test_apply_is_bit_identical_to_the_matrix_product(method):
    """Few fields go through one mat-vec each (no transposed copy), many through one mat-mat
    product: both give exactly the sparse product's sums."""
    lat, lon = np.linspace(-90.0, 90.0, 46), np.arange(0.0, 360.0, 4.0)
    rng = np.random.default_rng(1)
    for W in (latlon_to_mesh(lat, lon, 3, method), mesh_to_latlon(3, lat, lon, method)):
        for dtype in (np.float32, np.float64):
            for batch in (3, 100):
                x = rng.normal(size=(batch, W.shape[1])).astype(dtype)
                expected = np.ascontiguousarray((sp.csr_matrix(W).astype(dtype) @ x.T).T)
                out = apply(W, x)
                assert out.dtype == dtype and np.array_equal(out, expected)


def test_curvilinear_dataarray_is_named_as_such():
    xr = pytest.importorskip("xarray")
    lat, lon = np.meshgrid(np.linspace(-80, 80, 4), np.linspace(0, 300, 5), indexing="ij")
    da = xr.DataArray(np.zeros((4, 5)), dims=("y", "x"), coords={"lat": (("y", "x"), lat), "lon": (("y", "x"), lon)})
    with pytest.raises(ValueError, match="curvilinear"):
        regrid_dataarray(da, 2)


# ------------------------------------------------------------------ any mesh: HEALPix, a Mesh, a grid with .mesh
def degree_two(lat_deg, lon_deg):
    """A smooth degree-2 field: Re Y_2^1 + 0.5 Y_2^0 (lat, lon in degrees)."""
    theta = np.deg2rad(90.0 - np.asarray(lat_deg, dtype=np.float64))
    phi = np.deg2rad(np.asarray(lon_deg, dtype=np.float64))
    return sph_harm_y(2, 1, theta, phi).real + 0.5 * sph_harm_y(2, 0, theta, phi).real


def test_healpix_round_trip_error_falls_with_nside():
    """1-degree grid -> HEALPix nside -> 1-degree grid (bilinear, then barycentric): the values at the
    pixel centres are the analytic ones to the lat-lon grid's own interpolation error, and the round
    trip error falls like the mesh spacing squared (about 4x per doubling of nside)."""
    lat, lon = ONE_DEGREE
    field = degree_two(*np.meshgrid(lat, lon, indexing="ij"))
    amplitude = np.abs(field).max()
    errors = []
    for nside in (8, 16, 32):
        grid = HealpixGrid(nside)
        pixel_values = apply(latlon_to_mesh(lat, lon, grid), field)
        assert pixel_values.shape == (12 * nside**2,)
        assert np.abs(pixel_values - degree_two(grid.lat, grid.lon)).max() < 3e-4 * amplitude
        back = apply(mesh_to_latlon(grid, lat, lon), pixel_values).reshape(field.shape)
        errors.append(np.abs(back - field).max() / amplitude)
    assert errors[1] < errors[0] / 3 and errors[2] < errors[1] / 3
    assert errors[1] < 5e-3


@pytest.mark.parametrize("method", ["bilinear", "nearest", "conservative"])
def test_healpix_constants_exact_and_conservative_integral(method):
    """Every method keeps a constant (rows sum to 1) in both directions; conservative keeps the
    area integral with the HEALPix pixels' exact equal areas, both ways."""
    lat, lon = np.linspace(-90.0, 90.0, 46), np.arange(0.0, 360.0, 4.0)
    grid = HealpixGrid(8)
    to_pixels, to_latlon = latlon_to_mesh(lat, lon, grid, method), mesh_to_latlon(grid, lat, lon, method)
    assert to_pixels.shape == (grid.npix, len(lat) * len(lon)) and to_latlon.shape == (len(lat) * len(lon), grid.npix)
    np.testing.assert_allclose(apply(to_pixels, np.full((len(lat), len(lon)), 3.25)), 3.25, rtol=0, atol=1e-13)
    np.testing.assert_allclose(apply(to_latlon, np.full(grid.npix, -1.5)), -1.5, rtol=0, atol=1e-13)
    if method != "conservative":
        return
    rng = np.random.default_rng(2)
    cell_areas = grid_cell_areas(lat, lon)
    g = rng.uniform(0.0, 1.0, cell_areas.shape) + on_grid(lat, lon)
    pixels = apply(to_pixels, g)
    assert grid.pixel_area * pixels.sum() == pytest.approx((cell_areas * g).sum(), rel=1e-9)
    h = rng.uniform(0.0, 1.0, grid.npix)
    back = apply(to_latlon, h)
    assert (cell_areas.reshape(-1) @ back) == pytest.approx(grid.pixel_area * h.sum(), rel=1e-9)


def test_healpix_conservative_error_falls_with_nside():
    lat, lon = np.linspace(-90.0, 90.0, 91), np.arange(0.0, 360.0, 2.0)
    field = degree_two(*np.meshgrid(lat, lon, indexing="ij"))
    errors = []
    for nside in (4, 8, 16):
        grid = HealpixGrid(nside)
        pixels = apply(latlon_to_mesh(lat, lon, grid, "conservative"), field)
        errors.append(np.abs(pixels - degree_two(grid.lat, grid.lon)).max())
    assert errors[2] < errors[1] / 1.6 < errors[0] / 1.6**2
    assert errors[2] < 0.03 * np.abs(field).max()


def test_healpix_quarter_turn_symmetry_of_bilinear():
    """A field turned by 90 degrees of longitude regrids to the pixel values permuted by the
    quarter turn of the NESTED grid (base pixel f -> the next in its row, same (ix, iy))."""
    lat, lon = ONE_DEGREE
    field = degree_two(*np.meshgrid(lat, lon, indexing="ij"))
    turned = np.roll(field, 90, axis=1)  # turned(lon) = field(lon - 90)
    nside = 8
    W = latlon_to_mesh(lat, lon, HealpixGrid(nside))
    p = np.arange(12 * nside**2)
    face, inner = p // nside**2, p % nside**2
    image = ((face + 1) % 4 + 4 * (face // 4)) * nside**2 + inner
    np.testing.assert_allclose(apply(W, turned)[image], apply(W, field), rtol=0, atol=1e-12)


def test_healpix_ring_order_is_the_nested_rows_permuted():
    lat, lon = np.linspace(-90.0, 90.0, 46), np.arange(0.0, 360.0, 4.0)
    for method in ("bilinear", "nearest"):
        nested = latlon_to_mesh(lat, lon, HealpixGrid(4), method)
        ring = latlon_to_mesh(lat, lon, HealpixGrid(4, nest=False), method)
        assert (ring[healpix_nest_to_ring(4)] != nested).nnz == 0


def test_any_mesh_is_accepted_and_icosphere_stays_bit_identical():
    """An icosphere Mesh or IcosphereGrid is its level (the same matrix, bit for bit); a grid's
    bare mesh gives the same interpolation as the grid; conservative uses the grid's cell areas."""
    lat, lon = np.linspace(-90.0, 90.0, 19), np.arange(0.0, 360.0, 10.0)
    for method in ("bilinear", "nearest", "conservative"):
        by_level = latlon_to_mesh(lat, lon, 2, method)
        for same in (icosphere(2), IcosphereGrid(2)):
            assert (latlon_to_mesh(lat, lon, same, method) != by_level).nnz == 0
            assert (mesh_to_latlon(same, lat, lon, method) != mesh_to_latlon(2, lat, lon, method)).nnz == 0
    grid = HealpixGrid(4)
    for method in ("bilinear", "nearest"):
        assert (latlon_to_mesh(lat, lon, grid.mesh, method) != latlon_to_mesh(lat, lon, grid, method)).nnz == 0
    # a Mesh rebuilt from the same points: the same matrices (cached by fingerprint)
    rebuilt = Mesh.from_points(grid.points(), name="again")
    assert (mesh_to_latlon(rebuilt, lat, lon) != mesh_to_latlon(grid, lat, lon)).nnz == 0
    # a bare mesh's conservative weights are its lumped vertex areas, the grid's its exact pixel areas
    g = on_grid(lat, lon)
    integral = (grid_cell_areas(lat, lon) * g).sum()
    assert mesh_cell_areas(grid.mesh) @ apply(latlon_to_mesh(lat, lon, grid.mesh, "conservative"), g) == pytest.approx(
        integral, rel=1e-9
    )
    assert grid.pixel_area * apply(latlon_to_mesh(lat, lon, grid, "conservative"), g).sum() == pytest.approx(
        integral, rel=1e-9
    )
    # scattered points: any Mesh
    rng = np.random.default_rng(3)
    points = rng.normal(size=(300, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    scattered = Mesh.from_points(points, name="scattered")
    values = apply(latlon_to_mesh(lat, lon, scattered), on_grid(lat, lon))
    exact = harmonics(np.rad2deg(scattered.lat), np.rad2deg(scattered.lon))
    assert np.abs(values - exact).max() < 0.05 * np.abs(exact).max()
    for bad in ("5", 2.0, None, True, object()):
        with pytest.raises(ValueError, match="level"):
            latlon_to_mesh(lat, lon, bad)


def test_regrid_dataarray_to_healpix_and_back():
    xr = pytest.importorskip("xarray")
    lat, lon = np.linspace(90.0, -90.0, 37), np.arange(-180.0, 180.0, 5.0)
    field = on_grid(lat, lon)
    da = xr.DataArray(
        np.stack([field, 2 * field]),
        dims=("time", "lat", "lon"),
        coords={"time": [0, 1], "lat": lat, "lon": lon},
        name="T",
        attrs={"units": "K"},
    )
    grid = HealpixGrid(8)
    out = regrid_dataarray(da, grid, "conservative")
    assert out.dims == ("time", "vertex") and out.shape == (2, grid.npix)
    assert out.attrs["mesh_name"] == "healpix8n" and out.attrs["mesh_fingerprint"] == grid.mesh.fingerprint
    assert "mesh_level" not in out.attrs and out.attrs["units"] == "K"
    np.testing.assert_allclose(out["lat"].values, grid.lat, rtol=0, atol=1e-12)  # degrees, of the mesh's vertices
    np.testing.assert_allclose(out["lon"].values, grid.lon, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out.values[1], apply(latlon_to_mesh(lat, lon, grid, "conservative"), 2 * field))
    ds = regrid_dataarray(xr.Dataset({"T": da}), grid, "nearest")
    assert ds.attrs["mesh_name"] == "healpix8n" and ds["T"].shape == (2, grid.npix)
    back = mesh_dataarray_to_latlon(out, lat, lon, "conservative", mesh=grid)
    assert back.dims == ("time", "lat", "lon") and back.attrs["mesh_name"] == "healpix8n"
    np.testing.assert_array_equal(
        back.values[0].reshape(-1), apply(mesh_to_latlon(grid, lat, lon, "conservative"), out.values[0])
    )
    with pytest.raises(ValueError, match="mesh="):
        mesh_dataarray_to_latlon(out, lat, lon)  # 768 values: not an icosphere level
    with pytest.raises(ValueError, match="768 values"):
        mesh_dataarray_to_latlon(out, lat, lon, mesh=HealpixGrid(4))
    # an icosphere level given as mesh= is the same as found from V
    on_ico = regrid_dataarray(da, 2)
    assert on_ico.attrs["mesh_level"] == 2
    np.testing.assert_array_equal(
        mesh_dataarray_to_latlon(on_ico, lat, lon, mesh=2).values, mesh_dataarray_to_latlon(on_ico, lat, lon).values
    )
