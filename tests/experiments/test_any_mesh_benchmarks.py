"""The issue-18 benchmarks on their smallest sizes: MeshConv speed on other meshes
(experiments/benchmark/meshconv.py --meshes) and equivariance on HEALPix
(experiments/benchmark/grid_equivariance.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _helpers import load_script

from meshcnn.geometry import Mesh, icosphere

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def meshconv():
    return load_script("benchmark/meshconv.py")


@pytest.fixture(scope="module")
def equivariance():
    return load_script("benchmark/grid_equivariance.py")


def test_hilbert_index_is_a_curve_through_every_cell(meshconv):
    bits = 3
    x, y = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    d = meshconv._hilbert_index(x.ravel(), y.ravel(), bits)
    assert sorted(d.tolist()) == list(range(64))
    order = np.argsort(d)
    steps = np.abs(np.diff(x.ravel()[order])) + np.abs(np.diff(y.ravel()[order]))
    assert (steps == 1).all()  # consecutive cells along the curve are neighbours


def test_hilbert_and_rcm_orders_shrink_the_bandwidth(meshconv):
    points = meshconv.random_points(2000)
    mesh = Mesh.from_points(points)

    def median_gap(m):
        return np.median(np.abs(np.diff(m.edges, axis=1)))

    order = meshconv.hilbert_order(points)
    assert sorted(order.tolist()) == list(range(2000))
    assert median_gap(Mesh.from_points(points[order])) < 0.25 * median_gap(mesh)
    assert median_gap(Mesh.from_points(points, reorder="rcm")) < 0.25 * median_gap(mesh)


def test_meshconv_benchmark_on_other_meshes(meshconv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MESHCNN_MESH_DIR", str(tmp_path / "meshes"))
    out = tmp_path / "bench.json"
    meshconv.main(
        [
            "--levels",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--no-original",
            "--no-memory",
            "--no-unet",
            "--mesh-levels",
            "0",
            "--clock",
            "cpu",
            "--meshes",
            *meshconv.MESH_KINDS,
            "--json",
            str(out),
        ]
    )
    stdout = capsys.readouterr().out
    assert "time / icosphere" in stdout and "healpix V=192" in stdout
    (row,) = json.loads(out.read_text())["conv"]
    assert row["speedup_vs_original"] is None and "original" not in row["seconds"]
    assert set(row["meshes"]) == set(meshconv.MESH_KINDS)
    for kind, m in row["meshes"].items():
        assert m["ratio_to_floor"] > 0
        if kind == "healpix":
            assert m["num_vertices"] == 192 and m["ratio_to_icosphere"] is None and "floor@healpix" in row["seconds"]
        else:
            assert m["num_vertices"] == 162 and m["ratio_to_icosphere"] > 0
    scrambled = meshconv.bench_mesh("scrambled", 2)
    assert np.allclose(np.sort(scrambled.vertices, axis=0), np.sort(icosphere(2).vertices, axis=0))


def test_healpix_isotropic_is_equivariant_within_the_interpolation_floor(equivariance):
    (healpix, _ico) = equivariance.grids([4])
    rng = np.random.default_rng(0)
    rotations = [equivariance.random_rotation(rng) for _ in range(2)]
    signal = equivariance.SmoothSignal(degree=3, channels=equivariance.CHANNELS)
    _, perm = equivariance.exact_symmetry(healpix)
    results = {
        o: equivariance.measure(equivariance.make_model("conv", healpix, o), healpix["mesh"], signal, rotations, perm)
        for o in ("isotropic", "fixed")
    }
    iso, fixed = results["isotropic"], results["fixed"]
    assert iso["exact"] < 1e-12 and fixed["exact"] < 1e-12  # quarter turns: exact for every orientation
    assert 0 < iso["floor_in"] < 0.5
    assert iso["rot"] < 3 * iso["floor_in"]
    assert fixed["rot"] > 2 * iso["rot"]


def test_grid_equivariance_script_table(equivariance, capsys):
    rows = equivariance.main(["--nsides", "2", "--rotations", "1", "--degree", "2", "--no-unet"])
    assert len(rows) == 2 * len(equivariance.ORIENTATIONS)  # HEALPix nside 2 and the nearest icosphere
    assert "| rot / floor in |" in capsys.readouterr().out
    ico_fixed = next(r for r in rows if r["grid"].startswith("icosphere") and r["orientation"] == "fixed")
    assert ico_fixed["exact"] > 1e-3  # an icosahedral rotation off the pole: fixed is not equivariant
