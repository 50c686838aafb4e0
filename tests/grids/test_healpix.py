"""Tests of meshcnn.grids.healpix: the pixel centres against the analytic facts of HEALPix."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from meshcnn.geometry.coords import latlon_to_xyz
from meshcnn.grids import Grid, HealpixGrid
from meshcnn.grids.healpix import (
    check_nside,
    healpix_centres,
    healpix_children,
    healpix_nest_to_ring,
    healpix_npix,
    healpix_ring_centres,
    healpix_ring_to_nest,
)

NSIDES = (1, 2, 4, 8, 32)


def ring_sizes(nside: int) -> np.ndarray:
    """Pixels on rings 1 .. 4 nside - 1: 4i in the caps, 4 nside in the belt."""
    i = np.arange(1, 4 * nside)
    return 4 * np.minimum(np.minimum(i, 4 * nside - i), nside)


@pytest.mark.parametrize("bad", [0, 3, 6, 12, -2, 2.0, True, "4", 2**30])
def test_nside_must_be_a_power_of_two(bad):
    with pytest.raises(ValueError, match="power of 2"):
        check_nside(bad)
    with pytest.raises(ValueError, match="power of 2"):
        HealpixGrid(bad)


@pytest.mark.parametrize("nside", NSIDES)
def test_pixel_count_and_grid_protocol(nside):
    grid = HealpixGrid(nside)
    assert isinstance(grid, Grid)
    assert healpix_npix(nside) == grid.npix == 12 * nside**2
    assert grid.shape == (12 * nside**2,)
    points = grid.points()
    assert points.shape == (12 * nside**2, 3)
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1.0, atol=1e-15)
    areas = grid.cell_areas()
    assert areas.shape == grid.shape
    assert np.all(areas == 4 * np.pi / (12 * nside**2))
    assert areas.sum() == pytest.approx(4 * np.pi, rel=1e-14)
    assert grid.cell_weights.sum() == pytest.approx(1.0, rel=1e-14)
    assert np.all(grid.cell_weights == grid.cell_weights[0])
    assert len(np.unique(np.round(points, 12), axis=0)) == grid.npix  # distinct points


@pytest.mark.parametrize("nside", NSIDES)
def test_ring_latitudes_and_azimuths(nside):
    """RING order: ring i holds 4 min(i, 4N - i, N) pixels at z = 1 - i^2/(3N^2) (caps), 4/3 - 2i/(3N) (belt),
    equally spaced in phi, starting at half a spacing (caps, belt rings with i - N even) or at 0."""
    z, one_minus_abs_z, phi = healpix_ring_centres(nside)
    sizes = ring_sizes(nside)
    assert sizes.sum() == 12 * nside**2
    start = np.concatenate([[0], np.cumsum(sizes)])
    for i in range(1, 4 * nside):
        zs, ps = z[start[i - 1] : start[i]], phi[start[i - 1] : start[i]]
        if i < nside:
            expected = 1 - i**2 / (3 * nside**2)
        elif i > 3 * nside:
            expected = -1 + (4 * nside - i) ** 2 / (3 * nside**2)
        else:
            expected = 4 / 3 - 2 * i / (3 * nside)
        np.testing.assert_allclose(zs, expected, rtol=0, atol=1e-15)
        np.testing.assert_allclose(one_minus_abs_z[start[i - 1] : start[i]], 1 - abs(expected), rtol=1e-13, atol=1e-15)
        n = len(ps)
        offset = 0.0 if nside <= i <= 3 * nside and (i - nside) % 2 else 0.5
        np.testing.assert_allclose(ps, (np.arange(n) + offset) * 2 * np.pi / n, rtol=0, atol=1e-14)
    assert np.all((phi >= 0) & (phi < 2 * np.pi))


@pytest.mark.parametrize("nside", NSIDES)
def test_equal_area_zones(nside):
    """Equal areas, as HEALPix constructs them: the zone north of ring i's centres has area
    2 pi (1 - z_i) = (pixels on the rings above + half of ring i) * 4 pi / N_pix, in the caps and the belt."""
    z, _, _ = healpix_ring_centres(nside)
    sizes = ring_sizes(nside)
    above = np.concatenate([[0], np.cumsum(sizes)])[:-1]
    ring_z = z[above]
    pixel_area = 4 * np.pi / (12 * nside**2)
    np.testing.assert_allclose(2 * np.pi * (1 - ring_z), (above + sizes / 2) * pixel_area, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("nside", NSIDES)
def test_lat_lon_degrees_and_points_agree(nside):
    for nest in (True, False):
        grid = HealpixGrid(nside, nest=nest)
        lat, lon = grid.lat, grid.lon
        assert np.all(np.abs(lat) < 90) and np.all((lon > -180) & (lon <= 180))
        np.testing.assert_allclose(latlon_to_xyz(np.deg2rad(lat), np.deg2rad(lon)), grid.points(), atol=1e-15)
        z, _, phi = healpix_ring_centres(nside)
        ring_lat, ring_lon = healpix_centres(nside, nest=False)
        np.testing.assert_allclose(np.sin(ring_lat), z, atol=1e-15)
        np.testing.assert_allclose(np.mod(ring_lon, 2 * np.pi), phi, atol=1e-14)


@pytest.mark.parametrize("nside", NSIDES)
def test_nest_and_ring_are_one_point_set(nside):
    nest_to_ring = healpix_nest_to_ring(nside)
    assert np.array_equal(np.sort(nest_to_ring), np.arange(12 * nside**2))  # a permutation
    ring_to_nest = healpix_ring_to_nest(nside)
    assert np.array_equal(ring_to_nest[nest_to_ring], np.arange(12 * nside**2))
    nest_points = HealpixGrid(nside, nest=True).points()
    ring_points = HealpixGrid(nside, nest=False).points()
    assert np.array_equal(nest_points, ring_points[nest_to_ring])


def test_nested_base_pixels_and_first_pixels():
    """Known values: nside = 1 is the 12 base pixels (nest == ring); base pixel 0 is centred at
    lat = asin(2/3), lon = 45 degrees, 4 at the equator at lon 0; ring pixel 0 of any nside is
    the first of ring 1 at phi = pi/4, which is the nested pixel of base 0 with ix = iy = nside - 1; the first
    pixel of the last ring (4 pixels around the south pole) is base 8 with ix = iy = 0."""
    assert np.array_equal(healpix_nest_to_ring(1), np.arange(12))
    lat, lon = healpix_centres(1)
    np.testing.assert_allclose(np.rad2deg(lat[[0, 4, 8]]), np.rad2deg(np.arcsin([2 / 3, 0, -2 / 3])), atol=1e-13)
    np.testing.assert_allclose(np.rad2deg(lon[[0, 1, 4, 5, 8]]), [45, 135, 0, 90, 45], atol=1e-13)
    # nside = 2, base pixel 0: (ix, iy) = (1, 0) is nested 1, ring 2 at phi = 3 pi / 8 (ring index 4 + 1);
    # (0, 1) is nested 2, at phi = pi / 8 (ring index 4): ix grows eastwards, iy westwards along the ring
    assert healpix_nest_to_ring(2)[[0, 1, 2, 3]].tolist() == [13, 5, 4, 0]
    for nside in (2, 4, 8):
        assert healpix_nest_to_ring(nside)[nside**2 - 1] == 0
        assert healpix_nest_to_ring(nside)[8 * nside**2] == 12 * nside**2 - 4


@pytest.mark.parametrize("nside", (1, 2, 4, 16))
def test_children_are_inside_the_parent(nside):
    """Children 4p .. 4p+3 (at 2 nside) of nested pixel p: their centres are within the parent's size
    (sqrt of its area) of the parent's centre, and closer to it than to any other parent."""
    parent = HealpixGrid(nside).points()
    child = HealpixGrid(2 * nside).points()
    children = healpix_children(np.arange(len(parent)))
    assert children.shape == (len(parent), 4)
    assert np.array_equal(np.sort(children.reshape(-1)), np.arange(len(child)))
    size = np.sqrt(4 * np.pi / len(parent))
    angle = np.arccos(np.clip(np.einsum("pkc,pc->pk", child[children], parent), -1, 1))
    assert angle.max() < 0.75 * size
    # the 4 children sit around the parent: their mean direction is the parent's within a quarter of its size
    mean = child[children].mean(axis=1)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    assert np.arccos(np.clip(np.einsum("pc,pc->p", mean, parent), -1, 1)).max() < 0.25 * size


@pytest.mark.parametrize("nside", NSIDES)
def test_quarter_turn_about_z_maps_the_grid_to_itself(nside):
    """phi -> phi + pi/2 maps the point set to itself; in NESTED order exactly pixel p of base pixel f
    to the same (ix, iy) of the next base pixel in its row, (f + 1) mod 4 + 4 * (f // 4)."""
    points = HealpixGrid(nside).points()
    turned = np.stack([-points[:, 1], points[:, 0], points[:, 2]], axis=1)
    p = np.arange(12 * nside**2)
    face, inner = p // nside**2, p % nside**2
    image = ((face + 1) % 4 + 4 * (face // 4)) * nside**2 + inner
    np.testing.assert_allclose(points[image], turned, rtol=0, atol=1e-14)
    # RING order, the same point set without index arithmetic
    ring = HealpixGrid(nside, nest=False).points()
    dist, match = cKDTree(ring).query(np.stack([-ring[:, 1], ring[:, 0], ring[:, 2]], axis=1))
    assert dist.max() < 1e-13 and len(np.unique(match)) == len(ring)


@pytest.mark.parametrize("nside", NSIDES)
def test_north_south_mirror(nside):
    points = HealpixGrid(nside, nest=False).points()
    mirrored = points * np.array([1.0, 1.0, -1.0])
    dist, match = cKDTree(points).query(mirrored)
    assert dist.max() < 1e-13 and len(np.unique(match)) == len(points)


@pytest.mark.parametrize("nside", (1, 2, 16, 256))
@pytest.mark.parametrize("nest", (True, False))
def test_against_astropy_healpix(nside, nest):
    """Cross-check with astropy-healpix where it is installed (not a dependency of meshcnn)."""
    ahp = pytest.importorskip("astropy_healpix.healpy")
    theta, phi = ahp.pix2ang(nside, np.arange(12 * nside**2), nest=nest)
    lat, lon = healpix_centres(nside, nest=nest)
    np.testing.assert_allclose(lat, np.pi / 2 - theta, rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.angle(np.exp(1j * (lon - phi))), 0.0, atol=1e-14)
    assert np.array_equal(healpix_nest_to_ring(nside), ahp.nest2ring(nside, np.arange(12 * nside**2)))


@pytest.mark.parametrize("nest", (True, False))
def test_restriction_is_the_exact_mean_of_the_children(nest):
    fine, coarse = HealpixGrid(8, nest=nest), HealpixGrid(4, nest=nest)
    restriction = fine.restriction()
    assert restriction.shape == (coarse.npix, fine.npix)
    np.testing.assert_array_equal(np.asarray(restriction.sum(axis=1)).ravel(), 1.0)
    np.testing.assert_array_equal(np.diff(restriction.tocsc().indptr), 1)  # each fine pixel has one parent
    rng = np.random.default_rng(0)
    values = rng.standard_normal(fine.npix)
    coarse_values = restriction @ values
    assert (coarse.cell_areas() * coarse_values).sum() == pytest.approx((fine.cell_areas() * values).sum(), abs=1e-12)
    # each fine pixel's parent is the coarse pixel whose centre is nearest among those within its size
    parent = restriction.tocsc().indices
    angle = np.arccos(np.clip(np.einsum("pc,pc->p", fine.points(), coarse.points()[parent]), -1, 1))
    assert angle.max() < 0.75 * np.sqrt(coarse.pixel_area)
    if not nest:  # the same operator as NESTED, permuted
        nested = HealpixGrid(8).restriction()
        fine_perm, coarse_perm = healpix_ring_to_nest(8), healpix_ring_to_nest(4)
        assert (nested[coarse_perm][:, fine_perm] != restriction).nnz == 0
    with pytest.raises(ValueError, match="nside = 1"):
        HealpixGrid(1).restriction()


@pytest.mark.parametrize("nside", (1, 2, 8))
@pytest.mark.parametrize("nest", (True, False))
def test_mesh_of_the_pixel_centres(nside, nest):
    """The mesh is the Delaunay triangulation of the centres, in the grid's order, named after it;
    nside = 1 (12 points) is a valid closed mesh too. Euler: F = 2V - 4 for a closed triangulation."""
    grid = HealpixGrid(nside, nest=nest)
    mesh = grid.mesh
    assert mesh is grid.mesh  # built once per instance
    assert mesh.name == f"healpix{nside}{'n' if nest else 'r'}" and mesh.level is None and not mesh.is_icosphere
    assert mesh.num_vertices == grid.npix and mesh.num_faces == 2 * grid.npix - 4
    np.testing.assert_allclose(mesh.vertices, grid.points(), rtol=0, atol=1e-15)
    # the lumped vertex areas are close to the exact equal pixel areas (within 6 %)
    lumped = mesh.vertex_areas * (4 * np.pi / mesh.vertex_areas.sum())
    assert np.abs(lumped / grid.pixel_area - 1).max() < 0.06


@pytest.mark.parametrize("nest", (True, False))
def test_hierarchy_is_the_nested_quadtree(nest):
    grid = HealpixGrid(8, nest=nest)
    hierarchy = grid.hierarchy()
    assert [m.num_vertices for m in hierarchy] == [768, 192, 48, 12]
    assert [m.name for m in hierarchy] == [f"healpix{n}{'n' if nest else 'r'}" for n in (8, 4, 2, 1)]
    assert hierarchy[0] is grid.mesh and not hierarchy.nested
    for i, nside in enumerate((8, 4, 2)):
        fine, coarse = HealpixGrid(nside, nest), HealpixGrid(nside // 2, nest)
        assert (hierarchy.restrictions[i] != fine.restriction()).nnz == 0
        prolongation = hierarchy.prolongations[i]
        assert prolongation.shape == (fine.npix, coarse.npix)
        np.testing.assert_allclose(np.asarray(prolongation.sum(axis=1)).ravel(), 1.0, atol=1e-12)
        # barycentric interpolation of the coarse centres' z at the fine centres: close to z itself
        z_fine, z_coarse = fine.points()[:, 2], coarse.points()[:, 2]
        assert np.abs(prolongation @ z_coarse - z_fine).max() < 0.3 * np.sqrt(coarse.pixel_area)
    assert len(grid.hierarchy(min_nside=4)) == 2 and len(grid.hierarchy(min_nside=8)) == 1
    with pytest.raises(ValueError, match="above nside"):
        grid.hierarchy(min_nside=16)
    with pytest.raises(ValueError, match="power of 2"):
        grid.hierarchy(min_nside=3)
