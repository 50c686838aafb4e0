"""A tiny trained climate checkpoint and the synthetic files it was trained on, shared by the predict tests."""
from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path

import pytest

from meshcnn.data import climate as C

ROOT = Path(__file__).resolve().parents[2]
LEVEL = 2


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """Six synthetic 48 x 72 files and a spherical U-Net trained on them for one epoch at level 2."""
    root = tmp_path_factory.mktemp("predict")
    data = root / "data"
    C.generate_synthetic(data, num=6, nlat=48, nlon=72, seed=0, progress=False)
    spec = importlib.util.spec_from_file_location(
        "climate_train_for_predict", ROOT / "experiments" / "climate_segmentation" / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    with contextlib.redirect_stdout(io.StringIO()):
        train.main(["--data", str(data), "--out", str(root / "run"), "--level", str(LEVEL), "--width", "4",
                    "--epochs", "1", "--batch-size", "2", "--no-progress", "--threads", "1"])
    files = sorted(data.glob("*.nc"))
    return {"root": root, "data": data, "files": files, "checkpoint": root / "run" / "checkpoint.pt"}
