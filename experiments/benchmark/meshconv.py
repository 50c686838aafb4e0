"""Benchmark: meshcnn.MeshConv against the dense floor, the original UGSCNN computation and torch-harmonics.

One table, rows = icosphere levels 3..7 (and 8 with ``--large``); every column is
a forward+backward of a 16 -> 16 channel convolution on a batch of 8 float32
signals (input gradient included), median over ``--repeats`` runs after
``--warmup`` runs, the columns interleaved round-robin so that load on a shared
machine hits them alike:

1. ``meshcnn``: :class:`meshcnn.MeshConv`;
2. ``floor``: ``Conv1d(4*16, 16, kernel_size=1)`` on the same V, the dense work
   that any four-tap convolution must do;
3. ``original``: the computation of the original UGSCNN code (``original.py``), checked
   against MeshConv with the same weights (max relative difference printed);
4. ``torch-harmonics``: ``DiscreteContinuousConvS2(16, 16, kernel_shape=(3,))``
   on the equiangular ``nlat x 2 nlat`` grid with ``nlat x 2 nlat`` closest to V
   ("not installed" when torch-harmonics is missing).

Peak memory of each column is measured per step (input, activations and gradients
of one forward+backward, not the layer's construction), on CPU in a fresh process
per (column, level): see ``peak_memory.py``.

Also: a SphericalUNet (level 5, width 16, batch 8) training step, and the time
(and peak memory, on Linux) of generating each icosphere level 0..9 with its
operators (``Mesh.build``), each in a fresh subprocess.

``--meshes`` adds MeshConv (``fixed``) on other meshes than the icosphere (issue 18),
columns ``meshcnn@<kind>``, timed interleaved with the others (see :func:`bench_mesh`):
``random`` (``Mesh.from_points`` of as many uniformly random points as the level's
icosphere, seed 0, in the random order they are drawn), ``scrambled`` (the icosphere's
own vertices in a random order: same geometry and degrees, only the order changes),
``random-hilbert`` (the random points reordered along a Hilbert curve on the faces of the
cube before ``Mesh.from_points``: a prototype, not library code), ``random-rcm`` (the
library's ``Mesh.from_points(points, reorder="rcm")``: reverse Cuthill-McKee on the edges
of the triangulation) and
``healpix`` (``HealpixGrid(nside).mesh``, NESTED, ``nside`` the power of 2 with
``12 nside**2`` closest to V, with its own dense floor ``floor@healpix``). Each row
then prints each mesh's time over the icosphere's and its ratio to the dense floor
at its own V.

On a shared machine: ``--threads 1`` (one intra-op thread) and ``--clock cpu`` (each
column timed by the process's CPU time, ``time.process_time``, instead of wall-clock:
the work done, not the time spent descheduled); ``--no-original`` skips the slow
original column.

Usage::

    python experiments/benchmark/meshconv.py --json runs/benchmark/meshconv.json
    python experiments/benchmark/meshconv.py --device cuda --large
    python experiments/benchmark/meshconv.py --levels 5,7 --threads 1 --clock cpu --no-original --no-memory \
        --no-unet --mesh-levels 0 --meshes random scrambled random-hilbert random-rcm healpix --repeats 21
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import meshcnn
from meshcnn.io import save_json


def _sibling(name: str):
    """The module ``name``.py next to this file, loaded by its path (also when this file is loaded by path)."""
    spec = importlib.util.spec_from_file_location(f"meshcnn_benchmark_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_original, _memory = _sibling("original"), _sibling("peak_memory")
status_kib, reset_peak_rss, peak_step_memory_mib = (
    _memory.status_kib,
    _memory.reset_peak_rss,
    _memory.peak_step_memory_mib,
)
OriginalMeshConv, original_chunk = _original.OriginalMeshConv, _original.original_chunk
BATCH, CHANNELS = _original.BATCH, _original.CHANNELS
COLUMNS = ("meshcnn", "floor", "original", "torch-harmonics")
MESH_KINDS = ("random", "scrambled", "random-hilbert", "random-rcm", "healpix")
MESH_SEED = 0


# ----------------------------------------------------------------------------- other meshes (--meshes)
def random_points(n: int, seed: int = MESH_SEED) -> np.ndarray:
    """``n`` uniformly random unit vectors ``(n, 3)`` (normalised Gaussians), in the order drawn."""
    p = np.random.default_rng(seed).standard_normal((n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def _hilbert_index(x: np.ndarray, y: np.ndarray, bits: int) -> np.ndarray:
    """Index along the Hilbert curve of the ``2**bits`` square of integer points ``(x, y)``."""
    x, y = x.astype(np.int64), y.astype(np.int64)
    d = np.zeros_like(x)
    s = 1 << (bits - 1)
    while s > 0:
        rx, ry = (x & s) > 0, (y & s) > 0
        d += s * s * ((3 * rx) ^ ry)
        flip = ~ry  # rotate the quadrant
        mirror = flip & rx
        x, y = np.where(mirror, s - 1 - x, x), np.where(mirror, s - 1 - y, y)
        x, y = np.where(flip, y, x), np.where(flip, x, y)
        s >>= 1
    return d


def hilbert_order(points: np.ndarray, bits: int = 16) -> np.ndarray:
    """The permutation sorting unit vectors along a space-filling curve: by cube face
    (the largest coordinate's axis and sign), then along the Hilbert curve of the
    gnomonic coordinates on that face."""
    idx = np.arange(len(points))
    axis = np.abs(points).argmax(1)
    face = 2 * axis + (points[idx, axis] > 0)
    others = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    top = np.abs(points[idx, axis])
    n = 2**bits - 1
    u, v = ((np.clip(((points[idx, others[:, k]] / top + 1) / 2 * n).round(), 0, n)) for k in (0, 1))
    return np.lexsort((_hilbert_index(u, v, bits), face))


def healpix_nside_for(num_vertices: int) -> int:
    """The power of 2 ``nside`` whose ``12 nside**2`` is closest to ``num_vertices`` (in ratio)."""
    return min((2**k for k in range(14)), key=lambda n: abs(math.log(12 * n * n / num_vertices)))


@functools.lru_cache(maxsize=16)
def bench_mesh(kind: str, level: int) -> meshcnn.Mesh:
    """The mesh of column ``meshcnn@<kind>`` at ``level`` (see the module docstring), deterministic."""
    from meshcnn.geometry import Mesh

    v = meshcnn.icosphere(level).num_vertices
    if kind == "icosphere":
        return meshcnn.icosphere(level)
    if kind == "random":
        return Mesh.from_points(random_points(v), name="random")
    if kind == "scrambled":
        perm = np.random.default_rng(MESH_SEED).permutation(v)
        return Mesh.from_points(meshcnn.icosphere(level).vertices[perm], name="scrambled")
    if kind == "random-hilbert":
        p = random_points(v)
        return Mesh.from_points(p[hilbert_order(p)], name="random-hilbert")
    if kind == "random-rcm":
        return Mesh.from_points(random_points(v), name="random-rcm", reorder="rcm")
    if kind == "healpix":
        from meshcnn.grids import HealpixGrid

        return HealpixGrid(healpix_nside_for(v)).mesh
    raise ValueError(f"unknown mesh kind {kind!r}")


# ----------------------------------------------------------------------------- columns
def torch_harmonics_available() -> bool:
    try:
        import torch_harmonics  # noqa: F401 - imported only to probe the installation
    except Exception:
        return False
    return True


def grid_for(num_vertices: int) -> tuple[int, int]:
    """Equiangular ``(nlat, 2 nlat)`` grid whose size is closest to ``num_vertices``."""
    nlat = max(2, round(math.sqrt(num_vertices / 2)))
    return nlat, 2 * nlat


class Column:
    """A layer and its input for one benchmark column; ``step()`` runs forward+backward."""

    def __init__(self, name: str, level: int, device: torch.device, ref_max_gb: float, seed: int = 0) -> None:
        torch.manual_seed(seed)
        v = meshcnn.icosphere(level).num_vertices
        self.name, self.detail = name, ""
        if name.startswith("meshcnn@"):  # "meshcnn@<mesh kind>": MeshConv on another mesh
            mesh = bench_mesh(name.partition("@")[2], level)
            self.layer = meshcnn.MeshConv(CHANNELS, CHANNELS, mesh=mesh).to(device)
            shape = (BATCH, CHANNELS, mesh.num_vertices)
        elif name.startswith("floor@"):  # the dense floor at that mesh's V
            self.layer = nn.Conv1d(4 * CHANNELS, CHANNELS, kernel_size=1).to(device)
            shape = (BATCH, 4 * CHANNELS, bench_mesh(name.partition("@")[2], level).num_vertices)
        elif name == "meshcnn" or name.startswith("meshcnn:"):  # "meshcnn:<orientation>"
            orientation = name.partition(":")[2] or "fixed"
            self.layer = meshcnn.MeshConv(CHANNELS, CHANNELS, level, orientation=orientation).to(device)
            shape = (BATCH, CHANNELS, v)
        elif name == "floor":
            self.layer = nn.Conv1d(4 * CHANNELS, CHANNELS, kernel_size=1).to(device)
            shape = (BATCH, 4 * CHANNELS, v)
        elif name == "original":
            ref = meshcnn.MeshConv(CHANNELS, CHANNELS, level)
            chunk = original_chunk(level, device, ref_max_gb)
            self.layer = OriginalMeshConv(level, ref.weight, ref.bias, device, chunk=chunk)
            self.detail = f"batch in chunks of {chunk}" if chunk else ""
            shape = (BATCH, CHANNELS, v)
        elif name == "torch-harmonics":
            from torch_harmonics import DiscreteContinuousConvS2

            grid = grid_for(v)

            def make(**kwargs):
                return DiscreteContinuousConvS2(
                    CHANNELS,
                    CHANNELS,
                    in_shape=grid,
                    out_shape=grid,
                    kernel_shape=(3,),
                    grid_in="equiangular",
                    grid_out="equiangular",
                    **kwargs,
                ).to(device)

            self.layer = make()
            self.detail = f"{grid[0]}x{grid[1]}={grid[0] * grid[1]}"
            try:  # PyPI wheels of torch-harmonics carry CPU kernels only
                with torch.no_grad():
                    self.layer(torch.zeros(1, CHANNELS, *grid, device=device))
            except NotImplementedError:
                self.layer = make(optimized_kernel=False)
                self.detail += ", torch-sparse fallback (no optimized kernels for this device in the installed wheel)"
            shape = (BATCH, CHANNELS, *grid)
        else:
            raise ValueError(f"unknown column {name!r}")
        self.shape, self.device = shape, device

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(self.shape, device=self.device, requires_grad=True)
        with torch.no_grad():
            y = self.layer(x)
        return x, torch.randn_like(y)

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> None:
        x.grad = None
        self.layer.zero_grad(set_to_none=True)
        self.layer(x).backward(grad)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    steps: dict[str, Callable[[], None]],
    repeats: dict[str, int],
    warmup: int,
    device: torch.device,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each step; the steps run round-robin. ``clock``: wall-clock
    (``time.perf_counter``, default) or the process's CPU time (``time.process_time``)."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    rounds = warmup + max(repeats.values())
    for r in range(rounds):
        for name, step in steps.items():
            if r >= warmup + repeats[name]:
                continue
            sync(device)
            t0 = clock()
            step()
            sync(device)
            if r >= warmup:
                times[name].append(clock() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def probe_main(args: argparse.Namespace) -> None:
    kind, name, level = args.probe
    level = int(level)
    device = torch.device(args.device)
    if kind == "memory":
        column = Column(name, level, device, args.ref_max_gb)
        print(json.dumps({"peak_mib": peak_step_memory_mib(column)}))
    elif kind == "mesh":
        reset_peak_rss()
        base = status_kib("VmRSS")
        t0 = time.perf_counter()
        mesh = meshcnn.Mesh.build(level)
        seconds = time.perf_counter() - t0
        try:
            peak = (status_kib("VmHWM") - base) / 1024
        except (OSError, RuntimeError):
            peak = float("nan")
        print(json.dumps({"seconds": seconds, "peak_mib": peak, "num_vertices": mesh.num_vertices}))
    else:
        raise ValueError(f"unknown probe {kind!r}")


# ----------------------------------------------------------------------------- the benchmark
def unet_step_seconds(device: torch.device, repeats: int, warmup: int, compile_model: bool) -> dict:
    torch.manual_seed(0)
    model = meshcnn.models.SphericalUNet(CHANNELS, 8, max_level=5, min_level=0, width=16).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(BATCH, CHANNELS, meshcnn.icosphere(5).num_vertices, device=device)
    y = torch.randint(0, 8, (BATCH, x.shape[-1]), device=device)
    result = {}
    runs = {"eager": model}
    if compile_model:
        runs["compiled"] = torch.compile(model)
    for name, net in runs.items():

        def step(net=net):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()

        t0 = time.perf_counter()
        step()
        sync(device)
        first = time.perf_counter() - t0
        result[name] = time_interleaved({name: step}, {name: repeats}, max(0, warmup - 1), device)[name]
        if name == "compiled":
            result["compiled_first_step_s"] = first
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--device", default="cpu", help="cpu or cuda (default cpu)")
    add("--levels", default="3-7", help="conv levels, e.g. 3-7 (default) or 5,7")
    add("--large", action="store_true", help="also level 8")
    add("--repeats", type=int, default=10, help="timed runs per column (median; default 10)")
    add("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    add("--original-repeats", type=int, default=3, help="timed runs of the slow original column (default 3)")
    add(
        "--ref-max-gb",
        type=float,
        default=2.0,
        help="split the original's batch so its (B,O,C,V,4) broadcast stays under this (default 2)",
    )
    add("--no-memory", action="store_true", help="skip the peak-memory measurements")
    add("--mesh-levels", default="0-9", help="mesh generation levels (default 0-9)")
    add("--skip-large-meshes", action="store_true", help="no mesh generation above level 7")
    add("--no-unet", action="store_true", help="skip the SphericalUNet training step")
    add("--compile", action="store_true", help="also time torch.compile(SphericalUNet)")
    add(
        "--orientations",
        nargs="*",
        default=[],
        choices=[o for o in meshcnn.ORIENTATIONS if o != "fixed"],
        help="also time MeshConv with these orientations (columns 'meshcnn:<orientation>', "
        "timed interleaved with the others; ratio to the default 'fixed' printed per level)",
    )
    add(
        "--meshes",
        nargs="*",
        default=[],
        choices=MESH_KINDS,
        help="also time MeshConv (fixed) on these meshes (columns 'meshcnn@<kind>', timed interleaved with "
        "the others; time / icosphere and ratio to the dense floor at the mesh's V printed per level): "
        "random points, the icosphere's vertices scrambled, random points in Hilbert or RCM order, "
        "HEALPix of the nearest size",
    )
    add("--no-original", action="store_true", help="skip the (slow) original UGSCNN column")
    add(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads(N) first (default: torch's own; 1 on a shared machine)",
    )
    add(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time the conv columns by wall clock (default) or by the process's CPU time (time.process_time: "
        "with --threads 1, the work done, not the time spent descheduled on a loaded machine; CPU only)",
    )
    add("--json", default=None, help="write the results as JSON to this path")
    add("--probe", nargs=3, metavar=("KIND", "NAME", "LEVEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.probe:
        return args
    if not args.device.startswith(("cpu", "cuda")):
        parser.error(f"--device must be cpu or cuda, got {args.device!r}")
    if args.clock == "cpu" and not args.device.startswith("cpu"):
        parser.error("--clock cpu times CPU work: only with --device cpu")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    if args.device.startswith("cpu") and not args.no_memory and not reset_peak_rss():
        parser.error("peak memory needs /proc/self/clear_refs (Linux); pass --no-memory")
    return args


def run_meta(args: argparse.Namespace, device: torch.device, has_th: bool) -> dict:
    """The machine and settings of this run (printed and stored in the JSON)."""
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "batch": BATCH,
        "channels": CHANNELS,
        "dtype": "float32",
        "clock": args.clock,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "original_repeats": args.original_repeats,
        "torch_harmonics": (
            getattr(importlib.import_module("torch_harmonics"), "__version__", "unknown") if has_th else "not installed"
        ),
    }


def column_memory(name: str, level: int, device: torch.device, args: argparse.Namespace) -> float | str:
    """Peak step memory (MiB) of one column: in this process on CUDA, in a fresh one on CPU."""
    if device.type == "cuda":
        return peak_step_memory_mib(Column(name, level, device, args.ref_max_gb))
    answer = _memory.run_probe(
        __file__, ["--device", args.device, "--ref-max-gb", str(args.ref_max_gb), "--probe", "memory", name, str(level)]
    )
    return answer.get("peak_mib", answer.get("error"))


def bench_level(level: int, columns: list[str], args: argparse.Namespace, device: torch.device, has_th: bool) -> dict:
    """One table row: every column timed interleaved, the original checked against MeshConv."""
    cols = {name: Column(name, level, device, args.ref_max_gb) for name in columns}
    data = {name: col.inputs() for name, col in cols.items()}
    rel_diff = None
    if "original" in cols:
        with torch.no_grad():  # same weights => same output: the original against MeshConv
            x = data["meshcnn"][0].detach()
            cols["original"].layer.weight.copy_(cols["meshcnn"].layer.weight)
            cols["original"].layer.bias.copy_(cols["meshcnn"].layer.bias)
            a, b = cols["meshcnn"].layer(x), cols["original"].layer(x)
            rel_diff = ((a - b).abs().max() / a.abs().max()).item()
    steps = {name: (lambda c=cols[name], d=data[name]: c.step(*d)) for name in columns}
    repeats = {name: (args.original_repeats if name == "original" else args.repeats) for name in columns}
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    seconds = time_interleaved(steps, repeats, args.warmup, device, clock)
    memory = {} if args.no_memory else {name: column_memory(name, level, device, args) for name in columns}
    return {
        "level": level,
        "num_vertices": meshcnn.icosphere(level).num_vertices,
        "seconds": seconds,
        "peak_mib": memory,
        "details": {name: col.detail for name, col in cols.items() if col.detail},
        "original_max_rel_diff": rel_diff,
        "speedup_vs_original": (seconds["original"] / seconds["meshcnn"]) if "original" in seconds else None,
        "ratio_to_floor": seconds["meshcnn"] / seconds["floor"],
        "ratio_to_torch_harmonics": (seconds["meshcnn"] / seconds["torch-harmonics"])
        if has_th
        else "torch-harmonics not installed",
        "ratio_to_fixed": {o: seconds[f"meshcnn:{o}"] / seconds["meshcnn"] for o in args.orientations},
        "meshes": {kind: mesh_summary(kind, level, seconds) for kind in args.meshes},
    }


def mesh_summary(kind: str, level: int, seconds: dict[str, float]) -> dict:
    """Column ``meshcnn@<kind>`` of one row: its V, its time over the icosphere's (same V only)
    and over the dense floor at its own V."""
    mesh = bench_mesh(kind, level)
    t = seconds[f"meshcnn@{kind}"]
    floor = seconds.get(f"floor@{kind}", seconds["floor"])
    same_v = mesh.num_vertices == meshcnn.icosphere(level).num_vertices
    degree = np.bincount(mesh.faces.reshape(-1), minlength=mesh.num_vertices)
    return {
        "num_vertices": mesh.num_vertices,
        "name": mesh.name,
        "max_degree": int(degree.max()),
        "ratio_to_icosphere": t / seconds["meshcnn"] if same_v else None,
        "ratio_to_floor": t / floor,
    }


def report_unet(args: argparse.Namespace, device: torch.device) -> dict:
    unet = unet_step_seconds(device, max(3, args.repeats // 2), args.warmup, args.compile)
    line = (
        f"SphericalUNet(16 -> 8 classes, level 5 -> 0, width 16) training step (cross-entropy, Adam), "
        f"batch {BATCH}: eager {unet['eager'] * 1e3:.1f} ms"
    )
    if "compiled" in unet:
        line += (
            f", torch.compile {unet['compiled'] * 1e3:.1f} ms "
            f"(first step incl. compilation {unet['compiled_first_step_s']:.1f} s)"
        )
    print(line)
    return unet


def report_meshes(mesh_levels: list[int]) -> list[dict]:
    meshes = []
    if mesh_levels:
        print("mesh generation (Mesh.build, fresh process per level):")
    for level in mesh_levels:
        answer = _memory.run_probe(__file__, ["--probe", "mesh", "-", str(level)])
        answer["level"] = level
        meshes.append(answer)
        if "error" in answer:
            print(f"  level {level}: failed: {answer['error']}")
        else:
            print(
                f"  level {level}: V={answer['num_vertices']:>8d}  {answer['seconds']:8.2f} s  "
                f"peak {answer['peak_mib']:8.0f} MiB"
            )
    return meshes


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.probe:
        probe_main(args)
        return None
    device = torch.device(args.device)
    levels = meshcnn.geometry.mesh._parse_levels(args.levels) + ([8] if args.large else [])
    levels = list(dict.fromkeys(levels))
    mesh_levels = [
        lvl for lvl in meshcnn.geometry.mesh._parse_levels(args.mesh_levels) if lvl <= 7 or not args.skip_large_meshes
    ]
    has_th = torch_harmonics_available()
    columns = [c for c in COLUMNS if (c != "torch-harmonics" or has_th) and (c != "original" or not args.no_original)]
    columns += [f"meshcnn:{o}" for o in args.orientations] + [f"meshcnn@{kind}" for kind in args.meshes]
    columns += [f"floor@{kind}" for kind in args.meshes if kind == "healpix"]
    # subprocesses load the meshes from files instead of rebuilding them
    if not os.environ.get("MESHCNN_MESH_DIR"):
        os.environ["MESHCNN_MESH_DIR"] = os.path.join(tempfile.gettempdir(), "meshcnn-benchmark-meshes")
    meta = run_meta(args, device, has_th)
    print(
        f"# {meta['date_utc']}  torch {meta['torch']}  {meta['device_name']}  threads={meta['threads']}  "
        f"load={meta['load_avg']}"
    )
    print(
        f"# forward+backward, batch {BATCH}, {CHANNELS}->{CHANNELS} channels, float32, median of "
        f"{args.repeats} (original: {args.original_repeats}) after {args.warmup} warm-up; ms"
        + ("" if args.clock == "wall" else " of process CPU time")
    )
    rows = []
    for level in levels:
        rows.append(bench_level(level, columns, args, device, has_th))
        gc.collect()
        _print_row(rows[-1], has_th, first=level == levels[0])
    unet = None if args.no_unet else report_unet(args, device)
    result = {"meta": meta, "conv": rows, "unet_step_seconds": unet, "mesh_generation": report_meshes(mesh_levels)}
    if args.json:
        save_json(args.json, result)
        print(f"wrote {args.json}")
    return result


def _print_row(row: dict, has_th: bool, first: bool) -> None:
    names = list(row["seconds"]) + ([] if has_th else ["torch-harmonics"])
    if first:
        head = f"{'level':>5} {'V':>8} | " + " ".join(f"{n:>{max(16, len(n))}}" for n in names)
        head += (
            " | orig/mc  mc/floor"
            + ("  mc/th" if has_th else "")
            + " | peak MiB "
            + " ".join(f"{n.replace('meshcnn@', '@').replace('floor@', 'f@')[:8]:>8}" for n in names)
            + " | max rel diff orig"
        )
        print(head)
    line = f"{row['level']:>5} {row['num_vertices']:>8} | " + " ".join(
        f"{row['seconds'][n] * 1e3:{max(16, len(n))}.2f}" if n in row["seconds"] else f"{'not installed':>16}"
        for n in names
    )
    orig = row["speedup_vs_original"]
    line += (f" | {orig:7.1f}x" if orig is not None else f" | {'-':>8}") + f" {row['ratio_to_floor']:7.2f}x"
    if has_th:
        line += f" {row['ratio_to_torch_harmonics']:6.2f}x"
    mem = row["peak_mib"]
    line += " | " + " ".join(f"{mem[n]:8.0f}" if isinstance(mem.get(n), float) else f"{'-':>8}" for n in names)
    diff = row["original_max_rel_diff"]
    line += f" | {diff:.1e}" if diff is not None else " | -"
    if row["details"]:
        line += "  (" + "; ".join(f"{k}: {v}" for k, v in row["details"].items()) + ")"
    if row.get("ratio_to_fixed"):
        line += "\n      orientation cost, time / fixed: " + ", ".join(
            f"{o} {r:.2f}x" for o, r in row["ratio_to_fixed"].items()
        )
    if row.get("meshes"):
        line += (
            f"\n      meshes (fixed), time / icosphere and mc/floor (icosphere {row['ratio_to_floor']:.2f}x): "
            + ", ".join(
                f"{kind} "
                + (
                    f"{m['ratio_to_icosphere']:.2f}x"
                    if m["ratio_to_icosphere"] is not None
                    else f"V={m['num_vertices']}"
                )
                + f" ({m['ratio_to_floor']:.2f}x)"
                for kind, m in row["meshes"].items()
            )
        )
    print(line, flush=True)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
