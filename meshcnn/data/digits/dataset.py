"""The digit images (scikit-learn's or an MNIST archive), their fixed split, and the datasets on the sphere."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..._optional import optional_import
from ...geometry.rotations import random_rotation, rotation_about_axis, rotation_about_z
from .projection import DEFAULT_EXTENT, _mesh, projection_matrix, unprojection_matrix

__all__ = [
    "SPLIT_SEED",
    "TEST_FRACTION",
    "JITTER_DEGREES",
    "ROTATE_MODES",
    "load_digits_arrays",
    "load_mnist",
    "digits_split",
    "SphericalDigits",
    "PlanarDigits",
]

SPLIT_SEED = 0
TEST_FRACTION = 0.2
#: Largest angle (degrees) of the ``rotate="jitter"`` rotations: about one edge of level 3.
JITTER_DEGREES = 10.0
#: The ``rotate`` options of :class:`SphericalDigits`.
ROTATE_MODES = (False, True, "z", "jitter", "z+jitter")


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``load_digits``: images ``(1797, 8, 8)`` float32 scaled to ``[0, 1]`` and labels int64."""
    datasets = optional_import(
        "sklearn.datasets", "the digits dataset needs scikit-learn (or pass an MNIST .npz)", "digits"
    )
    digits = datasets.load_digits()
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
        raise ValueError(
            f"{path}: x_train and x_test images differ in size: "
            f"{arrays['x_train'].shape[1:]} vs {arrays['x_test'].shape[1:]}"
        )
    return arrays


def _image_scale(images: np.ndarray) -> float:
    """Factor mapping stored pixel values to ``[0, 1]``: 1/255 for uint8, else 1/max (1 if the max is <= 1)."""
    if images.dtype == np.uint8:
        return 1.0 / 255.0
    peak = float(np.max(images)) if images.size else 1.0
    return 1.0 / peak if peak > 1.0 else 1.0


def digits_split(
    labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: sorted ``(train_idx, test_idx)``.

    For each class in ascending order, its indices are permuted by one
    ``np.random.default_rng(seed)`` and the first ``round(test_fraction * n_class)``
    go to the test set.

    Parameters
    ----------
    labels : (N,) array
    test_fraction : float
        In ``(0, 1)`` (``ValueError`` otherwise); default :data:`TEST_FRACTION`.
    seed : int
        Default :data:`SPLIT_SEED`.

    Returns
    -------
    train_idx, test_idx : int arrays
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

    def __init__(
        self,
        split: str,
        level: int,
        rotate: bool | str = False,
        seed: int = 0,
        mnist: str | os.PathLike | None = None,
        *,
        projection: str = "stereographic",
        extent: float = DEFAULT_EXTENT,
        jitter: float = JITTER_DEGREES,
    ) -> None:
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
            matrix = projection_matrix(
                self.image_shape, self.mesh, self.rotation(index), projection=self.projection, extent=self.extent
            )
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

    def __init__(
        self,
        split: str,
        level: int = 4,
        rotate: bool | str = False,
        seed: int = 0,
        mnist: str | os.PathLike | None = None,
        *,
        projection: str = "stereographic",
        extent: float = DEFAULT_EXTENT,
        jitter: float = JITTER_DEGREES,
        unproject: bool = False,
    ) -> None:
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
