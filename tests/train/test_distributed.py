"""Data parallel training (meshcnn.train.distributed): the constant buffers DDP leaves out, and a real
two-process run on the CPU (gloo) whose replicas agree and which resumes exactly."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from meshcnn.models import SphericalUNet
from meshcnn.train import constant_buffer_names, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]

WORKER = '''
import json, sys
from pathlib import Path
import torch
from torch import nn
from torch.utils.data import TensorDataset
from meshcnn.models import SphericalResNet
from meshcnn.train import fit, init_distributed, seed_everything

torch.set_num_threads(1)
work = Path(sys.argv[1])
rank, world_size = init_distributed("cpu")


def run(run_dir, epochs, resume=False):
    g = torch.Generator().manual_seed(123)
    x = torch.randn(24, 2, 42, generator=g)
    y = (x[:, 0].mean(-1) > 0).long()
    seed_everything(0)
    model = nn.Sequential(SphericalResNet(2, 8, level=1, width=4, depth=1), nn.Dropout(0.3), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = fit(model, TensorDataset(x, y), optimizer=opt, loss_fn=nn.functional.cross_entropy, epochs=epochs,
                  batch_size=5, run_dir=run_dir, resume=resume, progress=False, log=lambda s: None)
    return model, history


straight, history = run(work / "straight", 2)
run(work / "resumed", 1)
resumed, _ = run(work / "resumed", 2, resume=True)
torch.save(straight.state_dict(), work / f"straight_rank{rank}.pt")
torch.save(resumed.state_dict(), work / f"resumed_rank{rank}.pt")
(work / f"history_rank{rank}.json").write_text(json.dumps({"world_size": world_size, "history": history}))
'''


def test_constant_buffer_names_are_the_derived_operators():
    """DDP skips exactly the non-persistent buffers (operators, rings), never BatchNorm statistics."""
    model = SphericalUNet(2, 3, max_level=2, min_level=0, width=4)
    names = set(constant_buffer_names(model))
    buffers = dict(model.named_buffers(remove_duplicate=False))
    assert names and names <= set(buffers)
    assert any(n.startswith("stem.0.op") and n.endswith("block_col") for n in names)  # the first conv's operator
    assert any(n.startswith("stem.0.op") and n.endswith("val") for n in names)
    assert not any("running_" in n or "num_batches" in n for n in names)
    assert names.isdisjoint(model.state_dict())  # the constants are exactly what checkpoints leave out
    assert set(buffers) - names <= set(model.state_dict())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _same(a, b) -> bool:
    return torch.equal(a, b) if isinstance(b, torch.Tensor) else a == b


@pytest.mark.slow
def test_two_process_training_keeps_replicas_equal_and_resumes_exactly(tmp_path):
    """Two processes as ``torchrun`` starts them (the environment it sets; no launcher process)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)})
             for r in (0, 1)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    reports = [json.loads((tmp_path / f"history_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    # the train loss is summed over both processes' shards: every rank records the same value
    assert [h["train_loss"] for h in reports[0]["history"]] == [h["train_loss"] for h in reports[1]["history"]]
    states = {(kind, r): torch.load(tmp_path / f"{kind}_rank{r}.pt", weights_only=True)
              for kind in ("straight", "resumed") for r in (0, 1)}
    for rank in (0, 1):  # resuming is exact on every rank, buffers included
        for name, value in states[("straight", rank)].items():
            assert _same(states[("resumed", rank)][name], value), (rank, name)
    # the replicas' parameters stay equal (BatchNorm running statistics are each rank's own until DDP
    # broadcasts rank 0's at the next forward)
    for name, value in states[("straight", 0)].items():
        if "running_" not in name and "num_batches" not in name:
            assert _same(states[("straight", 1)][name], value), name
    # only rank 0 writes: one checkpoint per run folder, loading with its checksum verified
    assert load_checkpoint(tmp_path / "resumed")["epoch"] == 2
    assert sorted(p.name for p in (tmp_path / "straight").iterdir()) == ["checkpoint.pt", "metrics.json"]
