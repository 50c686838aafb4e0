"""A tiny trained climate checkpoint and the synthetic files it was trained on, shared by the predict tests.

The checkpoint is built through the library, as ``experiments/climate_segmentation/train.py`` builds one
(:class:`meshcnn.tasks.SegmenterRun` in the checkpoint's ``extra``, :func:`meshcnn.train.fit` writing it); the
script itself is tested in ``tests/experiments``.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from meshcnn.data import climate as C
from meshcnn.tasks import SegmenterConfig, SegmenterRun, build_model, count_parameters
from meshcnn.train import fit

LEVEL = 2


def train_tiny_segmenter(data, run_dir, level: int = LEVEL) -> None:
    """A spherical U-Net of width 4 trained for one epoch on the ``.nc`` files of ``data``, saved in ``run_dir``."""
    files = sorted(data.glob("*.nc"))
    train_set = C.ClimateNetDataset(files, level)
    stats = C.compute_stats(train_set, progress=False)
    train_set.set_stats(stats)
    weights = C.class_weights(stats["class_fraction"])
    config = SegmenterConfig("spherical", len(C.VARIABLES), C.NUM_CLASSES, level, width=4).to_dict()
    torch.manual_seed(0)
    model = build_model(config)
    config["num_params"] = count_parameters(model)
    run = SegmenterRun(config, stats, weights.tolist(), splits={"train": [str(f) for f in files]})
    fit(
        model,
        train_set,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        loss_fn=lambda outputs, targets: F.cross_entropy(outputs, targets, weight=weights),
        epochs=1,
        batch_size=2,
        run_dir=run_dir,
        extra_state=run.to_extra(),
        progress=False,
        log=lambda *args, **kwargs: None,
    )


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """Six synthetic 48 x 72 files and a spherical U-Net trained on them for one epoch at level 2."""
    root = tmp_path_factory.mktemp("predict")
    data = root / "data"
    C.generate_synthetic(data, num=6, nlat=48, nlon=72, seed=0, progress=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_tiny_segmenter(data, root / "run")
    finally:
        torch.set_num_threads(before)
    files = sorted(data.glob("*.nc"))
    return {"root": root, "data": data, "files": files, "checkpoint": root / "run" / "checkpoint.pt"}
