"""Tests of meshcnn.plot: triangulation geometry and PNG output."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from meshcnn import plot
from meshcnn.geometry import icosphere


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return data


def test_triangulation_covers_the_map_once():
    """The planar triangles tile the [-pi, pi] x [-pi/2, pi/2] rectangle: clipped area = 2 pi^2."""
    mesh = icosphere(3)
    x, y, tris, source = plot.mesh_triangulation(mesh)
    assert source.max() < mesh.num_vertices and len(x) == len(y) == len(source)
    px, py = x[tris], y[tris]
    assert np.all(px.max(1) - px.min(1) < np.pi)  # no triangle spans the whole map
    np.testing.assert_allclose(py, mesh.lat[source[tris]])

    # exact area of the part of each triangle inside the rectangle (clip by the two dateline lines)
    def clipped_area(tx, ty):
        poly = list(zip(tx, ty))
        for sign in (1.0, -1.0):  # keep sign * x <= pi
            out = []
            for i in range(len(poly)):
                (ax, ay), (bx, by) = poly[i], poly[(i + 1) % len(poly)]
                ain, bin_ = sign * ax <= np.pi, sign * bx <= np.pi
                if ain:
                    out.append((ax, ay))
                if ain != bin_:
                    t = (sign * np.pi - ax) / (bx - ax)
                    out.append((ax + t * (bx - ax), ay + t * (by - ay)))
            poly = out
        if len(poly) < 3:
            return 0.0
        a = np.array(poly)
        return 0.5 * abs(np.dot(a[:, 0], np.roll(a[:, 1], -1)) - np.dot(a[:, 1], np.roll(a[:, 0], -1)))

    total = sum(clipped_area(px[t], py[t]) for t in range(len(tris)))
    assert total == pytest.approx(2 * np.pi**2, rel=1e-9)


@pytest.mark.parametrize("projection", ["mollweide", "equirectangular"])
def test_plot_mesh_signal_and_sample_png(tmp_path, projection):
    mesh = icosphere(2)
    field = np.sin(mesh.lat) + np.cos(mesh.lon)
    ax = plot.plot_mesh_signal(field, 2, projection=projection, title="f")
    assert ax.get_title() == "f"
    labels = (mesh.lat > 1.0).astype(np.int64) + 2 * (np.abs(mesh.lon) > 3.0)
    labels = np.minimum(labels, 2)
    path = plot.plot_fields_labels_predictions(
        {"TMQ": field}, labels, np.zeros_like(labels), mesh, tmp_path / "sample.png", projection=projection
    )
    assert path == tmp_path / "sample.png"
    _png(path)
    assert not list(tmp_path.glob("*.tmp"))


def test_plot_confusion_matrix(tmp_path):
    cm = np.array([[8.0, 2.0], [1.0, 3.0]])
    path = plot.plot_confusion_matrix(cm, ["bg", "tc"], tmp_path / "cm.png")
    _png(path)
    with pytest.raises(ValueError, match="class names"):
        plot.plot_confusion_matrix(cm, ["bg", "tc", "ar"], tmp_path / "bad.png")


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        plot.plot_mesh_signal(np.zeros(5), 1)
    with pytest.raises(ValueError, match="projection"):
        plot.plot_mesh_signal(np.zeros(42), 1, projection="robinson")
    with pytest.raises(ValueError, match="NaN"):
        plot.plot_mesh_signal(np.full(42, np.nan), 1)
