"""MeshConv, MeshConvTranspose and MeshPool: the formula, gradients, symmetry, bad input."""

import copy

import numpy as np
import pytest
import torch
from _helpers import make_layer

from meshcnn import MeshConv, MeshConvTranspose, MeshPool, icosphere
from meshcnn.geometry import icosahedral_rotations, vertex_permutation
from meshcnn.testing import reference_output


@pytest.mark.parametrize("level", [0, 1, 3, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_meshconv_equals_formula(level, bias):
    conv = make_layer("conv", level, 3, 5, bias=bias)
    assert conv.weight.shape == (5, 3, 4)
    assert (conv.bias is None) != bias or conv.bias.shape == (5,)
    x = torch.randn(2, 3, icosphere(level).num_vertices, dtype=torch.float64)
    y = conv(x)
    ref = reference_output(conv, x).detach().numpy()
    assert y.shape == (2, 5, icosphere(level).num_vertices) and y.dtype == torch.float64
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=0, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("level", [1, 3])
def test_stride_two_is_formula_at_coarse_vertices(level):
    conv = make_layer("stride2", level, 2, 4)
    x = torch.randn(3, 2, icosphere(level).num_vertices, dtype=torch.float64)
    y = conv(x).detach().numpy()
    v_out = icosphere(level - 1).num_vertices
    ref = reference_output(conv, x).detach().numpy()
    assert y.shape == (3, 4, v_out)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("level", [1, 3])
def test_transpose_is_upsample_then_formula(level):
    conv = make_layer("transpose", level, 2, 4)
    m, coarse = icosphere(level), icosphere(level - 1)
    x = torch.randn(3, 2, coarse.num_vertices, dtype=torch.float64)
    y = conv(x).detach().numpy()
    ref = reference_output(conv, x).detach().numpy()
    assert y.shape == (3, 4, m.num_vertices)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_float32_matches_float64():
    conv = make_layer("conv", 3, 4, 4)
    x = torch.randn(2, 4, icosphere(3).num_vertices, dtype=torch.float64)
    y64 = conv(x)
    y32 = conv.float()(x.float())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize(
    "make",
    [
        lambda l: MeshConv(2, 3, l),
        lambda l: MeshConv(2, 3, l, stride=2),
        lambda l: MeshConvTranspose(2, 3, l),
        lambda l: MeshPool(l, "mean"),
        lambda l: MeshPool(l, "max"),
        lambda l: MeshPool(l, "drop"),
    ],
    ids=["conv", "conv-stride2", "transpose", "pool-mean", "pool-max", "pool-drop"],
)
def test_gradcheck(level, make):
    torch.manual_seed(level)
    layer = make(level).double()
    in_level = level - 1 if isinstance(layer, MeshConvTranspose) else level
    x = torch.randn(1, 2, icosphere(in_level).num_vertices, dtype=torch.float64, requires_grad=True)
    params = tuple(p for p in layer.parameters())
    if params:

        def fn(x, *ps):
            return torch.func.functional_call(layer, dict(zip([n for n, _ in layer.named_parameters()], ps)), (x,))

    else:
        fn = layer
    # level 1 checks every Jacobian entry; level 2 a random projection of it (gradcheck's fast mode)
    assert torch.autograd.gradcheck(fn, (x, *params), fast_mode=level > 1)


@pytest.mark.parametrize("level", [1, 3])
def test_pooling_values(level):
    m, v_out = icosphere(level), icosphere(level - 1).num_vertices
    x = torch.randn(2, 3, m.num_vertices, dtype=torch.float64)
    nb = m.neighbors
    ring = [np.r_[i, nb[i][nb[i] >= 0]] for i in range(v_out)]
    mean = torch.stack([x[..., r].mean(-1) for r in ring], -1)
    amax = torch.stack([x[..., r].amax(-1) for r in ring], -1)
    torch.testing.assert_close(MeshPool(level, "mean").double()(x), mean, rtol=0, atol=1e-14)
    torch.testing.assert_close(MeshPool(level, "max")(x), amax, rtol=0, atol=0)
    torch.testing.assert_close(MeshPool(level, "drop")(x), x[..., :v_out], rtol=0, atol=0)


def test_state_dict_holds_only_parameters_and_round_trips(tmp_path):
    """No operator in the state_dict: the parameters, and the level and orientation (a signature tensor)."""
    conv = MeshConv(3, 4, 2)
    assert set(conv.state_dict()) == {"weight", "bias", "mesh_signature"}
    assert all(isinstance(v, torch.Tensor) for v in conv.state_dict().values())  # tensors only
    assert set(MeshConvTranspose(3, 4, 2, bias=False).state_dict()) == {"weight", "mesh_signature"}
    assert MeshPool(2).state_dict() == {}
    torch.save(conv.state_dict(), tmp_path / "w.pt")
    fresh = MeshConv(3, 4, 2)
    fresh.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    x = torch.randn(2, 3, icosphere(2).num_vertices)
    assert torch.equal(conv(x), fresh(x))


def test_double_and_deepcopy_move_operators():
    conv = MeshConv(2, 2, 2)
    copied = copy.deepcopy(conv).double()
    assert all(b.dtype in (torch.float64, torch.int64, torch.int32) for b in copied.buffers())
    x = torch.randn(1, 2, icosphere(2).num_vertices, dtype=torch.float64)
    torch.testing.assert_close(copied(x), conv.double()(x), rtol=0, atol=0)


@pytest.mark.parametrize("level", [2, 3])
def test_laplacian_only_conv_commutes_with_icosahedral_rotations(level):
    conv = make_layer("conv", level, 3, 4)
    x = torch.randn(2, 3, icosphere(level).num_vertices, dtype=torch.float64)
    perms = [torch.from_numpy(vertex_permutation(level, r)) for r in icosahedral_rotations()]
    errors_full, errors_iso = [], []
    for perm in perms:
        errors_full.append((conv(x[..., perm]) - conv(x)[..., perm]).abs().max().item())
    with torch.no_grad():
        conv.weight[..., 2:] = 0  # isotropic: identity + Laplacian only
    scale = conv(x).abs().max().item()
    for perm in perms:
        errors_iso.append((conv(x[..., perm]) - conv(x)[..., perm]).abs().max().item())
    assert max(errors_iso) < 1e-12 * scale
    # the oriented taps see the poles: not equivariant to rotations that move them
    assert max(errors_full) > 1e-2 * scale


def test_bad_input_messages():
    conv = MeshConv(3, 4, 3)
    with pytest.raises(
        ValueError, match=r"level 3, which has V=642 vertices, but got V=162 \(that is the vertex count of level 2\)"
    ):
        conv(torch.randn(1, 3, 162))
    with pytest.raises(ValueError, match=r"V=642 vertices, but got V=100 \(no icosphere level has that many\)"):
        conv(torch.randn(1, 3, 100))
    with pytest.raises(ValueError, match="expected 3 input channels, got 2"):
        conv(torch.randn(1, 2, 642))
    with pytest.raises(ValueError, match="floating-point input, got dtype torch.int64"):
        conv(torch.ones(1, 3, 642, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(batch, channels, vertices\)"):
        conv(torch.randn(3, 642))
    with pytest.raises(ValueError, match="level must be an integer in 0..9"):
        MeshConv(1, 1, 10)
    with pytest.raises(ValueError, match="level must be an integer in 0..9"):
        MeshConv(1, 1, -1)
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        MeshConv(1, 1, 3, stride=3)
    with pytest.raises(ValueError, match="stride=2 needs level >= 1"):
        MeshConv(1, 1, 0, stride=2)
    with pytest.raises(ValueError, match="MeshConvTranspose needs level >= 1"):
        MeshConvTranspose(1, 1, 0)
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        MeshConv(0, 1, 2)
    with pytest.raises(ValueError, match="mode must be 'mean', 'max' or 'drop'"):
        MeshPool(2, "median")
    with pytest.raises(ValueError, match="MeshPool needs level >= 1"):
        MeshPool(0)
    with pytest.raises(ValueError, match="V=42 vertices, but got V=162"):
        MeshConvTranspose(3, 3, 2)(torch.randn(1, 3, 162))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "make, v_in, v_out",
    [
        (lambda: MeshConv(3, 4, 2), 162, 162),
        (lambda: MeshConv(3, 4, 2, stride=2), 162, 42),
        (lambda: MeshConv(3, 4, 2, orientation="invariant"), 162, 162),
        (lambda: MeshConvTranspose(3, 4, 2), 42, 162),
        (lambda: MeshPool(2, "max"), 162, 42),
    ],
)
def test_empty_batch_gives_empty_output_with_gradients(make, v_in, v_out, threads):
    """B = 0 (the last batch of a filtered loader, say) is an empty output, and backward works."""
    layer, before = make(), torch.get_num_threads()
    torch.set_num_threads(threads)  # one thread: the cache-sized chunks of _samples_per_kernel
    try:
        x = torch.randn(0, 3, v_in, requires_grad=True)
        y = layer(x)
        assert y.shape == (0, 4 if not isinstance(layer, MeshPool) else 3, v_out)
        y.sum().backward()
    finally:
        torch.set_num_threads(before)
    assert x.grad.shape == x.shape
    for p in layer.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and not p.grad.any()


_MAKERS = {
    "conv": (lambda: MeshConv(3, 4, 2), 162),
    "stride2": (lambda: MeshConv(3, 4, 2, stride=2), 162),
    "invariant": (lambda: MeshConv(3, 4, 2, orientation="invariant"), 162),
    "transpose": (lambda: MeshConvTranspose(3, 4, 2), 42),
    "pool": (lambda: MeshPool(2, "mean"), 162),
}


@pytest.mark.parametrize("workflow", ["built-on-meta", "moved-to-meta"])
@pytest.mark.parametrize("kind", list(_MAKERS))
def test_meta_device_then_to_empty_equals_a_normally_built_layer(kind, workflow):
    """``with torch.device("meta")`` or ``.to("meta")``, then ``.to_empty(device="cpu")`` and the
    weights: the operators are re-derived (not left uninitialised), identical to a fresh layer's."""
    make, v_in = _MAKERS[kind]
    torch.manual_seed(0)
    reference = make()
    if workflow == "built-on-meta":
        with torch.device("meta"):
            layer = make()
        assert all(t.device.type == "meta" for t in (*layer.buffers(), *layer.parameters()))
    else:
        layer = make().to("meta")
    layer = layer.to_empty(device="cpu")
    layer.load_state_dict(reference.state_dict())
    ours, theirs = (
        dict(layer.named_buffers(remove_duplicate=False)),
        dict(reference.named_buffers(remove_duplicate=False)),
    )
    assert ours.keys() == theirs.keys()
    for name, buffer in ours.items():
        assert buffer.device.type == "cpu" and buffer.dtype == theirs[name].dtype, name
        assert torch.equal(buffer, theirs[name]), name
    x = torch.randn(2, 3, v_in, requires_grad=True)
    assert torch.equal(layer(x), reference(x))
    layer(x).sum().backward()
    if not isinstance(layer, MeshPool):  # reset_parameters works on the materialised layer
        layer.reset_parameters()
        assert layer(x).shape == reference(x).shape


def test_meta_build_does_not_leak_meta_tensors_into_other_layers():
    """Block indices are shared between layers with the same operator: one built under the meta
    device must not hand its indices to a normally built one."""
    with torch.device("meta"):
        meta = MeshConv(3, 4, 3)
    normal = MeshConv(3, 4, 3)
    assert all(b.device.type == "cpu" for b in normal.buffers())
    assert normal(torch.randn(2, 3, 642)).shape == (2, 4, 642)
    assert all(b.device.type == "meta" for b in meta.buffers())


def test_input_dtype_must_match_the_layer_like_conv1d():
    for layer in (MeshConv(3, 4, 2), MeshConvTranspose(3, 4, 3), MeshConv(3, 4, 2, orientation="invariant")):
        x = torch.randn(1, 3, icosphere(layer.in_level).num_vertices)
        with pytest.raises(ValueError, match=r"input dtype torch\.float64 .* layer's dtype torch\.float32"):
            layer(x.double())
        with pytest.raises(ValueError, match=r"input dtype torch\.float32 .* layer's dtype torch\.float64"):
            copy.deepcopy(layer).double()(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast does not cast float64 (nor does Conv1d)
            with pytest.raises(ValueError, match="torch.float64"):
                layer(x.double())
            assert layer(x).dtype == torch.bfloat16  # float32 input under autocast: as documented
        assert layer(x.bfloat16()).dtype == torch.bfloat16  # half-precision input: as documented
        assert layer(x).dtype == torch.float32
        assert copy.deepcopy(layer).double()(x.double()).dtype == torch.float64
