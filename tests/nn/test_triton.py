"""The Triton kernels of MeshConv's CUDA path (:mod:`meshcnn.nn._triton_kernels`).

Without a GPU the kernels run on CPU tensors in triton's interpreter (``TRITON_INTERPRET=1``,
set per test by the ``interpreter`` fixture: triton reads it when a kernel is decorated, and
meshcnn decorates its kernels lazily, once per setting), against the float64 dense reference
at levels 0-2: values and all gradients, stride 2 and transposed operators, 1-3 operator taps
with and without the identity tap, channel counts over one tile, autocast bfloat16/float16, and
the dispatch inside ``mesh_conv`` (eager, custom operator, opcheck, ``torch.compile``), for which
the tests let CPU tensors through the CUDA-only switch. The CUDA tests at the end run the
compiled kernels on a GPU and are skipped without one. The whole module is skipped where triton
is not installed (CI: triton is not a dependency of the package).
"""

import dataclasses
import os
import subprocess
import sys

import pytest
import scipy.sparse as sp
import torch
from _helpers import make_layer, with_taps

from meshcnn import MeshConv, MeshConvTranspose, icosphere
from meshcnn.models import SphericalUNet
from meshcnn.nn import _kernels, _ops, _plan, mesh_conv, tap_operator
from meshcnn.testing import layer_taps, mesh_conv_reference

triton = pytest.importorskip("triton")

from meshcnn.nn import _triton_kernels as tk

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")


@pytest.fixture
def interpreter(monkeypatch):
    """Triton's CPU interpreter for the kernels built in this test."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")


@pytest.fixture
def dispatch_on_cpu(monkeypatch, interpreter):
    """``mesh_conv`` takes the Triton path for CPU tensors too (interpreted), as it does on CUDA."""
    calls = []

    def runs_triton(self, *operands):  # as KernelPlan.runs_triton for a layer on CUDA, whatever the backend
        ok = (
            self.strategy == "linear"
            and self.sparse_dtype == torch.float32
            and all(t.numel() for t in operands)
            and tk.usable(operands[0].device, self.dense_dtype)
        )
        calls.append(ok)
        return ok

    monkeypatch.setattr(_plan.KernelPlan, "runs_triton", runs_triton)
    return calls


def _case(kind: str, level: int, cin: int = 3, cout: int = 5):
    """``(layer, dense taps of the reference, V_in)``, the layer in float32 with random parameters."""
    return with_taps(make_layer(kind, level, cin, cout, seed=level + 7 * len(kind), dtype=torch.float32))


def _reference_with_grads(x, taps, weight, bias, g):
    """float64 ``y`` and ``(dx, dW, db)`` of :func:`mesh_conv_reference` for float32 inputs."""
    x64 = x.detach().double().requires_grad_()
    w64 = weight.detach().double().requires_grad_()
    b64 = bias.detach().double().requires_grad_() if bias is not None else None
    y = mesh_conv_reference(x64, taps, w64, b64)
    grads = torch.autograd.grad(y, [x64, w64] + ([b64] if b64 is not None else []), g.double())
    return y.detach(), grads


def _assert_rel(got, want, rtol, what=""):
    scale = want.abs().max().item()
    err = (got.double() - want.double()).abs().max().item()
    assert err <= rtol * max(scale, 1e-30), f"{what}: max error {err:.3g} vs scale {scale:.3g}"


# --------------------------------------------------------------------------------------------
# ELL tables
# --------------------------------------------------------------------------------------------
def test_ell_table_matches_csr_and_is_cached():
    for taps in (layer_taps(MeshConv(1, 1, 2))[1:], layer_taps(MeshConvTranspose(1, 1, 2))):
        op = tap_operator(taps, torch.float32)
        for crow, col, val in ((op.crow, op.col, op.val), (op.crow_t, op.col_t, op.val_t)):
            ell_col, ell_val, width = tk.ell_table(crow, col, val)
            lengths = crow[1:] - crow[:-1]
            assert width == int(lengths.max()) and ell_col.shape == ell_val.shape == (crow.numel() - 1, width)
            assert ell_col.dtype == torch.int32 and ell_val.dtype == torch.float32
            assert torch.equal((ell_col >= 0).sum(1), lengths)
            assert torch.all(ell_val[ell_col < 0] == 0)
            n_cols = int(col.max()) + 1
            dense = torch.zeros(crow.numel() - 1, n_cols + 1, dtype=torch.float64)
            dense.scatter_add_(1, torch.where(ell_col < 0, n_cols, ell_col).long(), ell_val.double())
            csr = sp.csr_matrix((val.double().numpy(), col.numpy(), crow.numpy()))
            assert torch.equal(dense[:, :n_cols], torch.from_numpy(csr.toarray()[:, :n_cols]))
            assert tk.ell_table(crow, col, val)[0] is ell_col  # built once per operator
            assert tk.ell_table(crow, col, val.clone())[0] is not ell_col  # new values, new table
    # the convolution taps of the icosphere have at most 7 non-zeros per row (the closed 1-ring)
    conv = tap_operator(layer_taps(MeshConv(1, 1, 2))[1:])
    assert tk.ell_table(conv.crow, conv.col, conv.val)[2] <= 7


@pytest.mark.slow  # a fresh interpreter
def test_module_imports_without_triton():
    code = (
        "import sys; sys.modules['triton'] = None; sys.modules['triton.language'] = None\n"
        "import torch, meshcnn, meshcnn.nn._triton_kernels as tk, meshcnn.nn._plan as plan\n"
        "assert not tk.available() and not tk.usable(torch.device('cpu'), torch.float32)\n"
        "x = torch.randn(2, 3, 42); layer = meshcnn.MeshConv(3, 4, 1)\n"
        "assert plan.choose_backend('cuda') == 'bag' and layer.kernel_backend == 'bag'\n"
        "layer(x).sum().backward(); print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_cpu_tensors_never_take_the_triton_path(monkeypatch):
    """The CPU path is untouched: the switch is off for CPU and meta tensors whatever the settings."""
    for device in ("cpu", "meta"):
        x = torch.empty(2, 3, 42, device=device)
        for dense in (torch.float32, torch.bfloat16):
            assert _plan.choose_backend(device) == "bag"
            plan = dataclasses.replace(_plan.KernelPlan(None), sparse_dtype=torch.float32, dense_dtype=dense)
            assert not plan.runs_triton(x)
    monkeypatch.setattr(tk, "mesh_conv_forward", None)  # would fail if called
    monkeypatch.setattr(tk, "mesh_conv_backward", None)
    layer = MeshConv(3, 4, 1)
    layer(torch.randn(2, 3, 42, requires_grad=True)).sum().backward()


# --------------------------------------------------------------------------------------------
# The kernels in the interpreter against the float64 reference
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,level", [("conv", 2), ("stride2", 2), ("transpose", 2), ("conv", 0), ("stride2", 1), ("transpose", 1)]
)
def test_kernels_equal_reference(interpreter, kind, level):
    """Forward and all three gradients of the kernels, float32, against the float64 formula."""
    layer, taps, v_in = _case(kind, level)
    plan = layer.plan.for_input(torch.empty(0))
    x = torch.randn(2, 3, v_in)
    w, b = layer.weight.detach(), layer.bias.detach()
    y = tk.mesh_conv_forward(x, w, b, plan)
    g = torch.randn(y.shape)
    y_ref, (dx_ref, dw_ref, db_ref) = _reference_with_grads(x, taps, w, b, g)
    assert y.dtype == torch.float32 and y.shape == y_ref.shape
    _assert_rel(y, y_ref, 2e-6, "y")
    dx, dw, db = tk.mesh_conv_backward(g, x, w, plan, True, True, True)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    _assert_rel(dx, dx_ref, 2e-6, "grad x")
    _assert_rel(dw, dw_ref, 2e-6, "grad W")
    _assert_rel(db, db_ref, 2e-6, "grad b")
    # only what is asked for
    for need in ((True, False, False), (False, True, False), (False, False, True)):
        got = tk.mesh_conv_backward(g, x, w, plan, *need)
        for flag, a, ref in zip(need, got, (dx, dw, db)):
            assert torch.equal(a, ref) if flag else a.numel() == 0


@pytest.mark.parametrize("op_taps", [1, 2, 3])
@pytest.mark.parametrize("identity_tap", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_mesh_conv_taps_through_dispatch(dispatch_on_cpu, op_taps, identity_tap, stride):
    """``mesh_conv`` with 1-3 operator taps (with/without identity, stride 1/2) on the Triton path."""
    level = 1
    m = icosphere(level)
    taps = layer_taps(MeshConv(1, 1, level, stride=stride))
    used = taps[: op_taps + 1] if identity_tap else taps[1 : op_taps + 1]
    op = tap_operator(used[int(identity_tap) :], torch.float32)
    torch.manual_seed(op_taps)
    x = torch.randn(3, 4, m.num_vertices, requires_grad=True)
    weight = torch.randn(6, 4, len(used), requires_grad=True)
    bias = torch.randn(6, requires_grad=True)
    y = mesh_conv(x, op, weight, bias, identity_tap=identity_tap)
    assert dispatch_on_cpu and all(dispatch_on_cpu)
    g = torch.randn(y.shape)
    y_ref, grads_ref = _reference_with_grads(x, used, weight, bias, g)
    _assert_rel(y, y_ref, 2e-6, "y")
    for got, want in zip(torch.autograd.grad(y, [x, weight, bias], g), grads_ref):
        _assert_rel(got, want, 2e-6, "grad")


def test_channels_over_one_tile(dispatch_on_cpu):
    """More channels than one tile holds (64) in and out: the channel loops and output tiles."""
    layer, taps, v_in = _case("conv", 0, cin=70, cout=80)
    x = torch.randn(2, 70, v_in, requires_grad=True)
    y = layer(x)
    g = torch.randn(y.shape)
    y_ref, grads_ref = _reference_with_grads(x, taps, layer.weight, layer.bias, g)
    _assert_rel(y, y_ref, 5e-6, "y")
    for got, want in zip(torch.autograd.grad(y, [x, layer.weight, layer.bias], g), grads_ref):
        _assert_rel(got, want, 5e-6, "grad")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_dense_products(dispatch_on_cpu, dtype):
    """bfloat16/float16 dense products (as under CUDA autocast): output dtype, values within the
    dtype's precision of the float64 formula, and equal to the bag path to rounding."""
    layer, taps, v_in = _case("stride2", 2)
    plan = dataclasses.replace(layer.plan, sparse_dtype=torch.float32, dense_dtype=dtype)
    x = torch.randn(2, 3, v_in, requires_grad=True)
    y = _ops.MeshConvFunction.apply(x, layer.weight, layer.bias, plan)
    assert y.dtype == dtype and all(dispatch_on_cpu)
    g = torch.randn(y.shape)
    y_ref, grads_ref = _reference_with_grads(x, taps, layer.weight, layer.bias, g)
    _assert_rel(y, y_ref, 2e-2, "y")
    grads = torch.autograd.grad(y, [x, layer.weight, layer.bias], g.to(dtype))
    assert [t.dtype for t in grads] == [torch.float32] * 3
    for got, want in zip(grads, grads_ref):
        _assert_rel(got, want, 2e-2, "grad")
    # the bag path with the same dtypes
    plan32 = dataclasses.replace(plan, dense_dtype=torch.float32)
    bag_y = _kernels.bag_forward(x.detach(), layer.weight.detach(), layer.bias.detach(), plan32)
    _assert_rel(y, bag_y, 2e-2, "y vs bag path")


def test_autocast_cpu_bfloat16(dispatch_on_cpu):
    """Under ``torch.autocast`` the layer gives the autocast dtype through the Triton path."""
    layer, taps, v_in = _case("conv", 1)
    x = torch.randn(2, 3, v_in)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16 and all(dispatch_on_cpu)
    _assert_rel(
        y,
        mesh_conv_reference(x.double(), taps, layer.weight.detach().double(), layer.bias.detach().double()),
        2e-2,
        "y",
    )


def test_opcheck_custom_operator(dispatch_on_cpu):
    """``torch.library.opcheck`` of ``meshcnn::mesh_conv`` running the Triton kernels."""
    layer, _, v_in = _case("stride2", 1)
    plan = layer.plan.for_input(torch.empty(0))
    x = torch.randn(2, 3, v_in, requires_grad=True)
    args = (x, layer.weight, layer.bias, *plan.flat())
    torch.library.opcheck(_ops.mesh_conv_op, args)
    assert any(dispatch_on_cpu)


def test_compile_fullgraph(dispatch_on_cpu):
    """``torch.compile(fullgraph=True)`` keeps the layer one custom-operator node, whose kernels are Triton's.

    AOT autograd with the eager backend: the graph capture and the custom operators are what is
    under test here (inductor's CPU code generation takes minutes on a busy host; the CUDA test
    below compiles with inductor)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        MeshConv(2, 4, 1),
        torch.nn.ReLU(),
        MeshConv(4, 4, 1, stride=2),
        MeshConvTranspose(4, 3, 1, orientation="invariant"),
    )
    x = torch.randn(2, 2, icosphere(1).num_vertices)
    eager = model(x)
    eager.square().sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    dispatch_on_cpu.clear()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    out.square().sum().backward()
    assert dispatch_on_cpu and all(dispatch_on_cpu)
    torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)
    for p, g in zip(model.parameters(), eager_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("capability,dtype", [(90, "fp32"), (90, "bf16"), (80, "fp16"), (80, "bf16")])
def test_kernels_compile_for_gpu_targets(capability, dtype, monkeypatch):
    """The kernels go through triton's real compiler (front end, MLIR passes, ptxas) for an H100/H200
    (sm_90) and an A100 (sm_80) without a GPU: what the interpreter cannot check (types, ``tl.dot``
    shapes and dtypes, shared memory). Skipped where triton has no NVIDIA backend."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as exc:
        pytest.skip(f"no ahead-of-time compilation in this triton: {exc}")
    gemm, weight_grad, _ = tk._kernels()
    target = GPUTarget("cuda", capability, 32)
    tl_dtype = getattr(triton.language, {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[dtype])
    gemm_sig = {
        "table_ptr": "*fp32",
        "ell_col_ptr": "*i32",
        "ell_val_ptr": "*fp32",
        "w_ptr": f"*{dtype}",
        "wid_ptr": f"*{dtype}",
        "bias_ptr": "*fp32",
        "out_ptr": f"*{dtype}",
        "n_rows": "i32",
        "n_table_rows": "i32",
        "n_ident": "i32",
        "M": "i32",
        "N": "i32",
    }
    wgrad_sig = {
        "x_ptr": "*fp32",
        "g_ptr": "*fp32",
        "ell_col_ptr": "*i32",
        "ell_val_ptr": "*fp32",
        "part_ptr": "*fp32",
        "B": "i32",
        "n_rows": "i32",
        "n_g_rows": "i32",
        "C": "i32",
        "O": "i32",
        "n_tiles": "i32",
        "n_split": "i32",
    }
    cases = [
        (gemm, gemm_sig, dict(T=3, K=7, HAS_ID=True, HAS_BIAS=True, BLOCK_V=tk.BLOCK_V, BLOCK_M=16, BLOCK_N=32)),
        (gemm, gemm_sig, dict(T=4, K=19, HAS_ID=False, HAS_BIAS=False, BLOCK_V=tk.BLOCK_V, BLOCK_M=64, BLOCK_N=16)),
        (weight_grad, wgrad_sig, dict(T=3, K=7, BLOCK_U=tk.BLOCK_U, BLOCK_C=16, BLOCK_O=32, DOT_DTYPE=tl_dtype)),
    ]
    for kernel, signature, constants in cases:
        constants = {**constants, "PRECISION": "ieee", "UPCAST": False}
        compiled = triton.compile(
            ASTSource(kernel, {**signature, **{k: "constexpr" for k in constants}}, constants), target=target
        )
        assert compiled.metadata.shared <= 48 * 1024  # fits any CUDA GPU's static shared memory
        if dtype != "fp32":
            assert "mma" in compiled.asm["ptx"]  # the dense product on the tensor cores


# --------------------------------------------------------------------------------------------
# CUDA (skipped without a GPU): the compiled kernels
# --------------------------------------------------------------------------------------------
@pytest.fixture
def compiled_kernels(monkeypatch):
    if not CUDA:
        pytest.skip("needs a CUDA device")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.delenv("MESHCNN_TRITON", raising=False)


@needs_cuda
@pytest.mark.parametrize("kind,level", [("conv", 3), ("conv", 4), ("stride2", 4), ("transpose", 4)])
def test_cuda_kernels_equal_float64_reference(compiled_kernels, kind, level):
    layer, taps, v_in = _case(kind, level, cin=16, cout=16)
    layer = layer.cuda()
    x = torch.randn(4, 16, v_in, device="cuda", requires_grad=True)
    assert layer.kernel_backend == "triton" and layer.plan.for_input(x).runs_triton(x, layer.weight)
    y = layer(x)
    g = torch.randn(y.shape, device="cuda")
    y_ref, grads_ref = _reference_with_grads(x.cpu(), taps, layer.weight.cpu(), layer.bias.cpu(), g.cpu())
    _assert_rel(y.cpu(), y_ref, 1e-5, "y")
    for got, want in zip(torch.autograd.grad(y, [x, layer.weight, layer.bias], g), grads_ref):
        _assert_rel(got.cpu(), want, 2e-5, "grad")


@needs_cuda
def test_cuda_switch_off_gives_the_bag_path(compiled_kernels, monkeypatch):
    layer, _, v_in = _case("conv", 4, cin=8, cout=8)
    layer = layer.cuda()
    x = torch.randn(2, 8, v_in, device="cuda")
    y = layer(x)
    monkeypatch.setenv("MESHCNN_TRITON", "0")
    layer = layer.cuda()  # the backend is chosen again when the layer is moved
    assert layer.kernel_backend == "bag"
    torch.testing.assert_close(layer(x), y, rtol=1e-5, atol=1e-5)


@needs_cuda
def test_cuda_opcheck(compiled_kernels):
    layer, _, v_in = _case("stride2", 3)
    layer = layer.cuda()
    x = torch.randn(2, 3, v_in, device="cuda", requires_grad=True)
    for dense in (torch.float32, torch.bfloat16):
        args = (x, layer.weight, layer.bias, *dataclasses.replace(layer.plan.for_input(x), dense_dtype=dense).flat())
        torch.library.opcheck(_ops.mesh_conv_op, args)


@needs_cuda
def test_cuda_compile_fullgraph(compiled_kernels):
    torch.manual_seed(0)
    model = SphericalUNet(4, 3, max_level=4, min_level=1, width=8).cuda()
    x = torch.randn(2, 4, icosphere(4).num_vertices, device="cuda")
    eager = model(x)
    eager.square().sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    out.square().sum().backward()
    torch.testing.assert_close(out, eager, rtol=1e-4, atol=1e-4)
    for p, g in zip(model.parameters(), eager_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-3, atol=1e-4)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("kind", ["conv", "stride2", "transpose"])
def test_cuda_autocast(compiled_kernels, dtype, kind):
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("no bfloat16 on this GPU")
    layer, taps, v_in = _case(kind, 4, cin=16, cout=16)
    layer = layer.cuda()
    x = torch.randn(4, 16, v_in, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=dtype):
        y = layer(x)
    assert y.dtype == dtype
    g = torch.randn(y.shape, device="cuda")
    y_ref, grads_ref = _reference_with_grads(x.cpu(), taps, layer.weight.cpu(), layer.bias.cpu(), g.cpu())
    _assert_rel(y.cpu(), y_ref, 2e-2, "y")
    grads = torch.autograd.grad(y, [x, layer.weight, layer.bias], g.to(dtype))
    assert [t.dtype for t in grads] == [torch.float32] * 3
    for got, want in zip(grads, grads_ref):
        _assert_rel(got.cpu(), want, 2e-2, "grad")
