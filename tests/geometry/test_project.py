"""Spherical projection of meshes: analytic answers, rotations, engines, bad input."""

import numpy as np
import pytest
import trimesh

import meshcnn.geometry.project as project
from meshcnn.geometry import icosahedral_rotations, icosphere, project_mesh, random_rotation, vertex_permutation
from meshcnn.geometry.project import (
    MISS_DISTANCE,
    check_mesh,
    latlon_directions,
    latlon_shape,
    project_directions,
    project_latlon,
    ray_engine,
)


def _shape() -> trimesh.Trimesh:
    """An asymmetric assembly: a box beside a torus, so rotations change the projection."""
    box = trimesh.creation.box(extents=(1.0, 0.5, 0.3))
    box.apply_translation((0.3, 0.1, 0.4))
    return trimesh.util.concatenate([box, trimesh.creation.torus(1.0, 0.3, major_sections=24, minor_sections=10)])


@pytest.mark.parametrize("radius", [0.3, 0.8])
def test_centred_sphere_gives_constant_distance_and_unit_cos(radius):
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    f = project_mesh(sphere, 3, normalize=False)
    assert f.shape == (6, icosphere(3).num_vertices) and f.dtype == np.float32
    # faces sag inside the circumscribed sphere by at most r (1 - cos(edge / 2)) ~ 1e-3 r
    np.testing.assert_allclose(f[0], 1.0 - radius, atol=1.5e-3 * radius + 1e-6)
    assert f[0].std() < 1e-3
    # the normal of the face hit is within the angle the face subtends (< its longest edge) of the ray
    max_angle = sphere.edges_unique_length.max() / radius
    assert f[1].min() > np.cos(max_angle) and f[2].max() < np.sin(max_angle)
    np.testing.assert_allclose(np.hypot(f[1], f[2]), 1.0, atol=1e-5)  # sin^2 + cos^2 = 1 on hits
    # a sphere is its own convex hull (rays through an edge may report either face's normal)
    np.testing.assert_allclose(f[3], f[0], atol=1e-6)
    assert f[4].min() > np.cos(max_angle) and f[5].max() < np.sin(max_angle)


def test_normalization_centres_and_scales_to_the_unit_ball():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=3.0)
    sphere.apply_translation((5.0, -2.0, 1.0))
    f = project_mesh(sphere, 2)
    np.testing.assert_allclose(f[0], 0.0, atol=2e-3)
    assert f[1].min() > np.cos(sphere.edges_unique_length.max() / 3.0)


def test_misses_give_the_documented_value_and_the_hull_fills_them():
    torus = trimesh.creation.torus(1.0, 0.2, major_sections=32, minor_sections=16)
    f = project_mesh(torus, 3)
    assert np.isfinite(f).all()
    north, south = 0, 11  # icosphere vertex 0 is the north pole, 11 the south pole
    for pole in (north, south):  # rays down the axis go through the hole
        np.testing.assert_array_equal(f[:3, pole], [MISS_DISTANCE, 0.0, 0.0])
        # the hull's flat cap is at |z| = 0.2 after scaling by 1 / (1 + 0.2)
        np.testing.assert_allclose(f[3:, pole], [1 - 0.2 / 1.2, 1.0, 0.0], atol=1e-6)
    hits = f[0] != MISS_DISTANCE
    assert 0 < hits.sum() < f.shape[1]


def test_icosahedral_rotation_permutes_the_projection():
    mesh = _shape()
    f = project_mesh(mesh, 3)
    for R in icosahedral_rotations()[[5, 17, 42]]:
        g = project_mesh(mesh, 3, rotation=R)
        rotated = np.empty_like(f)
        rotated[:, vertex_permutation(3, R)] = f  # (R f)(v) = f(R^-1 v)
        np.testing.assert_allclose(g, rotated, atol=1e-5)
        assert np.abs(g - f).max() > 0.1  # the rotation does change the signal


def test_any_rotation_equals_casting_along_rotated_directions():
    mesh = _shape()
    R = random_rotation(np.random.default_rng(3))
    directions = icosphere(2).vertices
    rotated = project_directions(mesh, directions, rotation=R)
    np.testing.assert_allclose(rotated, project_directions(mesh, directions @ R), atol=1e-5)
    # and rotating the shape by hand (about its centroid) gives the same as rotation=R
    turned = mesh.copy()
    turned.apply_translation(-mesh.centroid)
    turned.vertices = turned.vertices @ R.T
    np.testing.assert_allclose(project_mesh(turned, 2), project_mesh(mesh, 2, R), atol=1e-5)


def test_engines_agree():
    mesh = _shape()
    np.testing.assert_allclose(
        project_mesh(mesh, 2, engine="embree"), project_mesh(mesh, 2, engine="triangle"), atol=1e-5
    )


def test_engine_choice(monkeypatch):
    assert ray_engine() == "embree"  # embreex is installed here
    monkeypatch.setenv("MESHCNN_RAY_ENGINE", "triangle")
    assert ray_engine() == "triangle"
    with pytest.raises(ValueError, match="ray engine"):
        ray_engine("optix")


def test_latlon_grid():
    assert latlon_shape(3) == (18, 36) and latlon_shape(4) == (36, 72)
    d = latlon_directions(4, 8)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0)
    np.testing.assert_allclose(np.arcsin(d[:, 0, 2]), np.pi / 2 - (np.arange(4) + 0.5) * np.pi / 4)
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    f = project_latlon(sphere, 6, 12, normalize=False)
    assert f.shape == (6, 6, 12)
    np.testing.assert_allclose(f[0], 0.5, atol=1e-3)


def test_bad_meshes_are_named():
    mesh = _shape()
    mesh.metadata["file_path"] = "chair_0001.off"
    nan = mesh.copy()
    nan.vertices[3] = np.nan
    nan.metadata["file_path"] = "chair_0001.off"
    with pytest.raises(ValueError, match="chair_0001.off.*NaN"):
        project_mesh(nan, 1)
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2]], process=False)
    with pytest.raises(ValueError, match="zero volume"):
        check_mesh(flat, "flat.off")
    with pytest.raises(ValueError, match="unit ball"):
        project_mesh(trimesh.creation.box(extents=(3, 3, 3)), 1, normalize=False)
    with pytest.raises(ValueError, match="rotation"):
        project_mesh(mesh, 1, rotation=np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="level"):
        project_mesh(mesh, 12)


def test_many_live_projectors_share_one_embree_device():
    # trimesh's embree wrapper makes one Embree device per scene; a few hundred live ones crashed the process
    tetra = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    keep = [project.ShapeProjector(tetra, engine="embree") for _ in range(700)]
    expected = keep[0].icosphere(0)
    assert all(np.array_equal(p.icosphere(0), expected) for p in keep)  # every scene built and alive
    assert project._embree_device() is project._embree_device()
