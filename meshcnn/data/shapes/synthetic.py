"""An offline stand-in for ModelNet: random shapes of 12 classes, written in the ModelNet layout.

:func:`make_synthetic` builds the classes of :data:`SYNTH_CLASSES` from trimesh
primitives and assemblies of them with random proportions, non-uniform scaling, a
random yaw and vertex noise, so that neighbouring classes (box/pyramid,
cone/pyramid, capsule/ellipsoid, table/stool, ...) overlap.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..._progress import progress_bar
from ...io import save_json
from .off import write_off

__all__ = ["SYNTH_CLASSES", "synth_shape", "make_synthetic"]


def _frustum(r_bottom: tuple[float, float], r_top: tuple[float, float], height: float, sections: int):
    """Convex frustum between two ellipses (semi-axes ``r``) at ``z = 0`` and ``z = height``.

    ``r_top = 0`` gives a cone.
    """
    import trimesh

    angle = np.linspace(0, 2 * np.pi, sections, endpoint=False) + np.pi / sections
    ring = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    bottom = np.column_stack([ring * r_bottom, np.zeros(sections)])
    top = np.column_stack([ring * r_top, np.full(sections, height)]) if max(r_top) > 0 else [[0.0, 0.0, height]]
    return trimesh.convex.convex_hull(np.concatenate([bottom, top]))


def _at(mesh, x: float = 0.0, y: float = 0.0, z: float = 0.0):
    mesh.apply_translation((x, y, z))
    return mesh


def _legs(
    rng: np.random.Generator,
    width: float,
    depth: float,
    height: float,
    count: int = 4,
    round_legs: bool | None = None,
    thickness: float | None = None,
) -> list:
    """Vertical legs under a ``width x depth`` top, from ``z = 0`` to ``height``."""
    import trimesh

    t = thickness if thickness is not None else rng.uniform(0.03, 0.08)
    round_legs = rng.random() < 0.5 if round_legs is None else round_legs
    inset = rng.uniform(0.0, 0.15)
    if count == 4:
        xs = [
            (sx * (width / 2 - t - inset * width / 2), sy * (depth / 2 - t - inset * depth / 2))
            for sx in (-1, 1)
            for sy in (-1, 1)
        ]
    else:
        radius = min(width, depth) / 2 - t
        xs = [(radius * math.cos(a), radius * math.sin(a)) for a in np.linspace(0, 2 * np.pi, count, endpoint=False)]
    legs = []
    for x, y in xs:
        leg = (
            trimesh.creation.cylinder(radius=t / 2 + 0.005, height=height, sections=10)
            if round_legs
            else trimesh.creation.box((t, t, height))
        )
        legs.append(_at(leg, x, y, height / 2))
    return legs


def _box(rng):
    import trimesh

    return trimesh.creation.box(rng.uniform(0.5, 1.5, 3))


def _cylinder(rng):
    import trimesh

    return trimesh.creation.cylinder(
        radius=rng.uniform(0.25, 0.6), height=rng.uniform(0.4, 1.6), sections=int(rng.integers(6, 33))
    )


def _cone(rng):
    r = rng.uniform(0.3, 0.7)
    return _frustum((r, r), (0.0, 0.0), rng.uniform(0.5, 1.5), int(rng.integers(5, 33)))


def _capsule(rng):
    import trimesh

    return trimesh.creation.capsule(height=rng.uniform(0.2, 1.2), radius=rng.uniform(0.2, 0.5), count=[16, 16])


def _torus(rng):
    import trimesh

    major = rng.uniform(0.5, 0.8)
    return trimesh.creation.torus(major, major * rng.uniform(0.15, 0.55), major_sections=32, minor_sections=16)


def _ellipsoid(rng):
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3)
    sphere.apply_scale(rng.uniform(0.35, 1.0, 3))
    return sphere


def _pyramid(rng):
    a, b = rng.uniform(0.5, 1.2, 2)
    top = rng.uniform(0.0, 0.6) if rng.random() < 0.6 else 0.0
    return _frustum((a, b), (a * top, b * top), rng.uniform(0.4, 1.2), 4)


def _table(rng):
    import trimesh

    width, depth = rng.uniform(0.9, 2.0), rng.uniform(0.5, 1.2)
    height, thick = rng.uniform(0.6, 1.0), rng.uniform(0.03, 0.1)
    round_top = rng.random() < 0.3
    top = (
        trimesh.creation.cylinder(radius=width / 2, height=thick, sections=32)
        if round_top
        else trimesh.creation.box((width, depth, thick))
    )
    parts = [_at(top, z=height - thick / 2)]
    if rng.random() < 0.25:  # pedestal table
        parts += [
            _at(trimesh.creation.cylinder(radius=rng.uniform(0.04, 0.1), height=height, sections=12), z=height / 2),
            _at(trimesh.creation.cylinder(radius=rng.uniform(0.2, 0.4), height=0.04, sections=24), z=0.02),
        ]
    else:
        d = width if round_top else depth
        parts += _legs(rng, width * 0.75 if round_top else width, d * 0.75 if round_top else d, height - thick)
    return trimesh.util.concatenate(parts)


def _chair(rng):
    import trimesh

    width, depth = rng.uniform(0.4, 0.65), rng.uniform(0.4, 0.6)
    seat_h, thick = rng.uniform(0.35, 0.55), rng.uniform(0.04, 0.09)
    parts = [_at(trimesh.creation.box((width, depth, thick)), z=seat_h - thick / 2)]
    parts += _legs(rng, width, depth, seat_h - thick)
    back_h, back_t = rng.uniform(0.3, 0.7), rng.uniform(0.03, 0.08)
    if rng.random() < 0.7:  # solid back
        parts.append(
            _at(trimesh.creation.box((width, back_t, back_h)), y=-depth / 2 + back_t / 2, z=seat_h + back_h / 2)
        )
    else:  # two posts and a rail
        for sx in (-1, 1):
            parts.append(
                _at(
                    trimesh.creation.box((back_t, back_t, back_h)),
                    sx * (width / 2 - back_t / 2),
                    -depth / 2 + back_t / 2,
                    seat_h + back_h / 2,
                )
            )
        parts.append(
            _at(
                trimesh.creation.box((width, back_t, back_h * 0.3)), y=-depth / 2 + back_t / 2, z=seat_h + back_h * 0.85
            )
        )
    if rng.random() < 0.4:  # armrests
        for sx in (-1, 1):
            parts.append(_at(trimesh.creation.box((0.04, depth, 0.04)), sx * width / 2, 0, seat_h + 0.2))
    return trimesh.util.concatenate(parts)


def _stool(rng):
    import trimesh

    height, thick = rng.uniform(0.4, 0.9), rng.uniform(0.03, 0.08)
    if rng.random() < 0.6:
        radius = rng.uniform(0.15, 0.3)
        seat = trimesh.creation.cylinder(radius=radius, height=thick, sections=24)
        width = depth = 2 * radius
    else:
        width, depth = rng.uniform(0.3, 0.55, 2)
        seat = trimesh.creation.box((width, depth, thick))
    count = int(rng.choice([3, 4]))
    parts = [_at(seat, z=height - thick / 2)] + _legs(rng, width, depth, height - thick, count=count)
    if rng.random() < 0.5:  # foot ring / crossbar
        parts.append(
            _at(
                trimesh.creation.torus(min(width, depth) / 2 * 0.8, 0.015, major_sections=24, minor_sections=6),
                z=height * 0.3,
            )
        )
    return trimesh.util.concatenate(parts)


def _lamp(rng):
    import trimesh

    base_r, pole_h = rng.uniform(0.12, 0.3), rng.uniform(0.5, 1.3)
    shade_h = rng.uniform(0.15, 0.4)
    r_bottom = rng.uniform(0.15, 0.35)
    parts = [
        _at(trimesh.creation.cylinder(radius=base_r, height=0.05, sections=24), z=0.025),
        _at(trimesh.creation.cylinder(radius=rng.uniform(0.015, 0.04), height=pole_h, sections=10), z=pole_h / 2),
        _at(
            _frustum((r_bottom, r_bottom), (r_bottom * rng.uniform(0.4, 0.9),) * 2, shade_h, 24),
            z=pole_h - shade_h * rng.uniform(0.2, 0.8),
        ),
    ]
    return trimesh.util.concatenate(parts)


def _bottle(rng):
    import trimesh

    r, body_h = rng.uniform(0.15, 0.35), rng.uniform(0.5, 1.1)
    shoulder_h, neck_r, neck_h = rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.12), rng.uniform(0.1, 0.35)
    sections = 24
    parts = [
        _at(trimesh.creation.cylinder(radius=r, height=body_h, sections=sections), z=body_h / 2),
        _at(_frustum((r, r), (neck_r, neck_r), shoulder_h, sections), z=body_h),
        _at(
            trimesh.creation.cylinder(radius=neck_r, height=neck_h, sections=sections),
            z=body_h + shoulder_h + neck_h / 2,
        ),
    ]
    return trimesh.util.concatenate(parts)


_SYNTH = {
    "box": _box,
    "bottle": _bottle,
    "capsule": _capsule,
    "chair": _chair,
    "cone": _cone,
    "cylinder": _cylinder,
    "ellipsoid": _ellipsoid,
    "lamp": _lamp,
    "pyramid": _pyramid,
    "stool": _stool,
    "table": _table,
    "torus": _torus,
}
SYNTH_CLASSES: tuple[str, ...] = tuple(sorted(_SYNTH))


def synth_shape(
    name: str,
    rng: np.random.Generator,
    noise: tuple[float, float] = (0.002, 0.012),
    scale: tuple[float, float] = (0.75, 1.33),
    yaw: float = math.pi / 6,
):
    """One random shape of class ``name`` (:data:`SYNTH_CLASSES`), upright along ``+z``.

    The class's parts with random proportions, then non-uniform scaling by
    factors drawn from ``scale`` per axis, a rotation about ``z`` by an angle
    in ``[-yaw, yaw]`` radians, subdivision to edges under 1/20 of the size and
    Gaussian vertex noise with a standard deviation drawn from ``noise``
    (fraction of the bounding-box diagonal).

    Parameters
    ----------
    name : str
        One of :data:`SYNTH_CLASSES` (``ValueError`` otherwise).
    rng : numpy.random.Generator
    noise : (float, float)
        Range of the noise's standard deviation (default ``(0.002, 0.012)``).
    scale : (float, float)
        Range of the per-axis scale factors (default ``(0.75, 1.33)``).
    yaw : float
        Largest rotation about ``z``, radians (default ``pi / 6``).

    Returns
    -------
    trimesh.Trimesh
    """
    import trimesh

    if name not in _SYNTH:
        raise ValueError(f"unknown synthetic class {name!r}; choose from {SYNTH_CLASSES}")
    mesh = _SYNTH[name](rng)
    mesh.vertices = mesh.vertices * rng.uniform(*scale, 3)
    angle = rng.uniform(-yaw, yaw)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(angle, (0, 0, 1)))
    diag = float(np.linalg.norm(mesh.extents))
    vertices, faces = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=diag / 20, max_iter=6)
    mesh = trimesh.Trimesh(vertices, faces, process=True)  # merge duplicates so noise does not open cracks
    mesh.vertices = mesh.vertices + rng.normal(0.0, rng.uniform(*noise) * diag, mesh.vertices.shape)
    return mesh


def make_synthetic(
    out: str | os.PathLike,
    per_class: int = 60,
    seed: int = 0,
    test_fraction: float = 0.2,
    classes: tuple[str, ...] | list[str] | None = None,
    quirk_fraction: float = 0.1,
    progress: bool = True,
) -> dict:
    """Write a synthetic shape set in the ModelNet layout; returns its description (also ``out/synth.json``).

    ``per_class`` shapes per class, the last ``round(per_class * test_fraction)``
    of them in ``test/``; files numbered ``<class>_0001.off`` ... across both
    splits, like ModelNet. A ``quirk_fraction`` of the files get the one-line
    ``OFFnv nf ne`` header. Shape ``i`` of class ``c`` is drawn from a generator
    seeded by ``(seed, c, i)``, so the set is reproducible.

    Parameters
    ----------
    out : str or path-like
        The dataset root.
    per_class : int
        At least 2 (default 60).
    seed : int
        Default 0.
    test_fraction : float
        In ``(0, 1)`` (default 0.2); each split gets at least one shape per class.
    classes : sequence of str, optional
        Default :data:`SYNTH_CLASSES`.
    quirk_fraction : float
        Default 0.1.
    progress : bool
        Show a progress bar (default ``True``).

    Returns
    -------
    dict
        Classes, shapes per class and split, seed and quirk fraction.

    Raises
    ------
    ValueError
        For ``per_class`` below 2 or ``test_fraction`` outside ``(0, 1)``.
    """
    classes = tuple(classes) if classes is not None else SYNTH_CLASSES
    if per_class < 2:
        raise ValueError(f"per_class must be at least 2, got {per_class}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = min(per_class - 1, max(1, round(per_class * test_fraction)))
    out = Path(out)
    jobs = [(c, i) for c in classes for i in range(per_class)]
    for c, i in progress_bar(jobs, enabled=progress, desc="synthesizing", unit="shape"):
        rng = np.random.default_rng([seed, SYNTH_CLASSES.index(c) if c in SYNTH_CLASSES else 0, i])
        mesh = synth_shape(c, rng)
        split = "test" if i >= per_class - n_test else "train"
        write_off(out / c / split / f"{c}_{i + 1:04d}.off", mesh, header_quirk=rng.random() < quirk_fraction)
    info = {
        "classes": list(classes),
        "per_class": per_class,
        "train_per_class": per_class - n_test,
        "test_per_class": n_test,
        "seed": seed,
        "quirk_fraction": quirk_fraction,
    }
    save_json(out / "synth.json", info)
    return info
