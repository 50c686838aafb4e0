"""Training-step time of the climate U-Net on each sphere grid, side by side in one process.

    python experiments/benchmark/grid_unets.py --level 5 --rounds 15 --threads 1

Builds the climate main job's model (``SphericalUNet``, 16 inputs, 3 classes, width 8, down to
level 0) on every grid of :data:`meshcnn.grids.GRID_FAMILIES` at ``--level`` (icosphere level 5:
10,242 vertices; HEALPix order 5, nside 32: 12,288 pixels) and times one training step
(forward, cross-entropy, backward) on a batch of ``--batch-size`` random inputs. The grids take
turns, round after round, so that a busy machine slows them alike; the table gives the median
step, the median per 1,000 vertices, and the ratio of each grid to the first. It also counts
the non-zeros of the layers' stacked operators (the work of the sparse products): the
HEALPix hierarchy is not nested, so its stride-2 convolutions carry the restriction folded
into their taps (rows over the 4 children's 1-rings) and its transposed convolutions the
barycentric prolongation (3 coarse vertices per fine one, the icosphere's 2).

Results: ``experiments/benchmark/RESULTS.md``, "Climate U-Net on each grid (issue 18)".
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from meshcnn.cli import HELP_FORMATTER, apply_threads
from meshcnn.grids import GRID_FAMILIES, sphere_hierarchy
from meshcnn.models import SphericalUNet
from meshcnn.nn.layers import MeshConv, MeshConvTranspose


def operator_nonzeros(model: torch.nn.Module) -> int:
    """Non-zeros of every MeshConv's and MeshConvTranspose's stacked forward operator ``S``."""
    return sum(
        int(module.op.operator().val.numel())
        for module in model.modules()
        if isinstance(module, (MeshConv, MeshConvTranspose))
    )


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER)
    p.add_argument("--level", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    torch.manual_seed(0)
    cases = []
    for grid in GRID_FAMILIES:
        hierarchy = sphere_hierarchy(grid, args.level, 0)
        model = SphericalUNet(16, 3, width=8, hierarchy=hierarchy)
        v = hierarchy[0].num_vertices
        x = torch.randn(args.batch_size, 16, v)
        y = torch.randint(0, 3, (args.batch_size, v))
        cases.append(
            {"grid": grid, "vertices": v, "model": model, "x": x, "y": y, "times": [], "nnz": operator_nonzeros(model)}
        )

    def step(case: dict) -> float:
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(case["model"](case["x"]), case["y"])
        loss.backward()
        return time.perf_counter() - start

    for round_ in range(args.warmup + args.rounds):
        for case in cases:
            t = step(case)
            if round_ >= args.warmup:
                case["times"].append(t)
    base = statistics.median(cases[0]["times"])
    rows = []
    print(f"level {args.level}, batch {args.batch_size}, {args.threads} thread(s), {args.rounds} rounds (median)\n")
    print(
        "| grid | vertices | operator non-zeros | step, ms | ms per 1,000 vertices | ratio to icosphere "
        "| per vertex, ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        median = statistics.median(case["times"])
        per_vertex = median / case["vertices"] * 1000
        ratio = median / base
        per_vertex_ratio = ratio * cases[0]["vertices"] / case["vertices"]
        print(
            f"| {case['grid']} | {case['vertices']:,} | {case['nnz']:,} | {1000 * median:.1f} | "
            f"{1000 * per_vertex:.2f} | "
            f"{ratio:.2f} | {per_vertex_ratio:.2f} |"
        )
        rows.append(
            {"grid": case["grid"], "vertices": case["vertices"], "nnz": case["nnz"], "median_s": median, "ratio": ratio}
        )
    return rows


if __name__ == "__main__":
    main()
