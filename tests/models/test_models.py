"""Whole models: shapes, gradients, state_dict round trips, and that they can learn."""

import pytest
import torch
from torch import nn

from meshcnn import ORIENTATIONS, icosphere
from meshcnn.models import SphericalResNet, SphericalUNet


@pytest.mark.parametrize("max_level,min_level", [(2, 0), (3, 1)])
def test_unet_shapes_and_backward(max_level, min_level):
    torch.manual_seed(0)
    model = SphericalUNet(4, 3, max_level=max_level, min_level=min_level, width=4)
    x = torch.randn(2, 4, icosphere(max_level).num_vertices, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 3, icosphere(max_level).num_vertices)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("level,depth", [(2, 1), (3, 3)])
def test_resnet_shapes_and_backward(level, depth):
    torch.manual_seed(0)
    model = SphericalResNet(6, 5, level=level, width=4, depth=depth)
    x = torch.randn(3, 6, icosphere(level).num_vertices)
    logits = model(x)
    assert logits.shape == (3, 5)
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 4])).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_state_dict_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(0)
    model = SphericalUNet(2, 3, max_level=2, width=4)
    model(torch.randn(4, 2, 162))  # update BatchNorm running statistics
    model.eval()
    torch.save(model.state_dict(), tmp_path / "unet.pt")
    keys = set(model.state_dict())
    assert all(not k.split(".")[-1].startswith(("op_", "ring", "pool_weight")) for k in keys)
    fresh = SphericalUNet(2, 3, max_level=2, width=4).eval()
    fresh.load_state_dict(torch.load(tmp_path / "unet.pt", weights_only=True))
    x = torch.randn(2, 2, 162)
    assert torch.equal(model(x), fresh(x))


def _overfit(model, x, y, steps=300):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 20:
            break
    return losses


@pytest.mark.slow  # end to end: a training run
def test_unet_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = SphericalUNet(2, 3, max_level=2, min_level=0, width=8)
    x = torch.randn(2, 2, 162)
    y = torch.randint(0, 3, (2, 162))
    losses = _overfit(model, x, y)
    assert min(losses) < losses[0] / 10, (losses[0], min(losses))


@pytest.mark.slow  # end to end: a training run
def test_resnet_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = SphericalResNet(1, 4, level=2, width=8, depth=2)
    x = torch.randn(8, 1, 162)
    y = torch.arange(8) % 4
    losses = _overfit(model, x, y)
    assert min(losses) < losses[0] / 10, (losses[0], min(losses))


def test_model_bad_input():
    with pytest.raises(ValueError, match=r"min_level \(3\) must be below max_level \(3\)"):
        SphericalUNet(1, 1, max_level=3, min_level=3)
    with pytest.raises(ValueError, match="max_level must be an integer in 0..9"):
        SphericalUNet(1, 1, max_level=10)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        SphericalResNet(1, 2, level=2, width=0, depth=1)
    with pytest.raises(ValueError, match="depth must be an integer in 0..level"):
        SphericalResNet(1, 2, level=2, depth=3)
    with pytest.raises(ValueError, match="SphericalUNet: input is on level 2, which has V=162"):
        SphericalUNet(1, 1, max_level=2, width=2)(torch.randn(1, 1, 642))
    with pytest.raises(ValueError, match="expected 1 input channels, got 3"):
        SphericalResNet(1, 2, level=2, width=2, depth=1)(torch.randn(1, 3, 162))


@pytest.mark.parametrize("training", [True, False])
def test_models_take_an_empty_batch(training):
    for model, out_shape in (
        (SphericalUNet(3, 2, max_level=2, min_level=0, width=4), (0, 2, 162)),
        (SphericalResNet(3, 5, level=2, width=4, depth=2), (0, 5)),
    ):
        model.train(training)
        x = torch.randn(0, 3, icosphere(2).num_vertices, requires_grad=True)
        y = model(x)
        assert y.shape == out_shape
        y.sum().backward()
        assert x.grad.shape == x.shape
        assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize(
    "make",
    [
        lambda: SphericalResNet(2, 3, level=2, width=4, depth=1),
        lambda: SphericalUNet(3, 2, max_level=2, min_level=0, width=4, orientation="poleward", flip_channels=[1]),
    ],
)
def test_models_built_on_meta_and_materialised_equal_normal_ones(make):
    """Derived buffers (the pooling weights, the hemisphere-flip signs) are rebuilt by to_empty."""
    torch.manual_seed(0)
    normal = make().eval()
    with torch.device("meta"):
        lazy = make()
    lazy = lazy.to_empty(device="cpu")
    lazy.load_state_dict(normal.state_dict())
    lazy.eval()
    for (name, a), (_, b) in zip(normal.named_buffers(), lazy.named_buffers()):
        assert torch.equal(a, b), name
    x = torch.randn(2, normal.in_channels, icosphere(2).num_vertices)
    torch.testing.assert_close(lazy(x), normal(x), rtol=0, atol=0)


def test_unet_flip_channels_multiply_by_the_sign_of_latitude():
    from meshcnn import hemisphere_flip

    torch.manual_seed(0)
    flipped = SphericalUNet(3, 2, max_level=2, min_level=1, width=4, flip_channels=[2]).double().eval()
    plain = SphericalUNet(3, 2, max_level=2, min_level=1, width=4).double().eval()
    plain.load_state_dict(flipped.state_dict())
    x = torch.randn(2, 3, icosphere(2).num_vertices, dtype=torch.float64)
    torch.testing.assert_close(flipped(x), plain(hemisphere_flip(x, 2, [2])), rtol=0, atol=0)
    with pytest.raises(ValueError, match="flip_channels"):
        SphericalUNet(3, 2, max_level=2, flip_channels=[3])


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_safetensors_round_trip_of_both_models(orientation, tmp_path):
    """state_dict() is tensors only: safetensors saves and loads every model, and still refuses another mesh."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    for make in (
        lambda: SphericalUNet(2, 3, 2, 0, width=4, orientation=orientation),
        lambda: SphericalResNet(2, 5, level=2, width=4, depth=1, orientation=orientation),
    ):
        model = make().eval()
        path = tmp_path / "model.safetensors"
        safetensors_torch.save_model(model, str(path))
        fresh = make().eval()
        missing, unexpected = safetensors_torch.load_model(fresh, str(path))
        assert not missing and not unexpected
        x = torch.randn(2, 2, 162)
        assert torch.equal(model(x), fresh(x))
    other = "fixed" if orientation != "fixed" else "isotropic"
    with pytest.raises(ValueError, match="orientation"):
        safetensors_torch.load_model(SphericalResNet(2, 5, level=2, width=4, depth=1, orientation=other), str(path))
