r"""3-D shapes in the ModelNet layout, projected onto the sphere for classification.

Layout (the official Princeton ModelNet10/ModelNet40 archives, unzipped)::

    ROOT/<class>/train/<class>_0001.off
    ROOT/<class>/test/<class>_0890.off

The class list is the sorted names of the folders in ``ROOT`` (folders whose
name starts with ``.`` or ``__``, such as the ``__MACOSX`` folder inside
``ModelNet10.zip``, are ignored). Each item of :class:`ModelNet` is the
6-channel spherical projection of :mod:`meshcnn.geometry.project` (``(6, V)`` on the
icosphere, or ``(6, H, W)`` on an equiangular lat-lon grid for planar
baselines) and the class index.

OFF files are read by :func:`read_off`, which accepts the header quirk of the
real ModelNet files (``OFF490 518 0`` on one line). Polygons with more than three
corners are an error by default (the ModelNet files are all triangles, so a
polygon usually means a different kind of file); ``triangulate=True``
fan-triangulates them instead (exact for convex polygons).

An offline stand-in for ModelNet, written in the same layout::

    python -m meshcnn.data.shapes synth --out data/synthshapes --per-class 60 --seed 0

builds 12 classes (:data:`SYNTH_CLASSES`) from trimesh primitives and
assemblies of them with random proportions, non-uniform scaling, a random yaw
and vertex noise, so that neighbouring classes (box/pyramid, cone/pyramid,
capsule/ellipsoid, table/stool, ...) overlap.
"""

from .dataset import ModelNet, ProjectionOptions
from .off import read_off, write_off
from .synthetic import SYNTH_CLASSES, make_synthetic, synth_shape

__all__ = ["read_off", "write_off", "ModelNet", "ProjectionOptions", "SYNTH_CLASSES", "synth_shape", "make_synthetic"]
