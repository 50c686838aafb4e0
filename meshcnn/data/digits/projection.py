"""The maps between a planar image and the icosphere: projection, rotation, resampling back.

The conventions (projection, angular extent, orientation, sampling, rotation) are
those of :mod:`meshcnn.data.digits`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...geometry.mesh import Mesh, as_mesh
from ...geometry.rotations import barycentric_interpolation, check_rotation

__all__ = [
    "DEFAULT_EXTENT",
    "PROJECTIONS",
    "projection_matrix",
    "project_image",
    "unprojection_matrix",
    "unproject_signal",
]

DEFAULT_EXTENT = np.pi / 3
PROJECTIONS = ("stereographic", "gnomonic")
MIN_LEVEL = 2


# ---------------------------------------------------------------------------- geometry
def _half_width(projection: str, extent: float) -> float:
    """Plane half-width ``a`` of the image's longer side for a polar angle ``extent``."""
    if projection == "stereographic":
        return 2.0 * np.tan(extent / 2.0)
    if projection == "gnomonic":
        return float(np.tan(extent))
    raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")


def _plane_to_sphere(u: np.ndarray, v: np.ndarray, projection: str) -> np.ndarray:
    """Inverse projection: plane points ``(u, v)`` -> unit vectors ``(N, 3)`` on the northern hemisphere."""
    if projection == "stereographic":
        r2 = u * u + v * v
        return np.stack([4 * u, 4 * v, 4 - r2], axis=-1) / (4 + r2)[..., None]
    p = np.stack([u, v, np.ones_like(u)], axis=-1)
    return p / np.linalg.norm(p, axis=-1, keepdims=True)


def _sphere_to_plane(points: np.ndarray, projection: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projection of unit vectors to the plane; returns ``(u, v, valid)`` with ``valid = z > 0``."""
    x, y, z = points.T
    valid = z > 1e-12
    denom = np.where(valid, (1.0 + z) / 2.0 if projection == "stereographic" else z, 1.0)
    return x / denom, y / denom, valid


def _check_geometry(shape: tuple[int, int], projection: str, extent: float) -> tuple[float, float]:
    """Validate; return ``(a, pixel)``: half-width of the longer side and pixel size in plane units."""
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"image shape must be (H, W) with H, W >= 1, got {tuple(shape)}")
    extent = float(extent)
    if not 0 < extent < np.pi / 2:
        raise ValueError(f"extent must be an angle in (0, pi/2) radians, got {extent}")
    h, w = shape
    a = _half_width(projection, extent)
    pixel = 2 * a / max(h, w)
    corner = _plane_to_sphere(np.array([w * pixel / 2]), np.array([h * pixel / 2]), projection)
    if corner[0, 2] <= 1e-9:
        raise ValueError(
            f"extent {np.degrees(extent):.1f} deg puts the image corners on or below the equator "
            f"for the {projection} projection; use a smaller extent"
        )
    return a, pixel


def _bilinear(points: np.ndarray, shape: tuple[int, int], projection: str, extent: float) -> sp.csr_matrix:
    """Sparse ``(N, H*W)`` matrix sampling an image bilinearly at unit vectors ``points``."""
    h, w = shape
    _, pixel = _check_geometry(shape, projection, extent)
    u, v, valid = _sphere_to_plane(points, projection)
    inside = valid & (np.abs(u) <= w * pixel / 2) & (np.abs(v) <= h * pixel / 2)
    rows = np.flatnonzero(inside)
    col = np.clip(u[rows] / pixel + w / 2 - 0.5, 0, w - 1)  # continuous pixel coordinates
    row = np.clip(h / 2 - 0.5 - v[rows] / pixel, 0, h - 1)
    c0 = np.minimum(np.floor(col).astype(np.int64), max(w - 2, 0))
    r0 = np.minimum(np.floor(row).astype(np.int64), max(h - 2, 0))
    c1, r1 = np.minimum(c0 + 1, w - 1), np.minimum(r0 + 1, h - 1)
    fc, fr = col - c0, row - r0
    entries = [((1 - fr) * (1 - fc), r0, c0), ((1 - fr) * fc, r0, c1), (fr * (1 - fc), r1, c0), (fr * fc, r1, c1)]
    data = np.concatenate([e[0] for e in entries])
    cols = np.concatenate([e[1] * w + e[2] for e in entries])
    matrix = sp.csr_matrix((data, (np.tile(rows, 4), cols)), shape=(len(points), h * w))
    matrix.sum_duplicates()
    return matrix


def _mesh(level: Mesh | int) -> Mesh:
    return as_mesh(level, low=MIN_LEVEL)


def _check_rotation(rotation: np.ndarray | None) -> np.ndarray | None:
    return None if rotation is None else check_rotation(rotation)


def projection_matrix(
    shape: tuple[int, int],
    level: Mesh | int,
    rotation: np.ndarray | None = None,
    *,
    projection: str = "stereographic",
    extent: float = DEFAULT_EXTENT,
) -> sp.csr_matrix:
    """Sparse ``(V, H*W)`` matrix ``P`` with ``P @ image.ravel()`` = :func:`project_image` (float64).

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(H, W)``.
    level, rotation, projection, extent
        As in :func:`project_image`.

    Returns
    -------
    scipy.sparse.csr_matrix
    """
    mesh = _mesh(level)
    rotation = _check_rotation(rotation)
    points = mesh.vertices if rotation is None else mesh.vertices @ rotation  # rows: R^T v_i
    return _bilinear(points, tuple(int(s) for s in shape), projection, extent)


def project_image(
    image: np.ndarray,
    level: Mesh | int,
    rotation: np.ndarray | None = None,
    *,
    projection: str = "stereographic",
    extent: float = DEFAULT_EXTENT,
) -> np.ndarray:
    """Project a planar image ``(H, W)`` onto the icosphere of ``level`` (>= 2): float32 ``(V,)``.

    See the module docstring for the projection, extent, orientation and
    sampling conventions.

    Parameters
    ----------
    image : (H, W) array
        Finite numbers (``ValueError`` otherwise).
    level : Mesh or int
        The icosphere, or its level (>= 2).
    rotation : (3, 3) array, optional
        Rotates the result: ``out[i] = f(R^T v_i)`` with ``f`` the unrotated spherical image.
    projection : {"stereographic", "gnomonic"}
        The planar projection (default ``"stereographic"``; see the module docstring).
    extent : float
        Angular extent of the image (default :data:`DEFAULT_EXTENT`; see the module docstring).

    Returns
    -------
    (V,) float32 array
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be a 2-D array (H, W), got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or not np.all(np.isfinite(image)):
        raise ValueError("image must hold finite numbers")
    matrix = projection_matrix(image.shape, level, rotation, projection=projection, extent=extent)
    return (matrix @ image.astype(np.float64).ravel()).astype(np.float32)


def unprojection_matrix(
    shape: tuple[int, int], level: Mesh | int, *, projection: str = "stereographic", extent: float = DEFAULT_EXTENT
) -> sp.csr_matrix:
    """Sparse ``(H*W, V)`` matrix resampling a mesh signal back to a planar ``(H, W)`` image.

    The inverse of the projection: each pixel centre is mapped to the sphere by
    the inverse projection and the signal is interpolated there linearly in its
    mesh triangle (:func:`meshcnn.geometry.barycentric_interpolation`).

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(H, W)``.
    level : Mesh or int
        The icosphere, or its level (>= 2).
    projection : {"stereographic", "gnomonic"}
        The planar projection (default ``"stereographic"``; see the module docstring).
    extent : float
        Angular extent of the image (default :data:`DEFAULT_EXTENT`; see the module docstring).

    Returns
    -------
    scipy.sparse.csr_matrix
    """
    mesh = _mesh(level)
    h, w = (int(s) for s in shape)
    _, pixel = _check_geometry((h, w), projection, extent)
    col, row = np.meshgrid(np.arange(w), np.arange(h))
    u = (col.ravel() + 0.5 - w / 2) * pixel
    v = (h / 2 - 0.5 - row.ravel()) * pixel
    return barycentric_interpolation(mesh, _plane_to_sphere(u, v, projection))


def unproject_signal(
    signal: np.ndarray,
    level: Mesh | int,
    shape: tuple[int, int],
    *,
    projection: str = "stereographic",
    extent: float = DEFAULT_EXTENT,
) -> np.ndarray:
    """Resample a mesh signal ``(..., V)`` back to planar images ``(..., H, W)`` (float32).

    Parameters
    ----------
    signal : (..., V) array
        ``V`` of the level (``ValueError`` otherwise).
    level : Mesh or int
        The icosphere, or its level (>= 2).
    shape : (int, int)
        Image shape ``(H, W)``.
    projection, extent
        As in :func:`unprojection_matrix`.

    Returns
    -------
    (..., H, W) float32 array
    """
    signal = np.asarray(signal)
    mesh = _mesh(level)
    if signal.shape[-1] != mesh.num_vertices:
        raise ValueError(
            f"signal has {signal.shape[-1]} values on its last axis, level {mesh.level} has V={mesh.num_vertices}"
        )
    matrix = unprojection_matrix(shape, mesh, projection=projection, extent=extent)
    flat = signal.reshape(-1, mesh.num_vertices).astype(np.float64)
    return np.asarray(matrix @ flat.T).T.reshape(*signal.shape[:-1], *shape).astype(np.float32)


# ---------------------------------------------------------------------------- data
