"""Native-grids experiment: the script end to end on tiny ICON-like and MPAS-like grids (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("netCDF4")
pytest.importorskip("xarray")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "native_grids" / "train.py"
TINY = [
    "--icon-level",
    "3",
    "--mpas-level",
    "3",
    "--levels",
    "3",
    "--train",
    "6",
    "--val",
    "2",
    "--test",
    "2",
    "--epochs",
    "2",
    "--width",
    "4",
    "--batch-size",
    "2",
    "--no-progress",
    "--threads",
    "1",
]


@pytest.mark.slow
def test_train_script_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), *TINY], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == {"icon", "mpas"}
    # the grids are the native ones: the ICON triangles' centres, the MPAS Voronoi generators
    assert results["icon"]["cells"] == 20 * 4**3 and results["mpas"]["cells"] == 10 * 4**3 + 2
    assert results["icon"]["hierarchy"] == [1280, 642, 162] and results["mpas"]["hierarchy"] == [642, 162, 42]
    assert results["icon"]["unmatched_edges"] == 0
    for kind, res in results.items():
        ious = res["iou"]
        assert set(ious) == {"background", "tropical cyclone", "atmospheric river"}
        assert all(v is None or 0.0 <= v <= 1.0 for v in ious.values())
        assert 0.0 <= res["mean_iou"] <= 1.0
        png = out / f"{kind}_test.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        history = json.loads((out / kind / "metrics.json").read_text())
        assert [h["epoch"] for h in history] == [1, 2] and all(np.isfinite(h["train_loss"]) for h in history)
        assert "val_mean_iou" in history[-1]
        assert (out / kind / "checkpoint.pt").is_file()
        assert (out / f"{kind}_grid.nc").is_file()
        assert f"{kind}: test IoU" in proc.stdout
