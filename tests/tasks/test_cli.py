import argparse

import pytest

from meshcnn.cli import THREADS, level_option, orientation_option, run_options, seed_option, training_options


def parser(*parents):
    return argparse.ArgumentParser(parents=list(parents))


def test_shared_options_have_one_default():
    args = parser(run_options(), seed_option(), level_option(), training_options(), orientation_option()).parse_args([])
    assert (args.device, args.threads, args.num_workers, args.resume, args.no_progress) == (
        "cpu",
        THREADS,
        0,
        False,
        False,
    )
    assert (args.seed, args.level, args.orientation) == (0, 5, "fixed")
    many = parser(seed_option(many=True), orientation_option(many=True)).parse_args(
        ["--seed", "0", "1", "--orientation", "fixed", "invariant"]
    )
    assert many.seed == [0, 1] and many.orientation == ["fixed", "invariant"]
    assert parser(seed_option(many=True)).parse_args([]).seed == [0]


def test_scripts_override_hyperparameter_defaults_without_touching_other_parsers():
    p = parser(training_options())
    p.set_defaults(lr=1e-2)
    assert p.parse_args([]).lr == 1e-2
    assert parser(training_options()).parse_args([]).lr == 3e-3


def test_options_can_be_left_out():
    args = parser(
        run_options(resume=False, workers=False, device=False), training_options(batch_size=None, lr=None)
    ).parse_args([])
    assert not {"resume", "num_workers", "device", "batch_size", "lr"} & set(vars(args))
    with pytest.raises(SystemExit):
        parser(orientation_option()).parse_args(["--orientation", "sideways"])
