"""MeshConv against torch-harmonics over minutes, in windows: how robust is the comparison?

On a shared 2-core VM the level-5 timings swing between two machine states that last
minutes (``RESULTS.md`` section I), so one benchmark row can land in either. This
script times, round-robin for ``--seconds``, three steps at one level (forward+backward,
batch 8, 16 -> 16 channels, float32): ``meshcnn.MeshConv`` as shipped, the same layer
with one bag kernel per sample (``block_samples = 1``, the code before section J) and
torch-harmonics' ``DiscreteContinuousConvS2`` (if installed), then prints the median
of each window of ``--window`` rounds and a summary: medians, and in how many windows
each MeshConv variant beat torch-harmonics.

Usage::

    python experiments/benchmark/monitor.py --level 5 --seconds 240
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import statistics
import time
from pathlib import Path
from types import ModuleType

import torch

import meshcnn
from meshcnn.cli import level_option
from meshcnn.nn._buffers import OperatorBuffers  # a layer with another samples-per-kernel rule


def _load_benchmark() -> ModuleType:
    """``meshconv.py`` next to this file (the benchmark's own columns), loaded by its path."""
    path = Path(__file__).resolve().with_name("meshconv.py")
    spec = importlib.util.spec_from_file_location("meshcnn_benchmark_meshconv", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_benchmark = _load_benchmark()
BATCH, CHANNELS, Column, torch_harmonics_available = (
    _benchmark.BATCH,
    _benchmark.CHANNELS,
    _benchmark.Column,
    _benchmark.torch_harmonics_available,
)


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[level_option(5)])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--window", type=int, default=15, help="rounds per window (default 15)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    device = torch.device("cpu")
    conv = meshcnn.MeshConv(CHANNELS, CHANNELS, args.level)
    per_sample = copy.deepcopy(conv)  # one bag kernel per sample: the pre-section-J code path
    per_sample.op = OperatorBuffers(dataclasses.replace(conv.operator, block_samples=1))
    x = torch.randn(BATCH, CHANNELS, meshcnn.icosphere(args.level).num_vertices, requires_grad=True)
    grad = torch.randn_like(x)

    def step(layer: torch.nn.Module) -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).backward(grad)

    steps = {f"meshcnn (k={conv.operator.block_samples})": lambda: step(conv), "per-sample": lambda: step(per_sample)}
    if torch_harmonics_available():
        th = Column("torch-harmonics", args.level, device, ref_max_gb=2.0)
        th_inputs = th.inputs()
        steps["torch-harmonics"] = lambda: th.step(*th_inputs)
    for run in steps.values():  # warm-up
        run()
    print(
        f"# level {args.level}, batch {BATCH}, {CHANNELS}->{CHANNELS}, threads={torch.get_num_threads()}, "
        f"median ms per window of {args.window} interleaved rounds"
    )
    windows: dict[str, list[float]] = {name: [] for name in steps}
    end = time.monotonic() + args.seconds
    while time.monotonic() < end or not windows[next(iter(windows))]:
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.window):
            for name, run in steps.items():
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
        for name, values in times.items():
            windows[name].append(statistics.median(values) * 1e3)
        print(time.strftime("%H:%M:%S"), "  ".join(f"{n} {w[-1]:7.2f}" for n, w in windows.items()), flush=True)

    print(
        f"# {len(windows[next(iter(windows))])} windows; median of the window medians (ms):",
        "  ".join(f"{n} {statistics.median(w):.2f}" for n, w in windows.items()),
    )
    if "torch-harmonics" in windows:
        th_w = windows["torch-harmonics"]
        for name, w in windows.items():
            if name != "torch-harmonics":
                wins = sum(a < b for a, b in zip(w, th_w))
                print(f"# {name} faster than torch-harmonics in {wins} of {len(w)} windows")
    return windows


if __name__ == "__main__":
    main()
