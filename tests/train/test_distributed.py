"""Data parallel training (meshcnn.train.distributed): the constant buffers DDP leaves out (only the layers'
own constants), and a real two-process run on the CPU (gloo) whose replicas agree, which resumes exactly and
which broadcasts every other buffer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from meshcnn.models import SphericalResNet, SphericalUNet
from meshcnn.train import load_checkpoint, wrap_data_parallel
from meshcnn.train.distributed import constant_buffer_names

ROOT = Path(__file__).resolve().parents[2]

WORKER = '''
import json, sys
from pathlib import Path
import torch
from torch import nn
from torch.utils.data import TensorDataset
from meshcnn.models import SphericalResNet
from meshcnn.train import fit, init_distributed, seed_everything, wrap_data_parallel
from meshcnn.train.distributed import constant_buffer_names

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


class Foreign(nn.Module):
    """A layer of another library with a non-persistent buffer: DDP must keep broadcasting it."""

    def __init__(self):
        super().__init__()
        self.register_buffer("offset", torch.zeros(8), persistent=False)

    def forward(self, x):
        return x + self.offset


seed_everything(0)
net = nn.Sequential(SphericalResNet(2, 8, level=1, width=4, depth=1), Foreign(), nn.Linear(8, 2))
constant = next(n for n in constant_buffer_names(net) if n.endswith("val"))
with torch.no_grad():  # each rank its own values: a constant stays each rank's own, the foreign buffer is rank 0's
    net.get_buffer(constant).add_(rank)
    net[1].offset.fill_(rank + 1)
ddp = wrap_data_parallel(net, torch.device("cpu"))
ddp(torch.randn(4, 2, 42)).sum().backward()
(work / f"buffers_rank{rank}.json").write_text(json.dumps(
    {"constant": float(net.get_buffer(constant).double().sum()), "numel": net.get_buffer(constant).numel(),
     "offset": net[1].offset.tolist()}))
torch.distributed.barrier()  # as the training scripts end: no rank exits under another
torch.distributed.destroy_process_group()
# DDP keeps the gloo group (and its threads) alive past destroy_process_group; interpreter teardown with
# live gloo threads aborts now and then (pytorch/pytorch#190489). Everything is written: leave at once.
sys.stdout.flush()
import os; os._exit(0)
'''


def test_constant_buffer_names_are_the_derived_operators():
    """DDP skips the layers' constants (operators, rings), never BatchNorm statistics."""
    model = SphericalUNet(2, 3, max_level=2, min_level=0, width=4)
    names = set(constant_buffer_names(model))
    buffers = dict(model.named_buffers(remove_duplicate=False))
    assert names and names <= set(buffers)
    assert any(n.startswith("stem.0.op") and n.endswith("block_col") for n in names)  # the first conv's operator
    assert any(n.startswith("stem.0.op") and n.endswith("val") for n in names)
    assert not any("running_" in n or "num_batches" in n for n in names)
    assert names.isdisjoint(model.state_dict())  # the constants are exactly what checkpoints leave out
    assert set(buffers) - names <= set(model.state_dict())


class Foreign(nn.Module):
    """Another library's layer with a non-persistent buffer (not a meshcnn constant)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("offset", torch.zeros(4), persistent=False)

    def forward(self, x):
        return x + self.offset


def test_constant_buffer_names_are_only_the_layers_own_constants():
    """Other non-persistent buffers (here a foreign layer's) are not constants: DDP keeps synchronising them."""
    from meshcnn.nn._buffers import ConstantBuffers

    model = nn.Sequential(SphericalResNet(2, 4, level=1, width=4, depth=1), Foreign())
    names = constant_buffer_names(model)
    assert names and "1.offset" not in names
    for name in names:
        owner, _, buffer = name.rpartition(".")
        module = model.get_submodule(owner)
        assert isinstance(module, ConstantBuffers) and buffer in module.__dict__["_constant_masters"]
    flips = nn.Sequential(SphericalUNet(2, 3, max_level=1, min_level=0, width=4, flip_channels=[0]))
    assert "0.input_sign" in constant_buffer_names(flips)  # a model's own constants too, not only operators


@pytest.fixture
def one_process_group():
    """A gloo process group of one process (DDP can wrap a model; broadcasts are no-ops)."""
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_ddp_leaves_out_exactly_the_constant_buffers(one_process_group):
    model = nn.Sequential(SphericalResNet(2, 4, level=1, width=4, depth=1), nn.BatchNorm1d(4), Foreign())
    model._ddp_params_and_buffers_to_ignore = ["1.running_var"]  # a user's own choice is kept
    ddp = wrap_data_parallel(model, torch.device("cpu"))
    constants = set(constant_buffer_names(model))
    assert ddp.parameters_to_ignore == constants | {"1.running_var"}
    broadcast = set(ddp.named_module_buffers)
    assert {"2.offset", "1.running_mean", "1.num_batches_tracked"} <= broadcast
    assert broadcast.isdisjoint(constants)


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
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
        )
        for r in (0, 1)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    reports = [json.loads((tmp_path / f"history_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    # the train loss is summed over both processes' shards: every rank records the same value
    assert [h["train_loss"] for h in reports[0]["history"]] == [h["train_loss"] for h in reports[1]["history"]]
    states = {
        (kind, r): torch.load(tmp_path / f"{kind}_rank{r}.pt", weights_only=True)
        for kind in ("straight", "resumed")
        for r in (0, 1)
    }
    for rank in (0, 1):  # resuming is exact on every rank, buffers included
        for name, value in states[("straight", rank)].items():
            assert _same(states[("resumed", rank)][name], value), (rank, name)
    # the replicas' parameters stay equal (BatchNorm running statistics are each rank's own until DDP
    # broadcasts rank 0's at the next forward)
    for name, value in states[("straight", 0)].items():
        if "running_" not in name and "num_batches" not in name:
            assert _same(states[("straight", 1)][name], value), name
    # DDP broadcast rank 0's value of the foreign non-persistent buffer, and left the constants alone
    buffers = [json.loads((tmp_path / f"buffers_rank{r}.json").read_text()) for r in (0, 1)]
    assert buffers[0]["offset"] == buffers[1]["offset"] == [1.0] * 8
    assert buffers[1]["constant"] - buffers[0]["constant"] == pytest.approx(buffers[0]["numel"], rel=1e-6)
    # only rank 0 writes: one checkpoint per run folder, loading with its checksum verified
    assert load_checkpoint(tmp_path / "resumed")["epoch"] == 2
    assert sorted(p.name for p in (tmp_path / "straight").iterdir()) == ["checkpoint.pt", "metrics.json"]
