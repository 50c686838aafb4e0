"""Orientation options of MeshConv: each against a dense reference, its exact symmetries, frame
invariance, gradients, compile, state dicts, and the hemisphere flip."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _helpers import make_layer

import meshcnn
from meshcnn import ORIENTATIONS, MeshConv, MeshConvTranspose, hemisphere_flip, icosphere
from meshcnn.geometry import icosahedral_rotations, vertex_permutation
from meshcnn.geometry.operators import tangent_gradient
from meshcnn.models import SphericalResNet, SphericalUNet
from meshcnn.nn import orientation_taps
from meshcnn.testing import assert_equivariant, equivariance_error, mesh_conv_reference, move_signal


def _layer(orientation: str, level: int = 2, cin: int = 3, cout: int = 4, **kwargs) -> MeshConv:
    return make_layer("conv", level, cin, cout, orientation=orientation, **kwargs)


def _mirror_permutation(level: int) -> np.ndarray:
    """``(lat, lon) -> (-lat, lon + 36 deg)``: a reflection that maps the icosphere onto itself."""
    c, s = np.cos(np.pi / 5), np.sin(np.pi / 5)
    return vertex_permutation(level, np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, -1.0]]))


def test_orientations_constant_and_bad_value():
    assert meshcnn.ORIENTATIONS == ("fixed", "poleward", "isotropic", "invariant")
    for bad in ("north", "Fixed", None, 3):
        with pytest.raises(ValueError, match="'fixed', 'poleward', 'isotropic', 'invariant'"):
            MeshConv(2, 2, 1, orientation=bad)
    for make in (
        lambda: SphericalResNet(2, 2, level=2, depth=1, orientation="upright"),
        lambda: SphericalUNet(2, 2, max_level=2, orientation="upright"),
    ):
        with pytest.raises(ValueError, match="orientation must be one of"):
            make()
    with pytest.raises(ValueError, match="orientation must be one of"):
        MeshConvTranspose(2, 2, 1, orientation="rotated")


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("stride", [1, 2])
def test_meshconv_equals_dense_reference(orientation, stride):
    level = 3
    layer = _layer(orientation, level, stride=stride)
    assert layer.weight.shape == (4, 3, 2 if orientation == "isotropic" else 4)
    x = torch.randn(2, 3, icosphere(level).num_vertices, dtype=torch.float64)
    num_out = icosphere(level - stride + 1).num_vertices
    taps = orientation_taps(icosphere(level), num_out, orientation)
    ref = mesh_conv_reference(x, taps, layer.weight, layer.bias, orientation).detach().numpy()
    y = layer(x).detach().numpy()
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_transpose_equals_dense_reference(orientation):
    torch.manual_seed(0)
    layer = MeshConvTranspose(3, 4, 2, orientation=orientation).double()
    mesh = icosphere(2)
    x = torch.randn(2, 3, icosphere(1).num_vertices, dtype=torch.float64)
    taps = [t @ mesh.upsample for t in orientation_taps(mesh, mesh.num_vertices, orientation)]
    ref = mesh_conv_reference(x, taps, layer.weight, layer.bias, orientation).detach().numpy()
    np.testing.assert_allclose(layer(x).detach().numpy(), ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_fixed_is_the_default_and_numerically_unchanged():
    """``"fixed"`` is the four taps of the Mesh ``[I, L, D_ew, D_ns]`` (no re-derivation)."""
    level = 2
    torch.manual_seed(0)
    default, fixed = MeshConv(3, 4, level).double(), MeshConv(3, 4, level, orientation="fixed").double()
    fixed.load_state_dict(default.state_dict())
    m = icosphere(level)
    x = torch.randn(2, 3, m.num_vertices, dtype=torch.float64)
    taps = [sp.eye(m.num_vertices, format="csr"), m.laplacian, m.grad_ew, m.grad_ns]
    ref = mesh_conv_reference(x, taps, default.weight, default.bias).detach().numpy()
    assert default.orientation == "fixed"
    assert torch.equal(default(x), fixed(x))
    np.testing.assert_allclose(default(x).detach().numpy(), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize(
    "orientation,exact", [("fixed", False), ("poleward", False), ("isotropic", True), ("invariant", True)]
)
def test_icosahedral_rotations(orientation, exact):
    """isotropic and invariant commute with all 60 icosahedral rotations (vertex permutations) to
    rounding; fixed and poleward only with the four turns about the polar axis."""
    level = 2
    layer = _layer(orientation, level)
    x = torch.randn(2, 3, icosphere(level).num_vertices, dtype=torch.float64)
    layer.requires_grad_(False)
    errors, polar = [], []
    for rotation in icosahedral_rotations()[1:]:
        err = equivariance_error(layer, x, rotation)
        (polar if np.isclose(rotation[2, 2], 1.0) else errors).append(err)
    assert max(polar) < 1e-13
    if exact:
        assert max(errors) < 1e-13
    else:
        assert min(errors) > 1e-3


@pytest.mark.parametrize(
    "orientation,exact", [("fixed", False), ("poleward", True), ("isotropic", True), ("invariant", False)]
)
def test_equatorial_mirror(orientation, exact):
    """poleward (and isotropic) commute with the mirror (lat, lon) -> (-lat, lon + 36 deg); fixed does not
    (its north-south tap flips sign), nor does invariant (|z| is chiral)."""
    level = 3
    layer = _layer(orientation, level)
    perm = _mirror_permutation(level)
    x = torch.randn(2, 3, icosphere(level).num_vertices, dtype=torch.float64)
    err = equivariance_error(layer, x, perm)
    assert (err < 1e-13) if exact else (err > 1e-3)


def test_poleward_tap_is_zero_on_the_equator_and_flips_sign():
    m = icosphere(3)
    equator = np.abs(m.vertices[:, 2]) < 1e-12
    assert equator.sum() > 0
    assert m.grad_poleward[np.flatnonzero(equator)].nnz == 0
    north, south = m.vertices[:, 2] > 1e-12, m.vertices[:, 2] < -1e-12
    z2 = m.vertices[:, 2] ** 2  # grows towards both poles
    inner = np.abs(m.lat) < np.deg2rad(70)
    assert np.all((m.grad_poleward @ z2)[(north | south) & inner] > 0)
    assert np.all((m.grad_ns @ z2)[south & inner] < 0)


@pytest.mark.parametrize("level", [1, 3])
def test_invariant_does_not_depend_on_the_tangent_frames(level):
    """Turning the tangent frame of every vertex (poles included) by an arbitrary angle leaves the
    invariant layer's output unchanged to rounding, for stride 1, stride 2 and the transpose."""
    m = icosphere(level)
    angle = np.random.default_rng(level).uniform(0, 2 * np.pi, m.num_vertices)
    turned = tangent_gradient(m.vertices, m.faces, scale=m.mean_edge_length, frame_angle=angle)
    assert not np.allclose(turned[0].toarray(), m.grad_tangent[0].toarray())
    for stride in (1, 2):
        layer = _layer("invariant", level, stride=stride)
        x = torch.randn(2, 3, m.num_vertices, dtype=torch.float64)
        y = layer(x)
        num_out = icosphere(level - stride + 1).num_vertices
        laplacian = m.laplacian[:num_out]
        layer.op = layer._operator_buffers([laplacian] + [t[:num_out] for t in turned]).double()
        torch.testing.assert_close(layer(x), y, rtol=0, atol=1e-12)
    up = MeshConvTranspose(3, 4, level, orientation="invariant").double()
    x = torch.randn(2, 3, icosphere(level - 1).num_vertices, dtype=torch.float64)
    y = up(x)
    identity = sp.eye(m.num_vertices, format="csr")
    up.op = up._operator_buffers([t @ m.upsample for t in (identity, m.laplacian, *turned)]).double()
    torch.testing.assert_close(up(x), y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("kind", ["conv", "stride2", "transpose"])
def test_gradcheck(orientation, kind):
    torch.manual_seed(0)
    if kind == "transpose":
        layer, level_in = MeshConvTranspose(2, 3, 2, orientation=orientation).double(), 1
    else:
        layer, level_in = MeshConv(2, 3, 1, stride=2 if kind == "stride2" else 1, orientation=orientation).double(), 1
    x = torch.randn(2, 2, icosphere(level_in).num_vertices, dtype=torch.float64, requires_grad=True)
    params = tuple(layer.parameters())

    def fn(x, *p):
        return torch.func.functional_call(layer, dict(zip([n for n, _ in layer.named_parameters()], p)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_float32_matches_float64(orientation):
    layer = _layer(orientation, 3)
    x = torch.randn(2, 3, icosphere(3).num_vertices, dtype=torch.float64)
    y64 = layer(x)
    y32 = layer.float()(x.float())
    torch.testing.assert_close(y32.double(), y64, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("orientation", ["poleward", "isotropic", "invariant"])
def test_torch_compile_fullgraph(orientation):
    """Every option compiles in one graph (fullgraph=True raises on a graph break) through the custom operators."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        MeshConv(3, 4, 2, orientation=orientation), torch.nn.ReLU(), MeshConvTranspose(4, 2, 3, orientation=orientation)
    )
    model[2] = MeshConv(4, 2, 2, stride=2, orientation=orientation)
    x = torch.randn(2, 3, icosphere(2).num_vertices, requires_grad=True)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    y, y_ref = compiled(x), model(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    (grad,) = torch.autograd.grad(y.sum(), x)
    (grad_ref,) = torch.autograd.grad(y_ref.sum(), x)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_state_dict_round_trip_and_mismatch(orientation, tmp_path):
    layer = _layer(orientation, 2)
    path = tmp_path / "layer.pt"
    torch.save(layer.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert state["mesh_signature"].tolist() == [2, ORIENTATIONS.index(orientation), 0]
    other = MeshConv(3, 4, 2, orientation=orientation).double()
    other.load_state_dict(state)
    x = torch.randn(1, 3, icosphere(2).num_vertices, dtype=torch.float64)
    assert torch.equal(other(x), layer(x))
    wrong = "fixed" if orientation == "poleward" else "poleward"
    if layer.weight.shape[-1] == 4 and orientation != wrong:
        with pytest.raises(ValueError, match=f"orientation '{orientation}'.*orientation '{wrong}'"):
            MeshConv(3, 4, 2, orientation=wrong).double().load_state_dict(state)
    with pytest.raises(ValueError, match="level 2 .* level 3"):
        MeshConv(3, 4, 3, orientation=orientation).double().load_state_dict(state)


def test_old_state_dicts_without_level_and_orientation_still_load():
    model = SphericalResNet(2, 3, level=2, width=4, depth=1)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("mesh_signature")}
    assert len(state) < len(model.state_dict())
    fresh = SphericalResNet(2, 3, level=2, width=4, depth=1)
    fresh.load_state_dict(state)  # strict
    for k, v in state.items():
        assert torch.equal(fresh.state_dict()[k], v)


def test_resnet_of_another_level_is_refused():
    big = SphericalResNet(2, 3, level=4, width=4, depth=1)
    with pytest.raises(ValueError, match="level 4 .* level 2"):
        SphericalResNet(2, 3, level=2, width=4, depth=1).load_state_dict(big.state_dict())


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_models_pass_the_orientation_to_every_layer(orientation):
    unet = SphericalUNet(2, 3, max_level=2, min_level=0, width=4, orientation=orientation)
    resnet = SphericalResNet(2, 3, level=2, width=4, depth=2, orientation=orientation)
    for model in (unet, resnet):
        convs = [m for m in model.modules() if isinstance(m, (MeshConv, MeshConvTranspose))]
        assert convs and all(m.orientation == orientation for m in convs)
        x = torch.randn(2, 2, icosphere(2).num_vertices)
        model(x).sum().backward()


@pytest.mark.parametrize("orientation", ["isotropic", "invariant"])
def test_resnet_is_invariant_to_icosahedral_rotations(orientation):
    torch.manual_seed(0)
    model = SphericalResNet(2, 5, level=3, width=4, depth=2, orientation=orientation).double().eval()
    x = torch.randn(3, 2, icosphere(3).num_vertices, dtype=torch.float64)
    for rotation in icosahedral_rotations()[1::7]:
        assert_equivariant(model, x, rotation, tol=1e-12, invariant=True)


def test_hemisphere_flip_makes_mirrored_vector_fields_mirrored_scalars():
    """A field and its mirror image across the equator as a vector field (northward component
    negated) become, after the flip, a field and its plain mirror image; a poleward MeshConv then
    gives mirrored responses."""
    level = 3
    m = icosphere(level)
    perm = _mirror_permutation(level)
    rng = np.random.default_rng(0)
    f = torch.from_numpy(rng.standard_normal((2, 3, m.num_vertices)))  # channels: scalar, eastward, northward
    mirrored = move_signal(f, perm)
    mirrored[:, 2] = -mirrored[:, 2]  # a vector field's northward component changes sign under the mirror
    flipped, flipped_mirror = hemisphere_flip(f, level, [2]), hemisphere_flip(mirrored, level, [2])
    torch.testing.assert_close(flipped_mirror, move_signal(flipped, perm), rtol=0, atol=0)
    torch.testing.assert_close(flipped[:, :2], f[:, :2], rtol=0, atol=0)
    sign = np.sign(np.where(np.abs(m.vertices[:, 2]) < 1e-12, 0, m.vertices[:, 2]))
    np.testing.assert_array_equal(flipped[:, 2].numpy(), f[:, 2].numpy() * sign)
    layer = _layer("poleward", level)
    torch.testing.assert_close(layer(flipped_mirror), move_signal(layer(flipped), perm), rtol=0, atol=1e-12)


def test_hemisphere_flip_bad_input():
    with pytest.raises(ValueError, match="level 2"):
        hemisphere_flip(torch.zeros(3, 10), 2, [0])
    with pytest.raises(ValueError, match="out of range"):
        hemisphere_flip(torch.zeros(3, icosphere(2).num_vertices), 2, [5])
