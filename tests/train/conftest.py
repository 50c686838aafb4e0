"""A tiny training problem shared by the training-loop and checkpoint tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from meshcnn.models import SphericalResNet
from meshcnn.train import fit, seed_everything


def _problem(seed: int = 0):
    """``(dataset, model, optimizer, scheduler)``: 24 level-1 samples, a ResNet with dropout, Adam, StepLR."""
    g = torch.Generator().manual_seed(123)
    x = torch.randn(24, 2, 42, generator=g)
    y = (x[:, 0].mean(-1) > 0).long()
    seed_everything(seed)
    model = nn.Sequential(SphericalResNet(2, 8, level=1, width=4, depth=1), nn.Dropout(0.3), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    return TensorDataset(x, y), model, opt, sched


def _fit(run_dir, epochs, resume=False, **kw):
    """Train the problem's model in ``run_dir`` for ``epochs`` epochs (batch size 5, quiet); return it."""
    data, model, opt, sched = _problem()
    fit(
        model,
        data,
        optimizer=opt,
        scheduler=sched,
        loss_fn=nn.functional.cross_entropy,
        epochs=epochs,
        batch_size=5,
        run_dir=run_dir,
        resume=resume,
        progress=False,
        log=lambda s: None,
        **kw,
    )
    return model


@pytest.fixture
def problem():
    """The problem's factory: ``problem(seed=0) -> (dataset, model, optimizer, scheduler)``."""
    return _problem


@pytest.fixture
def train_tiny():
    """``train_tiny(run_dir, epochs, resume=False, **fit_kwargs) -> model``."""
    return _fit
