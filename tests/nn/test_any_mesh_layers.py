"""Layers and models on any sphere mesh: Mesh.from_points, HEALPix, mixed hierarchies."""

import numpy as np
import pytest
import torch

from meshcnn.geometry import Mesh, MeshHierarchy, icosphere, rotation_about_z, vertex_permutation
from meshcnn.grids import HealpixGrid
from meshcnn.models import SphericalResNet, SphericalUNet
from meshcnn.nn import ORIENTATIONS, MeshConv, MeshConvTranspose, MeshPool
from meshcnn.testing import equivariance_error, layer_taps, reference_output


def random_points(n, seed=0):
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def scattered():
    """Random points over an icosphere: no nesting, no symmetry."""
    return MeshHierarchy([Mesh.from_points(random_points(700), name="scattered"), icosphere(2)])


@pytest.fixture(scope="module")
def healpix():
    return HealpixGrid(8).hierarchy(min_nside=2)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("kind", ["conv", "stride2", "transpose"])
def test_layers_on_any_mesh_equal_the_dense_formula(scattered, orientation, kind):
    fine, coarse = scattered[0], scattered[1]
    layer = (
        {
            "conv": lambda: MeshConv(3, 5, mesh=fine, orientation=orientation),
            "stride2": lambda: MeshConv(3, 5, mesh=scattered, stride=2, orientation=orientation),
            "transpose": lambda: MeshConvTranspose(3, 5, mesh=scattered, orientation=orientation),
        }[kind]()
    ).double()
    v_in = coarse.num_vertices if kind == "transpose" else fine.num_vertices
    v_out = coarse.num_vertices if kind == "stride2" else fine.num_vertices
    x = torch.randn(2, 3, v_in, dtype=torch.float64)
    y = layer(x)
    assert y.shape == (2, 5, v_out)
    torch.testing.assert_close(y, reference_output(layer, x), rtol=1e-10, atol=1e-10)
    if kind == "stride2":  # the restriction is folded into every tap, the identity's included
        r = scattered.restrictions[0]
        assert abs(layer_taps(layer)[0] - r).max() == 0


def test_gradcheck_on_a_hierarchy(scattered):
    for layer in (
        MeshConv(2, 2, mesh=scattered, stride=2, orientation="invariant"),
        MeshConvTranspose(2, 2, mesh=scattered),
        MeshPool(mesh=scattered, mode="mean"),
    ):
        layer = layer.double()
        v_in = scattered[1].num_vertices if isinstance(layer, MeshConvTranspose) else scattered[0].num_vertices
        x = torch.randn(1, 2, v_in, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-6)


def test_icosphere_given_as_a_mesh_or_a_hierarchy_is_bit_identical_to_the_level():
    torch.manual_seed(1)
    x = torch.randn(2, 3, icosphere(3).num_vertices)
    pairs = [
        (MeshConv(3, 4, 3), MeshConv(3, 4, mesh=icosphere(3))),
        (MeshConv(3, 4, 3, stride=2), MeshConv(3, 4, mesh=MeshHierarchy.icosphere(3, 2), stride=2)),
        (MeshConv(3, 4, 3, orientation="invariant"), MeshConv(3, 4, mesh=icosphere(3), orientation="invariant")),
    ]
    for by_level, by_mesh in pairs:
        by_mesh.load_state_dict(by_level.state_dict())
        assert torch.equal(by_level(x), by_mesh(x))
    up_level, up_mesh = MeshConvTranspose(3, 4, 3), MeshConvTranspose(3, 4, mesh=MeshHierarchy.icosphere(3, 2))
    up_mesh.load_state_dict(up_level.state_dict())
    coarse = torch.randn(2, 3, icosphere(2).num_vertices)
    assert torch.equal(up_level(coarse), up_mesh(coarse))
    assert torch.equal(MeshPool(3, "mean")(x), MeshPool(mesh=MeshHierarchy.icosphere(3, 2), mode="mean")(x))
    a, b = SphericalUNet(3, 2, 3, 1, width=4), SphericalUNet(3, 2, hierarchy=MeshHierarchy.icosphere(3, 1), width=4)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.eval()(x), b.eval()(x))


def test_healpix_pooling_is_the_exact_mean_of_the_four_children(healpix):
    x = torch.randn(2, 3, healpix[0].num_vertices, dtype=torch.float64)
    want = x.reshape(2, 3, -1, 4).mean(-1)  # nested order: children of p are 4p..4p+3
    torch.testing.assert_close(MeshPool(mesh=healpix, mode="mean").double()(x), want, rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(MeshPool(mesh=healpix, mode="max")(x), x.reshape(2, 3, -1, 4).amax(-1))
    with pytest.raises(ValueError, match="nested"):
        MeshPool(mesh=healpix, mode="drop")


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_models_on_healpix_are_exactly_equivariant_to_quarter_turns(healpix, orientation):
    perm = vertex_permutation(healpix[0], rotation_about_z(np.pi / 2))
    torch.manual_seed(2)
    x = torch.randn(2, 2, healpix[0].num_vertices, dtype=torch.float64)
    unet = SphericalUNet(2, 3, hierarchy=healpix, width=4, orientation=orientation).double().eval()
    resnet = SphericalResNet(2, 5, hierarchy=healpix, width=4, depth=2, orientation=orientation).double().eval()
    assert equivariance_error(unet, x, perm) < 1e-13
    assert equivariance_error(resnet, x, perm, invariant=True) < 1e-13


def test_without_the_symmetry_average_the_healpix_operators_break_the_symmetry():
    """The test above can fail: the plain Delaunay mesh of the same points is not equivariant."""
    plain = Mesh.from_points(HealpixGrid(8).points())
    perm = vertex_permutation(plain, rotation_about_z(np.pi / 2))
    conv = MeshConv(2, 3, mesh=plain, orientation="invariant").double()
    assert equivariance_error(conv, torch.randn(1, 2, plain.num_vertices, dtype=torch.float64), perm) > 1e-6


def test_state_dict_has_no_mesh_and_refuses_another_mesh(scattered, healpix, tmp_path):
    layer = MeshConv(3, 4, mesh=scattered, stride=2)
    state = layer.state_dict()
    assert set(state) == {"weight", "bias", "mesh_signature"}
    assert state["mesh_signature"].tolist() == [-1, 0, int(scattered.fingerprint[:15], 16)]
    torch.save(state, tmp_path / "w.pt")
    same = MeshConv(3, 4, mesh=MeshHierarchy([scattered[0], scattered[1]]), stride=2)
    same.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    torch.testing.assert_close(same.weight, layer.weight)
    other = MeshConv(3, 4, mesh=healpix[:2], stride=2)
    with pytest.raises(ValueError, match="fingerprint"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="level 3"):
        MeshConv(3, 4, 3).load_state_dict(MeshConv(3, 4, mesh=scattered[0]).state_dict())
    unet = SphericalUNet(2, 2, hierarchy=healpix, width=4)
    with pytest.raises(ValueError, match="fingerprint"):
        SphericalUNet(2, 2, hierarchy=HealpixGrid(8, nest=False).hierarchy(min_nside=2), width=4).load_state_dict(
            unet.state_dict()
        )


def test_bad_meshes_are_refused(scattered):
    fine = scattered[0]
    with pytest.raises(ValueError, match="MeshHierarchy"):
        MeshConv(2, 2, mesh=fine, stride=2)
    with pytest.raises(ValueError, match="MeshHierarchy"):
        MeshPool(mesh=fine)
    with pytest.raises(ValueError, match="exactly one"):
        MeshConv(2, 2, 3, mesh=fine)
    with pytest.raises(ValueError, match=r"scattered \(V=700\), which has V=700 vertices, but got V=642"):
        MeshConv(2, 2, mesh=fine)(torch.randn(1, 2, 642))
    with pytest.raises(ValueError, match="not both"):
        SphericalUNet(2, 2, max_level=3, hierarchy=scattered)
    with pytest.raises(ValueError, match="at least two"):
        SphericalUNet(2, 2, hierarchy=scattered[:1])
    with pytest.raises(ValueError, match="depth"):
        SphericalResNet(2, 2, hierarchy=scattered, depth=2)
