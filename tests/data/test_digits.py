"""Tests of meshcnn.data.digits (spherical digits); rotations themselves: tests/geometry/test_rotations.py."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import meshcnn
from meshcnn.data import digits as D
from meshcnn.data.digits.dataset import JITTER_DEGREES, TEST_FRACTION
from meshcnn.data.digits.projection import DEFAULT_EXTENT
from meshcnn.geometry import icosahedral_rotations, icosphere, random_rotation, rotate_signal, vertex_permutation


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _footprint(vertices: np.ndarray, shape, projection: str, extent: float) -> np.ndarray:
    """Which vertices the image covers, from polar angle and longitude (independent of the module's formulas)."""
    theta = np.arccos(np.clip(vertices[:, 2], -1, 1))
    phi = np.arctan2(vertices[:, 1], vertices[:, 0])
    if projection == "stereographic":
        r, a = 2 * np.tan(theta / 2), 2 * np.tan(extent / 2)
    else:
        r, a = np.tan(np.minimum(theta, 1.5)), np.tan(extent)
    h, w = shape
    half_w, half_h = a * w / max(h, w), a * h / max(h, w)
    u, v = r * np.cos(phi), r * np.sin(phi)
    return (theta < np.pi / 2) & (np.abs(u) <= half_w + 1e-12) & (np.abs(v) <= half_h + 1e-12)


# ---------------------------------------------------------------------------- projection
@pytest.mark.parametrize("projection", D.PROJECTIONS)
@pytest.mark.parametrize("shape", [(8, 8), (5, 9)])
def test_constant_image_is_constant_on_its_cap_and_zero_elsewhere(projection, shape):
    level, extent = 4, np.radians(50)
    mesh = icosphere(level)
    signal = D.project_image(np.full(shape, 2.5), level, projection=projection, extent=extent)
    assert signal.dtype == np.float32 and signal.shape == (mesh.num_vertices,)
    inside = _footprint(mesh.vertices, shape, projection, extent)
    assert inside.sum() > 50
    np.testing.assert_array_equal(signal[inside], 2.5)
    np.testing.assert_array_equal(signal[~inside], 0.0)
    theta = np.arccos(mesh.vertices[:, 2])
    short = extent if shape[0] == shape[1] else 0.0  # the inscribed disc is covered for a square image
    assert np.all(signal[theta < short] == 2.5)
    assert np.all(signal[theta >= np.pi / 2] == 0)  # southern hemisphere and equator untouched


def test_linear_ramp_is_reproduced_and_upright():
    """Bilinear sampling reproduces a ramp exactly; columns run along +x and rows downward along -y."""
    level, h, w = 5, 6, 6
    mesh = icosphere(level)
    a = 2 * np.tan(DEFAULT_EXTENT / 2)
    pixel = 2 * a / w
    x, y, z = mesh.vertices.T
    u, v = 2 * x / np.maximum(1 + z, 1e-9), 2 * y / np.maximum(1 + z, 1e-9)
    col, row = u / pixel + w / 2 - 0.5, h / 2 - 0.5 - v / pixel
    interior = (z > 0) & (col >= 0) & (col <= w - 1) & (row >= 0) & (row <= h - 1)
    ramp = np.add.outer(10 * np.arange(h), np.arange(w)).astype(float)  # 10 * row + col
    signal = D.project_image(ramp, level)
    np.testing.assert_allclose(signal[interior], (10 * row + col)[interior], rtol=1e-5, atol=1e-4)
    corner = np.zeros((h, w))
    corner[0, 0] = 1.0  # top-left pixel
    lit = D.project_image(corner, level) > 0
    assert np.all(x[lit] < 0) and np.all(y[lit] > 0)


def test_identity_rotation_is_no_rotation():
    image = np.random.default_rng(0).random((8, 8))
    np.testing.assert_array_equal(D.project_image(image, 3, np.eye(3)), D.project_image(image, 3))


def test_icosahedral_rotation_of_projection_is_a_vertex_permutation():
    image = np.random.default_rng(1).random((7, 7))
    base = D.project_image(image, 3)
    for rotation in icosahedral_rotations()[[5, 17, 42]]:
        perm = vertex_permutation(3, rotation)
        expected = np.empty_like(base)
        expected[perm] = base
        np.testing.assert_allclose(D.project_image(image, 3, rotation), expected, atol=1e-6)


def test_projection_about_polar_axis_rotates_the_image():
    """A quarter turn about z equals projecting the image turned by 90 degrees counter-clockwise."""
    image = np.random.default_rng(2).random((6, 6))
    np.testing.assert_allclose(
        D.project_image(image, 4, _rot_z(np.pi / 2)), D.project_image(np.rot90(image), 4), atol=1e-5
    )


def _smooth_image(n: int = 32) -> np.ndarray:
    t = np.linspace(-1, 1, n)
    return np.exp(-4 * ((t[:, None] - 0.2) ** 2 + (t[None, :] + 0.1) ** 2))


def test_rotate_then_rotate_back_is_close_to_identity():
    level = 4
    rotation = random_rotation(np.random.default_rng(3))
    signal = D.project_image(_smooth_image(), level).astype(np.float64)
    back = rotate_signal(rotate_signal(signal, level, rotation), level, rotation.T)
    assert np.linalg.norm(back - signal) / np.linalg.norm(signal) < 0.02
    # analytic rotation at projection time, interpolated rotation back
    rotated = D.project_image(_smooth_image(), level, rotation).astype(np.float64)
    back = rotate_signal(rotated, level, rotation.T)
    assert np.linalg.norm(back - signal) / np.linalg.norm(signal) < 0.02
    assert np.linalg.norm(rotated - signal) / np.linalg.norm(signal) > 0.5  # it did move


# ---------------------------------------------------------------------------- inverse projection
@pytest.mark.parametrize("projection", D.PROJECTIONS)
def test_unproject_constant_and_shapes(projection):
    mesh = icosphere(3)
    images = D.unproject_signal(np.full((2, mesh.num_vertices), 0.7), 3, (5, 4), projection=projection)
    assert images.shape == (2, 5, 4) and images.dtype == np.float32
    np.testing.assert_allclose(images, 0.7, rtol=1e-6)
    # the pixel centres go back to where the projection put them
    ramp = np.add.outer(np.arange(8.0), np.zeros(8))
    back = D.unproject_signal(D.project_image(ramp, 5, projection=projection), 5, (8, 8), projection=projection)
    np.testing.assert_allclose(back[1:-1, 1:-1], ramp[1:-1, 1:-1], atol=0.05)


# ---------------------------------------------------------------------------- datasets
def test_split_is_deterministic_and_stratified():
    labels = D.load_digits_arrays()[1]
    train, test = D.digits_split(labels)
    train2, test2 = D.digits_split(labels)
    np.testing.assert_array_equal(train, train2)
    np.testing.assert_array_equal(test, test2)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(labels) == 1797
    assert (len(train), len(test)) == (1438, 359)
    counts, test_counts = np.bincount(labels), np.bincount(labels[test], minlength=10)
    assert np.all(np.abs(test_counts - TEST_FRACTION * counts) <= 0.5)
    other = D.digits_split(labels, seed=1)[1]
    assert not np.array_equal(other, test)


def test_dataset_items_and_rotations():
    train = D.SphericalDigits("train", 2)
    test = D.SphericalDigits("test", 2)
    assert (len(train), len(test)) == (1438, 359)
    signal, label = test[3]
    assert signal.shape == (1, 162) and signal.dtype == torch.float32 and isinstance(label, int)
    np.testing.assert_allclose(signal[0].numpy(), D.project_image(test.image(3), 2), atol=1e-6)
    assert 0 <= float(signal.min()) and float(signal.max()) <= 1.0

    rotated = D.SphericalDigits("test", 2, rotate=True, seed=7)
    again = D.SphericalDigits("test", 2, rotate=True, seed=7)
    r0 = rotated.rotation(3)
    np.testing.assert_allclose(rotated[3][0].numpy()[0], D.project_image(test.image(3), 2, r0), atol=1e-6)
    np.testing.assert_array_equal(rotated[3][0], again[3][0])  # fixed per sample and seed
    assert not np.allclose(rotated.rotation(4), r0)
    rotated.set_epoch(1)
    assert not np.allclose(rotated.rotation(3), r0)  # fresh each epoch
    rotated.set_epoch(0)
    np.testing.assert_array_equal(rotated.rotation(3), r0)
    assert np.allclose(r0 @ r0.T, np.eye(3)) and np.linalg.det(r0) == pytest.approx(1.0)


def test_planar_digits():
    plain = D.PlanarDigits("test", 2)
    image, label = plain[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32
    np.testing.assert_allclose(image[0].numpy(), plain.image(0), atol=1e-7)
    rotated = D.PlanarDigits("test", 2, rotate=True, seed=3)
    spherical = D.SphericalDigits("test", 2, rotate=True, seed=3)
    expected = D.unproject_signal(spherical[0][0].numpy()[0], 2, (8, 8))
    np.testing.assert_allclose(rotated[0][0][0].numpy(), expected, atol=1e-6)


def test_mnist_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        y_train=np.arange(6),
        x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        y_test=np.arange(4),
    )
    ds = D.SphericalDigits("test", 2, mnist=path)
    assert len(ds) == 4 and ds.image_shape == (28, 28)
    signal, label = ds[2]
    assert label == 2 and signal.shape == (1, 162)
    assert 0 < float(signal.max()) <= 1.0


# ---------------------------------------------------------------------------- errors
def test_errors(tmp_path, monkeypatch):
    for bad in (np.ones(8), np.ones((2, 8, 8))):
        with pytest.raises(ValueError, match="2-D"):
            D.project_image(bad, 3)
    for level in (0, 1):
        with pytest.raises(ValueError, match="level"):
            D.project_image(np.ones((8, 8)), level)
        with pytest.raises(ValueError, match="level"):
            D.SphericalDigits("train", level)
    with pytest.raises(ValueError, match="finite"):
        D.project_image(np.full((8, 8), np.nan), 3)
    with pytest.raises(ValueError, match="split"):
        D.SphericalDigits("val", 3)
    with pytest.raises(ValueError, match="rotation"):
        D.project_image(np.ones((8, 8)), 3, np.ones((3, 3)))
    with pytest.raises(ValueError, match="equator"):
        D.project_image(np.ones((8, 8)), 3, extent=np.radians(80))
    with pytest.raises(ValueError, match="projection"):
        D.project_image(np.ones((8, 8)), 3, projection="mercator")

    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        D.SphericalDigits("train", 2, mnist=tmp_path / "nothere.npz")
    wrong_keys = tmp_path / "wrong.npz"
    np.savez(wrong_keys, images=np.zeros((2, 4, 4)), labels=np.zeros(2, int))
    with pytest.raises(ValueError, match=r"wrong\.npz.*x_train"):
        D.load_mnist(wrong_keys)
    bad_shape = tmp_path / "shape.npz"
    np.savez(
        bad_shape,
        x_train=np.zeros((2, 16)),
        y_train=np.zeros(2, int),
        x_test=np.zeros((1, 4, 4)),
        y_test=np.zeros(1, int),
    )
    with pytest.raises(ValueError, match="x_train"):
        D.load_mnist(bad_shape)
    bad_labels = tmp_path / "labels.npz"
    np.savez(
        bad_labels,
        x_train=np.zeros((2, 4, 4)),
        y_train=np.zeros(3, int),
        x_test=np.zeros((1, 4, 4)),
        y_test=np.zeros(1, int),
    )
    with pytest.raises(ValueError, match="y_train"):
        D.load_mnist(bad_labels)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        D.load_mnist(garbage)

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"meshcnn\[digits\]"):
        D.load_digits_arrays()


# ---------------------------------------------------------------------------- equivariance claims of the README
@torch.no_grad()
def test_meshconv_equivariance_under_icosahedral_rotations():
    """Laplacian-only MeshConv commutes with all 60 mesh symmetries; the full one only with those about z."""
    from meshcnn.nn import MeshConv

    level = 2
    torch.manual_seed(0)
    x = torch.randn(2, 3, icosphere(level).num_vertices, dtype=torch.float64)
    conv = MeshConv(3, 4, level).double()
    lap = MeshConv(3, 4, level).double()
    with torch.no_grad():
        lap.weight[..., 2:] = 0
    rotations = icosahedral_rotations()
    about_z = np.isclose(rotations[:, 2, 2], 1.0)
    assert about_z.sum() == 5
    outputs = {layer: layer(x) for layer in (conv, lap)}
    for rotation, polar in zip(rotations, about_z):
        inverse = torch.from_numpy(np.argsort(vertex_permutation(level, rotation)))  # (R f)[i] = f[inverse[i]]
        for layer, fx in outputs.items():
            error = float((layer(x[..., inverse]) - fx[..., inverse]).norm() / fx.norm())
            if layer is lap or polar:
                assert error < 1e-10
            else:
                assert error > 1e-2
    # rotate_signal gives the same permutation
    rotation = rotations[7]
    inverse = torch.from_numpy(np.argsort(vertex_permutation(level, rotation)))
    torch.testing.assert_close(rotate_signal(x, level, rotation), x[..., inverse], atol=1e-12, rtol=0)


@pytest.mark.slow
def test_train_script_end_to_end(tmp_path):
    """experiments/spherical_digits/train.py on a tiny configuration: table and results.json."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "experiments" / "spherical_digits" / "train.py"
    images, labels = D.load_digits_arrays()  # a small MNIST-format file: 24 trainings in seconds, not a minute
    np.savez(
        tmp_path / "small.npz",
        x_train=images[:200],
        y_train=labels[:200],
        x_test=images[200:280],
        y_test=labels[200:280],
    )
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--mnist",
            str(tmp_path / "small.npz"),
            "--level",
            "2",
            "--epochs",
            "1",
            "--width",
            "3",
            "--depth",
            "1",
            "--settings",
            "N/N",
            "N/R",
            "--run-dir",
            str(tmp_path),
            "--no-progress",
            "--orientation",
            *meshcnn.ORIENTATIONS,
            "--models",
            "sphere",
            "planar",
            "planar-unprojected",
            "--seed",
            "0",
            "1",
            "--augment",
            "z",
            "--downsample",
            "pool",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "results.json").read_text())
    rows = result["rows"]
    assert {r["kind"] for r in rows} == {"sphere", "planar", "planar-unprojected"}
    assert {r["orientation"] for r in rows if r["kind"] == "sphere"} == set(meshcnn.ORIENTATIONS)
    assert {r["seed"] for r in rows} == {0, 1} and len(rows) == 2 * 2 * (4 + 2)
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["params"] > 0 for r in rows)
    params = {r["model"]: r["params"] for r in rows}
    assert max(params.values()) <= 1.1 * min(params.values())  # widths matched to equal parameter counts
    assert (tmp_path / "sphere-invariant_N_s1" / "checkpoint.pt").exists()
    assert len(result["table"]) == 2 + 4 + 2 and "±" in result["table"][2]
    robustness = script.parent / "robustness.py"
    width = next(r["width"] for r in rows if r["orientation"] == "invariant")
    done = subprocess.run(
        [
            sys.executable,
            str(robustness),
            "--checkpoint",
            str(tmp_path / "sphere-invariant_N_s1"),
            "--level",
            "2",
            "--width",
            str(width),
            "--depth",
            "1",
            "--orientation",
            "invariant",
            "--downsample",
            "pool",
            "--random",
            "1",
            "--out",
            str(tmp_path / "robust.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    table = {r["rotation"]: r["accuracy"] for r in json.loads((tmp_path / "robust.json").read_text())["rows"]}
    assert len(table) == 1 + 3 + 5 + 6 + 1
    # an invariant model is exactly invariant under the icosahedral rotations
    assert all(v == table["identity"] for k, v in table.items() if k.startswith("icosahedral"))


@pytest.mark.parametrize("mode", ["z", "jitter", "z+jitter"])
def test_dataset_rotation_modes(mode):
    data = D.SphericalDigits("train", 2, rotate=mode, seed=3)
    angles = []
    for i in range(20):
        r = data.rotation(i)
        angles.append(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))
        if mode == "z":
            np.testing.assert_allclose(r @ [0, 0, 1.0], [0, 0, 1.0], atol=1e-14)  # the pole stays
    assert max(angles) > 1.0
    if mode == "jitter":
        assert max(angles) <= JITTER_DEGREES + 1e-9
    data.set_epoch(1)
    assert not np.allclose(data.rotation(0), D.SphericalDigits("train", 2, rotate=mode, seed=3).rotation(0))
    with pytest.raises(ValueError, match="rotate must be"):
        D.SphericalDigits("train", 2, rotate="x")


def test_planar_unprojected_is_the_spherical_signal_resampled():
    planar = D.PlanarDigits("test", 3, unproject=True)
    original = D.PlanarDigits("test", 3)
    x, label = planar[0]
    y, label2 = original[0]
    assert x.shape == y.shape and label == label2
    assert not torch.equal(x, y)  # the unprojected image lost detail to the mesh
    assert float((x - y).abs().mean()) < 0.2  # but it is the same digit
