"""Peak memory of one benchmark step, for ``meshconv.py``.

On CPU a probe runs in a fresh subprocess with glibc's mmap threshold pinned low, so
that every large tensor is its own mapping, returned to the OS when freed; it resets
its high-water mark (``/proc/self/clear_refs``) just before the step and reports
``VmHWM`` minus the resident size before it. On CUDA it is
``torch.cuda.max_memory_allocated`` minus the allocation before the step.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import torch


def status_kib(field: str) -> int:
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


def peak_step_memory_mib(column) -> float:
    """Peak extra memory (MiB) of allocating the input and running one forward+backward of a
    ``meshconv.Column`` (``inputs()``, ``step(x, g)``, ``layer``, ``device``)."""
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
    base = status_kib("VmRSS")
    x, g = column.inputs()
    column.step(x, g)
    return (status_kib("VmHWM") - base) / 1024


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    # every allocation above 64 KiB is its own mmap, unmapped when freed: RSS follows live tensors
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    env["MALLOC_TRIM_THRESHOLD_"] = "65536"
    return env


def run_probe(script: str, args: list[str]) -> dict:
    """Run ``script`` with ``--probe ...`` in a fresh process; return its JSON answer (its last line)."""
    cmd = [sys.executable, os.path.abspath(script), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env())
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])
