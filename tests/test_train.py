"""The shared training loop: exact resume, crash-safe checkpoints, no pickles."""
import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from meshcnn.models import SphericalResNet
from meshcnn.train import fit, load_checkpoint, predict, seed_everything


def _problem(seed=0):
    g = torch.Generator().manual_seed(123)
    x = torch.randn(24, 2, 42, generator=g)
    y = (x[:, 0].mean(-1) > 0).long()
    seed_everything(seed)
    model = nn.Sequential(SphericalResNet(2, 8, level=1, width=4, depth=1), nn.Dropout(0.3), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    return TensorDataset(x, y), model, opt, sched


def _fit(run_dir, epochs, resume=False, **kw):
    data, model, opt, sched = _problem()
    fit(model, data, optimizer=opt, scheduler=sched, loss_fn=nn.functional.cross_entropy, epochs=epochs,
        batch_size=5, run_dir=run_dir, resume=resume, progress=False, log=lambda s: None, **kw)
    return model


def test_resume_equals_straight_run(tmp_path):
    straight = _fit(tmp_path / "a", 4)
    _fit(tmp_path / "b", 2)
    resumed = _fit(tmp_path / "b", 4, resume=True)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    history = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[3]["lr"] == pytest.approx(1e-2 / 8)


def test_different_seed_differs(tmp_path):
    a = _fit(tmp_path / "a", 1)
    b = _fit(tmp_path / "b", 1, seed=1)
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_checkpoint_is_weights_only_and_keeps_extra_state(tmp_path):
    model = _fit(tmp_path, 1, extra_state={"mean": np.arange(3.0), "config": {"level": 1}})
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["extra"]["config"] == {"level": 1}
    assert torch.equal(ckpt["extra"]["mean"], torch.arange(3.0, dtype=torch.float64))
    fresh = _problem()[1]
    load_checkpoint(tmp_path, fresh)
    x = torch.randn(3, 2, 42)
    model.eval(), fresh.eval()
    assert torch.equal(model(x), fresh(x))


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    _fit(tmp_path, 1)
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, 2, resume=True)
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert load_checkpoint(tmp_path, _problem()[1])["epoch"] == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_set_epoch_is_called_and_evaluate_recorded(tmp_path):
    data, model, opt, _ = _problem()

    class Tracking(TensorDataset):
        epochs = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

    tracked = Tracking(*data.tensors)
    history = fit(model, tracked, optimizer=opt, loss_fn=nn.functional.cross_entropy, epochs=2, batch_size=8,
                  run_dir=tmp_path, val_set=data, progress=False, log=lambda s: None,
                  evaluate=lambda m, ds, dev: {"acc": float((predict(m, ds)[0].argmax(1) == ds.tensors[1]).float().mean())})
    assert Tracking.epochs == [0, 1]
    assert all(0.0 <= h["acc"] <= 1.0 for h in history)


def test_non_finite_loss_raises(tmp_path):
    data, model, opt, _ = _problem()
    with pytest.raises(FloatingPointError, match="epoch 1, batch 0"):
        fit(model, data, optimizer=opt, loss_fn=lambda out, y: out.sum() * float("nan"), epochs=1,
            batch_size=4, run_dir=tmp_path, progress=False, log=lambda s: None)


def test_corrupt_checkpoint_is_reported(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_atomic_write_respects_umask(tmp_path):
    import os
    import stat

    from meshcnn.io import save_json

    old = os.umask(0o022)
    try:
        save_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644


def test_constant_buffer_names_are_the_derived_operators():
    """DDP skips exactly the non-persistent buffers (operators, rings), never BatchNorm statistics."""
    from meshcnn.models import SphericalUNet
    from meshcnn.train import constant_buffer_names

    model = SphericalUNet(2, 3, max_level=2, min_level=0, width=4)
    names = set(constant_buffer_names(model))
    buffers = dict(model.named_buffers(remove_duplicate=False))
    assert names and names <= set(buffers)
    assert "stem.0.op_block_col" in names and "stem.0.op_val" in names
    assert not any("running_" in n or "num_batches" in n for n in names)
    assert names.isdisjoint(model.state_dict())  # the constants are exactly what checkpoints leave out
    assert set(buffers) - names <= set(model.state_dict())
