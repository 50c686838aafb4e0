"""--resume with other settings than the run's is refused, naming each difference (meshcnn.train.settings):
the function itself, and the climate, shapes (train and rotation study) and digits scripts that call it
(end to end, marked slow)."""

from __future__ import annotations

import argparse
import contextlib
import io
import runpy
from pathlib import Path

import numpy as np
import pytest

from meshcnn.train import ResumeSettingsError, load_checkpoint
from meshcnn.train.settings import check_resume_settings

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def _main(script: str):
    return runpy.run_path(str(ROOT / "experiments" / script))["main"]


def _quiet(main, argv):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        result = main(argv)
    return result, out.getvalue()


def tiny_mnist(path: Path, seed: int = 0) -> Path:
    """An MNIST-layout .npz of a few random 8x8 'digits' (fast to project and train on)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (24, 8, 8)).astype(np.uint8),
        "y_train": np.arange(24) % 10,
        "x_test": rng.integers(0, 256, (8, 8, 8)).astype(np.uint8),
        "y_test": np.arange(8) % 10,
    }
    np.savez(path, **arrays)
    return path


def test_check_resume_settings_names_each_difference(tmp_path, train_tiny):
    stored = {
        "level": "2",
        "width": 4,
        "lr": 0.01,
        "split": [0.7, 0.15, 0.15],
        "epochs": 3,
        "resume": False,
        "device": "cpu",
    }
    assert check_resume_settings(tmp_path, argparse.Namespace(level=3)) is None  # no checkpoint: fresh start
    train_tiny(tmp_path, 1, extra_state={"args": stored, "stats": [1.0]})
    same = argparse.Namespace(level=2, width=4, lr=0.01, split=(0.7, 0.15, 0.15), epochs=5, resume=True, device="cuda")
    assert check_resume_settings(tmp_path, same, may_change=("epochs", "device"))["stats"] == [1.0]
    other = argparse.Namespace(level=3, width=8, lr=0.5, split=(0.7, 0.15, 0.15), epochs=5, resume=True, device="cpu")
    with pytest.raises(ResumeSettingsError) as info:
        check_resume_settings(tmp_path / "checkpoint.pt", other, may_change=("device",))
    message = str(info.value)
    assert str(tmp_path / "checkpoint.pt") in message
    for line in (
        "--level: the run has 2, now 3",
        "--width: the run has 4, now 8",
        "--lr: the run has 0.01, now 0.5",
        "--epochs: the run has 3, now 5",
    ):
        assert line in message
    assert "--split" not in message and "may change on resume: --device, --resume" in message
    notes = []
    check_resume_settings(
        tmp_path, {**vars(same), "orientation": "fixed"}, may_change=("epochs", "device"), log=notes.append
    )
    assert notes and "--orientation" in notes[0]


@pytest.mark.slow
def test_climate_resume_with_other_settings_is_refused(tmp_path):
    from meshcnn.data import climate

    data = tmp_path / "data"
    climate.generate_synthetic(data, num=6, nlat=19, nlon=24, seed=0, progress=False)
    main = _main("climate_segmentation/train.py")
    common = [
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--level",
        "2",
        "--batch-size",
        "2",
        "--no-progress",
        "--threads",
        "1",
        "--width",
        "4",
    ]
    _quiet(main, common + ["--epochs", "1"])
    with pytest.raises(ResumeSettingsError) as info:
        main(common[:-1] + ["8", "--epochs", "2", "--lr", "0.5", "--resume"])
    message = str(info.value)
    assert str(tmp_path / "run" / "checkpoint.pt") in message
    assert "--width: the run has 4, now 8" in message and "--lr: the run has 0.01, now 0.5" in message
    assert "--epochs" in message.splitlines()[-1]  # listed as one that may change, not as a difference
    assert load_checkpoint(tmp_path / "run")["epoch"] == 1  # nothing trained
    history, log = _quiet(main, common + ["--epochs", "2", "--resume", "--num-workers", "0"])
    assert "resumed from" in log and [h["epoch"] for h in history] == [1, 2]
    assert "--epochs" in _help(main) and "refused if a setting differs" in _help(main)


def _help(main) -> str:
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit):
        main(["--help"])
    return " ".join(out.getvalue().split())


@pytest.mark.slow
def test_digits_resume_with_another_level_is_refused_before_training(tmp_path):
    main = _main("spherical_digits/train.py")
    common = [
        "--mnist",
        str(tiny_mnist(tmp_path / "mnist.npz")),
        "--epochs",
        "1",
        "--width",
        "2",
        "--depth",
        "1",
        "--settings",
        "N/N",
        "--models",
        "sphere",
        "--run-dir",
        str(tmp_path / "runs"),
        "--no-progress",
        "--batch-size",
        "8",
    ]
    _quiet(main, common + ["--level", "2"])
    run = tmp_path / "runs" / "sphere-fixed_N_s0"
    before = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(ResumeSettingsError, match=r"(?s)sphere-fixed_N_s0.*--level: the run has 2, now 3"):
        main(common + ["--level", "3", "--resume"])
    with pytest.raises(ResumeSettingsError, match="--epochs: the run has 1, now 2"):  # the cosine schedule spans them
        main(common + ["--level", "2", "--resume", "--epochs", "2"])
    assert (run / "checkpoint.pt").read_bytes() == before
    # other seeds and models are other runs: adding one is no difference
    rows, log = _quiet(main, common + ["--level", "2", "--resume", "--seed", "0", "1", "--threads", "1"])
    assert {r["seed"] for r in rows} == {0, 1} and "nothing to do" in log
    assert "--threads" in _help(main)


@pytest.mark.slow
def test_shape_scripts_resume_with_other_settings_is_refused(tmp_path):
    from meshcnn.data.shapes import make_synthetic

    root = tmp_path / "shapes"
    make_synthetic(root, per_class=2, seed=0, test_fraction=0.5, classes=["torus", "box"], progress=False)
    common = [
        "--data",
        str(root),
        "--level",
        "1",
        "--depth",
        "1",
        "--width",
        "4",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--no-progress",
    ]
    train = _main("shape_classification/train.py")
    _quiet(train, common + ["--run-dir", str(tmp_path / "run")])
    with pytest.raises(ResumeSettingsError) as info:
        train([*common[:7], "8", *common[8:], "--run-dir", str(tmp_path / "run"), "--resume", "--rotate-train"])
    assert "--width: the run has 4, now 8" in str(info.value) and "--rotate-train: the run has False, now True" in str(
        info.value
    )
    _quiet(train, common + ["--run-dir", str(tmp_path / "run"), "--resume", "--device", "cpu", "--threads", "1"])

    study = _main("shape_classification/rotation_study.py")
    args = common + ["--run-dir", str(tmp_path / "study"), "--models", "spherical", "--settings", "N/N"]
    _quiet(study, args)
    with pytest.raises(ResumeSettingsError, match=r"(?s)spherical-fixed_N_s0.*--lr: the run has 0.002, now 0.1"):
        study(args + ["--resume", "--lr", "0.1"])
    rows, _ = _quiet(study, args + ["--resume", "--orientation", "fixed", "isotropic"])  # a new run beside it
    assert {r["orientation"] for r in rows} == {"fixed", "isotropic"}
