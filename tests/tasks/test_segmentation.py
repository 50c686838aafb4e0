"""meshcnn.tasks.segmentation: one ``mesh_probabilities`` for training, evaluation and ``meshcnn predict``."""

import torch
from torch.utils.data import TensorDataset

from meshcnn.tasks import SegmenterConfig, build_model, mesh_probabilities


def test_mesh_probabilities_of_a_tensor_equal_those_of_a_dataset():
    torch.manual_seed(0)
    model = build_model(SegmenterConfig("spherical", 3, 2, 1, min_level=0, width=2))
    x = torch.randn(5, 3, 42)
    from_dataset = mesh_probabilities(model, TensorDataset(x, torch.zeros(5)), 1, batch_size=2)
    from_tensor = mesh_probabilities(model, x, 1, batch_size=3)
    assert from_tensor.shape == (5, 2, 42) and from_tensor.dtype == torch.float32
    torch.testing.assert_close(from_tensor, from_dataset)
    torch.testing.assert_close(from_tensor.sum(1), torch.ones(5, 42))


def test_meshcnn_predict_runs_the_same_function():
    from meshcnn.predict import runner, stages

    assert runner.mesh_probabilities is mesh_probabilities
    assert not hasattr(stages, "mesh_probabilities")
