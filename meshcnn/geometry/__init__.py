"""Sphere geometry: coordinates (:mod:`.coords`), meshes (:mod:`.mesh`: the icosphere and any
point set), mesh hierarchies (:mod:`.hierarchy`),
its differential operators (:mod:`.operators`), point location (:mod:`.locate`),
rotations (:mod:`.rotations`) and the projection of 3D shapes onto the sphere (:mod:`.project`).

Pure numpy/scipy/libigl: everything above (grids, nn, data) builds on it, nothing here
imports from them. Command line: ``python -m meshcnn.geometry --levels 0-7 --out meshes/``.
"""

from .coords import EARTH_RADIUS_KM, latlon_to_xyz, xyz_to_latlon
from .hierarchy import MeshHierarchy
from .locate import barycentric_interpolation, locate, nearest_vertex
from .mesh import MAX_LEVEL, Mesh, icosphere
from .project import ShapeProjector, project_mesh
from .rotations import (
    icosahedral_rotations,
    random_rotation,
    rotate_signal,
    rotation_about_axis,
    rotation_about_z,
    vertex_permutation,
)

__all__ = [
    "EARTH_RADIUS_KM",
    "latlon_to_xyz",
    "xyz_to_latlon",
    "Mesh",
    "MeshHierarchy",
    "icosphere",
    "MAX_LEVEL",
    "locate",
    "barycentric_interpolation",
    "nearest_vertex",
    "random_rotation",
    "rotation_about_z",
    "rotation_about_axis",
    "icosahedral_rotations",
    "vertex_permutation",
    "rotate_signal",
    "project_mesh",
    "ShapeProjector",
]
