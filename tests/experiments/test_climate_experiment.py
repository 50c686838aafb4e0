"""Climate segmentation experiment: DDP with 2 gloo processes, exact resume, crash-safe checkpoints,
evaluation, and the main job on tiny data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import _helpers
import pytest
import torch

import meshcnn.data.climate.cli as climate_cli
from meshcnn.data import climate as C
from meshcnn.data.climate.files import read_split_list
from meshcnn.tasks import build_model
from meshcnn.train import fit, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "experiments" / "climate_segmentation"
TINY = ["--level", "2", "--width", "4", "--batch-size", "2", "--no-progress", "--lr-step", "1", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("climate")
    C.generate_synthetic(out, num=8, nlat=19, nlon=24, seed=0, progress=False)
    return out


def load_script(name: str):
    """Import a climate experiment script by path to call its main(argv)."""
    return _helpers.load_script(SCRIPTS / f"{name}.py", f"climate_{name}")


def run(cmd: list[str], timeout: float = 120) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def train(data: Path, out: Path, *extra: str) -> str:
    """Run train.py in this process; returns what it printed."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        load_script("train").main(["--data", str(data), "--out", str(out), *TINY, *extra])
    return buf.getvalue()


def params(path: Path) -> dict[str, torch.Tensor]:
    """The model's tensors (not the layers' level/orientation extra state)."""
    state = torch.load(path / "checkpoint.pt", weights_only=True)["model"]
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def test_ddp_two_gloo_processes_stay_in_sync(tiny_data, tmp_path):
    out = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(SCRIPTS / "train.py"),
            "--data",
            str(tiny_data),
            "--out",
            str(tmp_path / "ddp"),
            *TINY,
            "--epochs",
            "2",
        ],
        timeout=180,
    )
    sums = dict(re.findall(r"rank (\d)/2: parameter checksum ([0-9a-f]{16})", out))
    assert set(sums) == {"0", "1"}, out
    assert sums["0"] == sums["1"]
    # rank 0 alone wrote the run, and its checkpoint holds the synchronized parameters
    ckpt = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    model = build_model(ckpt["extra"]["config"])
    model.load_state_dict(ckpt["model"])
    assert load_script("train").parameter_checksum(model) == sums["0"]
    assert len(json.loads((tmp_path / "ddp" / "metrics.json").read_text())) == 2


def test_resume_two_plus_two_equals_four(tiny_data, tmp_path):
    train(tiny_data, tmp_path / "straight", "--epochs", "4")
    train(tiny_data, tmp_path / "resumed", "--epochs", "2")
    first = params(tmp_path / "resumed")
    log = train(tiny_data, tmp_path / "resumed", "--epochs", "4", "--resume")
    assert "resumed from" in log
    a, b = params(tmp_path / "straight"), params(tmp_path / "resumed")
    assert a.keys() == b.keys()
    assert any(not torch.equal(first[k], b[k]) for k in b)  # epochs 3-4 did train
    for k in a:
        assert torch.equal(a[k], b[k]), k
    history = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    extra = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["extra"]
    assert len(extra["stats"]["mean"]) == 16 and extra["config"]["kind"] == "spherical"


def test_interrupted_checkpoint_write_keeps_previous(tiny_data, tmp_path, monkeypatch):
    files = sorted(tiny_data.glob("*.nc"))[:4]
    ds = C.ClimateNetDataset(files, 2)
    ds.set_stats(C.compute_stats(ds, progress=False))
    config = {"kind": "spherical", "in_channels": 16, "num_classes": 3, "level": 2, "min_level": 0, "width": 4}

    def make():
        torch.manual_seed(0)
        model = build_model(config)
        return model, torch.optim.Adam(model.parameters(), 1e-2)

    model, opt = make()
    loss = torch.nn.CrossEntropyLoss()
    fit(
        model,
        ds,
        optimizer=opt,
        loss_fn=loss,
        epochs=1,
        batch_size=2,
        run_dir=tmp_path,
        progress=False,
        log=lambda *_: None,
    )
    before = {
        k: v.clone()
        for k, v in load_checkpoint(tmp_path / "checkpoint.pt")["model"].items()
        if isinstance(v, torch.Tensor)
    }

    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):  # write half a checkpoint, then the process "dies"
        real_save({"partial": torch.zeros(10)}, f)
        raise KeyboardInterrupt("killed during checkpoint write")

    monkeypatch.setattr(torch, "save", dying_save)
    model, opt = make()
    with pytest.raises(KeyboardInterrupt):
        fit(
            model,
            ds,
            optimizer=opt,
            loss_fn=loss,
            epochs=2,
            batch_size=2,
            run_dir=tmp_path,
            progress=False,
            resume=True,
            log=lambda *_: None,
        )
    monkeypatch.setattr(torch, "save", real_save)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.equal(before[k], ckpt["model"][k]) for k in before)
    assert not list(tmp_path.glob(".checkpoint.pt.*.tmp"))  # no debris left behind


def test_planar_and_evaluate_and_skip_bad(tiny_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for f in sorted(tiny_data.glob("*.nc")):
        (data / f.name).symlink_to(f)
    (data / "data-2000-02-30-01-1_99.nc").write_bytes(b"not a netCDF file")  # sorts into the middle
    with pytest.raises(C.ClimateFileError, match=r"data-2000-02-30-01-1_99.nc: unreadable"):
        train(data, tmp_path / "fails", "--model", "planar", "--epochs", "1", "--split", "1", "0", "0")
    log = train(data, tmp_path / "planar", "--model", "planar", "--epochs", "1", "--skip-bad")
    config = json.loads((tmp_path / "planar" / "config.json").read_text())
    assert config["config"]["kind"] == "planar"
    # similar parameter count to the spherical U-Net it is compared with
    ratio = config["config"]["num_params"] / config["config"]["spherical_reference_params"]
    assert 0.5 < ratio < 2.0
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        load_script("evaluate").main(
            ["--run", str(tmp_path / "planar"), "--num-maps", "1", "--no-progress", "--skip-bad", "--threads", "1"]
        )
    out = buf.getvalue()
    report = json.loads((tmp_path / "planar" / "eval" / "test_metrics.json").read_text())
    # the bad file was skipped, with a message naming it, in whichever split it fell
    assert "data-2000-02-30-01-1_99.nc" in log + out and "skipping bad file" in log + out
    assert set(report["iou_by_band"]) == {"tropics", "midlatitudes", "polar"}
    assert report["model"]["kind"] == "planar" and "IoU by latitude band" in out
    assert (tmp_path / "planar" / "eval" / "confusion_matrix.png").stat().st_size > 1000
    assert len(report["maps"]) == 1 and Path(report["maps"][0]).stat().st_size > 1000


@pytest.mark.slow
def test_main_job_tiny(tmp_path):
    out = run(
        [
            sys.executable,
            str(SCRIPTS / "main.py"),
            "--out",
            str(tmp_path / "main"),
            "--num",
            "6",
            "--nlat",
            "19",
            "--nlon",
            "24",
            "--level",
            "2",
            "--width",
            "4",
            "--epochs",
            "1",
            "--num-maps",
            "1",
            "--no-progress",
        ],
        timeout=180,
    )
    assert "test IoU" in out and "test AP" in out
    summary = json.loads((tmp_path / "main" / "summary.json").read_text())
    assert summary["maps"] and all(Path(p).is_file() for p in summary["maps"])
    assert (tmp_path / "main" / "checkpoint.pt").is_file() and (tmp_path / "main" / "metrics.json").is_file()


def test_train_on_ugscnn_folder_with_split_lists(tiny_data, tmp_path):
    climate_cli.main(["to-ugscnn", "--data", str(tiny_data), "--out", str(tmp_path / "ugscnn"), "--level", "2"])
    log = train(tmp_path / "ugscnn", tmp_path / "run", "--epochs", "1")
    extra = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["extra"]
    listed = read_split_list(tmp_path / "ugscnn" / "train_split.txt")
    assert [Path(f).name for f in extra["splits"]["train"]] == [f.name for f in listed]
    assert all(f.endswith(".npz") for f in extra["splits"]["train"]) and "spherical model on icosphere level 2" in log


@pytest.mark.parametrize("orientation,flipped", [("poleward", ["V850", "VBOT"]), ("invariant", [])])
def test_train_with_orientation_stores_it_and_flips_the_meridional_winds(tiny_data, tmp_path, orientation, flipped):
    log = train(tiny_data, tmp_path / "run", "--epochs", "1", "--orientation", orientation)
    config = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["extra"]["config"]
    assert config["orientation"] == orientation
    assert [C.VARIABLES[c] for c in config["flip_channels"]] == flipped
    model = build_model(config)
    assert model.orientation == orientation and model.flip_channels == tuple(config["flip_channels"])
    model.load_state_dict(params(tmp_path / "run"))  # the level and orientation stored per layer match
    assert f"({orientation}, hemisphere flip of {flipped or 'nothing'})" in log


@pytest.mark.slow
def test_orientation_study_tiny(tmp_path):
    out = run(
        [
            sys.executable,
            str(SCRIPTS / "orientation_study.py"),
            "--out",
            str(tmp_path / "study"),
            "--num",
            "6",
            "--nlat",
            "19",
            "--nlon",
            "24",
            "--level",
            "2",
            "--width",
            "4",
            "--epochs",
            "1",
            "--orientation",
            "fixed",
            "poleward",
            "--seed",
            "1",
            "--no-progress",
        ],
        timeout=300,
    )
    result = json.loads((tmp_path / "study" / "results.json").read_text())
    assert [line.split(" | ")[0] for line in result["table"][2:]] == ["| fixed", "| poleward"]
    assert all(line.endswith("| 1 |") for line in result["table"][2:]) and "TC IoU, south" in out
    assert (tmp_path / "study" / "poleward_s1" / "eval" / "test_metrics.json").is_file()


def test_evaluate_writes_metrics_without_matplotlib(tiny_data, tmp_path, monkeypatch):
    import contextlib
    import io

    train(tiny_data, tmp_path / "run", "--epochs", "1", "--max-train", "2")
    evaluate = load_script("evaluate")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if matplotlib were not installed
    for extra in (["--num-maps", "0"], []):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            evaluate.main(["--run", str(tmp_path / "run"), "--no-progress", "--threads", "1", *extra])
        report = json.loads((tmp_path / "run" / "eval" / "test_metrics.json").read_text())
        assert report["maps"] == [] and "mean_iou" in report
        assert "pip install 'meshcnn[plot]'" in buf.getvalue()
        assert not (tmp_path / "run" / "eval" / "confusion_matrix.png").exists()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        evaluate.main(["--run", str(tmp_path / "run"), "--no-progress", "--threads", "1", "--no-plots"])
    assert "plots skipped" not in buf.getvalue()


def test_healpix_grid_trains_evaluates_and_predicts_on_the_input_grid(tiny_data, tmp_path):
    """--grid healpix: the U-Net runs on HEALPix (order 2, 192 pixels); predict writes lat-lon masks."""
    import netCDF4

    from meshcnn.predict import load_predictor, predict_files

    train(tiny_data, tmp_path / "run", "--epochs", "1", "--grid", "healpix", "--min-level", "0")
    config = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["extra"]["config"]
    assert config["grid"] == "healpix" and config["level"] == 2
    model = build_model(config)
    assert model.hierarchy[0].num_vertices == 12 * 4**2 and model.hierarchy[0].name == "healpix4n"
    model.load_state_dict(params(tmp_path / "run"), strict=False)  # the layers' fingerprints match
    report = load_script("evaluate").main(["--run", str(tmp_path / "run"), "--no-plots", "--no-progress"])
    assert report["grid"] == "healpix" and 0.0 <= report["mean_iou"] <= 1.0
    assert load_predictor(tmp_path / "run").grid.nside == 4
    source = sorted(tiny_data.glob("*.nc"))[0]
    predict_files([source], tmp_path / "run", tmp_path / "pred", progress=False)
    with netCDF4.Dataset(tmp_path / "pred" / source.name) as out, netCDF4.Dataset(source) as src:
        assert out["LABELS"].shape[-2:] == src["TMQ"].shape[-2:]  # masks on the input's own lat-lon grid
        assert out.mesh_grid == "healpix" and out["MESH_LABELS"].shape[-1] == 192
