"""Sphere geometry: coordinates (:mod:`.coords`), meshes (:mod:`.mesh`: the icosphere and any
point set), mesh hierarchies (:mod:`.hierarchy`),
its differential operators (:mod:`.operators`), point location (:mod:`.locate`),
rotations (:mod:`.rotations`) and the projection of 3D shapes onto the sphere (:mod:`.project`).

Pure numpy/scipy/libigl: everything above (grids, nn, data) builds on it, nothing here
imports from them. Command line: ``python -m meshcnn.geometry --levels 0-7 --out meshes/``.
"""
from .coords import EARTH_RADIUS_KM, num_vertices_at, latlon_to_xyz, xyz_to_latlon, east_north
from .mesh import Mesh, icosphere, as_mesh, MAX_LEVEL, FORMAT_VERSION, level_of, check_level
from .hierarchy import MeshHierarchy, area_weighted_restriction, ring_mean
from .operators import (
    cotangent_laplacian, vertex_areas, face_areas, tangent_frames, face_to_vertex, directional_derivatives,
    vertex_frames, tangent_gradient, poleward_sign, edges, mean_edge_length, upsample_matrix, one_ring)
from .locate import locate, barycentric_interpolation, nearest_vertex, face_tree, vertex_tree
from .rotations import (
    random_rotation, rotation_about_z, rotation_about_axis, icosahedral_rotations, vertex_permutation,
    rotation_matrix_on_mesh, rotate_signal, check_rotation)
from .project import (
    project_mesh, project_directions, ShapeProjector, project_latlon, latlon_directions, latlon_shape, normalize_mesh,
    check_mesh, ray_engine, CHANNELS, MISS_DISTANCE)

__all__ = [
    "EARTH_RADIUS_KM", "num_vertices_at", "latlon_to_xyz", "xyz_to_latlon", "east_north",
    "Mesh", "MeshHierarchy", "area_weighted_restriction", "ring_mean", "icosphere", "as_mesh", "MAX_LEVEL", "FORMAT_VERSION", "level_of", "check_level", "cotangent_laplacian",
    "vertex_areas", "face_areas", "tangent_frames", "face_to_vertex", "directional_derivatives", "vertex_frames",
    "tangent_gradient", "poleward_sign", "edges", "mean_edge_length", "upsample_matrix", "one_ring",
    "locate", "barycentric_interpolation", "nearest_vertex", "face_tree", "vertex_tree",
    "random_rotation", "rotation_about_z", "rotation_about_axis", "icosahedral_rotations", "vertex_permutation",
    "rotation_matrix_on_mesh", "rotate_signal", "check_rotation", "project_mesh", "project_directions",
    "ShapeProjector", "project_latlon", "latlon_directions", "latlon_shape", "normalize_mesh", "check_mesh",
    "ray_engine", "CHANNELS", "MISS_DISTANCE",
]
