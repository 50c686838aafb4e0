"""Events on the mesh and their summary (meshcnn.predict.events, ``meshcnn events summary``)."""

from __future__ import annotations

import csv

import numpy as np

from meshcnn.data.climate import CLASSES
from meshcnn.geometry import icosphere
from meshcnn.predict import find_events, summarize


def _cap(mesh, lat0, lon0, radius_deg):
    c = np.array(
        [
            np.cos(np.deg2rad(lat0)) * np.cos(np.deg2rad(lon0)),
            np.cos(np.deg2rad(lat0)) * np.sin(np.deg2rad(lon0)),
            np.sin(np.deg2rad(lat0)),
        ]
    )
    return mesh.vertices @ c > np.cos(np.deg2rad(radius_deg))


def test_events_across_the_dateline_and_over_the_pole_are_counted_once():
    mesh = icosphere(4)
    labels = np.zeros(mesh.num_vertices, dtype=np.int64)
    labels[_cap(mesh, 10.0, 180.0, 8.0)] = 1  # a cyclone on the dateline
    labels[_cap(mesh, -20.0, 60.0, 5.0)] = 1  # and another one
    labels[_cap(mesh, 90.0, 0.0, 15.0)] = 2  # a band over the north pole
    psl = np.full(mesh.num_vertices, 101000.0)
    psl[np.argmax(mesh.vertices @ np.array([-np.cos(np.deg2rad(10)), 0.0, np.sin(np.deg2rad(10))]))] = 95000.0
    events = find_events(labels, mesh, CLASSES, fields={"PSL": psl, "TMQ": np.linspace(0, 1, mesh.num_vertices)})
    tcs = [e for e in events if e["class"] == "tropical_cyclone"]
    ars = [e for e in events if e["class"] == "atmospheric_river"]
    assert len(tcs) == 2 and len(ars) == 1
    dateline = tcs[0]  # the larger one
    # the spherical centroid (a naive mean of the longitudes, -180 and 180, would give 0)
    assert abs(dateline["centroid_lat"] - 10.0) < 1.5 and abs(abs(dateline["centroid_lon"]) - 180.0) < 1.5
    assert dateline["min_psl"] == 95000.0 and tcs[1]["min_psl"] == 101000.0 and dateline["max_tmq"] is None
    assert ars[0]["centroid_lat"] > 89.0 and ars[0]["max_tmq"] is not None
    r = 6371.0
    cap_area = 2 * np.pi * r**2 * (1 - np.cos(np.deg2rad(15.0)))
    assert abs(ars[0]["area_km2"] / cap_area - 1) < 0.1
    assert dateline["num_vertices"] == int(_cap(mesh, 10.0, 180.0, 8.0).sum())


def test_summary_counts_by_hemisphere_and_band(tmp_path):
    rows = [
        ("a.nc", 0, "tropical_cyclone", 12.0),
        ("a.nc", 0, "tropical_cyclone", -20.0),
        ("a.nc", 0, "atmospheric_river", 40.0),
        ("b.nc", 0, "atmospheric_river", 41.0),
    ]
    path = tmp_path / "ev.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "file",
                "time_index",
                "time",
                "class",
                "event",
                "area_km2",
                "centroid_lat",
                "centroid_lon",
                "num_vertices",
                "min_psl",
                "max_tmq",
            ]
        )
        for f, t, k, lat in rows:
            w.writerow([f, t, "", k, 0, 1e5, lat, 0.0, 3, "", ""])
    result = summarize(path, tmp_path / "s")
    table = {(r["class"], r["hemisphere"], r["lat_band"]): r["events"] for r in result["counts"]}
    assert table[("tropical_cyclone", "north", "0-15")] == 1 and table[("tropical_cyclone", "south", "15-30")] == 1
    assert table[("atmospheric_river", "north", "30-45")] == 2 and table[("atmospheric_river", "global", "all")] == 2
    assert result["maps"] == [] and (tmp_path / "s" / "counts.md").is_file()
    from meshcnn.__main__ import main

    assert main(["events", "summary", str(path), "--out", str(tmp_path / "s2")]) == 0  # console-script exit status
