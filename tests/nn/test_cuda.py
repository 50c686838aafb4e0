"""CUDA parity: the same numbers as on the CPU, and no host-device synchronisation inside
forward or backward. Skipped where no GPU is present (CI); run on a GPU machine with
``python -m pytest tests/nn/test_cuda.py``."""

import pytest
import torch

from meshcnn import ORIENTATIONS, MeshConv, MeshConvTranspose, MeshPool, icosphere
from meshcnn.models import SphericalResNet, SphericalUNet

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


_LAYERS = [
    (lambda: MeshConv(3, 5, 4), 4),
    (lambda: MeshConv(3, 5, 4, stride=2), 4),
    (lambda: MeshConvTranspose(3, 5, 4), 3),
    (lambda: MeshPool(4, "mean"), 4),
    (lambda: MeshPool(4, "max"), 4),
]
_LAYERS += [
    (lambda o=orientation, s=stride: MeshConv(3, 5, 4, stride=s, orientation=o), 4)
    for orientation in ORIENTATIONS
    if orientation != "fixed"
    for stride in (1, 2)
]


@pytest.mark.parametrize("make,in_level", _LAYERS)
def test_cuda_matches_cpu_in_float64(make, in_level):
    """Every layer kind and orientation: forward, input and parameter gradients as on the CPU."""
    torch.manual_seed(0)
    cpu = make().double()
    gpu = make().double().to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(4, 3, icosphere(in_level).num_vertices, dtype=torch.float64, requires_grad=True)
    xg = x.detach().cuda().requires_grad_()
    y, yg = cpu(x), gpu(xg)
    torch.testing.assert_close(yg.cpu(), y, rtol=0, atol=1e-10)
    g = torch.randn_like(y)
    y.backward(g)
    yg.backward(g.cuda())
    torch.testing.assert_close(xg.grad.cpu(), x.grad, rtol=0, atol=1e-10)
    for p, q in zip(cpu.parameters(), gpu.parameters()):
        torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=0, atol=1e-9)


def test_no_host_device_sync_in_forward_and_backward():
    model = SphericalUNet(4, 3, max_level=4, min_level=0, width=8).cuda()
    x = torch.randn(2, 4, icosphere(4).num_vertices, device="cuda")
    model(x).sum().backward()  # warm-up: lazy initialisation may synchronise once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        model(x).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_training_step(dtype):
    torch.manual_seed(0)
    model = SphericalResNet(2, 4, level=4, width=8, depth=2).cuda()
    x = torch.randn(4, 2, icosphere(4).num_vertices, device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        logits = model(x)
    assert logits.dtype == dtype
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.arange(4, device="cuda"))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    with torch.no_grad():
        reference = model.float()(x)
    torch.testing.assert_close(logits.float(), reference, rtol=0.05, atol=0.05)


def test_triton_path_matches_bag_path_training_step(monkeypatch):
    """The fused Triton kernels (the CUDA default where triton is importable) and the bag-product
    path (``MESHCNN_TRITON=0``) give the same SphericalUNet forward and gradients in float32."""
    pytest.importorskip("triton")

    torch.manual_seed(0)
    model = SphericalUNet(4, 3, max_level=5, min_level=1, width=16).cuda()
    x = torch.randn(4, 4, icosphere(5).num_vertices, device="cuda")
    assert {m.kernel_backend for m in model.modules() if hasattr(m, "kernel_backend")} == {"triton"}
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv("MESHCNN_TRITON", switch)
        model = model.cuda()  # the kernel backend is chosen when a layer is built or moved
        model.zero_grad()
        out = model(x)
        out.square().mean().backward()
        results.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    (out_t, grads_t), (out_b, grads_b) = results
    torch.testing.assert_close(out_t, out_b, rtol=1e-4, atol=1e-5)
    for a, b in zip(grads_t, grads_b):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
