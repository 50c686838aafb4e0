"""The model of meshcnn predict (meshcnn.predict.predictor): loaded from a climate checkpoint, or refused
with the file named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("netCDF4")

from meshcnn.predict import PredictError, load_predictor, predict_files
from meshcnn.predict.predictor import file_sha256
from meshcnn.train import load_checkpoint
from meshcnn.train.checkpoint import checkpoint_checksum

pytestmark = pytest.mark.usefixtures("one_thread")


def test_load_predictor_takes_everything_from_the_checkpoint(run):
    predictor = load_predictor(run["checkpoint"].parent)  # the run folder will do
    ckpt = torch.load(run["checkpoint"], weights_only=True)
    assert predictor.level == 2 and predictor.sha256 == file_sha256(run["checkpoint"])
    assert predictor.variables == tuple(ckpt["extra"]["stats"]["variables"])
    assert predictor.mean.dtype == np.float32 and predictor.mean.shape == (len(predictor.variables),)
    assert predictor.class_names == ("background", "tropical_cyclone", "atmospheric_river")
    assert not predictor.model.training


def test_checkpoints_that_are_not_segmentation_checkpoints_are_refused(run, tmp_path):
    good = run["files"][0]
    out = tmp_path / "out"
    with pytest.raises(PredictError, match="missing.pt: no such checkpoint"):
        load_predictor(tmp_path / "missing.pt")
    # checkpoints that are not meshcnn segmentation checkpoints
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(PredictError, match="junk.pt.*not a meshcnn segmentation checkpoint"):
        predict_files([good], tmp_path / "junk.pt", out, progress=False)

    def resave(ckpt, path):  # a valid checkpoint file, with its checksum
        ckpt["checksum"] = checkpoint_checksum(ckpt)
        torch.save(ckpt, path)
        load_checkpoint(path)  # loads: what fails below is predict's own check

    ckpt = torch.load(run["checkpoint"], weights_only=True)
    ckpt["extra"] = {"note": "a classification run"}
    resave(ckpt, tmp_path / "other.pt")
    with pytest.raises(PredictError, match="other.pt.*not a meshcnn segmentation checkpoint"):
        predict_files([good], tmp_path / "other.pt", out, progress=False)
    ckpt = torch.load(run["checkpoint"], weights_only=True)
    ckpt["extra"]["config"]["kind"] = "planar"
    resave(ckpt, tmp_path / "planar.pt")
    with pytest.raises(PredictError, match="planar.pt.*spherical U-Nets only"):
        predict_files([good], tmp_path / "planar.pt", out, progress=False)
    assert not (out / good.name).exists()
