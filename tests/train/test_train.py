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
        assert torch.equal(p, q) if isinstance(p, torch.Tensor) else p == q, name
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


def test_checkpoint_carries_a_checksum_verified_on_load(tmp_path):
    from meshcnn.train import CheckpointError, checkpoint_checksum

    _fit(tmp_path, 1)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # still a plain weights-only file
    assert ckpt["format"] == 2 and ckpt["checksum"].startswith("sha256:")
    assert checkpoint_checksum(ckpt) == ckpt["checksum"]
    # one changed value anywhere (here a single optimizer moment) is caught, naming the file
    ckpt["optimizer"]["state"][0]["exp_avg"].view(-1)[0] += 1e-3
    torch.save(ckpt, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match=r"edited\.pt fails its checksum"):
        load_checkpoint(tmp_path / "edited.pt")
    _fit(tmp_path / "resume", 1)
    (tmp_path / "resume" / "checkpoint.pt").write_bytes((tmp_path / "edited.pt").read_bytes())
    with pytest.raises(CheckpointError, match="fails its checksum"):  # fit refuses to resume from it
        _fit(tmp_path / "resume", 2, resume=True)


def _flip_middle_byte(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_the_file_never_resumes_silently(tmp_path):
    """Flip one byte at many places of a real checkpoint: every load either fails with the
    file named or gives exactly the original content (a byte the format does not use)."""
    from meshcnn.train import CheckpointError

    _fit(tmp_path, 1)
    path = tmp_path / "checkpoint.pt"
    original = path.read_bytes()
    reference = load_checkpoint(path)
    rng = np.random.default_rng(0)
    caught = 0
    for offset in [len(original) // 2, *rng.integers(0, len(original), 40)]:
        path.write_bytes(original)
        _flip_middle_byte(path, int(offset))
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as err:
            assert str(path) in str(err)
            caught += 1
        else:
            assert ckpt["checksum"] == reference["checksum"]
            for name, value in reference["model"].items():
                same = torch.equal(ckpt["model"][name], value) if isinstance(value, torch.Tensor) else \
                    ckpt["model"][name] == value
                assert same, (offset, name)
    assert caught > 20


def test_empty_and_truncated_checkpoints_say_so(tmp_path):
    from meshcnn.train import CheckpointError

    _fit(tmp_path, 1)
    path = tmp_path / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint\.pt is empty \(0 bytes\)"):
        load_checkpoint(path)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"checkpoint\.pt \({len(data) // 2} bytes\): it is truncated"):
        load_checkpoint(path)


def test_old_checkpoints_without_checksum_load_with_a_warning(tmp_path):
    _fit(tmp_path, 1)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del ckpt["checksum"]
    ckpt["format"] = 1
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.warns(UserWarning, match="without a checksum"):
        assert load_checkpoint(tmp_path, _problem()[1])["epoch"] == 1
    with pytest.warns(UserWarning, match="without a checksum"):
        _fit(tmp_path, 2, resume=True)
    assert load_checkpoint(tmp_path)["format"] == 2  # rewritten with a checksum


def test_stale_temporaries_of_a_killed_write_are_removed_on_the_next_start(tmp_path):
    _fit(tmp_path, 1)
    debris = [tmp_path / ".checkpoint.pt.abc123.tmp", tmp_path / ".metrics.json.x_1.tmp"]
    for p in debris:
        p.write_bytes(b"half a checkpoint")
    unrelated = tmp_path / ".other.pt.abc.tmp"
    unrelated.write_bytes(b"not ours")
    messages = []
    data, model, opt, sched = _problem()
    fit(model, data, optimizer=opt, scheduler=sched, loss_fn=nn.functional.cross_entropy, epochs=2, batch_size=5,
        run_dir=tmp_path, resume=True, progress=False, log=messages.append)
    assert not any(p.exists() for p in debris) and unrelated.exists()
    assert any("removed" in m and ".checkpoint.pt.abc123.tmp" in m for m in messages)


def test_check_resume_settings_names_each_difference(tmp_path):
    import argparse

    from meshcnn.train import ResumeSettingsError, check_resume_settings

    stored = {"level": "2", "width": 4, "lr": 0.01, "split": [0.7, 0.15, 0.15], "epochs": 3, "resume": False,
              "device": "cpu"}
    assert check_resume_settings(tmp_path, argparse.Namespace(level=3)) is None  # no checkpoint: fresh start
    _fit(tmp_path, 1, extra_state={"args": stored, "stats": [1.0]})
    same = argparse.Namespace(level=2, width=4, lr=0.01, split=(0.7, 0.15, 0.15), epochs=5, resume=True,
                              device="cuda")
    assert check_resume_settings(tmp_path, same, may_change=("epochs", "device"))["stats"] == [1.0]
    other = argparse.Namespace(level=3, width=8, lr=0.5, split=(0.7, 0.15, 0.15), epochs=5, resume=True,
                               device="cpu")
    with pytest.raises(ResumeSettingsError) as info:
        check_resume_settings(tmp_path / "checkpoint.pt", other, may_change=("device",))
    message = str(info.value)
    assert str(tmp_path / "checkpoint.pt") in message
    for line in ("--level: the run has 2, now 3", "--width: the run has 4, now 8", "--lr: the run has 0.01, now 0.5",
                 "--epochs: the run has 3, now 5"):
        assert line in message
    assert "--split" not in message and "may change on resume: --device, --resume" in message
    notes = []
    check_resume_settings(tmp_path, {**vars(same), "orientation": "fixed"}, may_change=("epochs", "device"),
                          log=notes.append)
    assert notes and "--orientation" in notes[0]


def test_no_progress_makes_no_tqdm_bar(tmp_path, monkeypatch):
    """progress=False builds no tqdm object: tqdm's shared lock and monitor thread are never touched
    (a process forked or killed while one is held would hang every later bar)."""
    import tqdm.std

    def refuse(*args, **kwargs):
        raise AssertionError("a tqdm bar was made with progress=False")

    monkeypatch.setattr(tqdm.std.tqdm, "__new__", refuse)
    model = _fit(tmp_path, 1)
    data, _, _, _ = _problem()
    predict(model, data, batch_size=8, progress=False)
    with pytest.raises(AssertionError, match="tqdm bar"):
        predict(model, data, batch_size=8, progress=True)
