"""Maps of mesh signals and evaluation figures (optional extra ``plot``: matplotlib).

matplotlib is imported lazily and used through :class:`matplotlib.figure.Figure`
(Agg canvas), never through ``pyplot``'s global state, so these functions work
headless and in threads. Files are written atomically as PNG.

A mesh signal ``(V,)`` is drawn by triangulating the mesh in (longitude,
latitude): triangles that cross the dateline are drawn twice, shifted by
:math:`\\pm 2\\pi`, and clipped by the map; each triangle at a pole is drawn as
the quad between its other two corners and the pole at their longitudes, so the
polar caps are covered without smearing. Continuous signals use Gouraud
shading (linear in each triangle); categorical ones (labels) colour each
triangle by the majority label of its corners.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._optional import optional_import
from .geometry.mesh import Mesh, as_mesh
from .io import atomic_write

__all__ = [
    "plot_mesh_signal",
    "plot_fields_labels_predictions",
    "plot_confusion_matrix",
    "save_figure",
    "mesh_triangulation",
    "MAP_PROJECTIONS",
]

MAP_PROJECTIONS = ("mollweide", "equirectangular")

#: Colours of the classes background, tropical cyclone, atmospheric river (then the tab10 cycle).
CLASS_COLORS = ("#f2f2f2", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


def _matplotlib():
    return optional_import("matplotlib", "meshcnn.plot needs matplotlib", "plot")


def _values(values: Any, mesh: Mesh, name: str = "values") -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.shape != (mesh.num_vertices,):
        raise ValueError(
            f"{name} must have shape (V,) = ({mesh.num_vertices},) for level {mesh.level}, got {arr.shape}"
        )
    return arr


def mesh_triangulation(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Planar (lon, lat) triangulation of the sphere for drawing, radians.

    Returns ``x (P,)``, ``y (P,)``, ``triangles (T, 3)`` into the points and
    ``source (P,)``: the mesh vertex of each point (to index vertex values).
    Triangles crossing the dateline appear twice (shifted by ``±2 pi``); each
    triangle at a pole becomes a quad reaching the pole along the longitudes of its two other corners.
    """
    lon, lat = mesh.lon, mesh.lat
    faces = mesh.faces
    pole = np.abs(lat[faces]) > np.pi / 2 - 1e-9  # (F, 3)
    plain = ~pole.any(1)
    # roll each polar face so the pole is corner 0: (P, a, b); draw it as the quad a, b, P@lon_b, P@lon_a
    polar = np.nonzero(~plain)[0]
    c = np.argmax(pole[polar], axis=1)
    p_idx = faces[polar, c]
    a_idx = faces[polar, (c + 1) % 3]
    b_idx = faces[polar, (c + 2) % 3]
    xa, xb = lon[a_idx], lon[b_idx]
    xb = xa + np.mod(xb - xa + np.pi, 2 * np.pi) - np.pi  # b next to a in longitude
    yp = lat[p_idx]
    x = np.concatenate([lon[faces[plain]], np.stack([xa, xb, xb], 1), np.stack([xa, xb, xa], 1)])
    y = np.concatenate(
        [lat[faces[plain]], np.stack([lat[a_idx], lat[b_idx], yp], 1), np.stack([lat[a_idx], yp, yp], 1)]
    )
    source = np.concatenate([faces[plain], np.stack([a_idx, b_idx, p_idx], 1), np.stack([a_idx, p_idx, p_idx], 1)])
    # make every triangle contiguous in longitude, around its first corner (never a pole now)
    ref = x[:, :1]
    x = ref + np.mod(x - ref + np.pi, 2 * np.pi) - np.pi
    crossing = (x.max(1) > np.pi) | (x.min(1) < -np.pi)
    shift = np.where(x[crossing].mean(1) > 0, -2 * np.pi, 2 * np.pi)
    x = np.concatenate([x, x[crossing] + shift[:, None]])
    y = np.concatenate([y, y[crossing]])
    source = np.concatenate([source, source[crossing]])
    triangles = np.arange(x.size).reshape(-1, 3)
    return x.reshape(-1), y.reshape(-1), triangles, source.reshape(-1)


def _new_axes(projection: str, figsize=(8, 4.5)):
    _matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot(projection="mollweide" if projection == "mollweide" else None)


def plot_mesh_signal(
    values: Any,
    mesh: Mesh | int,
    ax: Any = None,
    projection: str = "mollweide",
    cmap: Any = None,
    title: str | None = None,
    categorical: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    class_names: Sequence[str] | None = None,
    label: str | None = None,
) -> Any:
    """Draw a vertex signal ``values (V,)`` of the sphere ``mesh`` (a :class:`Mesh` or a level) on a map.

    Parameters
    ----------
    values : (V,) array_like or tensor
        Finite values, or integer labels with ``categorical=True``.
    mesh : Mesh or int
        The mesh (the icosphere or any other), or an icosphere level.
    ax : matplotlib axes, optional
        With ``None`` a new :class:`~matplotlib.figure.Figure` is made (reach it via ``ax.figure``).
    projection : {"mollweide", "equirectangular"}
        ``"mollweide"`` (matplotlib's geo axes, radians, the default) or
        ``"equirectangular"`` (plain axes, degrees).
    cmap : colormap or str, optional
        Default ``"viridis"``, or one colour per class when categorical.
    title : str, optional
    categorical : bool
        Draw integer labels with one colour per class (default ``False``).
    vmin, vmax : float, optional
        Colour limits of a continuous signal.
    colorbar : bool
        Add a colour bar (default ``True``).
    class_names : sequence of str, optional
        Label the colour bar of a categorical plot.
    label : str, optional
        Colour-bar label.

    Returns
    -------
    matplotlib axes
        The axes drawn on.

    Raises
    ------
    ValueError
        For an unknown projection, or continuous values with NaN or Inf.
    """
    if projection not in MAP_PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; choose one of {MAP_PROJECTIONS}")
    mesh = as_mesh(mesh)
    values = _values(values, mesh)
    mpl = _matplotlib()
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.tri import Triangulation

    if ax is None:
        ax = _new_axes(projection)
    x, y, triangles, source = mesh_triangulation(mesh)
    if projection == "equirectangular":
        x, y = np.rad2deg(x), np.rad2deg(y)
        transform = ax.transData
    else:  # project every point once, here: matplotlib would transform each triangle as a curved path
        x, y = ax.transProjection.transform(np.column_stack([x, y])).T
        transform = ax.transAffine + ax.transAxes
    tri = Triangulation(x, y, triangles)
    if categorical:
        face_label, n = _face_labels(values, source[triangles], class_names)
        colors = list(CLASS_COLORS) * (n // len(CLASS_COLORS) + 1)
        cmap = ListedColormap(colors[:n]) if cmap is None else mpl.colormaps.get_cmap(cmap).resampled(n)
        norm = BoundaryNorm(np.arange(n + 1) - 0.5, n)
        mappable = ax.tripcolor(
            tri, facecolors=face_label.astype(float), cmap=cmap, norm=norm, edgecolors="none", transform=transform
        )
    else:
        vals = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(vals)):
            raise ValueError("values contain NaN or Inf")
        mappable = ax.tripcolor(
            tri, vals[source], shading="gouraud", cmap=cmap or "viridis", vmin=vmin, vmax=vmax, transform=transform
        )
    _decorate_map(ax, projection)
    if title:
        ax.set_title(title)
    if colorbar:
        cb = ax.figure.colorbar(mappable, ax=ax, shrink=0.7, pad=0.02)
        if categorical:
            cb.set_ticks(np.arange(n))
            if class_names:
                cb.set_ticklabels(list(class_names)[:n])
        if label:
            cb.set_label(label)
    return ax


def _face_labels(values: np.ndarray, corners: np.ndarray, class_names: Sequence[str] | None) -> tuple[np.ndarray, int]:
    """Label of each drawn triangle (majority of its corners ``(T, 3)``, the first corner on a three-way
    tie) and the number of classes to colour."""
    labels = np.asarray(values).astype(np.int64)
    corner_labels = labels[corners]
    face_label = np.where(corner_labels[:, 1] == corner_labels[:, 2], corner_labels[:, 1], corner_labels[:, 0])
    return face_label, int(max(labels.max(initial=0) + 1, len(class_names) if class_names else 0))


def _decorate_map(ax: Any, projection: str) -> None:
    """Axis limits, ticks and labels (equirectangular, degrees) or a light graticule (mollweide)."""
    if projection == "equirectangular":
        ax.set_xlim(-180, 180)
        ax.set_ylim(-90, 90)
        ax.set_aspect("equal")
        ax.set_xticks(np.arange(-180, 181, 60))
        ax.set_yticks(np.arange(-90, 91, 30))
        ax.set_xlabel("longitude (deg)")
        ax.set_ylabel("latitude (deg)")
    else:
        ax.set_xticklabels([])
        ax.grid(True, linewidth=0.3, alpha=0.5)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically; returns the path.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or path-like
    dpi : int
        Resolution (default 120).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.1)
    return path


def plot_fields_labels_predictions(
    fields: Any,
    labels: Any,
    prediction: Any,
    mesh: Mesh | int,
    path: str | os.PathLike,
    field_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = ("background", "tropical cyclone", "atmospheric river"),
    projection: str = "mollweide",
    title: str | None = None,
    cmaps: Mapping[str, str] | None = None,
    dpi: int = 110,
) -> Path:
    """One figure for one sample: a panel per field, the ground truth and the prediction; PNG at ``path``.

    Parameters
    ----------
    fields : ``(V,)``, ``(K, V)`` array_like or tensor, or a mapping ``name -> (V,)``
    labels, prediction : integer ``(V,)``
    mesh : Mesh or int
        The mesh (the icosphere or any other), or an icosphere level.
    path : str or path-like
    field_names : sequence of str, optional
        Panel titles of array ``fields``; default ``"field 0"``, ``"field 1"``, ...
    class_names : sequence of str, optional
        Default: background, tropical cyclone, atmospheric river.
    projection : {"mollweide", "equirectangular"}
    title : str, optional
        Figure title.
    cmaps : mapping of str to str, optional
        Colour map per field name.
    dpi : int
        Resolution (default 110).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    mesh = as_mesh(mesh)
    if isinstance(fields, Mapping):
        names = list(fields)
        arrays = [_values(fields[n], mesh, f"field {n!r}") for n in names]
    else:
        if hasattr(fields, "detach"):
            fields = fields.detach().cpu().numpy()
        f = np.asarray(fields)
        f = f[None] if f.ndim == 1 else f
        if f.ndim != 2:
            raise ValueError(f"fields must be (V,), (K, V) or a mapping, got shape {f.shape}")
        arrays = [_values(a, mesh, "fields") for a in f]
        names = list(field_names) if field_names is not None else [f"field {k}" for k in range(len(arrays))]
        if len(names) != len(arrays):
            raise ValueError(f"{len(names)} field names for {len(arrays)} fields")
    labels = _values(labels, mesh, "labels")
    prediction = _values(prediction, mesh, "prediction")
    _matplotlib()
    from matplotlib.figure import Figure

    panels = len(arrays) + 2
    fig = Figure(figsize=(7.5, 3.4 * panels), layout="constrained")
    geo = "mollweide" if projection == "mollweide" else None
    for k, (name, arr) in enumerate(zip(names, arrays)):
        ax = fig.add_subplot(panels, 1, k + 1, projection=geo)
        cmap = (cmaps or {}).get(name)
        plot_mesh_signal(arr, mesh, ax=ax, projection=projection, title=name, cmap=cmap)
    for k, (name, lab) in enumerate((("ground truth", labels), ("prediction", prediction))):
        ax = fig.add_subplot(panels, 1, len(arrays) + k + 1, projection=geo)
        plot_mesh_signal(lab, mesh, ax=ax, projection=projection, title=name, categorical=True, class_names=class_names)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=dpi)


def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str],
    path: str | os.PathLike,
    normalize: bool = True,
    title: str | None = None,
    cmap: str = "Blues",
    dpi: int = 120,
) -> Path:
    """Confusion matrix (true classes in rows, predicted in columns) as an annotated PNG at ``path``.

    Parameters
    ----------
    cm : (C, C) array_like or tensor
    class_names : sequence of str
        ``C`` names (``ValueError`` if ``cm`` is not ``(C, C)``).
    path : str or path-like
    normalize : bool
        ``True`` (default) divides each row by its sum (so rows are the per-class
        recall distribution); rows with no weight stay 0.
    title : str, optional
    cmap : str
        Default ``"Blues"``.
    dpi : int
        Resolution (default 120).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    cm = np.asarray(cm.detach().cpu().numpy() if hasattr(cm, "detach") else cm, dtype=np.float64)
    n = len(class_names)
    if cm.shape != (n, n):
        raise ValueError(f"confusion matrix of shape {cm.shape} does not match {n} class names")
    if normalize:
        rows = cm.sum(1, keepdims=True)
        shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    else:
        shown = cm
    _matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.2 * n + 2.5, 1.1 * n + 1.8), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0 if normalize else None)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), labels=list(class_names), rotation=30, ha="right")
    ax.set_yticks(range(n), labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = 0.5 * (shown.max() if shown.size else 1.0)
    for i in range(n):
        for j in range(n):
            text = f"{shown[i, j]:.2f}" if normalize else f"{shown[i, j]:.3g}"
            ax.text(j, i, text, ha="center", va="center", color="white" if shown[i, j] > threshold else "black")
    ax.set_title(title or ("confusion matrix (row-normalized)" if normalize else "confusion matrix"))
    return save_figure(fig, path, dpi=dpi)
