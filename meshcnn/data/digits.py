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
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset

from ..geometry.mesh import Mesh, check_level, icosphere
from ..geometry.rotations import barycentric_interpolation, random_rotation, rotation_about_axis, rotation_about_z

__all__ = [
    "DEFAULT_EXTENT", "PROJECTIONS", "SPLIT_SEED", "TEST_FRACTION", "JITTER_DEGREES", "ROTATE_MODES",
    "projection_matrix", "project_image", "unprojection_matrix", "unproject_signal",
    "load_digits_arrays", "load_mnist", "digits_split", "SphericalDigits", "PlanarDigits",
]

DEFAULT_EXTENT = np.pi / 3
PROJECTIONS = ("stereographic", "gnomonic")
SPLIT_SEED = 0
TEST_FRACTION = 0.2
MIN_LEVEL = 2
#: Largest angle (degrees) of the ``rotate="jitter"`` rotations: about one edge of level 3.
JITTER_DEGREES = 10.0
#: The ``rotate`` options of :class:`SphericalDigits`.
ROTATE_MODES = (False, True, "z", "jitter", "z+jitter")


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
    col = np.clip(u[rows] / pixel + w / 2 - 0.5, 0, w - 1)   # continuous pixel coordinates
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
    if isinstance(level, Mesh):
        check_level(level.level, "level", low=MIN_LEVEL)
        return level
    return icosphere(check_level(level, "level", low=MIN_LEVEL))


def _check_rotation(rotation: np.ndarray | None) -> np.ndarray | None:
    if rotation is None:
        return None
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3) or not np.all(np.isfinite(rotation)):
        raise ValueError(f"rotation must be a finite (3, 3) matrix, got shape {rotation.shape}")
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
        raise ValueError("rotation must be a proper rotation matrix (orthogonal, det +1)")
    return rotation


def projection_matrix(shape: tuple[int, int], level: Mesh | int, rotation: np.ndarray | None = None, *,
                      projection: str = "stereographic", extent: float = DEFAULT_EXTENT) -> sp.csr_matrix:
    """Sparse ``(V, H*W)`` matrix ``P`` with ``P @ image.ravel()`` = :func:`project_image` (float64)."""
    mesh = _mesh(level)
    rotation = _check_rotation(rotation)
    points = mesh.vertices if rotation is None else mesh.vertices @ rotation  # rows: R^T v_i
    return _bilinear(points, tuple(int(s) for s in shape), projection, extent)


def project_image(image: np.ndarray, level: Mesh | int, rotation: np.ndarray | None = None, *,
                  projection: str = "stereographic", extent: float = DEFAULT_EXTENT) -> np.ndarray:
    """Project a planar image ``(H, W)`` onto the icosphere of ``level`` (>= 2): float32 ``(V,)``.

    See the module docstring for the projection, extent, orientation and
    sampling conventions. ``rotation`` (``(3, 3)``, optional) rotates the result:
    ``out[i] = f(R^T v_i)`` with ``f`` the unrotated spherical image.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be a 2-D array (H, W), got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or not np.all(np.isfinite(image)):
        raise ValueError("image must hold finite numbers")
    matrix = projection_matrix(image.shape, level, rotation, projection=projection, extent=extent)
    return (matrix @ image.astype(np.float64).ravel()).astype(np.float32)


def unprojection_matrix(shape: tuple[int, int], level: Mesh | int, *, projection: str = "stereographic",
                        extent: float = DEFAULT_EXTENT) -> sp.csr_matrix:
    """Sparse ``(H*W, V)`` matrix resampling a mesh signal back to a planar ``(H, W)`` image.

    The inverse of the projection: each pixel centre is mapped to the sphere by
    the inverse projection and the signal is interpolated there linearly in its
    mesh triangle (:func:`meshcnn.geometry.barycentric_interpolation`).
    """
    mesh = _mesh(level)
    h, w = (int(s) for s in shape)
    _, pixel = _check_geometry((h, w), projection, extent)
    col, row = np.meshgrid(np.arange(w), np.arange(h))
    u = (col.ravel() + 0.5 - w / 2) * pixel
    v = (h / 2 - 0.5 - row.ravel()) * pixel
    return barycentric_interpolation(mesh, _plane_to_sphere(u, v, projection))


def unproject_signal(signal: np.ndarray, level: Mesh | int, shape: tuple[int, int], *,
                     projection: str = "stereographic", extent: float = DEFAULT_EXTENT) -> np.ndarray:
    """Resample a mesh signal ``(..., V)`` back to planar images ``(..., H, W)`` (float32)."""
    signal = np.asarray(signal)
    mesh = _mesh(level)
    if signal.shape[-1] != mesh.num_vertices:
        raise ValueError(f"signal has {signal.shape[-1]} values on its last axis, level {mesh.level} "
                         f"has V={mesh.num_vertices}")
    matrix = unprojection_matrix(shape, mesh, projection=projection, extent=extent)
    flat = signal.reshape(-1, mesh.num_vertices).astype(np.float64)
    return np.asarray(matrix @ flat.T).T.reshape(*signal.shape[:-1], *shape).astype(np.float32)


# ---------------------------------------------------------------------------- data
def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``load_digits``: images ``(1797, 8, 8)`` float32 scaled to ``[0, 1]`` and labels int64."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "the digits dataset needs scikit-learn: pip install 'meshcnn[digits]' (or pass an MNIST .npz)"
        ) from exc
    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_mnist(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an MNIST-style ``.npz`` with ``x_train (N, H, W)``, ``y_train (N,)``, ``x_test``, ``y_test``.

    Images are returned as stored (the datasets scale uint8 by 1/255, other dtypes by
    1/max when the max exceeds 1), labels as int64.
    Raises ``FileNotFoundError`` or ``ValueError`` naming the file and the
    offending array.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MNIST file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("not an .npz archive")
            missing = [k for k in MNIST_KEYS if k not in f.files]
            if missing:
                raise ValueError(f"missing arrays {missing} (found {sorted(f.files)}); expected {list(MNIST_KEYS)}")
            arrays = {k: f[k] for k in MNIST_KEYS}
    except ValueError as exc:
        raise ValueError(f"{path}: not a usable MNIST .npz: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from exc
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim != 3 or min(x.shape) < 1:
            raise ValueError(f"{path}: x_{part} must be (N, H, W) images, got shape {x.shape}")
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise ValueError(f"{path}: x_{part} must be numeric, got dtype {x.dtype}")
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"{path}: y_{part} must be (N,) with N = len(x_{part}) = {len(x)}, got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() > 9)):
            raise ValueError(f"{path}: y_{part} must hold integer labels 0..9")
        arrays[f"y_{part}"] = y.astype(np.int64)
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(f"{path}: x_train and x_test images differ in size: "
                         f"{arrays['x_train'].shape[1:]} vs {arrays['x_test'].shape[1:]}")
    return arrays


def _image_scale(images: np.ndarray) -> float:
    """Factor mapping stored pixel values to ``[0, 1]``: 1/255 for uint8, else 1/max (1 if the max is <= 1)."""
    if images.dtype == np.uint8:
        return 1.0 / 255.0
    peak = float(np.max(images)) if images.size else 1.0
    return 1.0 / peak if peak > 1.0 else 1.0


def digits_split(labels: np.ndarray, test_fraction: float = TEST_FRACTION,
                 seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: sorted ``(train_idx, test_idx)``.

    For each class in ascending order, its indices are permuted by one
    ``np.random.default_rng(seed)`` and the first ``round(test_fraction * n_class)``
    go to the test set.
    """
    labels = np.asarray(labels)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test.append(idx[rng.permutation(len(idx))[: int(round(test_fraction * len(idx)))]])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


class SphericalDigits(Dataset):
    r"""Digits on the sphere: items ``(signal, label)``, signal float32 ``(1, V_level)``, label int.

    Parameters
    ----------
    split : ``"train"`` or ``"test"``
        The fixed split of :func:`digits_split` (1438 / 359), or MNIST's own.
    level : int
        Icosphere level, >= 2.
    rotate : bool, ``"z"``, ``"jitter"`` or ``"z+jitter"``
        If true, each sample is rotated by a uniform random rotation
        (:func:`meshcnn.geometry.random_rotation`); with ``"z"``, by a rotation about
        the polar axis by a uniform angle (the digit stays on the north pole, turned
        in its plane); with ``"jitter"``, by a small rotation: uniform random axis,
        angle uniform in ``[0, jitter]`` degrees (the digit stays near the pole, nearly
        upright, sampled by other vertices); ``"z+jitter"`` is a turn about the polar axis
        followed by a jitter. Each is drawn from
        ``np.random.default_rng([seed, epoch, index])``: fixed per sample for a
        given epoch, fresh in every epoch once :meth:`set_epoch` is called
        (:func:`meshcnn.train.fit` does this for the training set). A test set on
        which ``set_epoch`` is never called keeps one fixed rotation per sample,
        the same for every run with the same ``seed``.
    seed : int
        Seed of the rotations (not of the split, which is fixed).
    mnist : path, optional
        An MNIST ``.npz`` (see :func:`load_mnist`) instead of scikit-learn's digits.
    projection, extent
        See :func:`project_image`.
    jitter : float
        Largest angle, degrees, of the ``"jitter"`` rotations (default :data:`JITTER_DEGREES`).
    """

    def __init__(self, split: str, level: int, rotate: bool | str = False, seed: int = 0,
                 mnist: str | os.PathLike | None = None, *, projection: str = "stereographic",
                 extent: float = DEFAULT_EXTENT, jitter: float = JITTER_DEGREES) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.mesh = _mesh(level)
        if rotate not in ROTATE_MODES:
            raise ValueError(f"rotate must be one of {ROTATE_MODES}, got {rotate!r}")
        if not 0.0 < float(jitter) <= 180.0:
            raise ValueError(f"jitter must be an angle in (0, 180] degrees, got {jitter!r}")
        self.jitter = float(jitter)
        self.level, self.split, self.rotate, self.seed = self.mesh.level, split, rotate, int(seed)
        self.projection, self.extent = projection, float(extent)
        if mnist is None:
            images, labels = load_digits_arrays()
            train_idx, test_idx = digits_split(labels)
            index = train_idx if split == "train" else test_idx
            self.images, self.labels = images[index], labels[index]
        else:
            arrays = load_mnist(mnist)
            self.images, self.labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        self.scale = _image_scale(self.images)
        self.image_shape = tuple(self.images.shape[1:])
        self._projection = projection_matrix(self.image_shape, self.mesh, projection=projection, extent=extent)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Select the rotations of ``epoch`` (no effect without ``rotate``)."""
        self.epoch = int(epoch)

    def rotation(self, index: int) -> np.ndarray:
        """The rotation ``(3, 3)`` applied to sample ``index`` in the current epoch (identity without ``rotate``)."""
        if not self.rotate:
            return np.eye(3)
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        if self.rotate is True:
            return random_rotation(rng)
        rotation = rotation_about_z(rng.uniform(0.0, 2.0 * np.pi)) if "z" in self.rotate else np.eye(3)
        if "jitter" in self.rotate:
            rotation = rotation_about_axis(rng.standard_normal(3), np.deg2rad(rng.uniform(0.0, self.jitter))) @ rotation
        return rotation

    def image(self, index: int) -> np.ndarray:
        """The planar image ``(H, W)`` of sample ``index``, float64 in ``[0, 1]``."""
        return self.images[index].astype(np.float64) * self.scale

    def signal(self, index: int) -> np.ndarray:
        """The (possibly rotated) spherical signal ``(V,)`` float32 of sample ``index``."""
        image = self.image(index).ravel()
        if self.rotate:
            matrix = projection_matrix(self.image_shape, self.mesh, self.rotation(index),
                                       projection=self.projection, extent=self.extent)
        else:
            matrix = self._projection
        return (matrix @ image).astype(np.float32)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index = index % len(self)
        return torch.from_numpy(self.signal(index))[None], int(self.labels[index])


class PlanarDigits(SphericalDigits):
    r"""The planar counterpart of :class:`SphericalDigits`, for planar CNN baselines.

    Items ``(image, label)`` with image float32 ``(1, H, W)``. Without ``rotate``
    it is the original image, scaled to ``[0, 1]``. With ``rotate`` it is the very
    signal :class:`SphericalDigits` gives for the same ``(seed, epoch, index)`` (the
    image projected and rotated on the icosphere of ``level``), resampled back to
    an ``H x W`` image by the inverse projection (:func:`unprojection_matrix`):
    what a planar camera at the north pole sees of the rotated sphere. With
    ``unproject=True`` the unrotated samples too are the spherical signal resampled
    back (instead of the original image): exactly the information a spherical model
    on ``level`` gets, for a fair planar baseline.
    """

    def __init__(self, split: str, level: int = 4, rotate: bool | str = False, seed: int = 0,
                 mnist: str | os.PathLike | None = None, *, projection: str = "stereographic",
                 extent: float = DEFAULT_EXTENT, jitter: float = JITTER_DEGREES, unproject: bool = False) -> None:
        super().__init__(split, level, rotate, seed, mnist, projection=projection, extent=extent, jitter=jitter)
        self.unproject = bool(unproject)
        self._unprojection = unprojection_matrix(self.image_shape, self.mesh, projection=projection, extent=extent)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index = index % len(self)
        if self.rotate or self.unproject:
            image = (self._unprojection @ self.signal(index).astype(np.float64)).reshape(self.image_shape)
        else:
            image = self.image(index)
        return torch.from_numpy(image.astype(np.float32))[None], int(self.labels[index])
