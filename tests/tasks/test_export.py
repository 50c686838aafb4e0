"""Checkpoints export to ``.safetensors`` with the model config as metadata (issue 19, item 4), and load back."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import meshcnn
from meshcnn.tasks import (
    ClassifierConfig,
    SegmenterConfig,
    SegmenterRun,
    build_model,
    export_safetensors,
    load_safetensors_model,
)
from meshcnn.train import CheckpointError, fit, load_checkpoint

safetensors = pytest.importorskip("safetensors")


def _train(run_dir, config, extra_state, inputs, targets):
    """One epoch of the model of ``config`` on ``(inputs, targets)``, checkpointed in ``run_dir``."""
    torch.manual_seed(0)
    model = build_model(config)
    fit(
        model,
        TensorDataset(inputs, targets),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        loss_fn=nn.functional.cross_entropy,
        epochs=1,
        batch_size=4,
        run_dir=run_dir,
        extra_state=extra_state,
        progress=False,
        log=lambda s: None,
    )
    return run_dir / "checkpoint.pt"


def _same_outputs(checkpoint, exported, inputs):
    """The exported model and the checkpoint's (rebuilt from its config) give equal outputs in eval mode."""
    ckpt = load_checkpoint(checkpoint)
    reference = build_model(ckpt["extra"]["config"])
    reference.load_state_dict(ckpt["model"])
    model = load_safetensors_model(exported)
    assert not model.training and type(model) is type(reference)
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), reference.eval()(inputs), rtol=0, atol=0)


def test_a_segmentation_checkpoint_round_trips(tmp_path):
    config = SegmenterConfig("spherical", 3, 2, 1, width=2)
    stats = {"mean": [0.0] * 3, "std": [1.0] * 3}
    x, y = torch.randn(8, 3, 42), torch.randint(0, 2, (8, 42))
    checkpoint = _train(tmp_path / "run", config.to_dict(), SegmenterRun(config.to_dict(), stats).to_extra(), x, y)
    out = export_safetensors(checkpoint, tmp_path / "model.safetensors")
    assert out == tmp_path / "model.safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "run"]  # no temporary left
    _same_outputs(checkpoint, out, x)

    with safetensors.safe_open(str(out), framework="pt") as f:
        metadata = f.metadata()
        keys = set(f.keys())
    assert metadata["format"] == "meshcnn-model" and metadata["meshcnn_version"] == meshcnn.__version__
    assert metadata["task"] == "segmentation" and metadata["kind"] == "spherical"
    assert json.loads(metadata["config"]) == config.to_dict()
    assert metadata["checkpoint_checksum"] == load_checkpoint(checkpoint)["checksum"] and metadata["epoch"] == "1"
    assert keys == set(load_checkpoint(checkpoint)["model"])


@pytest.mark.parametrize(
    "config, shape",
    [
        (ClassifierConfig("spherical", 2, 3, 1, width=4, depth=1), (8, 2, 42)),
        (ClassifierConfig("planar", 2, 3, 1, width=4, depth=1), (8, 2, 8, 16)),
    ],
)
def test_a_classification_checkpoint_round_trips(tmp_path, config, shape):
    x, y = torch.randn(*shape), torch.randint(0, 3, (8,))
    extra = {"config": config.to_dict(), "classes": ["a", "b", "c"]}  # as shape_classification/train.py stores it
    checkpoint = _train(tmp_path / "run", config, extra, x, y)
    out = export_safetensors(tmp_path / "run", tmp_path / "classifier.safetensors")  # the run folder will do
    _same_outputs(checkpoint, out, x)
    with safetensors.safe_open(str(out), framework="pt") as f:
        assert f.metadata()["task"] == "classification" and f.metadata()["kind"] == config.kind


def test_a_checkpoint_without_a_model_config_is_refused(tmp_path):
    x, y = torch.randn(8, 2, 42), torch.randint(0, 3, (8,))
    config = ClassifierConfig("spherical", 2, 3, 1, width=4, depth=1)
    checkpoint = _train(tmp_path / "run", config, {"mean": [0.0, 0.0]}, x, y)  # like native_grids/train.py
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt has no model config"):
        export_safetensors(checkpoint, tmp_path / "model.safetensors")
    assert not (tmp_path / "model.safetensors").exists()
    checkpoint = _train(tmp_path / "bad", config, {"config": {"task": "segmentation", "kind": "graph"}}, x, y)
    with pytest.raises(CheckpointError, match="invalid model config"):
        export_safetensors(checkpoint, tmp_path / "model.safetensors")


def test_files_that_are_not_exported_models_are_refused(tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))  # weights without metadata
    with pytest.raises(CheckpointError, match="plain.safetensors has no meshcnn model config"):
        load_safetensors_model(plain)
    config = ClassifierConfig("planar", 2, 3, 1, width=4, depth=1)
    metadata = {"format": "meshcnn-model", "config": json.dumps(config.to_dict())}
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="do not fit the model"):  # strict loading
        load_safetensors_model(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_safetensors_model(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        load_safetensors_model(tmp_path / "missing.safetensors")


def test_without_safetensors_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(ImportError, match=r"pip install 'meshcnn\[weights\]'"):
        export_safetensors(tmp_path / "checkpoint.pt", tmp_path / "model.safetensors")


def test_the_export_command(tmp_path, capsys):
    from meshcnn.__main__ import main

    config = ClassifierConfig("planar", 2, 3, 1, width=4, depth=1)
    x, y = torch.randn(8, 2, 8, 16), torch.randint(0, 3, (8,))
    checkpoint = _train(tmp_path / "run", config, {"config": config.to_dict()}, x, y)
    assert main(["export", str(checkpoint), str(tmp_path / "m.safetensors")]) == 0
    assert "m.safetensors" in capsys.readouterr().out
    _same_outputs(checkpoint, tmp_path / "m.safetensors", x)
    checkpoint = _train(tmp_path / "plain", config, {}, x, y)
    with pytest.raises(SystemExit) as info:
        main(["export", str(checkpoint), str(tmp_path / "n.safetensors")])
    assert info.value.code == 1 and "has no model config" in capsys.readouterr().err
