"""Checkpoints (meshcnn.train.checkpoint): weights only, atomic, checksummed, damaged files named."""

import os
import stat

import numpy as np
import pytest
import torch

from meshcnn.io import save_json
from meshcnn.train import CheckpointError, load_checkpoint
from meshcnn.train.checkpoint import checkpoint_checksum


def test_checkpoint_is_weights_only_and_keeps_extra_state(tmp_path, problem, train_tiny):
    model = train_tiny(tmp_path, 1, extra_state={"mean": np.arange(3.0), "config": {"level": 1}})
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["extra"]["config"] == {"level": 1}
    assert torch.equal(ckpt["extra"]["mean"], torch.arange(3.0, dtype=torch.float64))
    fresh = problem()[1]
    load_checkpoint(tmp_path, fresh)
    x = torch.randn(3, 2, 42)
    model.eval(), fresh.eval()
    assert torch.equal(model(x), fresh(x))


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch, problem, train_tiny):
    train_tiny(tmp_path, 1)
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(tmp_path, 2, resume=True)
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert load_checkpoint(tmp_path, problem()[1])["epoch"] == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_checkpoint_is_reported(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_carries_a_checksum_verified_on_load(tmp_path, train_tiny):
    train_tiny(tmp_path, 1)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # still a plain weights-only file
    assert ckpt["format"] == 2 and ckpt["checksum"].startswith("sha256:")
    assert checkpoint_checksum(ckpt) == ckpt["checksum"]
    # one changed value anywhere (here a single optimizer moment) is caught, naming the file
    ckpt["optimizer"]["state"][0]["exp_avg"].view(-1)[0] += 1e-3
    torch.save(ckpt, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match=r"edited\.pt fails its checksum"):
        load_checkpoint(tmp_path / "edited.pt")
    train_tiny(tmp_path / "resume", 1)
    (tmp_path / "resume" / "checkpoint.pt").write_bytes((tmp_path / "edited.pt").read_bytes())
    with pytest.raises(CheckpointError, match="fails its checksum"):  # fit refuses to resume from it
        train_tiny(tmp_path / "resume", 2, resume=True)


def _flip_middle_byte(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_the_file_never_resumes_silently(tmp_path, train_tiny):
    """Flip one byte at many places of a real checkpoint: every load either fails with the
    file named or gives exactly the original content (a byte the format does not use)."""
    train_tiny(tmp_path, 1)
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
                same = (
                    torch.equal(ckpt["model"][name], value)
                    if isinstance(value, torch.Tensor)
                    else ckpt["model"][name] == value
                )
                assert same, (offset, name)
    assert caught > 20


def test_empty_and_truncated_checkpoints_say_so(tmp_path, train_tiny):
    train_tiny(tmp_path, 1)
    path = tmp_path / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint\.pt is empty \(0 bytes\)"):
        load_checkpoint(path)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"checkpoint\.pt \({len(data) // 2} bytes\): it is truncated"):
        load_checkpoint(path)


def test_old_checkpoints_without_checksum_load_with_a_warning(tmp_path, problem, train_tiny):
    train_tiny(tmp_path, 1)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del ckpt["checksum"]
    ckpt["format"] = 1
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.warns(UserWarning, match="without a checksum"):
        assert load_checkpoint(tmp_path, problem()[1])["epoch"] == 1
    with pytest.warns(UserWarning, match="without a checksum"):
        train_tiny(tmp_path, 2, resume=True)
    assert load_checkpoint(tmp_path)["format"] == 2  # rewritten with a checksum


def test_atomic_write_respects_umask(tmp_path):
    """Checkpoints and metrics are written by meshcnn.io with the usual permissions (not mkstemp's 0600)."""
    old = os.umask(0o022)
    try:
        save_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
