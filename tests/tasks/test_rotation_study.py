import argparse
import json

import pytest
import torch

from meshcnn.tasks import RotationStudy, run_rotation_study
from meshcnn.tasks.rotation_study import StudyVariant, run_folder
from meshcnn.train import ResumeSettingsError


def toy_dataset(split: str, rotated: bool, seed: int):
    """Two separable classes; "rotated" flips the sign of the input (a change the model must learn)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 3, generator=g)
    y = (x[:, 0] > 0).long()
    return list(zip(-x if rotated else x, y.tolist()))


def variant(tag: str = "toy") -> StudyVariant:
    return StudyVariant(
        name=f"Linear ({tag})",
        tag=tag,
        build=lambda: torch.nn.Linear(3, 2),
        dataset=toy_dataset,
        row={"kind": "planar", "orientation": "-", "width": 3},
    )


def study(run_dir, resume=False, **settings) -> RotationStudy:
    args = argparse.Namespace(lr=0.1, seed=[0, 1], resume=resume, **settings)
    return RotationStudy(
        run_dir,
        seeds=[0, 1],
        epochs=2,
        batch_size=8,
        lr=0.1,
        progress=False,
        resume=resume,
        args=args,
        may_change=("seed", "resume"),
    )


def test_runs_folders_table_and_resume(tmp_path, capsys):
    rows = run_rotation_study(study(tmp_path), [variant()])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "results.json",
        "toy_N_s0",
        "toy_N_s1",
        "toy_R_s0",
        "toy_R_s1",
    ]
    assert run_folder(tmp_path, "toy", "R", 1) == tmp_path / "toy_R_s1"
    assert [(r["seed"], r["setting"]) for r in rows] == [
        (0, "N/N"),
        (0, "N/R"),
        (0, "R/R"),
        (1, "N/N"),
        (1, "N/R"),
        (1, "R/R"),
    ]
    assert {r["model"] for r in rows} == {"Linear (toy)"} and all(r["width"] == 3 for r in rows)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(rows)) and saved["args"]["lr"] == "0.1"
    assert saved["table"][2].startswith("| Linear (toy) | 8 |")
    # resuming finished runs only re-evaluates them: the same accuracies
    again = run_rotation_study(study(tmp_path, resume=True), [variant()])
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]
    assert "nothing to do" in capsys.readouterr().out


def test_resume_with_other_settings_is_refused(tmp_path):
    run_rotation_study(study(tmp_path), [variant()])
    changed = study(tmp_path, resume=True)
    changed.args.lr = 0.2
    with pytest.raises(ResumeSettingsError, match="--lr"):
        run_rotation_study(changed, [variant()])


def test_settings_choose_the_train_modes(tmp_path):
    s = study(tmp_path)
    s.settings = ["R/R"]
    rows = run_rotation_study(s, [variant()])
    assert {r["setting"] for r in rows} == {"R/R"} and not (tmp_path / "toy_N_s0").exists()
    with pytest.raises(ValueError, match="settings"):
        RotationStudy(tmp_path, settings=["X/Y"])
