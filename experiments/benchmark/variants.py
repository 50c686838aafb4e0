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
import meshcnn.nn.functional as fn
from meshcnn.nn import csr_from_scipy
from meshcnn.nn.layers import tap_operators

BATCH, CHANNELS = 8, 16


# ----------------------------------------------------------------------------- v0
class _CsrMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, op):
        ctx.op = op
        return torch.sparse_csr_tensor(op.crow, op.col, op.val, op.shape, check_invariants=False) @ x

    @staticmethod
    def backward(ctx, grad):
        op = ctx.op
        mat_t = torch.sparse_csr_tensor(op.crow_t, op.col_t, op.val_t, (op.shape[1], op.shape[0]),
                                        check_invariants=False)
        return mat_t @ grad.contiguous(), None


class CsrEinsumConv(torch.nn.Module):
    """v0: tap-major CSR product on (V, B*C) and an einsum."""

    def __init__(self, level: int, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        mesh = meshcnn.icosphere(level)
        self.op = csr_from_scipy(sp.vstack(tap_operators(mesh, mesh.num_vertices), format="csr"))
        self.weight = torch.nn.Parameter(weight.detach().clone())
        self.bias = torch.nn.Parameter(bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, v = x.shape
        xt = x.permute(2, 0, 1).reshape(v, batch * channels)
        feats = _CsrMatmul.apply(xt, self.op).view(4, v, batch, channels)
        return torch.einsum("tvbc,oct->bov", feats, self.weight) + self.bias.view(1, -1, 1)


# ----------------------------------------------------------------------------- v1, v2: swap the sparse kernel
def csr_kernel(crow, col, val, table):
    shape = (crow.shape[0] - 1, table.shape[0])
    return torch.sparse_csr_tensor(crow, col, val, shape, check_invariants=False) @ table


def make_gather_kernel(level: int):
    """Dense 1-ring gather for the stride-1 MeshConv operator and its transpose stack."""
    mesh = meshcnn.icosphere(level)
    v = mesh.num_vertices
    nb = mesh.neighbors
    ring = np.concatenate([np.arange(v)[:, None], np.where(nb < 0, np.arange(v)[:, None], nb)], axis=1)
    pad = np.concatenate([np.zeros((v, 1), bool), nb < 0], axis=1)
    taps = [sp.csr_matrix(t) for t in tap_operators(mesh, v)[1:]]
    rows = np.repeat(np.arange(v), 7)
    w_fwd = np.stack([np.asarray(t[rows, ring.ravel()]).reshape(v, 7) for t in taps], axis=1)  # S_t[v, ring]
    w_bwd = np.stack([np.asarray(t[ring.ravel(), rows]).reshape(v, 7) for t in taps], axis=1)  # S_t[ring, u]
    w_fwd[np.broadcast_to(pad[:, None], w_fwd.shape)] = 0
    w_bwd[np.broadcast_to(pad[:, None], w_bwd.shape)] = 0
    ring_t = torch.from_numpy(ring)
    weights = {True: torch.from_numpy(w_fwd).float(), False: torch.from_numpy(w_bwd).float()}
    forward_crow_len = []

    def kernel(crow, col, val, table):
        is_forward = crow.data_ptr() == forward_crow_len[0]
        return torch.bmm(weights[is_forward], table[ring_t]).view(-1, table.shape[1])

    return kernel, forward_crow_len


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
    gather, marker = make_gather_kernel(level)
    marker.append(conv.op_crow.data_ptr())
    bag = fn._bag_matmul

    def with_kernel(kernel):
        def run(x):
            fn._bag_matmul = kernel
            try:
                return conv(x)
            finally:
                fn._bag_matmul = bag
        return run

    variants = {"v0-csr-einsum": v0, "v1-csr-per-sample": with_kernel(csr_kernel),
                "v2-gather-stencil": with_kernel(gather), "current": conv}
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
    for name, f in variants.items():
        diff = ((f(x).detach() - ref).abs().max() / ref.abs().max()).item()
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
    print(f"# level {level} V={v} batch {BATCH} {CHANNELS}->{CHANNELS} float32 forward+backward, torch "
          f"{torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()}, {args.repeats} runs")
    print(f"{'variant':20s} {'wall med':>9s} {'wall min':>9s} {'cpu med':>9s} {'cpu min':>9s}  (ms)")
    for name in variants:
        print(f"{name:20s} {statistics.median(wall[name]) * 1e3:9.2f} {min(wall[name]) * 1e3:9.2f} "
              f"{statistics.median(cpu[name]) * 1e3:9.2f} {min(cpu[name]) * 1e3:9.2f}")


if __name__ == "__main__":
    main()
