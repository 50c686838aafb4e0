"""Benchmark: meshcnn.MeshConv against the dense floor, the original UGSCNN computation and torch-harmonics.

One table, rows = icosphere levels 3..7 (and 8 with ``--large``); every column is
a forward+backward of a 16 -> 16 channel convolution on a batch of 8 float32
signals (input gradient included), median over ``--repeats`` runs after
``--warmup`` runs, the columns interleaved round-robin so that load on a shared
machine hits them alike:

1. ``meshcnn``: :class:`meshcnn.MeshConv`;
2. ``floor``: ``Conv1d(4*16, 16, kernel_size=1)`` on the same V, the dense work
   that any four-tap convolution must do;
3. ``original``: the computation of the original UGSCNN code, re-implemented
   here from the paper's description (:class:`OriginalMeshConv`): three sparse
   COO products with ``torch.sparse.mm`` (face gradient ``(3F, V)``, Laplacian,
   face-to-vertex average), per-face east-west/north-south projection and a
   ``(batch, out, in, V, 4)`` broadcast multiply-sum. It is checked against
   MeshConv with the same weights (max relative difference printed);
4. ``torch-harmonics``: ``DiscreteContinuousConvS2(16, 16, kernel_shape=(3,))``
   on the equiangular ``nlat x 2 nlat`` grid with ``nlat x 2 nlat`` closest to V
   ("not installed" when torch-harmonics is missing).

Peak memory of each column is measured per step (input, activations and
gradients of one forward+backward, not the layer's construction). On CPU each
(column, level) runs in a fresh subprocess with glibc's mmap threshold pinned
low, so that every large tensor is its own mapping, returned to the OS when
freed; the subprocess resets its high-water mark (``/proc/self/clear_refs``)
just before the step and reports ``VmHWM`` minus the resident size before it.
A fresh process is needed because a process that already ran other columns
would reuse their freed pages. On CUDA it is ``torch.cuda.max_memory_allocated``
minus the allocation before the step.

Also: a SphericalUNet (level 5, width 16, batch 8) training step, and the time
(and peak memory, on Linux) of generating each icosphere level 0..9 with its
operators (``Mesh.build``), each in a fresh subprocess.

Usage::

    python experiments/benchmark/meshconv.py --json runs/benchmark/meshconv.json
    python experiments/benchmark/meshconv.py --device cuda --large
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

import igl
import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

import meshcnn
from meshcnn.geometry import operators as ops
from meshcnn.io import save_json

BATCH, CHANNELS = 8, 16
COLUMNS = ("meshcnn", "floor", "original", "torch-harmonics")


# ----------------------------------------------------------------------------- column 3: the original method
def _coo(matrix: sp.spmatrix, device: torch.device) -> torch.Tensor:
    m = sp.coo_matrix(matrix)
    indices = torch.from_numpy(np.stack([m.row, m.col]).astype(np.int64))
    values = torch.from_numpy(m.data).float()
    return torch.sparse_coo_tensor(indices, values, m.shape, device=device, check_invariants=False).coalesce()


class OriginalMeshConv(nn.Module):
    r"""The MeshConv of Jiang et al. (ICLR 2019) computed the way the original code does.

    For a signal ``x`` (B, C, V):

    * face gradient ``g = G x`` with libigl's ``(3F, V)`` gradient (one ``torch.sparse.mm``);
    * per face, ``g_ew = <g, e_ew>`` and ``g_ns = <g, e_ns>`` with the unit east/north
      vectors at the face centroid (dense elementwise products);
    * face-to-vertex area-weighted average of ``[g_ew, g_ns]`` (one ``torch.sparse.mm``),
      times the mean edge length ``h`` (meshcnn's dimension-free scaling);
    * Laplacian ``L x`` (one ``torch.sparse.mm``);
    * ``feat = stack([x, Lx, D_ew x, D_ns x], -1)`` (B, C, V, 4) and
      ``y = sum_{c,t} feat[b, None, c, v, t] * W[None, o, c, None, t]``: the
      ``(B, O, C, V, 4)`` broadcast multiply-sum; plus the bias.

    ``chunk``: process the batch in pieces of this many samples (to bound the
    broadcast's memory at large levels); the result is the same.
    """

    def __init__(self, level: int, weight: torch.Tensor, bias: torch.Tensor, device: torch.device,
                 chunk: int | None = None) -> None:
        super().__init__()
        mesh = meshcnn.icosphere(level)
        v, f = mesh.vertices, mesh.faces
        self.grad = _coo(igl.grad(v, f), device)
        self.laplacian = _coo(mesh.laplacian, device)
        self.average = _coo(ops.face_to_vertex(v, f), device)
        east, north = ops.tangent_frames(v, f)  # (F, 3) each
        # igl.grad stacks all x rows, then y, then z: (3, F, 1) to broadcast over B*C columns
        self.register_buffer("east", torch.from_numpy(east.T.copy()).float().unsqueeze(-1).to(device))
        self.register_buffer("north", torch.from_numpy(north.T.copy()).float().unsqueeze(-1).to(device))
        self.scale = mesh.mean_edge_length
        self.num_faces = mesh.num_faces
        self.weight = nn.Parameter(weight.detach().clone().to(device))
        self.bias = nn.Parameter(bias.detach().clone().to(device))
        self.chunk = chunk

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, num_vertices = x.shape
        cols = x.reshape(batch * channels, num_vertices).t()  # (V, B*C)
        grad_face = torch.sparse.mm(self.grad, cols).view(3, self.num_faces, batch * channels)
        grad_ew = (grad_face * self.east).sum(0)  # (F, B*C)
        grad_ns = (grad_face * self.north).sum(0)
        vert = torch.sparse.mm(self.average, torch.cat([grad_ew, grad_ns], dim=1)) * self.scale  # (V, 2*B*C)
        lap = torch.sparse.mm(self.laplacian, cols)  # (V, B*C)

        def to_bcv(t: torch.Tensor) -> torch.Tensor:
            return t.t().reshape(batch, channels, num_vertices)

        vert_ew, vert_ns = vert[:, : batch * channels], vert[:, batch * channels:]
        feat = torch.stack([x, to_bcv(lap), to_bcv(vert_ew), to_bcv(vert_ns)], dim=-1)  # (B, C, V, 4)
        out = (feat.unsqueeze(1) * self.weight[None, :, :, None, :]).sum(2).sum(-1)  # (B, O, C, V, 4) -> (B, O, V)
        return out + self.bias.view(1, -1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.chunk is None or self.chunk >= x.shape[0]:
            return self._forward(x)
        return torch.cat([self._forward(part) for part in x.split(self.chunk)], dim=0)


def original_chunk(level: int, device: torch.device, max_gb: float) -> int | None:
    """Batch chunk that keeps the ``(B, O, C, V, 4)`` broadcast under ``max_gb`` (None: whole batch)."""
    per_sample = CHANNELS * CHANNELS * meshcnn.icosphere(level).num_vertices * 4 * 4  # float32 bytes
    if per_sample * BATCH <= max_gb * 2**30:
        return None
    return max(1, int(max_gb * 2**30 // per_sample))


# ----------------------------------------------------------------------------- columns
def torch_harmonics_available() -> bool:
    try:
        import torch_harmonics  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
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
        if name == "meshcnn" or name.startswith("meshcnn:"):  # "meshcnn:<orientation>"
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
                return DiscreteContinuousConvS2(CHANNELS, CHANNELS, in_shape=grid, out_shape=grid,
                                                kernel_shape=(3,), grid_in="equiangular",
                                                grid_out="equiangular", **kwargs).to(device)

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


def time_interleaved(steps: dict[str, Callable[[], None]], repeats: dict[str, int], warmup: int,
                     device: torch.device) -> dict[str, float]:
    """Median seconds per call of each step; the steps run round-robin."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    rounds = warmup + max(repeats.values())
    for r in range(rounds):
        for name, step in steps.items():
            if r >= warmup + repeats[name]:
                continue
            sync(device)
            t0 = time.perf_counter()
            step()
            sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


# ----------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset the resident high-water mark (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_step_memory_mib(column: Column) -> float:
    """Peak extra memory (MiB) of allocating the input and running one forward+backward."""
    x, g = column.inputs()
    column.step(x, g)  # warm-up: one-time allocations (thread pools, kernels) are not the step's
    del x, g
    column.layer.zero_grad(set_to_none=True)
    gc.collect()
    if column.device.type == "cuda":
        torch.cuda.synchronize(column.device)
        base = torch.cuda.memory_allocated(column.device)
        torch.cuda.reset_peak_memory_stats(column.device)
        x, g = column.inputs()
        column.step(x, g)
        torch.cuda.synchronize(column.device)
        return (torch.cuda.max_memory_allocated(column.device) - base) / 2**20
    if not reset_peak_rss():
        raise RuntimeError("cannot reset the peak RSS (/proc/self/clear_refs); run with --no-memory")
    base = _status_kib("VmRSS")
    x, g = column.inputs()
    column.step(x, g)
    return (_status_kib("VmHWM") - base) / 1024


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    # every allocation above 64 KiB is its own mmap, unmapped when freed: RSS follows live tensors
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    env["MALLOC_TRIM_THRESHOLD_"] = "65536"
    return env


def run_probe(args: list[str]) -> dict:
    """Run this script with ``--probe ...`` in a fresh process; return its JSON answer."""
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_subprocess_env())
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe_main(args: argparse.Namespace) -> None:
    kind, name, level = args.probe
    level = int(level)
    device = torch.device(args.device)
    if kind == "memory":
        column = Column(name, level, device, args.ref_max_gb)
        print(json.dumps({"peak_mib": peak_step_memory_mib(column)}))
    elif kind == "mesh":
        reset_peak_rss()
        base = _status_kib("VmRSS")
        t0 = time.perf_counter()
        mesh = meshcnn.Mesh.build(level)
        seconds = time.perf_counter() - t0
        try:
            peak = (_status_kib("VmHWM") - base) / 1024
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


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:9.2f}"


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--levels", default="3-7", help="conv levels, e.g. 3-7 (default) or 5,7")
    parser.add_argument("--large", action="store_true", help="also level 8")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per column (median; default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--original-repeats", type=int, default=3,
                        help="timed runs of the slow original column (default 3)")
    parser.add_argument("--ref-max-gb", type=float, default=2.0,
                        help="split the original's batch so its (B,O,C,V,4) broadcast stays under this (default 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--mesh-levels", default="0-9", help="mesh generation levels (default 0-9)")
    parser.add_argument("--skip-large-meshes", action="store_true", help="no mesh generation above level 7")
    parser.add_argument("--no-unet", action="store_true", help="skip the SphericalUNet training step")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(SphericalUNet)")
    parser.add_argument("--orientations", nargs="*", default=[], choices=[o for o in meshcnn.ORIENTATIONS if o != "fixed"],
                        help="also time MeshConv with these orientations (columns 'meshcnn:<orientation>', "
                             "timed interleaved with the others; ratio to the default 'fixed' printed per level)")
    parser.add_argument("--json", default=None, help="write the results as JSON to this path")
    parser.add_argument("--probe", nargs=3, metavar=("KIND", "NAME", "LEVEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        probe_main(args)
        return None
    if not args.device.startswith(("cpu", "cuda")):
        parser.error(f"--device must be cpu or cuda, got {args.device!r}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    if device.type == "cpu" and not args.no_memory and not reset_peak_rss():
        parser.error("peak memory needs /proc/self/clear_refs (Linux); pass --no-memory")

    levels = meshcnn.geometry.mesh._parse_levels(args.levels)
    if args.large and 8 not in levels:
        levels.append(8)
    mesh_levels = meshcnn.geometry.mesh._parse_levels(args.mesh_levels)
    if args.skip_large_meshes:
        mesh_levels = [lvl for lvl in mesh_levels if lvl <= 7]
    has_th = torch_harmonics_available()
    columns = [c for c in COLUMNS if c != "torch-harmonics" or has_th]
    columns += [f"meshcnn:{o}" for o in args.orientations]

    # subprocesses load the meshes from files instead of rebuilding them
    if not os.environ.get("MESHCNN_MESH_DIR"):
        os.environ["MESHCNN_MESH_DIR"] = os.path.join(tempfile.gettempdir(), "meshcnn-benchmark-meshes")

    meta = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": platform.machine(), "processor": _cpu_name(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "batch": BATCH, "channels": CHANNELS, "dtype": "float32",
        "repeats": args.repeats, "warmup": args.warmup, "original_repeats": args.original_repeats,
        "torch_harmonics": _th_version() if has_th else "not installed",
    }
    print(f"# {meta['date_utc']}  torch {meta['torch']}  {meta['device_name']}  threads={meta['threads']}  "
          f"load={meta['load_avg']}")
    print(f"# forward+backward, batch {BATCH}, {CHANNELS}->{CHANNELS} channels, float32, median of "
          f"{args.repeats} (original: {args.original_repeats}) after {args.warmup} warm-up; ms")

    rows = []
    for level in levels:
        mesh = meshcnn.icosphere(level)
        cols = {name: Column(name, level, device, args.ref_max_gb) for name in columns}
        data = {name: col.inputs() for name, col in cols.items()}
        # same weights => same output: the original against MeshConv
        with torch.no_grad():
            x = data["meshcnn"][0].detach()
            cols["original"].layer.weight.copy_(cols["meshcnn"].layer.weight)
            cols["original"].layer.bias.copy_(cols["meshcnn"].layer.bias)
            a, b = cols["meshcnn"].layer(x), cols["original"].layer(x)
            rel_diff = ((a - b).abs().max() / a.abs().max()).item()
        steps = {name: (lambda c=cols[name], d=data[name]: c.step(*d)) for name in columns}
        repeats = {name: (args.original_repeats if name == "original" else args.repeats) for name in columns}
        seconds = time_interleaved(steps, repeats, args.warmup, device)
        memory = {}
        if not args.no_memory:
            for name in columns:
                if device.type == "cuda":
                    memory[name] = peak_step_memory_mib(Column(name, level, device, args.ref_max_gb))
                else:
                    answer = run_probe(["--device", args.device, "--ref-max-gb", str(args.ref_max_gb),
                                        "--probe", "memory", name, str(level)])
                    memory[name] = answer.get("peak_mib", answer.get("error"))
        row = {
            "level": level, "num_vertices": mesh.num_vertices,
            "seconds": seconds, "peak_mib": memory,
            "details": {name: col.detail for name, col in cols.items() if col.detail},
            "original_max_rel_diff": rel_diff,
            "speedup_vs_original": seconds["original"] / seconds["meshcnn"],
            "ratio_to_floor": seconds["meshcnn"] / seconds["floor"],
            "ratio_to_torch_harmonics": (seconds["meshcnn"] / seconds["torch-harmonics"]) if has_th
            else "torch-harmonics not installed",
            "ratio_to_fixed": {o: seconds[f"meshcnn:{o}"] / seconds["meshcnn"] for o in args.orientations},
        }
        rows.append(row)
        del cols, data
        gc.collect()
        _print_row(row, has_th, first=level == levels[0])

    unet = None
    if not args.no_unet:
        unet = unet_step_seconds(device, max(3, args.repeats // 2), args.warmup, args.compile)
        line = (f"SphericalUNet(16 -> 8 classes, level 5 -> 0, width 16) training step (cross-entropy, Adam), "
                f"batch {BATCH}: eager {unet['eager'] * 1e3:.1f} ms")
        if "compiled" in unet:
            line += (f", torch.compile {unet['compiled'] * 1e3:.1f} ms "
                     f"(first step incl. compilation {unet['compiled_first_step_s']:.1f} s)")
        print(line)

    meshes = []
    if mesh_levels:
        print("mesh generation (Mesh.build, fresh process per level):")
        for level in mesh_levels:
            answer = run_probe(["--probe", "mesh", "-", str(level)])
            answer["level"] = level
            meshes.append(answer)
            if "error" in answer:
                print(f"  level {level}: failed: {answer['error']}")
            else:
                print(f"  level {level}: V={answer['num_vertices']:>8d}  {answer['seconds']:8.2f} s  "
                      f"peak {answer['peak_mib']:8.0f} MiB")

    result = {"meta": meta, "conv": rows, "unet_step_seconds": unet, "mesh_generation": meshes}
    if args.json:
        save_json(args.json, result)
        print(f"wrote {args.json}")
    return result


def _print_row(row: dict, has_th: bool, first: bool) -> None:
    names = list(row["seconds"]) + ([] if has_th else ["torch-harmonics"])
    if first:
        head = f"{'level':>5} {'V':>8} | " + " ".join(f"{n:>16}" for n in names)
        head += " | orig/mc  mc/floor" + ("  mc/th" if has_th else "") + " | peak MiB " + " ".join(
            f"{n[:8]:>8}" for n in names) + " | max rel diff orig"
        print(head)
    line = f"{row['level']:>5} {row['num_vertices']:>8} | " + " ".join(
        f"{fmt_ms(row['seconds'][n]) if n in row['seconds'] else 'not installed':>16}" for n in names)
    line += f" | {row['speedup_vs_original']:7.1f}x {row['ratio_to_floor']:7.2f}x"
    if has_th:
        line += f" {row['ratio_to_torch_harmonics']:6.2f}x"
    mem = row["peak_mib"]
    line += " | " + " ".join(
        f"{mem[n]:8.0f}" if isinstance(mem.get(n), float) else f"{'-':>8}" for n in names)
    line += f" | {row['original_max_rel_diff']:.1e}"
    if row["details"]:
        line += "  (" + "; ".join(f"{k}: {v}" for k, v in row["details"].items()) + ")"
    if row.get("ratio_to_fixed"):
        line += "\n      orientation cost, time / fixed: " + ", ".join(
            f"{o} {r:.2f}x" for o, r in row["ratio_to_fixed"].items())
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


def _th_version() -> str:
    import torch_harmonics

    return getattr(torch_harmonics, "__version__", "unknown")


if __name__ == "__main__":
    main()
