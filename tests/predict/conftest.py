"""A tiny trained climate checkpoint and the synthetic files it was trained on, shared by the predict tests."""

from __future__ import annotations

import contextlib
import io

import pytest
from _helpers import load_script

from meshcnn.data import climate as C

LEVEL = 2


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """Six synthetic 48 x 72 files and a spherical U-Net trained on them for one epoch at level 2."""
    root = tmp_path_factory.mktemp("predict")
    data = root / "data"
    C.generate_synthetic(data, num=6, nlat=48, nlon=72, seed=0, progress=False)
    train = load_script("climate_segmentation/train.py", "climate_train_for_predict")
    with contextlib.redirect_stdout(io.StringIO()):
        train.main(
            [
                "--data",
                str(data),
                "--out",
                str(root / "run"),
                "--level",
                str(LEVEL),
                "--width",
                "4",
                "--epochs",
                "1",
                "--batch-size",
                "2",
                "--no-progress",
                "--threads",
                "1",
            ]
        )
    files = sorted(data.glob("*.nc"))
    return {"root": root, "data": data, "files": files, "checkpoint": root / "run" / "checkpoint.pt"}
