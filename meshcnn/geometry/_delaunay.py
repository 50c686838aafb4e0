r"""Triangulations of points on the sphere: validation, spherical Delaunay, orientation.

The spherical Delaunay triangulation of points on the unit sphere is their convex hull:
a circle on the sphere is a plane section, and a face of the hull is a triangle whose
circumscribed circle leaves every other point on the far side of its plane, i.e. the
triangle's circumcircle on the sphere contains no other point. The hull of points that
all lie in one closed hemisphere does not contain the centre of the sphere: one of its
faces is then a flat lid over the hemisphere's rim, not a piece of the sphere, and such
a set (a regional grid) is refused.

Private module: :meth:`meshcnn.geometry.Mesh.from_points` and
:meth:`~meshcnn.geometry.Mesh.from_faces` are the public entry points.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, cKDTree

from .coords import latlon_to_xyz

__all__ = ["sphere_points", "spherical_delaunay", "orient_outward", "UNIT_TOL", "COINCIDENT_TOL"]

UNIT_TOL = 1e-6  # largest accepted | |p| - 1 |
COINCIDENT_TOL = 1e-9  # chord distance (unit sphere) under which two points are the same point
_CENTRE_TOL = 1e-9  # the hull must hold the centre at least this far inside each face's plane

REGIONAL_HINT = (
    "a regional grid is not a closed sphere mesh: give it a mask of valid points on a global grid "
    "(regrid it to one), or add points covering the rest of the sphere"
)


def sphere_points(
    points: np.ndarray | None = None, lat: np.ndarray | None = None, lon: np.ndarray | None = None
) -> np.ndarray:
    """Unit vectors ``(N, 3)`` from ``points`` or from ``lat``/``lon`` in degrees, checked.

    Parameters
    ----------
    points : (N, 3) array, optional
        Unit vectors (norms within :data:`UNIT_TOL` of 1; renormalised).
    lat, lon : (N,) arrays, optional
        Degrees, instead of ``points``.

    Returns
    -------
    (N, 3) float64
        Exactly normalised.

    Raises
    ------
    ValueError
        Both or neither of ``points`` and ``lat``/``lon``; a wrong shape; non-finite
        values; points off the unit sphere; fewer than 4 points; two points closer than
        :data:`COINCIDENT_TOL` (the message names a pair).
    """
    if (points is None) == (lat is None and lon is None):
        raise ValueError("give either points (N, 3) or lat= and lon= (degrees), not both or neither")
    if points is None:
        if lat is None or lon is None:
            raise ValueError("lat= and lon= (degrees) go together")
        lat_arr, lon_arr = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        if lat_arr.ndim != 1 or lat_arr.shape != lon_arr.shape:
            raise ValueError(f"lat and lon must be 1-D of the same length, got {lat_arr.shape} and {lon_arr.shape}")
        if not (np.all(np.isfinite(lat_arr)) and np.all(np.isfinite(lon_arr))):
            raise ValueError("lat and lon must be finite")
        if np.abs(lat_arr).max(initial=0.0) > 90.0:
            raise ValueError(f"lat must be in [-90, 90] degrees, got values up to {np.abs(lat_arr).max():g}")
        points = latlon_to_xyz(np.deg2rad(lat_arr), np.deg2rad(lon_arr))
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"points must be an (N, 3) array of unit vectors, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("points must be finite")
    if len(arr) < 4:
        raise ValueError(f"a sphere mesh needs at least 4 points, got {len(arr)}")
    norms = np.linalg.norm(arr, axis=1)
    off = np.abs(norms - 1.0)
    if off.max() > UNIT_TOL:
        worst = int(off.argmax())
        raise ValueError(
            f"points must lie on the unit sphere (| |p| - 1 | <= {UNIT_TOL:g}): point {worst} has norm "
            f"{norms[worst]:.9g}; normalise them, or give lat= and lon= in degrees"
        )
    arr = arr / norms[:, None]
    pairs = cKDTree(arr).query_pairs(COINCIDENT_TOL, output_type="ndarray")
    if len(pairs):
        i, j = sorted(int(k) for k in pairs[0])
        raise ValueError(
            f"{len(pairs)} pair(s) of duplicate or coincident points (closer than {COINCIDENT_TOL:g} "
            f"on the unit sphere), e.g. points {i} and {j}; remove the duplicates"
        )
    return arr


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``faces`` with each face turned counter-clockwise seen from outside (a copy).

    A face is outward when :math:`((p_1 - p_0) \\times (p_2 - p_0)) \\cdot (p_0 + p_1 + p_2) > 0`.

    Raises
    ------
    ValueError
        If a face is degenerate (three collinear corners, or a repeated corner).
    """
    faces = np.array(faces, dtype=np.int64)
    p = vertices[faces]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    side = np.einsum("ij,ij->i", normal, p.sum(axis=1))
    scale = np.linalg.norm(p[:, 1] - p[:, 0], axis=1) * np.linalg.norm(p[:, 2] - p[:, 0], axis=1)
    flat = np.linalg.norm(normal, axis=1) <= 1e-12 * np.maximum(scale, np.finfo(float).tiny)
    if flat.any():
        raise ValueError(
            f"{int(flat.sum())} degenerate face(s) (repeated or collinear corners), e.g. face "
            f"{int(np.flatnonzero(flat)[0])}: {faces[flat][0].tolist()}"
        )
    inward = side < 0
    faces[inward] = faces[inward][:, ::-1]
    return faces


def spherical_delaunay(points: np.ndarray) -> np.ndarray:
    """Faces ``(F, 3)``, outward and counter-clockwise, of the Delaunay triangulation of unit vectors.

    Parameters
    ----------
    points : (N, 3) float64
        Unit vectors, checked by :func:`sphere_points`.

    Raises
    ------
    ValueError
        If the points lie in one hemisphere (the hull does not hold the centre: a
        regional grid), or some point is not a vertex of the hull (numerically inside).
    """
    try:
        hull = ConvexHull(points)
    except Exception as exc:  # scipy.spatial.QhullError: a flat or degenerate set
        raise ValueError(f"the points do not span the sphere (no 3-D convex hull): {exc}".splitlines()[0]) from exc
    # equations: n . x + offset <= 0 inside, |n| = 1; the centre is inside when every offset < 0
    if hull.equations[:, 3].max() > -_CENTRE_TOL:
        raise ValueError("the points all lie in one hemisphere, so their hull is not a sphere mesh; " + REGIONAL_HINT)
    faces = hull.simplices
    used = np.zeros(len(points), dtype=bool)
    used[faces.reshape(-1)] = True
    if not used.all():
        missing = np.flatnonzero(~used)
        raise ValueError(
            f"{len(missing)} point(s) are not vertices of the spherical triangulation "
            f"(too close to others to resolve), e.g. point {int(missing[0])}"
        )
    return orient_outward(points, faces)
