"""Projection throughput: shapes per second projected onto the icosphere, per ray engine.

Three timings over the same shapes (a few per class from a ModelNet-layout folder):

* ``read+project``: :func:`meshcnn.data.shapes.read_off` and
  :func:`meshcnn.geometry.project_mesh` (what filling the cache costs per shape);
* ``project``: :func:`meshcnn.geometry.project_mesh` of a mesh already in memory
  (normalization, convex hull, ray structures and 2 x V rays);
* ``rotate``: one more random rotation of a shape already prepared by
  :class:`meshcnn.geometry.ShapeProjector` (ray casts only: fresh-rotation training
  with ``mesh_cache``).

Example::

    python experiments/shape_classification/benchmark_projection.py --data data/synthshapes --level 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from meshcnn.cli import HELP_FORMATTER, level_option
from meshcnn.data.shapes import ModelNet, read_off
from meshcnn.geometry import icosphere, random_rotation
from meshcnn.geometry.project import ENGINES, ShapeProjector, project_mesh, ray_engine


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER, parents=[level_option(5)]
    )
    p.add_argument("--data", type=Path, default=Path("data/synthshapes"))
    p.add_argument("--per-class", type=int, default=4, help="shapes per class (train split)")
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=None, help="default: the run-time choice only")
    p.add_argument(
        "--triangle-shapes", type=int, default=3, help="shapes (from different classes) for the slow 'triangle' engine"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    data = ModelNet(args.data, "train", args.level, progress=False)
    icosphere(args.level)  # build the mesh outside the timings
    rows = []
    for engine in args.engines or [ray_engine()]:
        k = args.per_class if engine == "embree" else 1
        files = [
            f for c in range(data.num_classes) for f in [p for p, t in zip(data.files, data.targets) if t == c][:k]
        ]
        if engine != "embree":
            files = files[: args.triangle_shapes]
        start = time.perf_counter()
        meshes = [read_off(f) for f in files]
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        for mesh in meshes:
            project_mesh(mesh, args.level, engine=engine)
        project_s = time.perf_counter() - start
        projectors = [ShapeProjector(mesh, engine=engine) for mesh in meshes]
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for projector in projectors:
            projector.icosphere(args.level, random_rotation(rng))
        rotate_s = time.perf_counter() - start
        n = len(files)
        faces = np.array([len(m.faces) for m in meshes])
        row = {
            "engine": engine,
            "shapes": n,
            "faces_median": int(np.median(faces)),
            "faces_max": int(faces.max()),
            "read+project": n / (read_s + project_s),
            "project": n / project_s,
            "rotate": n / rotate_s,
        }
        rows.append(row)
    print(f"level {args.level} ({icosphere(args.level).num_vertices} rays per mesh, x2 with the hull)")
    print("| engine | shapes | faces (median / max) | read+project | project | rotate (prepared) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['engine']} | {r['shapes']} | {r['faces_median']} / {r['faces_max']} | "
            f"{r['read+project']:.3g} /s | {r['project']:.3g} /s | {r['rotate']:.3g} /s |"
        )
    return rows


if __name__ == "__main__":
    main()
