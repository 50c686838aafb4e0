import pytest
import torch

from meshcnn.models import PlanarCNN, PlanarUNet, SphericalResNet, SphericalUNet
from meshcnn.tasks import (
    MODEL_KINDS,
    ClassifierConfig,
    SegmenterConfig,
    build_model,
    count_parameters,
    matched_width,
    model_config,
)
from meshcnn.tasks.segmentation import matching_planar_width


def same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = dict(a.named_parameters()), dict(b.named_parameters())
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_one_name_for_the_model_kinds():
    assert MODEL_KINDS == ("spherical", "planar")
    with pytest.raises(ValueError, match="kind"):
        ClassifierConfig("graph", 6, 4, 2)
    with pytest.raises(ValueError, match="kind"):
        SegmenterConfig("sphere", 6, 4, 2)


@pytest.mark.parametrize(
    "config, cls",
    [
        (
            ClassifierConfig("spherical", 6, 4, 2, width=4, depth=2, orientation="isotropic", downsample="pool"),
            SphericalResNet,
        ),
        (ClassifierConfig("planar", 6, 4, 2, width=4, depth=2), PlanarCNN),
        (SegmenterConfig("spherical", 3, 2, 2, min_level=0, width=4, flip_channels=[1]), SphericalUNet),
        (SegmenterConfig("planar", 3, 2, 2, planar_width=4, planar_depth=2), PlanarUNet),
    ],
)
def test_configs_round_trip_through_their_stored_dicts(config, cls):
    stored = config.to_dict()
    assert stored["task"] == config.task and model_config(stored) == config
    torch.manual_seed(0)
    a = build_model(config)
    torch.manual_seed(0)
    b = build_model(stored)
    assert isinstance(a, cls) and same_parameters(a, b)


def test_dicts_written_before_the_registry_still_build_the_same_models():
    old_classifier = {"kind": "spherical", "in_channels": 6, "num_classes": 4, "level": 2, "width": 4, "depth": 2}
    assert model_config(old_classifier) == ClassifierConfig("spherical", 6, 4, 2, 4, 2, "fixed", "stride")
    old_spherical = {
        "kind": "spherical",
        "in_channels": 3,
        "num_classes": 2,
        "level": 2,
        "min_level": 0,
        "width": 4,
        "num_params": 123,
    }  # extra keys are ignored
    torch.manual_seed(1)
    a = build_model(old_spherical)
    torch.manual_seed(1)
    b = SphericalUNet(3, 2, 2, 0, 4)
    assert same_parameters(a, b)
    old_planar = {
        "kind": "planar",
        "in_channels": 3,
        "num_classes": 2,
        "level": 2,
        "planar_width": 4,
        "planar_depth": 2,
        "spherical_reference_params": 99,
    }
    assert isinstance(build_model(old_planar), PlanarUNet)
    with pytest.raises(ValueError, match="incomplete"):
        model_config({"kind": "planar", "in_channels": 3})


def test_a_stored_classifier_config_builds_the_same_model():
    config = ClassifierConfig("spherical", 6, 4, 2, 4, 1, "invariant")
    torch.manual_seed(3)
    a = build_model(config.to_dict())
    torch.manual_seed(3)
    b = build_model(config)
    assert isinstance(a, SphericalResNet) and a.orientation == "invariant" and same_parameters(a, b)
    assert isinstance(build_model(ClassifierConfig("planar", 6, 4, 2, 4, 2).to_dict()), PlanarCNN)


def test_matched_widths():
    target = count_parameters(PlanarUNet(3, 2, 6, 2))
    assert matching_planar_width(target, 3, 2, 2) == 6
    assert matched_width(lambda w: torch.nn.Linear(w, 10), 97) == 9  # 9 * 10 + 10 = 100 is closest to 97
    assert matched_width(lambda w: torch.nn.Linear(w, 10), 95) == 8  # a tie goes to the smaller width
