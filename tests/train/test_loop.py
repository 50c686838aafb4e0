"""The training loop (meshcnn.train.loop): exact resume, seeding, per-epoch data, evaluation, no tqdm when quiet."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from meshcnn.train import fit, predict


def test_resume_equals_straight_run(tmp_path, train_tiny):
    straight = train_tiny(tmp_path / "a", 4)
    train_tiny(tmp_path / "b", 2)
    resumed = train_tiny(tmp_path / "b", 4, resume=True)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q) if isinstance(p, torch.Tensor) else p == q, name
    history = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[3]["lr"] == pytest.approx(1e-2 / 8)


def test_different_seed_differs(tmp_path, train_tiny):
    a = train_tiny(tmp_path / "a", 1)
    b = train_tiny(tmp_path / "b", 1, seed=1)
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_set_epoch_is_called_and_evaluate_recorded(tmp_path, problem):
    data, model, opt, _ = problem()

    class Tracking(TensorDataset):
        epochs = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

    def accuracy(m, ds, dev):
        return {"acc": float((predict(m, ds)[0].argmax(1) == ds.tensors[1]).float().mean())}

    tracked = Tracking(*data.tensors)
    history = fit(
        model,
        tracked,
        optimizer=opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=2,
        batch_size=8,
        run_dir=tmp_path,
        val_set=data,
        progress=False,
        log=lambda s: None,
        evaluate=accuracy,
    )
    assert Tracking.epochs == [0, 1]
    assert all(0.0 <= h["acc"] <= 1.0 for h in history)


def test_non_finite_loss_raises(tmp_path, problem):
    data, model, opt, _ = problem()
    with pytest.raises(FloatingPointError, match="epoch 1, batch 0"):
        fit(
            model,
            data,
            optimizer=opt,
            loss_fn=lambda out, y: out.sum() * float("nan"),
            epochs=1,
            batch_size=4,
            run_dir=tmp_path,
            progress=False,
            log=lambda s: None,
        )


def test_stale_temporaries_of_a_killed_write_are_removed_on_the_next_start(tmp_path, problem, train_tiny):
    train_tiny(tmp_path, 1)
    debris = [tmp_path / ".checkpoint.pt.abc123.tmp", tmp_path / ".metrics.json.x_1.tmp"]
    for p in debris:
        p.write_bytes(b"half a checkpoint")
    unrelated = tmp_path / ".other.pt.abc.tmp"
    unrelated.write_bytes(b"not ours")
    messages = []
    data, model, opt, sched = problem()
    fit(
        model,
        data,
        optimizer=opt,
        scheduler=sched,
        loss_fn=nn.functional.cross_entropy,
        epochs=2,
        batch_size=5,
        run_dir=tmp_path,
        resume=True,
        progress=False,
        log=messages.append,
    )
    assert not any(p.exists() for p in debris) and unrelated.exists()
    assert any("removed" in m and ".checkpoint.pt.abc123.tmp" in m for m in messages)


def test_no_progress_makes_no_tqdm_bar(tmp_path, monkeypatch, problem, train_tiny):
    """progress=False builds no tqdm object: tqdm's shared lock and monitor thread are never touched
    (a process forked or killed while one is held would hang every later bar)."""
    import tqdm.std

    def refuse(*args, **kwargs):
        raise AssertionError("a tqdm bar was made with progress=False")

    monkeypatch.setattr(tqdm.std.tqdm, "__new__", refuse)
    model = train_tiny(tmp_path, 1)
    data, _, _, _ = problem()
    predict(model, data, batch_size=8, progress=False)
    with pytest.raises(AssertionError, match="tqdm bar"):
        predict(model, data, batch_size=8, progress=True)
