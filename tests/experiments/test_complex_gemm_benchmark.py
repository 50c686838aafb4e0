"""experiments/benchmark/complex_gemm.py on small sizes: Gauss's three products give the same directional
product as the real GEMM the ``"invariant"`` kernel uses, and the table prints."""

from __future__ import annotations

import pytest
import torch
from _helpers import load_script

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark/complex_gemm.py")


def test_gauss_and_real_gemm_agree_with_the_complex_product(bench):
    row = bench.compare(num_vertices=162, repeats=1, channels=4)
    assert row["max_rel_diff"] < 1e-5
    assert all(row[k] >= 0 for k in ("real_gemm_ms", "gauss_ms", "one_product_ms"))


def test_real_gemm_is_the_complex_product():
    """The block weight ``[[a, -b], [b, a]]`` on ``[P; Q]`` is ``(a + i b)(P + i Q)`` (the kernel's convention)."""
    from meshcnn.nn._kernels import _invariant_weights

    gen = torch.Generator().manual_seed(1)
    o, c, v = 3, 5, 7
    weight = torch.randn(o, c, 4, generator=gen, dtype=torch.float64)  # [identity, L, a, b]
    _, _, w_dir = _invariant_weights(weight, True, torch.float64)
    p, q = torch.randn(c, v, generator=gen, dtype=torch.float64), torch.randn(c, v, generator=gen, dtype=torch.float64)
    z = torch.complex(weight[..., 2], weight[..., 3]) @ torch.complex(p, q)
    torch.testing.assert_close(w_dir @ torch.cat([p, q]), torch.cat([z.real, z.imag]))


def test_table(bench, capsys):
    rows = bench.main(["--levels", "1", "--repeats", "1"])
    assert [r["num_vertices"] for r in rows] == [42]
    assert "Gauss / real" in capsys.readouterr().out
