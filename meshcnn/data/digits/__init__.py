r"""Planar digit images projected onto the sphere ("spherical MNIST").

The image is placed on the northern hemisphere, centred on the north pole, and
sampled at the icosphere vertices:

* **Projection.** A vertex ``p = (x, y, z)`` with ``z > 0`` maps to the plane
  tangent at the north pole by the *stereographic* projection from the south
  pole, ``(u, v) = 2 (x, y) / (1 + z)`` (default; conformal, so strokes keep their
  shapes), or by the *gnomonic* projection from the centre,
  ``(u, v) = (x, y) / z``. Vertices with ``z <= 0`` get 0.
* **Angular extent.** ``extent`` (radians, default :data:`DEFAULT_EXTENT` = 60°)
  is the polar angle from the north pole to the midpoint of the image's longer
  side: that side spans ``2 a`` in the plane, with ``a = 2 tan(extent / 2)``
  (stereographic) or ``a = tan(extent)`` (gnomonic). Pixels are square. With the
  default a square image covers polar angles up to 60° along its axes and 78.5°
  (stereographic) / 67.8° (gnomonic) at its corners. The whole image must lie in
  the northern hemisphere, so the corners may not reach the equator.
* **Orientation.** Row 0 is the top of the image. Seen from outside the sphere
  above the north pole, the image is upright and not mirrored: columns run
  along ``+x``, rows upward along ``+y``.
* **Sampling.** Bilinear interpolation between pixel centres; in the
  half-pixel border between the outer pixel centres and the image edge the edge
  value is held; outside the image rectangle the signal is 0. So a constant
  image ``c`` gives exactly ``c`` on the image's spherical footprint and 0
  elsewhere.
* **Rotation.** ``rotation = R`` (``(3, 3)``) rotates the projected signal on the
  sphere: ``f_R(p) = f(R^T p)``, the convention of :mod:`meshcnn.geometry.rotations`. It is
  applied analytically (the image is sampled at ``R^T p``), not by re-interpolating
  on the mesh.

Datasets: :class:`SphericalDigits` (mesh signals ``(1, V)``) and
:class:`PlanarDigits` (the matching ``(1, H, W)`` images for planar baselines),
on scikit-learn's ``load_digits`` (1797 images 8x8, values 0..16; scikit-learn is
the optional extra ``meshcnn[digits]``) or on an MNIST ``.npz`` archive
(``x_train``, ``y_train``, ``x_test``, ``y_test``).

The digits split (:func:`digits_split`): stratified by class, 20 % test
(:data:`TEST_FRACTION`), seed 0 (:data:`SPLIT_SEED`), implemented here with
NumPy so it does not change with the scikit-learn version: 1438 train / 359
test images (35 to 37 per class in the test set). MNIST keeps its own train/test split.
"""

from .dataset import PlanarDigits, SphericalDigits, digits_split, load_digits_arrays, load_mnist
from .projection import PROJECTIONS, project_image, unproject_signal

__all__ = [
    "PROJECTIONS",
    "project_image",
    "unproject_signal",
    "load_digits_arrays",
    "load_mnist",
    "digits_split",
    "SphericalDigits",
    "PlanarDigits",
]
