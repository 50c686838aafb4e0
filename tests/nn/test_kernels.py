"""The optimized MeshConv path: equality with the reference formula, operator layout,
torch.compile, autocast, device-generic code (the CUDA path's logic, checked on CPU/meta),
and the benchmark script end to end on tiny levels."""

import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _helpers import load_script, make_layer, with_taps

from meshcnn import MeshConv, MeshConvTranspose, icosphere
from meshcnn.models import SphericalUNet
from meshcnn.nn import _kernels, _operator, mesh_conv, tap_operator
from meshcnn.nn.functional import compute_dtypes, stack_taps
from meshcnn.testing import layer_taps, mesh_conv_reference

ROOT = Path(__file__).resolve().parents[2]


def _layer_and_taps(kind: str, level: int, bias: bool = True, orientation: str = "fixed"):
    """``(layer, its taps for the reference, V_in)``, the layer in float64 with its own initialisation."""
    return with_taps(make_layer(kind, level, 3, 5, seed=level, normal=False, bias=bias, orientation=orientation))


@pytest.mark.parametrize("kind", ["conv", "stride2", "transpose"])
@pytest.mark.parametrize("bias", [True, False])
def test_optimized_equals_reference_float64(kind, bias):
    """Forward and all gradients of the optimized path == the plain formula, float64, 1e-10."""
    layer, taps, v_in = _layer_and_taps(kind, 3, bias)
    with torch.no_grad():
        layer.weight.normal_()
    x = torch.randn(3, 3, v_in, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    ref = mesh_conv_reference(x, taps, layer.weight, layer.bias)
    scale = ref.abs().max().item()
    assert (y - ref).abs().max().item() <= 1e-10 * scale
    g = torch.randn_like(y)
    params = [x, layer.weight] + ([layer.bias] if bias else [])
    got = torch.autograd.grad(y, params, g)
    want = torch.autograd.grad(ref, params, g)
    for a, b in zip(got, want):
        assert (a - b).abs().max().item() <= 1e-10 * b.abs().max().item()


@pytest.mark.parametrize("kind", ["conv", "stride2", "transpose"])
@pytest.mark.parametrize("needs", ["x", "weight", "bias", "x+bias", "weight+bias"])
def test_partial_gradients_equal_reference(kind, needs):
    """Only the gradients asked for are computed (the backward skips the others), and they are right."""
    layer, taps, v_in = _layer_and_taps(kind, 2)
    x = torch.randn(2, 3, v_in, dtype=torch.float64, requires_grad="x" in needs)
    layer.weight.requires_grad_("weight" in needs)
    layer.bias.requires_grad_("bias" in needs)
    params = [p for name, p in (("x", x), ("weight", layer.weight), ("bias", layer.bias)) if name in needs]
    y = layer(x)
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, params, g)
    want = torch.autograd.grad(mesh_conv_reference(x, taps, layer.weight, layer.bias), params, g)
    for a, b in zip(got, want):
        assert (a - b).abs().max().item() <= 1e-10 * b.abs().max().item()


def test_forward_saves_only_its_input_for_backward():
    """Memory: autograd keeps x, the weight and the operators, never the (V, T C) features."""
    layer = MeshConv(4, 4, 3)
    x = torch.randn(2, 4, icosphere(3).num_vertices, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        layer(x)
    operator = {t.data_ptr() for t in layer.operator.tensors() if t.numel()}
    activations = [t for t in saved if t.data_ptr() not in operator]
    assert sum(t.numel() for t in activations) == x.numel() + layer.weight.numel()


def test_stacked_operator_layout_is_vertex_major():
    """Row v*T + t of S is row v of tap t; row u*T + t of R is column u of tap t."""
    m = icosphere(1)
    taps = layer_taps(MeshConv(1, 1, 1))[1:]
    op = tap_operator(taps, torch.float64)

    def dense(crow, col, val, shape):
        return torch.sparse_csr_tensor(crow, col, val, shape).to_dense().numpy()

    v, n = m.num_vertices, len(taps)
    s = dense(op.crow, op.col, op.val, (v * n, v))
    r = dense(op.crow_t, op.col_t, op.val_t, (v * n, v))
    for t, tap in enumerate(taps):
        np.testing.assert_array_equal(s[t::n], tap.toarray())
        np.testing.assert_array_equal(r[t::n], tap.toarray().T)
    assert op.taps == n and op.shape == (v * n, v)
    with pytest.raises(ValueError, match="same shape"):
        stack_taps([sp.eye(3), sp.eye(4)])


def test_every_tap_row_is_within_the_closed_one_ring():
    """The stencil the bag product gathers: at most 7 non-zeros per tap row, all in the 1-ring."""
    m = icosphere(3)
    ring = np.concatenate([np.arange(m.num_vertices)[:, None], m.neighbors], axis=1)
    for tap in (m.laplacian, m.grad_ew, m.grad_ns):
        tap = sp.csr_matrix(tap)
        assert np.diff(tap.indptr).max() <= 7
        rows = np.repeat(np.arange(m.num_vertices), np.diff(tap.indptr))
        assert np.all((ring[rows] == tap.indices[:, None]).any(axis=1))


def test_mesh_conv_checks_operator_against_weight():
    conv = MeshConv(2, 3, 1)
    x = torch.randn(1, 2, icosphere(1).num_vertices)
    with pytest.raises(ValueError, match="operator holds 3 taps, the weight needs 4"):
        mesh_conv(x, conv.operator, torch.randn(3, 2, 5), None, identity_tap=True)
    with pytest.raises(ValueError, match="weight has 4 input channels, x has 2"):
        mesh_conv(x, conv.operator, torch.randn(3, 4, 4), None, identity_tap=True)


def test_compute_dtypes():
    x32 = torch.randn(1, 2, 12)
    assert compute_dtypes(x32) == (torch.float32, torch.float32)
    assert compute_dtypes(x32.double()) == (torch.float64, torch.float64)
    assert compute_dtypes(x32.bfloat16()) == (torch.float32, torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert compute_dtypes(x32) == (torch.float32, torch.bfloat16)
        # autocast of another device type does not apply to this tensor's device
        assert compute_dtypes(x32.to("meta")) == (torch.float32, torch.float32)


def test_autocast_bfloat16_meshconv_keeps_sparse_product_in_float32():
    """Under bf16 autocast the taps are applied in float32; only the GEMMs are bf16.

    On a signal with a large constant part the Laplacian and derivative taps are
    differences of nearly equal values; applying them in bf16 (8-bit mantissa)
    would lose the small variation, float32 keeps it."""
    level = 3
    m = icosphere(level)
    conv = MeshConv(1, 1, level, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1] = 1.0  # Laplacian only
    z = torch.as_tensor(m.vertices[:, 2], dtype=torch.float32)
    x = (1000.0 + z).view(1, 1, -1)
    exact = torch.as_tensor(m.laplacian @ m.vertices[:, 2], dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == torch.bfloat16
    rel = ((y.float().view(-1) - exact).abs().max() / exact.abs().max()).item()
    assert rel < 2e-2  # bf16 rounding of the result only
    # the same taps applied to bf16-rounded input would be off by order 1
    lossy = torch.as_tensor(m.laplacian @ x.view(-1).bfloat16().double().numpy())
    assert ((lossy - exact).abs().max() / exact.abs().max()).item() > 0.5


def test_autocast_bfloat16_unet_forward_backward():
    torch.manual_seed(0)
    model = SphericalUNet(3, 4, max_level=2, min_level=0, width=4)
    x = torch.randn(2, 3, icosphere(2).num_vertices)
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
        loss = y.float().square().mean()
    loss.backward()
    assert y.dtype == torch.bfloat16 and y.shape == ref.shape
    assert ((y.float() - ref).abs().max() / ref.abs().max()).item() < 0.05
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_half_module_keeps_float32_operator_values():
    conv = MeshConv(2, 2, 2)
    half = copy.deepcopy(conv).half()
    assert half.op.val.dtype == torch.float32 and half.weight.dtype == torch.float16
    x = torch.randn(1, 2, icosphere(2).num_vertices)
    y = half(x.half())
    assert y.dtype == torch.float16
    torch.testing.assert_close(y.float(), conv(x), rtol=2e-2, atol=2e-2)
    assert conv.op.val.dtype == torch.float32  # the original is untouched


@pytest.mark.parametrize("autocast", [False, True])
def test_implementation_runs_on_meta_device_without_host_syncs(autocast):
    """Device-generic code (the CUDA path's logic), checked without a GPU: the forward and
    backward implementations run on the meta device, which has no data, so they contain no
    data-dependent host sync (.item(), .cpu(), nonzero) and create no tensor on another
    device: no host-device copy. (Called directly: through the custom operator, meta
    tensors would dispatch to its fake implementation instead.)"""
    layers = [MeshConv(2, 3, 2), MeshConv(2, 3, 2, stride=2), MeshConvTranspose(2, 3, 2)]
    layers += [MeshConv(2, 3, 2, orientation="invariant"), MeshConvTranspose(2, 3, 2, orientation="invariant")]
    for layer in layers:
        plan = layer.to("meta").plan
        v_in, v_out = icosphere(layer.in_level).num_vertices, icosphere(layer.out_level).num_vertices
        x = torch.empty(4, 2, v_in, device="meta")
        dense = torch.bfloat16 if autocast else torch.float32
        plan = dataclasses.replace(plan, sparse_dtype=torch.float32, dense_dtype=dense)
        assert plan.operator.block_samples == 8  # the block path: indices into the (B V, C) table
        if plan.strategy == "invariant":
            y, u, features = _kernels.invariant_forward(x, layer.weight, layer.bias, plan)
            assert u.device.type == "meta" and u.shape == (4, 6, v_out)
            grads = _kernels.invariant_backward(
                torch.empty_like(y), x, layer.weight, u, features, plan, True, True, True
            )
        else:
            y = _kernels.bag_forward(x, layer.weight, layer.bias, plan)
            grads = _kernels.bag_backward(torch.empty_like(y), x, layer.weight, plan, True, True, True)
        assert y.device.type == "meta" and y.shape == (4, 3, v_out) and y.dtype == dense
        assert [g.shape for g in grads] == [x.shape, layer.weight.shape, layer.bias.shape]
        assert all(g.device.type == "meta" for g in grads)
        assert grads[0].dtype == torch.float32 and grads[1].dtype == layer.weight.dtype


@pytest.mark.parametrize("kind", ["conv", "stride2", "transpose"])
def test_custom_operators_pass_opcheck(kind):
    """Schema, fake (meta) implementations (shapes and strides), autograd registration."""
    for orientation in ("fixed", "invariant"):
        layer, _, v_in = _layer_and_taps(kind, 1, orientation=orientation)
        layer = layer.float()
        plan = layer.plan
        x = torch.randn(2, 3, v_in, requires_grad=True)
        flat = dataclasses.replace(plan, sparse_dtype=torch.float32, dense_dtype=torch.float32).flat()
        args = (x, layer.weight, layer.bias, *flat)
        needs = (True, True, True)
        if orientation == "fixed":
            torch.library.opcheck(torch.ops.meshcnn.mesh_conv.default, args)
            grad = torch.randn_like(torch.ops.meshcnn.mesh_conv.default(*args))
            back = (grad, x.detach(), layer.weight.detach(), *flat, *needs)
            torch.library.opcheck(torch.ops.meshcnn.mesh_conv_backward.default, back)
        else:
            torch.library.opcheck(torch.ops.meshcnn.mesh_conv_invariant.default, args)
            y, u, features = torch.ops.meshcnn.mesh_conv_invariant.default(*args)
            back = (
                torch.randn_like(y),
                x.detach(),
                layer.weight.detach(),
                u.detach(),
                features.detach(),
                *flat,
                *needs,
            )
            torch.library.opcheck(torch.ops.meshcnn.mesh_conv_invariant_backward.default, back)


def test_module_on_meta_device():
    """Modules move to the meta device and give the right shapes (through the fake implementations)."""
    for layer in (MeshConv(2, 3, 2), MeshConv(2, 3, 2, stride=2), MeshConvTranspose(2, 3, 2)):
        layer = layer.to("meta")
        assert all(b.device.type == "meta" for b in layer.buffers())
        v_in = icosphere(layer.in_level).num_vertices
        x = torch.randn(4, 2, v_in, device="meta", requires_grad=True)
        y = layer(x)
        assert y.device.type == "meta" and y.shape == (4, 3, icosphere(layer.out_level).num_vertices)
        y.sum().backward()
        assert x.grad.device.type == "meta" and x.grad.shape == x.shape
        assert layer.weight.grad.device.type == "meta"


def test_torch_compile_unet_fullgraph_no_graph_breaks():
    """torch.compile captures the whole SphericalUNet in one graph (fullgraph=True raises on a
    graph break), forward and backward, with the values and gradients of eager mode. The
    aot_eager backend runs the same capture (Dynamo + AOTAutograd) without C++ codegen."""
    torch.manual_seed(0)
    model = SphericalUNet(2, 3, max_level=1, min_level=0, width=4)
    compiled_model = copy.deepcopy(model)
    x = torch.randn(2, 2, icosphere(1).num_vertices)
    compiled = torch.compile(compiled_model, backend="aot_eager", fullgraph=True)
    y_ref, y = model(x), compiled(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    y_ref.square().sum().backward()
    y.square().sum().backward()
    for p, q in zip(model.parameters(), compiled_model.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5)


def test_torch_compile_inductor_meshconv():
    """The default (inductor) backend compiles a MeshConv, forward and backward."""
    torch.manual_seed(0)
    model = MeshConv(2, 3, 1, stride=2)
    x = torch.randn(2, 2, icosphere(1).num_vertices, requires_grad=True)
    compiled = torch.compile(model, fullgraph=True)
    y, y_ref = compiled(x), model(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    (gx,) = torch.autograd.grad(y.sum(), x)
    (gx_ref,) = torch.autograd.grad(y_ref.sum(), x)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-5)


def _load_script(name: str):
    """``experiments/benchmark/<name>.py`` as a module (its ``main`` runs in this process)."""
    return load_script(f"benchmark/{name}.py")


@pytest.mark.slow
def test_benchmark_script_runs_and_original_matches(tmp_path, monkeypatch, capsys, one_thread):
    """experiments/benchmark/meshconv.py end to end on tiny levels: the table, the JSON,
    the original UGSCNN computation equal to MeshConv, the memory probe (a fresh process),
    mesh timing (a fresh process)."""
    out = tmp_path / "bench.json"
    monkeypatch.setenv("MESHCNN_MESH_DIR", str(tmp_path / "meshes"))
    bench = _load_script("meshconv")
    bench.main(
        [
            "--levels",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--original-repeats",
            "1",
            "--mesh-levels",
            "1",
            "--no-unet",
            "--no-memory",
            "--json",
            str(out),
        ]
    )
    stdout = capsys.readouterr().out
    # the per-column memory probe (normally one fresh process per column and level)
    probe = subprocess.run(
        [sys.executable, bench.__file__, "--probe", "memory", "meshcnn", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    peak = json.loads(probe.stdout.strip().splitlines()[-1])["peak_mib"]
    assert 0 <= peak < 1000
    result = json.loads(out.read_text())
    (row,) = result["conv"]
    assert row["level"] == 2 and row["num_vertices"] == 162
    assert row["original_max_rel_diff"] < 1e-5
    assert set(row["seconds"]) >= {"meshcnn", "floor", "original"}
    assert all(v > 0 for v in row["seconds"].values())
    assert result["mesh_generation"][0]["num_vertices"] == 42
    assert "level" in stdout and "orig/mc" in stdout


@pytest.mark.slow
def test_monitor_script_runs(tmp_path, monkeypatch, capsys, one_thread):
    """experiments/benchmark/monitor.py: windows of interleaved steps and a summary."""
    monkeypatch.setenv("MESHCNN_MESH_DIR", str(tmp_path / "meshes"))
    _load_script("monitor").main(["--level", "1", "--seconds", "0.2", "--window", "2"])
    stdout = capsys.readouterr().out
    assert "per-sample" in stdout and "windows; median of the window medians" in stdout


@pytest.mark.parametrize("kind", ["conv", "stride2", "transpose"])
@pytest.mark.parametrize("block_samples", [1, 2, 3, 64])
def test_samples_per_bag_kernel_equal_reference(kind, block_samples):
    """One bag kernel per sample (k = 1) or per chunk of k samples (the block-diagonal
    index, a batch of 5 = 2 + 2 + 1 or 3 + 2 or all 5): forward and gradients equal the
    formula in float64."""
    layer, taps, v_in = _layer_and_taps(kind, 2)
    op_taps = taps[1:] if layer.identity_tap else taps
    op = tap_operator(op_taps, torch.float64, block_samples)
    assert (
        op.block_samples == block_samples
        and op.block_col.numel() == (block_samples > 1) * block_samples * op.col.numel()
    )
    x = torch.randn(5, 3, v_in, dtype=torch.float64, requires_grad=True)
    y = mesh_conv(x, op, layer.weight, layer.bias, identity_tap=layer.identity_tap)
    ref = mesh_conv_reference(x, taps, layer.weight, layer.bias)
    assert (y - ref).abs().max().item() <= 1e-10 * ref.abs().max().item()
    g = torch.randn_like(y)
    params = [x, layer.weight, layer.bias]
    for a, b in zip(torch.autograd.grad(y, params, g), torch.autograd.grad(ref, params, g)):
        assert (a - b).abs().max().item() <= 1e-10 * b.abs().max().item()


def test_block_path_gradcheck():
    layer = MeshConv(2, 3, 1, stride=2).double()
    assert layer.operator.block_samples > 3
    x = torch.randn(3, 2, icosphere(1).num_vertices, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in layer.named_parameters()]

    def f(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *layer.parameters()), fast_mode=True)


def test_one_cpu_thread_takes_cache_sized_chunks():
    """With one thread the chunk's table stays within 2**18 values; results are unchanged."""
    _samples_per_kernel = _operator.samples_per_kernel

    cpu, threads = torch.device("cpu"), torch.get_num_threads()
    layer, taps, v_in = _layer_and_taps("conv", 2)
    x = torch.randn(5, 3, v_in, dtype=torch.float64)
    try:
        torch.set_num_threads(1)
        assert _samples_per_kernel(cpu, 8, 12, 10242 * 16) == 1  # level 5: per sample
        assert _samples_per_kernel(cpu, 8, 16, 642 * 16) == 8  # level 3: one chunk
        assert _samples_per_kernel(cpu, 8, 16, 2562 * 16) == 6
        y1 = layer(x)
        torch.set_num_threads(2)
        assert _samples_per_kernel(cpu, 8, 12, 10242 * 16) == 8
        torch.testing.assert_close(layer(x), y1, rtol=0, atol=1e-12)
    finally:
        torch.set_num_threads(threads)
    ref = mesh_conv_reference(x, taps, layer.weight, layer.bias)
    assert (y1 - ref).abs().max().item() <= 1e-10 * ref.abs().max().item()


def test_block_indices_are_shared_between_layers():
    a, b = MeshConv(4, 4, 3), MeshConv(4, 4, 3)
    c = MeshConv(4, 4, 3, stride=2)
    assert a.op.block_col is b.op.block_col and a.op.block_crow_t is b.op.block_crow_t
    assert c.op.block_col is not a.op.block_col
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(torch.ones(2, 4, 642)), b(torch.ones(2, 4, 642)))


def test_block_samples_for():
    """k samples per bag kernel: the batch's tables stay within 2**21 values."""
    from meshcnn.nn._operator import BLOCK_MAX_ELEMENTS, block_samples_for

    assert BLOCK_MAX_ELEMENTS == 2**21
    assert block_samples_for(10242 * 16) == 8  # level 5, 16 channels
    assert block_samples_for(40962 * 16) == 1  # level 6: per sample
    assert block_samples_for(163842 * 16) == 1
    assert block_samples_for(10242 * 4) == 8  # capped
    assert MeshConv(16, 16, 5).operator.block_samples == 8
    assert MeshConv(16, 32, 5, stride=2).operator.block_samples == 8  # from the larger table
    assert MeshConv(32, 16, 5).operator.block_samples == 1  # 2**18 < 10242 * 32 values per sample
    with pytest.raises(ValueError, match="block_samples"):
        tap_operator([sp.eye(4, format="csr")], block_samples=0)
