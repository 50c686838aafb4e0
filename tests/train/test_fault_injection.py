"""Fault injection: training runs SIGKILLed at random points and resumed end bit-identical to
uninterrupted ones, and leave no temporary files (issue 13).

For each of the climate, shapes and digits training scripts, at tiny settings, one driver process
(for the three scripts, so torch is imported once) forks

1. an uninterrupted reference run (in the driver itself, warming imports and caches for the forks);
2. runs with ``--resume`` that are SIGKILLed (no cleanup of any kind runs) at seeded random points:
   after a random number of optimizer steps (mid-epoch), *inside* a checkpoint write (a random
   prefix of the file written to the temporary file, then the kill), inside the ``metrics.json``
   write that follows a checkpoint, and by the driver after a random delay since the first step;
3. a last ``--resume`` that completes.

The final checkpoints must equal the reference's bit for bit (model state, epoch, history without
timings), load with their checksums verified, and no ``.*.tmp`` file may remain anywhere in the
run folders. ``MESHCNN_FAULT_SEED`` changes the kill points (default 0).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import runpy
import select
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("MESHCNN_FAULT_SEED", "0"))
CHILD_TIMEOUT_S = 120  # one training run here takes seconds

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


# ------------------------------------------------------------------------------------------ driver
def _inject(plan: dict, ready_fd: int) -> None:
    """In the child: arrange to SIGKILL this process at the plan's point; tell the driver at the first step."""
    import meshcnn.train.trainer as train_module

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    steps = {"n": 0}

    def on_step(optimizer, args, kwargs):
        steps["n"] += 1
        if steps["n"] == 1:
            os.write(ready_fd, b"1")
        if plan["kind"] == "step" and steps["n"] == plan["at"]:
            die()

    from torch.optim.optimizer import register_optimizer_step_post_hook

    register_optimizer_step_post_hook(on_step)
    if plan["kind"] == "write":  # kill inside the checkpoint write, after a prefix of the real bytes
        original, calls = torch.save, {"n": 0}

        def save(obj, f, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] != plan["at"]:
                return original(obj, f, *args, **kwargs)
            buffer = io.BytesIO()
            original(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            f.write(data[: int(plan["fraction"] * len(data))])
            f.flush()
            os.fsync(f.fileno())
            die()

        torch.save = save
    elif plan["kind"] == "metrics":  # the checkpoint is in place, metrics.json half written
        original_json, calls = train_module.save_json, {"n": 0}

        def save_json(path, obj):
            calls["n"] += 1
            if calls["n"] != plan["at"]:
                return original_json(path, obj)
            from meshcnn.io import atomic_write

            text = json.dumps(obj)
            with atomic_write(path, "w") as f:
                f.write(text[: len(text) // 2])
                f.flush()
                die()

        train_module.save_json = save_json


def _fork_run(main, argv: list[str], plan: dict | None, log: Path) -> tuple[int, float | None, float]:
    """Run ``main(argv)`` in a forked child (killed per ``plan``). Returns ``(status, first_step_at, end)``."""
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(read_fd)
            out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(out, 1)
            os.dup2(out, 2)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
            sys.stderr = sys.stdout
            _inject(plan or {"kind": "none"}, write_fd)
            main(argv)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = start + CHILD_TIMEOUT_S
    ready, _, _ = select.select([read_fd], [], [], CHILD_TIMEOUT_S)
    first = os.read(read_fd, 1) if ready else b""  # b"" if the child ends before its first step
    first_step_at = time.monotonic() if first else None
    if plan is not None and plan["kind"] == "timer" and first:
        time.sleep(plan["delay"])
        _kill(pid)
    while True:  # a watchdog: a child that hangs is killed and reported, not waited on forever
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            _kill(pid)
            os.waitpid(pid, 0)
            os.close(read_fd)
            raise SystemExit(f"run with {plan} hung for {CHILD_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)
    os.close(read_fd)
    return status, first_step_at, time.monotonic()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tmp_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob(".*.tmp"))


def _drive(script: str, argv: list[str], run_flag: str, work: Path, seed: int) -> dict:
    """One script: reference run, killed runs, final resume; returns what happened."""
    main = runpy.run_path(str(ROOT / "experiments" / script))["main"]
    rng = random.Random(seed)
    reference, resumed = work / "reference", work / "resumed"
    log = work / "log.txt"
    # the reference run in this process: it also warms every lazy import and cache, so that the
    # forked runs below start at once
    from torch.optim.optimizer import register_optimizer_step_post_hook

    first_step: list[float] = []
    handle = register_optimizer_step_post_hook(lambda *_: first_step or first_step.append(time.monotonic()))
    with open(log, "a") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        main(argv + [run_flag, str(reference)])
    train_time = time.monotonic() - first_step[0]
    handle.remove()
    plans = [
        {"kind": "step", "at": rng.randint(1, 4)},
        {"kind": "write", "at": 1, "fraction": rng.random()},
        {"kind": "metrics", "at": 1},
        {"kind": "timer", "delay": rng.uniform(0.05, 0.6) * train_time},
        {"kind": "step", "at": rng.randint(1, 3)},
        {"kind": "write", "at": 1, "fraction": rng.random()},
        {"kind": "timer", "delay": rng.uniform(0.05, 0.6) * train_time},
    ]
    outcomes = []
    for plan in plans:
        start = time.monotonic()
        status, _, end = _fork_run(main, argv + [run_flag, str(resumed), "--resume"], plan, log)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if not killed and status != 0:
            raise SystemExit(f"run with {plan} failed:\n{log.read_text()[-3000:]}")
        outcomes.append({**plan, "killed": killed, "tmp_after": len(_tmp_files(resumed)), "time_s": end - start})
    status, _, _ = _fork_run(main, argv + [run_flag, str(resumed), "--resume"], None, log)
    if status != 0:
        raise SystemExit(f"final resume failed:\n{log.read_text()[-3000:]}")
    return {"outcomes": outcomes, "train_time": train_time}


def driver(jobs_json: str, work: str, seed: int) -> None:
    """Every job (``{name: {script, argv, run_flag}}``) in this process, one after the other, so torch is
    imported once; prints one JSON line ``{name: report or {"error": ...}}``."""
    torch.set_num_threads(1)  # before any torch op: forked children then never meet a stale thread pool
    report = {}
    for name, job in json.loads(jobs_json).items():
        try:
            report[name] = _drive(job["script"], job["argv"], job["run_flag"], Path(work) / name, seed)
        except BaseException as exc:
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(report))


def _run_driver(jobs: dict, work: Path) -> dict:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_fault_injection as t; "
        "t.driver(sys.argv[2], sys.argv[3], int(sys.argv[4]))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), json.dumps(jobs), str(work), str(SEED)],
        capture_output=True,
        text=True,
        timeout=180 * len(jobs),
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check(work: Path, report: dict, runs: list[str]) -> None:
    from meshcnn.train import load_checkpoint

    outcomes = report["outcomes"]
    killed = {o["kind"] for o in outcomes if o["killed"]}
    assert {"step", "write", "metrics"} <= killed, outcomes  # the points that must be reached were
    assert any(o["kind"] == "write" and o["killed"] and o["tmp_after"] for o in outcomes), outcomes  # debris made
    for run in runs:
        ref = load_checkpoint(work / "reference" / run)  # checksums verified
        got = load_checkpoint(work / "resumed" / run)
        assert got["epoch"] == ref["epoch"]
        assert ref["model"].keys() == got["model"].keys()
        for name, value in ref["model"].items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(got["model"][name], value), (run, name)
            else:
                assert got["model"][name] == value, (run, name)

        def strip(history):
            return [{k: v for k, v in h.items() if k != "time_s"} for h in history]

        assert repr(strip(got["history"])) == repr(strip(ref["history"])), run  # repr: nan == nan
        metrics = json.loads((work / "resumed" / run / "metrics.json").read_text())
        assert [m["epoch"] for m in metrics] == list(range(1, ref["epoch"] + 1))
    assert _tmp_files(work) == []


# ------------------------------------------------------------------------------------------ tests
def _climate_job(work: Path) -> dict:
    from meshcnn.data import climate

    climate.generate_synthetic(work / "data", num=6, nlat=19, nlon=24, seed=0, progress=False)
    argv = [
        "--data",
        str(work / "data"),
        "--level",
        "2",
        "--width",
        "4",
        "--batch-size",
        "2",
        "--lr-step",
        "1",
        "--epochs",
        "3",
        "--no-progress",
        "--threads",
        "1",
    ]
    return {"script": "climate_segmentation/train.py", "argv": argv, "run_flag": "--out"}


def _shapes_job(work: Path) -> dict:
    from meshcnn.data.shapes import make_synthetic

    make_synthetic(
        work / "data", per_class=3, seed=0, test_fraction=0.34, classes=["torus", "box", "chair"], progress=False
    )
    argv = [
        "--data",
        str(work / "data"),
        "--level",
        "1",
        "--depth",
        "1",
        "--width",
        "4",
        "--epochs",
        "3",
        "--batch-size",
        "2",
        "--rotate-train",
        "--no-progress",
        "--threads",
        "1",
    ]
    return {"script": "shape_classification/train.py", "argv": argv, "run_flag": "--run-dir"}


def _digits_job(work: Path) -> dict:
    rng = np.random.default_rng(0)
    mnist = work / "mnist.npz"
    work.mkdir(parents=True, exist_ok=True)
    np.savez(
        mnist,
        x_train=rng.integers(0, 256, (24, 8, 8)).astype(np.uint8),
        y_train=np.arange(24) % 10,
        x_test=rng.integers(0, 256, (8, 8, 8)).astype(np.uint8),
        y_test=np.arange(8) % 10,
    )
    argv = [
        "--mnist",
        str(mnist),
        "--level",
        "2",
        "--width",
        "2",
        "--depth",
        "1",
        "--settings",
        "N/N",
        "R/R",
        "--models",
        "sphere",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--no-progress",
        "--threads",
        "1",
    ]
    return {"script": "spherical_digits/train.py", "argv": argv, "run_flag": "--run-dir"}


@pytest.fixture(scope="module")
def fault_runs(tmp_path_factory):
    """The three scripts' runs, killed and resumed, in one driver process (one torch import, not three)."""
    work = tmp_path_factory.mktemp("faults")
    jobs = {
        "climate": _climate_job(work / "climate"),
        "shapes": _shapes_job(work / "shapes"),
        "digits": _digits_job(work / "digits"),
    }
    return work, _run_driver(jobs, work)


def _check_job(fault_runs, name: str, runs: list[str]) -> None:
    work, report = fault_runs
    assert "error" not in report[name], report[name].get("error")
    _check(work / name, report[name], runs)


def test_climate_killed_and_resumed_equals_uninterrupted(fault_runs):
    _check_job(fault_runs, "climate", ["."])


def test_shapes_killed_and_resumed_equals_uninterrupted(fault_runs):
    _check_job(fault_runs, "shapes", ["."])


def test_digits_killed_and_resumed_equals_uninterrupted(fault_runs):
    _check_job(fault_runs, "digits", ["sphere-fixed_N_s0", "sphere-fixed_R_s0"])
