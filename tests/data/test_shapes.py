"""OFF reading, the ModelNet-layout dataset (cache, rotations, bad files) and the synthetic shape set."""

import os

import numpy as np
import pytest
import torch

import meshcnn.data.shapes.cli as shapes_cli
import meshcnn.data.shapes.dataset as shapes_dataset
from meshcnn.data.shapes import SYNTH_CLASSES, ModelNet, make_synthetic, read_off, write_off
from meshcnn.geometry import project_mesh
from meshcnn.geometry.project import project_latlon

TETRA_V = "0 0 0\n1 0 0\n0 1 0\n0 0 1\n"
TETRA_F = "3 0 2 1\n3 0 1 3\n3 0 3 2\n3 1 2 3\n"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------ read_off
@pytest.mark.parametrize("header", ["OFF\n4 4 0\n", "OFF4 4 0\n", "OFF 4 4 0\n", "# comment\nOFF\n\n4 4 0 # counts\n"])
def test_read_off_headers_including_the_modelnet_quirk(tmp_path, header):
    mesh = read_off(_write(tmp_path / "t.off", header + TETRA_V + TETRA_F))
    np.testing.assert_array_equal(mesh.vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(mesh.faces, [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    assert mesh.metadata["file_path"].endswith("t.off")


def test_read_off_ignores_colours(tmp_path):
    text = (
        "OFF\n4 4 0\n"
        + "".join(f"{v} 255 0 0\n" for v in TETRA_V.splitlines())
        + "".join(f"{f} 0.5 0.5 0.5\n" for f in TETRA_F.splitlines())
    )
    np.testing.assert_array_equal(read_off(_write(tmp_path / "c.off", text)).faces[3], [1, 2, 3])


def test_polygons_are_an_error_unless_triangulated(tmp_path):
    cube_v = "".join(f"{x} {y} {z}\n" for x in (0, 1) for y in (0, 1) for z in (0, 1))
    quads = "4 0 1 3 2\n4 4 6 7 5\n4 0 4 5 1\n4 2 3 7 6\n4 0 2 6 4\n4 1 5 7 3\n"
    path = _write(tmp_path / "cube.off", "OFF\n8 6 0\n" + cube_v + quads)
    with pytest.raises(ValueError, match=r"cube\.off.*face 0 has 4 corners.*triangulate"):
        read_off(path)
    mesh = read_off(path, triangulate=True)
    assert mesh.faces.shape == (12, 3)
    np.testing.assert_array_equal(mesh.faces[:2], [[0, 1, 3], [0, 3, 2]])  # fan from the first corner
    assert mesh.is_watertight and abs(mesh.volume) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "not an OFF file"),
        ("PLY\n4 4 0\n" + TETRA_V + TETRA_F, "not an OFF file"),
        ("OFF\nfour 4 0\n" + TETRA_V + TETRA_F, "malformed OFF header"),
        ("OFF\n4 4 0\n" + TETRA_V + TETRA_F.splitlines()[0], "truncated"),
        ("OFF\n4 4 0\n" + TETRA_V + TETRA_F.replace("1 2 3", "1 2 9"), "out of range"),
        ("OFF\n4 4 0\n" + TETRA_V + TETRA_F.replace("3 1 2 3", "2 1 2"), "at least 3 corners"),
        ("OFF\n4 4 0\n" + TETRA_V.replace("0 0 1", "0 0 nan") + TETRA_F, "NaN"),
        ("OFF\n4 4 0\n" + TETRA_V.replace("0 0 1", "1 1 0") + TETRA_F, "zero volume"),
        ("OFF\n4 4 0\n0 0 0\n1 0 x\n0 1 0\n0 0 1\n" + TETRA_F, "vertex 1"),
    ],
)
def test_bad_off_files_raise_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path / "bad_0007.off", text)
    with pytest.raises(ValueError, match=r"bad_0007\.off.*" + message):
        read_off(path)


def test_missing_off_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.off"):
        read_off(tmp_path / "nothere.off")


@pytest.mark.parametrize("quirk", [False, True])
def test_write_off_round_trip(tmp_path, quirk):
    import trimesh

    mesh = trimesh.creation.capsule()
    path = tmp_path / "cap.off"
    write_off(path, mesh, header_quirk=quirk)
    assert path.read_text().startswith(f"OFF{len(mesh.vertices)} " if quirk else "OFF\n")
    back = read_off(path)
    np.testing.assert_allclose(back.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(back.faces, mesh.faces)


# ------------------------------------------------------------------------------------------ dataset
@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_synthetic(root, per_class=3, seed=0, test_fraction=0.34, classes=["torus", "box", "chair"], progress=False)
    return root


def test_dataset_layout_and_items(synth_root):
    (synth_root / "__MACOSX").mkdir(exist_ok=True)  # as in ModelNet10.zip: ignored
    train = ModelNet(synth_root, "train", 1)
    test = ModelNet(synth_root, "test", 1)
    assert train.classes == ["box", "chair", "torus"] == test.classes
    assert len(train) == 6 and len(test) == 3
    assert train.targets == [0, 0, 1, 1, 2, 2]
    x, y = train[2]
    assert isinstance(x, torch.Tensor) and x.shape == (6, 42) and x.dtype == torch.float32 and y == 1
    np.testing.assert_array_equal(x.numpy(), project_mesh(read_off(train.files[2]), 1))
    assert torch.isfinite(x).all()


def test_latlon_view_is_the_same_projection_on_a_grid(synth_root):
    data = ModelNet(synth_root, "test", 2, grid="latlon")
    x, _ = data[0]
    assert x.shape == (6, 9, 18)
    np.testing.assert_array_equal(x.numpy(), project_latlon(read_off(data.files[0]), 9, 18))


def test_projection_cache_is_used_and_refreshed(synth_root, tmp_path, monkeypatch):
    data = ModelNet(synth_root, "train", 1, cache_dir=tmp_path)
    first = data[0][0]
    cache = tmp_path / "v1_ico1" / "box" / "train" / "box_0001.npz"
    assert cache.is_file()
    with np.load(cache, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["signal"], first.numpy())

    def no_projection(*args, **kwargs):
        raise AssertionError("re-projected a cached file")

    monkeypatch.setattr(shapes_dataset, "ShapeProjector", no_projection)
    again = ModelNet(synth_root, "train", 1, cache_dir=tmp_path)
    np.testing.assert_array_equal(again[0][0].numpy(), first.numpy())
    # a cache file older than its OFF file is recomputed
    os.utime(cache, (0, 0))
    with pytest.raises(AssertionError, match="re-projected"):
        again[0]
    monkeypatch.undo()
    np.savez(cache, signal=np.zeros((6, 10), np.float32))  # no checksum: warned about and recomputed
    with pytest.warns(UserWarning, match="recomputing"):
        np.testing.assert_array_equal(again[0][0].numpy(), first.numpy())


def test_fresh_rotations_per_epoch(synth_root):
    data = ModelNet(synth_root, "train", 1, rotate=True, seed=5)
    a = data[1][0]
    np.testing.assert_array_equal(data[1][0], a)  # same epoch, same rotation
    R = data.rotation(1)
    np.testing.assert_allclose(a.numpy(), project_mesh(read_off(data.files[1]), 1, R), atol=1e-6)
    data.set_epoch(1)
    assert not np.allclose(data.rotation(1), R)
    assert (data[1][0] - a).abs().max() > 0.05
    data.set_epoch(0)
    np.testing.assert_array_equal(data[1][0], a)


def test_mesh_cache_gives_the_same_rotated_items(synth_root):
    plain = ModelNet(synth_root, "train", 1, rotate=True)
    cached = ModelNet(synth_root, "train", 1, rotate=True, mesh_cache=2)
    for epoch in range(2):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in (0, 3, 5, 0):
            np.testing.assert_allclose(cached[i][0], plain[i][0], atol=1e-6)
    assert len(cached._projectors) == 2 and len(plain._projectors) == 0


def test_cached_rotation_bank(synth_root, tmp_path):
    data = ModelNet(synth_root, "train", 1, rotate=True, cache_rotations=2, cache_dir=tmp_path)
    signals = []
    for epoch in range(8):
        data.set_epoch(epoch)
        signals.append(data[0][0].numpy())
        np.testing.assert_allclose(signals[-1], project_mesh(read_off(data.files[0]), 1, data.rotation(0)), atol=1e-6)
    assert len({s.tobytes() for s in signals}) == 2
    with np.load(tmp_path / "v1_ico1_rot2_seed0" / "box" / "train" / "box_0001.npz", allow_pickle=False) as f:
        bank = f["signal"]
    assert bank.shape == (2, 6, 42)
    with pytest.raises(ValueError, match="rotate=True"):
        ModelNet(synth_root, "train", 1, cache_rotations=2)


def test_bad_files_and_folders(synth_root, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(synth_root, root)
    bad = _write(root / "box" / "train" / "box_0099.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    data = ModelNet(root, "train", 1)
    index = data.files.index(bad)
    with pytest.raises(ValueError, match="box_0099.off"):
        data[index]
    logged = []
    skipping = ModelNet(root, "train", 1, skip_bad=True, progress=False, log=logged.append)
    assert len(skipping) == len(data) - 1 and bad not in skipping.files
    assert skipping.skipped[0][0] == bad and "box_0099.off" in logged[0]

    for path in (root / "torus" / "test").iterdir():
        path.unlink()
    with pytest.raises(ValueError, match="torus.*no .off files"):
        ModelNet(root, "test", 1)
    with pytest.raises(FileNotFoundError):
        ModelNet(tmp_path / "missing", "train", 1)
    with pytest.raises(ValueError, match="split"):
        ModelNet(root, "val", 1)


def test_synth_cli_is_reproducible(tmp_path):
    assert len(SYNTH_CLASSES) >= 10
    for out in ("a", "b"):
        shapes_cli.main(["synth", "--out", str(tmp_path / out), "--per-class", "2", "--seed", "1"])
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.off"))
    assert len(files) == 2 * len(SYNTH_CLASSES)
    assert {p.parts[1] for p in files} == {"train", "test"}
    for p in files:
        assert (tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes()
        read_off(tmp_path / "a" / p)  # every generated shape is a valid mesh


# ------------------------------------------------------------------------------------------ experiment scripts
def _script(name):
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "shape_classification" / f"{name}.py"
    return runpy.run_path(str(path))  # run_name is not "__main__": only defines main()


def test_classifier_configs():
    from meshcnn.tasks import ClassifierConfig, build_model, count_parameters
    from meshcnn.tasks.classification import accuracy

    sphere = build_model(ClassifierConfig("spherical", 6, 4, level=2, width=4, depth=2))
    planar = build_model(ClassifierConfig("planar", 6, 4, level=2, width=4, depth=2))
    assert sphere(torch.zeros(2, 6, 162)).shape == (2, 4) and planar(torch.zeros(2, 6, 9, 18)).shape == (2, 4)
    assert count_parameters(sphere) > 0
    with pytest.raises(ValueError, match="kind"):
        ClassifierConfig("graph", 6, 4, 2)

    class Oracle(torch.nn.Module):  # predicts the class stored in the input
        def forward(self, x):
            return torch.nn.functional.one_hot(x[:, 0, 0].long(), 3).float()

    data = [(torch.full((6, 4), float(i % 3)), [0, 1, 1][i % 3]) for i in range(6)]
    assert accuracy(Oracle(), data, batch_size=4) == pytest.approx(4 / 6)  # class 2 items are labelled 1


def test_train_evaluate_and_rotation_study_scripts(synth_root, tmp_path):
    run = tmp_path / "run"
    common = [
        "--data",
        str(synth_root),
        "--level",
        "1",
        "--depth",
        "1",
        "--width",
        "4",
        "--epochs",
        "1",
        "--batch-size",
        "3",
        "--no-progress",
    ]
    history = _script("train")["main"](
        common
        + [
            "--run-dir",
            str(run),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--rotate-train",
            "--orientation",
            "invariant",
            "--downsample",
            "pool",
        ]
    )
    assert len(history) == 1 and 0 <= history[0]["test_accuracy"] <= 1
    assert (run / "checkpoint.pt").is_file() and (run / "metrics.json").is_file()
    config = torch.load(run / "checkpoint.pt", weights_only=True)["extra"]["config"]
    assert (config["orientation"], config["downsample"]) == ("invariant", "pool")
    result = _script("evaluate")["main"](["--run-dir", str(run), "--rotate"])
    assert (run / "confusion_R.png").stat().st_size > 0 and (run / "evaluation_R.json").is_file()
    assert sum(sum(row) for row in result["confusion_matrix"]) == 3
    rows = _script("rotation_study")["main"](common + ["--run-dir", str(tmp_path / "study"), "--models", "planar"])
    assert [r["setting"] for r in rows] == ["N/N", "N/R", "R/R"]
    assert all(r["kind"] == "planar" and r["params"] > 0 for r in rows)
    rows = _script("rotation_study")["main"](
        common
        + [
            "--run-dir",
            str(tmp_path / "study2"),
            "--settings",
            "N/N",
            "--orientation",
            "isotropic",
            "invariant",
            "--seed",
            "0",
            "1",
            "--downsample",
            "pool",
        ]
    )
    assert {(r["kind"], r["orientation"], r["seed"]) for r in rows} == {
        (k, o, s)
        for k, o in (("spherical", "isotropic"), ("spherical", "invariant"), ("planar", "fixed"))
        for s in (0, 1)
    }
    assert (tmp_path / "study2" / "spherical-invariant_N_s1" / "checkpoint.pt").is_file()
    png = _script("show_projection")["main"](
        ["--data", str(synth_root), "--level", "1", "--classes", "torus", "--out", str(tmp_path / "maps.png")]
    )
    assert png.stat().st_size > 0
    with pytest.raises(ValueError, match="sphere"):
        _script("show_projection")["main"](["--data", str(synth_root), "--classes", "sphere"])


# ------------------------------------------------------------------------------------ issue 13
def test_projection_cache_with_a_flipped_byte_is_recomputed_with_a_warning(synth_root, tmp_path):
    data = ModelNet(synth_root, "train", 1, cache_dir=tmp_path)
    first = data[0][0].numpy().copy()
    (cache,) = (tmp_path / "v1_ico1" / "box" / "train").glob("box_0001.*")
    # a well-formed cache file (zip CRCs right) whose signal no longer matches its checksum
    with np.load(cache, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["signal"] = arrays["signal"].copy()
    arrays["signal"][0, 7] = np.nextafter(arrays["signal"][0, 7], np.float32(2))  # one bit
    np.savez(cache, **arrays)
    os.utime(cache, (os.stat(cache).st_atime, os.stat(data.files[0]).st_mtime + 10))
    again = ModelNet(synth_root, "train", 1, cache_dir=tmp_path)
    with pytest.warns(UserWarning, match=r"box_0001\.npz: projection cache fails its checksum"):
        np.testing.assert_array_equal(again[0][0].numpy(), first)
    with np.load(cache, allow_pickle=False) as f:  # rewritten
        np.testing.assert_array_equal(f["signal"], first)


def test_bom_and_geomview_header_variants(tmp_path):
    reference = read_off(_write(tmp_path / "plain.off", "OFF\n4 4 0\n" + TETRA_V + TETRA_F))
    (tmp_path / "bom.off").write_bytes(b"\xef\xbb\xbf" + ("OFF\n4 4 0\n" + TETRA_V + TETRA_F).encode())
    coloured = "".join(line + " 0.5 0.5 0.5 1\n" for line in TETRA_V.splitlines())
    _write(tmp_path / "coff.off", "COFF\n4 4 0\n" + coloured + TETRA_F)
    normals = "".join(line + " 0 0 1\n" for line in TETRA_V.splitlines())
    _write(tmp_path / "noff.off", "NOFF\n4 4 0\n" + normals + TETRA_F)
    for name in ("bom.off", "coff.off", "noff.off"):
        mesh = read_off(tmp_path / name)
        np.testing.assert_array_equal(mesh.vertices, reference.vertices)
        np.testing.assert_array_equal(mesh.faces, reference.faces)
    _write(tmp_path / "four.off", "4OFF\n4 4 0\n" + TETRA_V + TETRA_F)
    with pytest.raises(ValueError, match=r"four\.off: not an OFF file.*not supported"):
        read_off(tmp_path / "four.off")
    _write(tmp_path / "office.off", "OFFICE\n4 4 0\n" + TETRA_V + TETRA_F)
    with pytest.raises(ValueError, match=r"office\.off: not an OFF file"):
        read_off(tmp_path / "office.off")


@pytest.mark.parametrize("scale", [1e-9, 1e-200, 1e200])
def test_shapes_in_tiny_or_huge_units_project_like_unit_ones(tmp_path, scale):
    import trimesh

    from meshcnn.geometry.project import normalize_mesh

    box = trimesh.creation.box((1.0, 0.6, 0.3))
    box.apply_translation((0.2, 0.1, 0.0))
    write_off(tmp_path / "unit.off", box)
    small = trimesh.Trimesh(box.vertices * scale, box.faces, process=False)
    write_off(tmp_path / "scaled.off", small)
    unit, scaled = read_off(tmp_path / "unit.off"), read_off(tmp_path / "scaled.off")
    np.testing.assert_allclose(normalize_mesh(scaled).vertices, normalize_mesh(unit).vertices, atol=1e-6)
    assert np.isfinite(project_mesh(scaled, 1)).all()


@pytest.mark.parametrize(
    "vertex_lines",
    [
        "0 0 0\n1\n0 1 0\n0 0 1\n",  # a short line was read as (1, 1, 1)
        "0 0 0\n1 0\r0\n0 1 0\n0 0 1\n",
    ],
)  # a line broken in two
def test_damaged_vertex_lines_are_errors_not_other_numbers(tmp_path, vertex_lines):
    path = tmp_path / "short.off"
    path.write_bytes(("OFF\n4 4 0\n" + vertex_lines + TETRA_F).encode())
    with pytest.raises(ValueError, match=r"short\.off: (vertex 1: expected 3 numbers|truncated)"):
        read_off(path)


def test_projection_options_or_keywords(synth_root):
    from meshcnn.data.shapes import ProjectionOptions

    by_keywords = ModelNet(synth_root, "test", 2, grid="latlon", latlon=(9, 18))
    by_options = ModelNet(synth_root, "test", 2, options=ProjectionOptions(grid="latlon", latlon=(9, 18)))
    assert by_keywords.options == by_options.options and by_keywords.signal_shape == (6, 9, 18)
    np.testing.assert_array_equal(by_keywords[0][0].numpy(), by_options[0][0].numpy())
    assert ModelNet(synth_root, "test", 2, grid="ico").grid == "mesh"  # the older name of the mesh grid
    assert ModelNet(synth_root, "test", 2, options=ProjectionOptions(mesh_cache=3), mesh_cache=5).mesh_cache == 5
    with pytest.raises(TypeError, match="gird"):
        ModelNet(synth_root, "test", 2, gird="mesh")
    with pytest.raises(ValueError, match="grid"):
        ProjectionOptions(grid="healpix")
