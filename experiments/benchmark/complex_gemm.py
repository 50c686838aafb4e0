"""The directional product of the ``"invariant"`` orientation: one real GEMM against Gauss's three.

``"invariant"`` forms, per vertex, the complex combination ``z = (a + i b)(P + i Q)`` of the two
directional features ``P = D_1 x``, ``Q = D_2 x`` ``(C, V)`` with the complex weight ``a + i b``
``(O, C)``. The kernel (``meshcnn.nn._kernels``) computes it as one real GEMM,
``[Re z; Im z] = [[a, -b], [b, a]] [P; Q]``: ``4 O C`` flops per vertex. Gauss's trick (the "3M"
method) needs three products, ``T_1 = a P``, ``T_2 = b Q``, ``T_3 = (a + b)(P + Q)``, then
``Re z = T_1 - T_2`` and ``Im z = T_3 - T_1 - T_2``: ``3 O C`` flops plus additions over ``(C, V)``
and ``(O, V)``. This script times the two on one sample, and a single ``O x C`` product (the cost
of one of Gauss's three, so ``3x`` that is the best the trick could do), and checks that they agree.

Usage::

    python experiments/benchmark/complex_gemm.py [--levels 5,7] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

CHANNELS = 16  # the project benchmark's width (experiments/benchmark/meshconv.py)


def cpu_ms(step, repeats: int, warmup: int = 3) -> float:
    """Median process CPU time of ``step()`` in ms."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        step()
        times.append(time.process_time() - t0)
    return 1e3 * statistics.median(times)


def compare(num_vertices: int, repeats: int, channels: int = CHANNELS) -> dict[str, float]:
    """Times (ms) of the real GEMM, Gauss's three products and one ``O x C`` product; their max difference."""
    o = c = channels
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(num_vertices, 2 * c, generator=gen)  # vertex-major [P | Q], as the kernel keeps them
    a, b = torch.randn(o, c, generator=gen), torch.randn(o, c, generator=gen)
    w_dir = torch.cat([torch.cat([a, -b], 1), torch.cat([b, a], 1)], 0)
    p, q = features[:, :c], features[:, c:]
    z_real = torch.empty(2 * o, num_vertices)
    z_gauss = torch.empty(2 * o, num_vertices)
    s = torch.empty(num_vertices, c)
    t = torch.empty(3, o, num_vertices)
    ab = a + b

    def real_gemm():
        torch.mm(w_dir, features.t(), out=z_real)

    def gauss():
        torch.add(p, q, out=s)
        torch.mm(a, p.t(), out=t[0])
        torch.mm(b, q.t(), out=t[1])
        torch.mm(ab, s.t(), out=t[2])
        torch.sub(t[0], t[1], out=z_gauss[:o])
        torch.sub(t[2], t[0], out=z_gauss[o:]).sub_(t[1])

    def one_product():
        torch.mm(a, p.t(), out=t[0])

    real_gemm()
    gauss()
    scale = float(z_real.abs().max())
    return {
        "real_gemm_ms": cpu_ms(real_gemm, repeats),
        "gauss_ms": cpu_ms(gauss, repeats),
        "one_product_ms": cpu_ms(one_product, repeats),
        "max_rel_diff": float((z_real - z_gauss).abs().max()) / scale,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="5,7", help="icosphere levels whose vertex counts to time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=0, help="timed calls (default: 200 below 50k vertices, else 20)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    print(f"# torch {torch.__version__}  threads={args.threads}  {CHANNELS}->{CHANNELS} channels, one sample, float32")
    print("level        V | real 2Ox2C GEMM  Gauss (3M)  one OxC product | Gauss / real  max rel diff")
    for level in (int(s) for s in args.levels.split(",")):
        num_vertices = 10 * 4**level + 2
        repeats = args.repeats or (200 if num_vertices < 50_000 else 20)
        row = {"level": level, "num_vertices": num_vertices, **compare(num_vertices, repeats)}
        rows.append(row)
        print(
            f"{level:5d} {num_vertices:8d} | {row['real_gemm_ms']:12.3f} ms {row['gauss_ms']:8.3f} ms "
            f"{row['one_product_ms']:12.3f} ms | {row['gauss_ms'] / row['real_gemm_ms']:9.2f}x  "
            f"{row['max_rel_diff']:.1e}"
        )
    return rows


if __name__ == "__main__":
    main()
