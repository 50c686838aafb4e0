"""The MeshConv implementations tried on the way to the current one, timed side by side.

Each variant computes the same 16 -> 16 channel MeshConv (batch 8, float32) with the
same weights; the script checks that they agree, then times forward+backward
round-robin (median and min of wall-clock and of process CPU time, after one
warm-up run). CPU time (``time.process_time``, summed over threads) is much less
sensitive than wall-clock time to other jobs on a shared machine; with
``--threads 1`` it is a good measure of the work each variant does.

Variants:

* ``v0-csr-einsum``: the first implementation (commit e1863ed): one
  ``torch.sparse_csr_tensor @`` product of the tap-major stacked operator with
  ``x`` laid out ``(V, B*C)``, a custom autograd Function using the precomputed
  transpose, then ``einsum("tvbc,oct->bov")`` (permute copies of the
  ``4x`` larger feature tensor in forward and backward);
* ``v1-csr-per-sample``: the current layout (per-sample vertex-major tables,
  GEMMs reading the features transposed, identity tap applied directly) but the
  sparse product done with ``torch.sparse_csr_tensor @``;
* ``v2-gather-stencil``: the same, with the sparse product as a dense 1-ring
  gather: ``(V, 7)`` neighbour indices and ``(V, T, 7)`` weights,
  ``bmm(weights, table[ring])`` (stride-1 convolutions only);
* ``current``: :class:`meshcnn.MeshConv` as shipped: the sparse product as a
  weighted ``embedding_bag`` (CSR rows = bags);
* ``current-compiled`` (``--compile``): ``torch.compile(MeshConv)`` with inductor.

Usage::

    python experiments/benchmark/variants.py --level 5 --threads 1 --repeats 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch

import meshcnn
from meshcnn.nn.functional import stack_taps
from meshcnn.nn.layers import tap_operators

BATCH, CHANNELS = 8, 16


# ----------------------------------------------------------------------------- v0
class _CsrMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, matrix, matrix_t):
        ctx.matrix_t = matrix_t
        return matrix @ x

    @staticmethod
    def backward(ctx, grad):
        return ctx.matrix_t @ grad.contiguous(), None, None


def _csr(matrix: sp.spmatrix) -> torch.Tensor:
    m = sp.csr_matrix(matrix, dtype=np.float32)
    return torch.sparse_csr_tensor(
        torch.from_numpy(m.indptr.astype(np.int64)),
        torch.from_numpy(m.indices.astype(np.int64)),
        torch.from_numpy(m.data),
        m.shape,
        check_invariants=False,
    )


class CsrEinsumConv(torch.nn.Module):
    """v0: tap-major CSR product on (V, B*C) and an einsum."""

    def __init__(self, level: int, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        mesh = meshcnn.icosphere(level)
        stacked = sp.vstack(tap_operators(mesh, mesh.num_vertices), format="csr")
        self.matrix, self.matrix_t = _csr(stacked), _csr(stacked.T)
        self.weight = torch.nn.Parameter(weight.detach().clone())
        self.bias = torch.nn.Parameter(bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, v = x.shape
        xt = x.permute(2, 0, 1).reshape(v, batch * channels)
        feats = _CsrMatmul.apply(xt, self.matrix, self.matrix_t).view(4, v, batch, channels)
        return torch.einsum("tvbc,oct->bov", feats, self.weight) + self.bias.view(1, -1, 1)


# ----------------------------------------------------------------------------- v1, v2: the layout with a given kernel
class CsrKernel:
    """``S @ table`` (forward) and ``S^T @ grad`` (backward) with ``torch.sparse_csr_tensor @``."""

    def __init__(self, taps: list[sp.spmatrix]) -> None:
        stacked = stack_taps(taps)  # (V T, V) vertex-major
        self.matrix, self.matrix_t = _csr(stacked), _csr(stacked.T)

    def forward(self, table: torch.Tensor) -> torch.Tensor:
        return self.matrix @ table

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        return self.matrix_t @ grad


class GatherKernel:
    """The same products as a dense 1-ring gather: ``(V, 7)`` neighbour indices and ``(V, T, 7)`` weights."""

    def __init__(self, mesh: meshcnn.Mesh, taps: list[sp.spmatrix]) -> None:
        v = mesh.num_vertices
        nb = mesh.neighbors
        ring = np.concatenate([np.arange(v)[:, None], np.where(nb < 0, np.arange(v)[:, None], nb)], axis=1)
        pad = np.concatenate([np.zeros((v, 1), bool), nb < 0], axis=1)
        rows = np.repeat(np.arange(v), 7)
        w_fwd = np.stack([np.asarray(sp.csr_matrix(t)[rows, ring.ravel()]).reshape(v, 7) for t in taps], axis=1)
        w_bwd = np.stack([np.asarray(sp.csr_matrix(t)[ring.ravel(), rows]).reshape(v, 7) for t in taps], axis=1)
        w_fwd[np.broadcast_to(pad[:, None], w_fwd.shape)] = 0
        w_bwd[np.broadcast_to(pad[:, None], w_bwd.shape)] = 0
        self.ring = torch.from_numpy(ring)
        self.w_fwd, self.w_bwd = torch.from_numpy(w_fwd).float(), torch.from_numpy(w_bwd).float()
        self.taps = len(taps)

    def forward(self, table: torch.Tensor) -> torch.Tensor:  # (V, C) -> (V T, C)
        return torch.bmm(self.w_fwd, table[self.ring]).view(-1, table.shape[1])

    def backward(self, grad: torch.Tensor) -> torch.Tensor:  # (V T, C) -> (V, C): sum_t S_t^T grad_t
        g = grad.view(-1, self.taps, grad.shape[1])[self.ring]  # (V, 7, T, C)
        return torch.einsum("utj,ujtc->uc", self.w_bwd, g)


class _KernelMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table, kernel):
        ctx.kernel = kernel
        return kernel.forward(table)

    @staticmethod
    def backward(ctx, grad):
        return ctx.kernel.backward(grad.contiguous()), None


class PerSampleConv(torch.nn.Module):
    """The shipped layout (per-sample vertex-major tables, identity tap as a GEMM on ``x``, one GEMM
    with the ``(O, T C)`` weight) with the sparse product done by ``kernel``."""

    def __init__(self, conv: meshcnn.MeshConv, kernel) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(conv.weight.detach().clone())
        self.bias = torch.nn.Parameter(conv.bias.detach().clone())
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_channels, channels, taps = self.weight.shape
        w_op = self.weight[..., 1:].transpose(1, 2).reshape(out_channels, (taps - 1) * channels)
        y = torch.matmul(self.weight[..., 0], x) + self.bias[:, None]
        feats = [_KernelMatmul.apply(t, self.kernel).view(x.shape[2], -1) for t in x.transpose(1, 2).contiguous()]
        return y + torch.stack([w_op @ f.t() for f in feats])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as set by the environment)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also torch.compile(MeshConv) (inductor)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    torch.manual_seed(0)
    level = args.level
    v = meshcnn.icosphere(level).num_vertices
    conv = meshcnn.MeshConv(CHANNELS, CHANNELS, level)
    v0 = CsrEinsumConv(level, conv.weight, conv.bias)
    mesh = meshcnn.icosphere(level)
    op_taps = tap_operators(mesh, v)[1:]
    variants = {
        "v0-csr-einsum": v0,
        "v1-csr-per-sample": PerSampleConv(conv, CsrKernel(op_taps)),
        "v2-gather-stencil": PerSampleConv(conv, GatherKernel(mesh, op_taps)),
        "current": conv,
    }
    if args.compile:
        t0 = time.perf_counter()
        compiled = torch.compile(conv, fullgraph=True)
        xx = torch.randn(BATCH, CHANNELS, v, requires_grad=True)
        compiled(xx).sum().backward()
        print(f"torch.compile: first forward+backward (compilation) {time.perf_counter() - t0:.1f} s")
        variants["current-compiled"] = compiled
    x = torch.randn(BATCH, CHANNELS, v, requires_grad=True)
    grad = torch.randn(BATCH, CHANNELS, v)
    ref = conv(x).detach()
    (ref_grad,) = torch.autograd.grad(conv(x), x, grad)
    for name, f in variants.items():  # same output and input gradient as the layer
        y = f(x)
        (x_grad,) = torch.autograd.grad(y, x, grad)
        for got, want in ((y.detach(), ref), (x_grad, ref_grad)):
            diff = ((got - want).abs().max() / want.abs().max()).item()
            assert diff < 1e-5, f"{name} differs from MeshConv by {diff:.2e}"
    wall = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    for r in range(args.repeats + 1):
        for name, f in variants.items():
            x.grad = None
            t0, c0 = time.perf_counter(), time.process_time()
            f(x).backward(grad)
            if r:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    print(
        f"# level {level} V={v} batch {BATCH} {CHANNELS}->{CHANNELS} float32 forward+backward, torch "
        f"{torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()}, {args.repeats} runs"
    )
    print(f"{'variant':20s} {'wall med':>9s} {'wall min':>9s} {'cpu med':>9s} {'cpu min':>9s}  (ms)")
    for name in variants:
        print(
            f"{name:20s} {statistics.median(wall[name]) * 1e3:9.2f} {min(wall[name]) * 1e3:9.2f} "
            f"{statistics.median(cpu[name]) * 1e3:9.2f} {min(cpu[name]) * 1e3:9.2f}"
        )


if __name__ == "__main__":
    main()
