r"""Projecting a 3-D shape onto the sphere by ray casting (the s2cnn / UGSCNN convention).

A triangle mesh is first normalized: translated so that its centroid
(:attr:`trimesh.Trimesh.centroid`, the area-weighted mean of the face
centroids) is at the origin and scaled so that its farthest vertex is at
distance 1 (the unit ball). From every sampling direction :math:`u` (a unit
vector: an icosphere vertex, or an equiangular lat-lon grid point) a ray starts
on the unit sphere at :math:`u` and travels toward the centre, direction
:math:`-u`, and on through it (it is a half-line, so shapes that do not contain
the centre -- a torus -- are still seen from the far side). At the first hit,
with :math:`n` the unit normal of the triangle hit:

=========  ==================================  ============  ==========
channel    value                               hit range     miss value
=========  ==================================  ============  ==========
0 / 3      distance from the sphere to the     ``[0, 2]``    ``1``
           hit along the ray (unit-ball units)
1 / 4      :math:`|\cos\theta| = |n\cdot u|`   ``[0, 1]``    ``0``
2 / 5      :math:`\sin\theta = |n\times u|`    ``[0, 1]``    ``0``
=========  ==================================  ============  ==========

Channels 0-2 are for the shape itself, 3-5 for its convex hull (which has no
holes, so it fills in what the shape's own rays miss). The miss values are the
documented constants :data:`MISS_DISTANCE` and ``0``; no output is ever NaN.

Rotations follow :mod:`meshcnn.geometry.rotations`: ``rotation=R`` turns the normalized
shape, :math:`p' = R p`, before casting, so the result is the rotated signal
:math:`(Rf)(u) = f(R^{-1}u)`.

Ray engine, chosen at run time (:func:`ray_engine`): Intel Embree through
``embreex`` (all scenes of a process on one Embree device) if it imports, else
trimesh's pure-numpy :mod:`trimesh.ray.ray_triangle` with an ``rtree``
broad phase. The environment variable ``MESHCNN_RAY_ENGINE`` (``embree`` or
``triangle``) or the ``engine=`` argument forces one. Both return the index of
the first triangle hit; the hit distance is then recomputed here in float64
from that triangle's plane, so the two engines agree to rounding.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .._cache import memoize
from .coords import latlon_to_xyz, num_vertices_at
from .mesh import check_level, icosphere
from .rotations import check_rotation

__all__ = [
    "project_mesh",
    "project_directions",
    "ShapeProjector",
    "project_latlon",
    "latlon_directions",
    "latlon_shape",
    "normalize_mesh",
    "check_mesh",
    "ray_engine",
    "CHANNELS",
    "MISS_DISTANCE",
]

CHANNELS = ("shape_distance", "shape_cos", "shape_sin", "hull_distance", "hull_cos", "hull_sin")
MISS_DISTANCE = 1.0
ENGINES = ("embree", "triangle")


@memoize(maxsize=None)
def _embree_available() -> bool:
    try:
        # Imported only to probe the installation: trimesh uses these modules when embreex works.
        from embreex import rtcore, rtcore_scene  # noqa: F401
        from embreex.mesh_construction import TriangleMesh  # noqa: F401
    except ImportError:
        return False
    return True


def ray_engine(engine: str | None = None) -> str:
    """The ray engine that will be used: ``"embree"`` (embreex) or ``"triangle"`` (trimesh + rtree).

    ``engine`` (or else the ``MESHCNN_RAY_ENGINE`` environment variable) forces
    one; ``ValueError`` if it is unknown or ``"embree"`` is asked for and
    ``embreex`` is not importable. Default: embree when available.
    """
    choice = engine or os.environ.get("MESHCNN_RAY_ENGINE") or None
    if choice is None:
        return "embree" if _embree_available() else "triangle"
    if choice not in ENGINES:
        raise ValueError(f"ray engine must be one of {ENGINES}, got {choice!r}")
    if choice == "embree" and not _embree_available():
        raise ValueError("ray engine 'embree' requested but embreex is not importable (pip install embreex)")
    return choice


_EMBREE_DEVICE: tuple[int, object] | None = None


def _embree_device():
    """One Embree device per process, shared by all scenes.

    (trimesh's wrapper makes a device per scene; a few hundred live ones crash
    Embree. A device does not survive ``fork``, hence one per process id.)
    """
    global _EMBREE_DEVICE
    if _EMBREE_DEVICE is None or _EMBREE_DEVICE[0] != os.getpid():
        from embreex import rtcore

        _EMBREE_DEVICE = (os.getpid(), rtcore.EmbreeDevice())
    return _EMBREE_DEVICE[1]


class _EmbreeIntersector:
    """First-hit ray queries on one triangle mesh with Embree (float32; the mesh lies in the unit ball)."""

    def __init__(self, mesh) -> None:
        from embreex import rtcore_scene
        from embreex.mesh_construction import TriangleMesh

        self.scene = rtcore_scene.EmbreeScene(_embree_device())
        TriangleMesh(
            scene=self.scene,
            vertices=np.asarray(mesh.vertices, dtype=np.float32),
            indices=np.asarray(mesh.faces, dtype=np.int32),
        )

    def intersects_first(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Index of the first triangle each ray hits, ``-1`` for a miss."""
        return self.scene.run(np.asarray(origins, dtype=np.float32), np.asarray(directions, dtype=np.float32))


def _intersector(mesh, engine: str):
    if engine == "embree":
        return _EmbreeIntersector(mesh)
    from trimesh.ray.ray_triangle import RayMeshIntersector

    return RayMeshIntersector(mesh)


def _name(mesh) -> str:
    meta = getattr(mesh, "metadata", None) or {}
    return str(meta.get("file_path") or meta.get("file_name") or "mesh")


def check_mesh(mesh, name: str | None = None) -> None:
    """Raise ``ValueError`` (naming ``name``) unless ``mesh`` can be projected.

    Rejected: no faces; non-finite vertices; face indices out of range; zero
    total area; all vertices on one plane or line (zero volume: the centred
    vertices have rank < 3, relative tolerance 1e-9).

    Parameters
    ----------
    mesh : trimesh.Trimesh
    name : str, optional
        Name in the error messages; default: the mesh's file path or name, else ``"mesh"``.
    """
    name = name or _name(mesh)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ValueError(f"{name}: degenerate mesh: no triangles")
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 4:
        raise ValueError(f"{name}: degenerate mesh: {len(vertices)} vertices")
    if not np.isfinite(vertices).all():
        bad = int((~np.isfinite(vertices).all(axis=1)).sum())
        raise ValueError(f"{name}: degenerate mesh: {bad} vertices with NaN or infinite coordinates")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"{name}: face index out of range 0..{len(vertices) - 1}")
    vertices = vertices / _scale(vertices[np.unique(faces)])  # the test must not depend on the units
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    used = vertices[np.unique(faces)]
    centred = used - used.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    if not area > 0 or singular[0] == 0 or singular[-1] <= 1e-9 * singular[0]:
        raise ValueError(f"{name}: degenerate mesh: zero volume (all vertices on a plane or a line)")


def _scale(vertices: np.ndarray) -> float:
    """A power of two near the largest absolute coordinate (1 if all are 0): dividing by it is exact
    and brings any shape, from 1e-300 to 1e300 units, to coordinates of order 1."""
    largest = float(np.abs(vertices).max()) if vertices.size else 0.0
    return 2.0 ** math.floor(math.log2(largest)) if largest > 0 else 1.0


def normalize_mesh(mesh, rotation: np.ndarray | None = None, normalize: bool = True):
    """A copy of ``mesh`` centred on its centroid, scaled into the unit ball, then rotated by ``rotation``.

    With ``normalize=False`` the mesh is only rotated (about the origin) and
    must already lie in the closed unit ball (``ValueError`` otherwise).
    Zero-area faces are dropped (they have no normal). Checks the mesh with
    :func:`check_mesh` first.

    Parameters
    ----------
    mesh : trimesh.Trimesh
    rotation : (3, 3) array or None
        Applied after normalizing, :math:`p' = R p`.
    normalize : bool
        Centre and scale (default ``True``).
    """
    import trimesh

    name = _name(mesh)
    check_mesh(mesh, name)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    scale = _scale(vertices[np.unique(faces)]) if normalize else 1.0
    out = trimesh.Trimesh(vertices=vertices / scale, faces=faces, process=False, validate=False)
    out.update_faces(out.nondegenerate_faces())  # trimesh's tolerance is absolute: hence the scaling
    if len(out.faces) == 0:
        raise ValueError(f"{name}: degenerate mesh: every triangle has zero area")
    out.remove_unreferenced_vertices()
    vertices = np.asarray(out.vertices, dtype=np.float64)
    if normalize:
        vertices = vertices - out.centroid
        vertices = vertices / np.linalg.norm(vertices, axis=1).max()
    elif np.linalg.norm(vertices, axis=1).max() > 1 + 1e-9:
        raise ValueError(f"{name}: with normalize=False the mesh must lie in the unit ball")
    rotation = _check_rotation(rotation)
    if rotation is not None:
        vertices = vertices @ rotation.T
    out = trimesh.Trimesh(vertices=vertices, faces=np.asarray(out.faces), process=False, validate=False)
    out.metadata["file_path"] = name
    return out


def _cast(mesh, intersector, directions: np.ndarray) -> np.ndarray:
    """``(3, N)`` distance, ``|cos|``, ``sin`` for rays from ``u`` toward ``-u`` (mesh in the unit ball)."""
    origins = 2.0 * directions  # start outside the ball; subtract 1 below to measure from the unit sphere
    rays = -directions
    tri = np.asarray(intersector.intersects_first(origins, rays), dtype=np.int64)
    out = np.zeros((3, len(directions)), dtype=np.float64)
    out[0] = MISS_DISTANCE
    hit = np.flatnonzero(tri >= 0)
    if len(hit) == 0:
        return out
    faces = tri[hit]
    normals = np.asarray(mesh.face_normals, dtype=np.float64)[faces]
    u = directions[hit]
    # float64 plane-line intersection: origin + t * ray lies on the plane through the triangle
    p0 = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)[faces, 0]]
    dot = np.einsum("ij,ij->i", normals, rays[hit])
    centroid_t = np.einsum("ij,ij->i", np.asarray(mesh.triangles_center)[faces] - origins[hit], rays[hit])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.einsum("ij,ij->i", normals, p0 - origins[hit]) / dot
    grazing = ~np.isfinite(t) | (np.abs(dot) < 1e-12)
    t = np.where(grazing, centroid_t, t)
    out[0, hit] = np.clip(t - 1.0, 0.0, 2.0)
    cos = np.abs(np.einsum("ij,ij->i", normals, u))
    out[1, hit] = np.clip(cos, 0.0, 1.0)
    out[2, hit] = np.clip(np.linalg.norm(np.cross(normals, u), axis=1), 0.0, 1.0)
    return out


def _check_rotation(rotation: np.ndarray | None) -> np.ndarray | None:
    return None if rotation is None else check_rotation(rotation)


def _check_directions(directions: np.ndarray) -> np.ndarray:
    directions = np.asarray(directions, dtype=np.float64)
    if directions.ndim != 2 or directions.shape[1] != 3:
        raise ValueError(f"directions must be (N, 3), got {directions.shape}")
    if not np.allclose(np.linalg.norm(directions, axis=1), 1.0, atol=1e-6):
        raise ValueError("directions must be unit vectors")
    return directions


class ShapeProjector:
    """One shape, normalized once, with its convex hull and ray intersectors, projected under any rotation.

    Rotating the shape by ``R`` and casting along ``u`` is the same as casting
    along ``R^T u`` at the unrotated shape (distances and ``|n . u|`` do not
    change), so the ray-acceleration structures are built once and each new
    rotation only costs the ray casts. Use it when one shape is projected many
    times (fresh rotations every epoch); ``project_*`` functions build one per call.
    """

    def __init__(self, mesh, normalize: bool = True, engine: str | None = None) -> None:
        self.engine = ray_engine(engine)
        self.name = _name(mesh)
        self.shape = normalize_mesh(mesh, None, normalize)
        self.hull = self.shape.convex_hull
        self._intersectors = [_intersector(self.shape, self.engine), _intersector(self.hull, self.engine)]

    def __call__(self, directions: np.ndarray, rotation: np.ndarray | None = None) -> np.ndarray:
        """float32 ``(6, N)`` projection along unit ``directions`` ``(N, 3)`` of the shape turned by ``rotation``."""
        directions = _check_directions(directions)
        rotation = _check_rotation(rotation)
        if rotation is not None:
            directions = directions @ rotation  # rows R^T u
        return np.concatenate(
            [_cast(self.shape, self._intersectors[0], directions), _cast(self.hull, self._intersectors[1], directions)]
        ).astype(np.float32)

    def icosphere(self, level: int, rotation: np.ndarray | None = None) -> np.ndarray:
        """float32 ``(6, V)`` on the vertices of ``icosphere(level)`` (as :func:`project_mesh`).

        Parameters
        ----------
        level : int
        rotation : (3, 3) array or None
        """
        return self(icosphere(check_level(level)).vertices, rotation)

    def latlon(self, height: int, width: int, rotation: np.ndarray | None = None) -> np.ndarray:
        """float32 ``(6, H, W)`` on an equiangular grid (as :func:`project_latlon`).

        Parameters
        ----------
        height, width : int
        rotation : (3, 3) array or None
        """
        return self(latlon_directions(height, width).reshape(-1, 3), rotation).reshape(6, height, width)


def project_directions(
    mesh,
    directions: np.ndarray,
    rotation: np.ndarray | None = None,
    *,
    normalize: bool = True,
    engine: str | None = None,
) -> np.ndarray:
    """Project ``mesh`` along unit ``directions`` ``(N, 3)``: float32 ``(6, N)`` (see the module doc).

    Parameters
    ----------
    mesh : trimesh.Trimesh
    directions : (N, 3) array
        Unit vectors (``ValueError`` otherwise).
    rotation : (3, 3) array or None
        Turns the normalized shape first, :math:`p' = R p`.
    normalize : bool
        Centre and scale into the unit ball (:func:`normalize_mesh`; default ``True``).
    engine : ``"embree"``, ``"triangle"`` or None
        The ray engine (:func:`ray_engine`; default: embree when available).
    """
    directions = _check_directions(directions)
    rotation = _check_rotation(rotation)
    return ShapeProjector(mesh, normalize, engine)(directions, rotation)


def project_mesh(
    mesh, level: int, rotation: np.ndarray | None = None, *, normalize: bool = True, engine: str | None = None
) -> np.ndarray:
    """Project a :class:`trimesh.Trimesh` onto the vertices of ``icosphere(level)``: float32 ``(6, V)``.

    Channels :data:`CHANNELS` (distance, ``|cos|``, ``sin`` for the shape, then
    for its convex hull); misses give distance :data:`MISS_DISTANCE` = 1 and
    0 for the angles. ``rotation`` ``(3, 3)`` turns the normalized shape first
    (:math:`p' = Rp`). ``ValueError`` naming the mesh's file for a degenerate
    mesh (see :func:`check_mesh`).

    Parameters
    ----------
    mesh : trimesh.Trimesh
    level : int
        Icosphere level.
    rotation, normalize, engine
        As in :func:`project_directions`.
    """
    level = check_level(level)
    return project_directions(mesh, icosphere(level).vertices, rotation, normalize=normalize, engine=engine)


def latlon_shape(level: int) -> tuple[int, int]:
    """An equiangular ``(H, W) = (h, 2h)`` grid with about as many points as ``icosphere(level)``."""
    level = check_level(level)
    h = max(2, round(math.sqrt(num_vertices_at(level) / 2)))
    return h, 2 * h


def latlon_directions(height: int, width: int) -> np.ndarray:
    """Unit vectors ``(H, W, 3)`` at the cell centres of an equiangular grid.

    Row ``i`` is at latitude ``pi/2 - (i + 1/2) pi / H`` (north first), column
    ``j`` at longitude ``-pi + (j + 1/2) 2 pi / W``; ``z`` is north, as for
    :attr:`meshcnn.geometry.Mesh.lat`.

    Parameters
    ----------
    height, width : int
        ``H`` and ``W``, at least 1 (``ValueError`` otherwise).
    """
    if height < 1 or width < 1:
        raise ValueError(f"grid must be at least 1 x 1, got {height} x {width}")
    lat = np.pi / 2 - (np.arange(height) + 0.5) * np.pi / height
    lon = -np.pi + (np.arange(width) + 0.5) * 2 * np.pi / width
    return latlon_to_xyz(*np.meshgrid(lat, lon, indexing="ij"))


def project_latlon(
    mesh,
    height: int,
    width: int,
    rotation: np.ndarray | None = None,
    *,
    normalize: bool = True,
    engine: str | None = None,
) -> np.ndarray:
    """The same projection sampled on an equiangular lat-lon grid: float32 ``(6, H, W)``.

    This is what a planar 2-D CNN baseline sees (see :func:`latlon_directions`).

    Parameters
    ----------
    mesh : trimesh.Trimesh
    height, width : int
        ``H`` and ``W``.
    rotation, normalize, engine
        As in :func:`project_directions`.
    """
    directions = latlon_directions(height, width).reshape(-1, 3)
    return project_directions(mesh, directions, rotation, normalize=normalize, engine=engine).reshape(6, height, width)
