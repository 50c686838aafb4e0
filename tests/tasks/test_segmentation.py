"""meshcnn.tasks.segmentation: one ``mesh_probabilities`` for training, evaluation and ``meshcnn predict``."""

import pytest
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


# ---------------------------------------------------------------------------- SegmenterRun: the checkpoint's extra
def _run(**changes):
    from meshcnn.tasks import SegmenterRun

    config = SegmenterConfig("spherical", 3, 2, 1, width=2).to_dict()
    stats = {"mean": [0.0, 1.0, 2.0], "std": [1.0, 1.0, 2.0], "variables": ["a", "b", "c"], "classes": ["x", "y"]}
    values = {"config": config, "stats": stats, "class_weights": [0.5, 2.0], "splits": {"train": ["f.nc"]}}
    return SegmenterRun(**{**values, **changes})


def test_segmenter_run_round_trips_through_a_checkpoint(tmp_path):
    from meshcnn.tasks import SegmenterRun
    from meshcnn.train import fit, load_checkpoint

    run = _run(args={"lr": 0.01})
    torch.manual_seed(0)
    model = build_model(run.config)
    x, y = torch.randn(4, 3, 42), torch.randint(0, 2, (4, 42))
    fit(
        model,
        TensorDataset(x, y),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        loss_fn=torch.nn.functional.cross_entropy,
        epochs=1,
        batch_size=2,
        run_dir=tmp_path,
        extra_state=run.to_extra(),
        progress=False,
        log=lambda *a: None,
    )
    back = SegmenterRun.from_extra(load_checkpoint(tmp_path)["extra"])
    assert back == run
    assert back.model_config == SegmenterConfig("spherical", 3, 2, 1, width=2)
    assert set(run.to_extra()) == {"config", "stats", "class_weights", "splits", "bad_files", "args"}


@pytest.mark.parametrize(
    "extra, message",
    [
        ([1, 2], "is a list, not a dict"),
        ({"note": "a classification run"}, "has no 'config' and no 'stats'"),
        ({"config": {}, "stats": {}, "classes": []}, r"keys \['classes'\] that a segmentation run does not have"),
    ],
)
def test_segmenter_run_refuses_other_extras(extra, message):
    from meshcnn.tasks import SegmenterRun

    with pytest.raises(ValueError, match=message):
        SegmenterRun.from_extra(extra)


def test_segmenter_run_checks_its_config_and_stats():
    from meshcnn.tasks import ClassifierConfig

    with pytest.raises(ValueError, match="classification config, not a segmentation config"):
        _run(config=ClassifierConfig("spherical", 3, 2, 1).to_dict())
    with pytest.raises(ValueError, match="config\\['kind'\\]"):
        _run(config={"task": "segmentation", "kind": "graph"})
    with pytest.raises(ValueError, match="have no 'std'"):
        _run(stats={"mean": [0.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match="'mean' must be 3 finite numbers"):
        _run(stats={"mean": [0.0, 0.0], "std": [1.0, 1.0, 1.0]})
    with pytest.raises(ValueError, match="2 variables in the statistics for a model of 3 inputs"):
        _run(stats={"mean": [0.0] * 3, "std": [1.0] * 3, "variables": ["a", "b"]})
