r"""HEALPix grids: pixel centres computed here, the grid protocol, the mesh and its hierarchy.

HEALPix (Górski et al. 2005, ApJ 622:759, "HEALPix: a framework for high-resolution
discretization and fast analysis of data distributed on the sphere") splits the sphere
into 12 base pixels, each divided into ``nside x nside`` pixels, :math:`N_{pix} = 12\,N_{side}^2`
pixels of exactly equal area :math:`4\pi / N_{pix}` steradians. Pixel centres lie on
:math:`4 N_{side} - 1` rings of constant :math:`z = \cos\theta = \sin(\mathrm{lat})`, counted
:math:`i = 1 .. 4N_{side} - 1` from the north pole:

* north polar cap, :math:`1 \le i < N_{side}`: :math:`4i` pixels,
  :math:`z = 1 - i^2 / (3 N_{side}^2)`, :math:`\phi = \frac{\pi}{2i}(j - \frac12)`, :math:`j = 1..4i`;
* equatorial belt, :math:`N_{side} \le i \le 3 N_{side}` (:math:`|z| \le 2/3`): :math:`4N_{side}` pixels,
  :math:`z = \frac43 - \frac{2i}{3N_{side}}`, :math:`\phi = \frac{\pi}{2N_{side}}(j - \frac{s}{2})`,
  :math:`s = 1` if :math:`i - N_{side}` is even and :math:`0` if it is odd (rings shifted by half a pixel in turn);
* south polar cap: the mirror image of the north cap (:math:`z \to -z`, ring :math:`4N_{side} - i`).

Two orderings of the same pixels (:math:`\phi` here is the HEALPix azimuth in
:math:`[0, 2\pi)`, east-positive from longitude 0, so ``lon`` is :math:`\phi` wrapped to
:math:`(-\pi, \pi]`; ``lat`` :math:`= \arcsin z`; points follow :mod:`meshcnn.geometry.coords`):

* **RING**: ring by ring from north to south, eastwards along each ring from
  :math:`\phi` near 0: index :math:`=` (pixels on the rings above) :math:`+ j - 1`.
* **NESTED**: ``face * nside**2 + interleave(ix, iy)`` with ``face`` the base pixel
  (0..11: 0-3 around the north pole, 4-7 on the equator, 8-11 around the south pole) and
  ``(ix, iy)`` the pixel's coordinates inside it, the bits of ``ix`` at the even and
  those of ``iy`` at the odd positions. The 4 children of pixel ``p`` of
  ``nside`` are ``4p .. 4p + 3`` of ``2 nside``: a quadtree, so restriction is a mean over 4.
  A pixel's ring is :math:`i = r_f N_{side} - ix - iy - 1` and its position along the
  ring :math:`j = (p_f\, n_r + ix - iy + 1 + k) / 2` (:math:`r_f, p_f` the base pixel's
  ring and azimuth offsets, :math:`n_r` the ring's pixels / 4, :math:`k` the belt shift), the
  conversion of the HEALPix C++ library's ``xyf2ring``.

Own code rather than ``healpy`` or ``astropy-healpix``
------------------------------------------------------
The library computes the pixel centres itself (about 60 lines of vectorised numpy:
the ring formulas above and the nested <-> ring permutation by bit de-interleaving) and
depends on neither package. Both are on PyPI (``astropy-healpix`` 2.0, BSD, brings in
``astropy`` and ``pyerfa``; ``healpy`` 1.20, GPL-2, a compiled wrapper of the HEALPix C++
library with ``cfitsio``), and each would add a heavy or GPL-licensed compiled dependency
to an MIT library for what it needs here: the 12 N^2 centres and one permutation, computed once
per grid. Our formula is checked against the analytic facts (equal-area zones, ring
latitudes, symmetry, the nested quadtree) in ``tests/grids/test_healpix.py``, and against
``astropy_healpix.healpix_to_lonlat`` where that package happens to be installed (the test
is skipped otherwise). What the packages have and this module does not: ``ang2pix`` (the
pixel containing a point), pixel boundaries, neighbours by index and spherical-harmonic
transforms; regridding here goes through the triangulated mesh of the centres instead
(:mod:`meshcnn.grids.regrid`).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from ..geometry.coords import latlon_to_xyz
from ..geometry.hierarchy import MeshHierarchy
from ..geometry.mesh import Mesh

__all__ = [
    "HealpixGrid",
    "check_nside",
    "healpix_npix",
    "healpix_ring_centres",
    "healpix_nest_to_ring",
    "healpix_ring_to_nest",
    "healpix_centres",
    "healpix_children",
]

#: Largest ``nside`` accepted (as in HEALPix: ``12 nside**2`` fits an int64 pixel index).
MAX_NSIDE = 2**29

# base pixel f: r_f, its southernmost pixel (ix = iy = 0) is on ring r_f * nside - 1, and p_f, its centre is at
# phi = p_f * pi / 4 (the tables jrll and jpll of the HEALPix C++ library)
_FACE_RING = np.array([2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4], dtype=np.int64)
_FACE_PHI = np.array([1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7], dtype=np.int64)


def check_nside(nside: int) -> int:
    """Return ``nside`` as an int, or raise ``ValueError`` unless it is a power of 2 in ``1..2**29``.

    Parameters
    ----------
    nside : int
        HEALPix resolution: each of the 12 base pixels is split into ``nside x nside``.
        Booleans are refused.
    """
    if (
        isinstance(nside, bool)
        or not isinstance(nside, (int, np.integer))
        or not 1 <= nside <= MAX_NSIDE
        or int(nside) & (int(nside) - 1)
    ):
        raise ValueError(f"nside must be a power of 2 in 1..2**29, got {nside!r}")
    return int(nside)


def healpix_npix(nside: int) -> int:
    """Number of pixels, :math:`12\\,N_{side}^2`."""
    return 12 * check_nside(nside) ** 2


def _isqrt(values: np.ndarray) -> np.ndarray:
    """Exact ``floor(sqrt(values))`` of non-negative int64 (float sqrt, then one correction each way)."""
    root = np.floor(np.sqrt(values.astype(np.float64))).astype(np.int64)
    root = np.where(root * root > values, root - 1, root)
    return np.where((root + 1) * (root + 1) <= values, root + 1, root)


def _ring_index(nside: int, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring ``i`` (1 .. 4 nside - 1, from the north pole) and 1-based position ``j`` along it of RING pixels."""
    npix = 12 * nside * nside
    ncap = 2 * nside * (nside - 1)  # pixels in one polar cap
    ring = np.empty_like(pixels)
    along = np.empty_like(pixels)
    north = pixels < ncap
    south = pixels >= npix - ncap
    belt = ~(north | south)
    p = pixels[north]  # ring i holds pixels 2i(i-1) .. 2i(i+1) - 1
    i = (1 + _isqrt(1 + 2 * p)) >> 1
    ring[north], along[north] = i, p + 1 - 2 * i * (i - 1)
    p = pixels[belt] - ncap
    i = p // (4 * nside) + nside
    ring[belt], along[belt] = i, p - (i - nside) * 4 * nside + 1
    p = npix - pixels[south]  # 1 .. ncap, counted from the last pixel
    i = (1 + _isqrt(2 * p - 1)) >> 1  # ring from the south pole
    ring[south], along[south] = 4 * nside - i, 4 * i + 1 - (p - 2 * i * (i - 1))
    return ring, along


def healpix_ring_centres(nside: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Pixel centres in RING order, by the formulas of the module docstring.

    Parameters
    ----------
    nside : int
        A power of 2.

    Returns
    -------
    z : ndarray, shape ``(12 nside**2,)``, float64
        :math:`\cos\theta = \sin(\mathrm{lat})`.
    one_minus_abs_z : ndarray, same shape
        :math:`1 - |z|`, computed without cancellation (:math:`i^2 / 3N_{side}^2` in the caps),
        for an accurate latitude near the poles.
    phi : ndarray, same shape
        Azimuth, radians in :math:`[0, 2\pi)`, east-positive from longitude 0.
    """
    nside = check_nside(nside)
    pixels = np.arange(12 * nside * nside, dtype=np.int64)
    ring, along = _ring_index(nside, pixels)
    from_pole = np.minimum(ring, 4 * nside - ring)  # ring counted from the nearer pole
    sign = np.where(ring <= 2 * nside, 1.0, -1.0)
    cap = from_pole < nside
    three_n2 = 3.0 * nside * nside
    one_minus_abs_z = np.where(
        cap, from_pole.astype(np.float64) ** 2 / three_n2, 1.0 - np.abs(4.0 / 3.0 - 2.0 * ring / (3.0 * nside))
    )
    z = np.where(cap, sign * (1.0 - one_minus_abs_z), 4.0 / 3.0 - 2.0 * ring / (3.0 * nside))
    belt_shift = np.where((ring - nside) % 2 == 0, 0.5, 1.0)  # j - 1/2 on the rings of the caps' parity
    phi = np.where(
        cap, (along - 0.5) * (np.pi / 2.0) / np.maximum(from_pole, 1), (along - belt_shift) * (np.pi / (2.0 * nside))
    )
    return z, one_minus_abs_z, phi


def _deinterleave(bits: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ix, iy)``: the even and the odd bits of ``bits`` (``order`` of each)."""
    ix = np.zeros_like(bits)
    iy = np.zeros_like(bits)
    for b in range(order):
        ix |= ((bits >> (2 * b)) & 1) << b
        iy |= ((bits >> (2 * b + 1)) & 1) << b
    return ix, iy


@functools.lru_cache(maxsize=8)
def _nest_to_ring(nside: int) -> np.ndarray:
    order = nside.bit_length() - 1
    pixels = np.arange(12 * nside * nside, dtype=np.int64)
    face = pixels >> (2 * order)
    ix, iy = _deinterleave(pixels & (nside * nside - 1), order)
    ring = _FACE_RING[face] * nside - ix - iy - 1
    npix, ncap, nl4 = 12 * nside * nside, 2 * nside * (nside - 1), 4 * nside
    north, south = ring < nside, ring > 3 * nside
    per_quarter = np.where(north, ring, np.where(south, nl4 - ring, nside))  # pixels on the ring / 4
    before = np.where(
        north,
        2 * ring * (ring - 1),
        np.where(south, npix - 2 * per_quarter * (per_quarter + 1), ncap + (ring - nside) * nl4),
    )
    shift = np.where(north | south, 0, (ring - nside) & 1)
    along = (_FACE_PHI[face] * per_quarter + ix - iy + 1 + shift) // 2
    along = np.where(along > 4 * per_quarter, along - 4 * per_quarter, along)
    along = np.where(along < 1, along + 4 * per_quarter, along)
    out = before + along - 1
    out.setflags(write=False)
    return out


def healpix_nest_to_ring(nside: int) -> np.ndarray:
    """The RING index of each NESTED pixel: ``ring_values[nest_to_ring] == nest_values``.

    Parameters
    ----------
    nside : int
        A power of 2.

    Returns
    -------
    ndarray, shape ``(12 nside**2,)``, int64
        A permutation of ``0 .. 12 nside**2 - 1``.
    """
    return _nest_to_ring(check_nside(nside)).copy()


def healpix_ring_to_nest(nside: int) -> np.ndarray:
    """The NESTED index of each RING pixel, the inverse permutation of :func:`healpix_nest_to_ring`."""
    nest_to_ring = _nest_to_ring(check_nside(nside))
    out = np.empty_like(nest_to_ring)
    out[nest_to_ring] = np.arange(len(nest_to_ring))
    return out


def healpix_centres(nside: int, nest: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of the pixel centres.

    Parameters
    ----------
    nside : int
        A power of 2 (``ValueError`` otherwise).
    nest : bool
        NESTED order (default) or RING order.

    Returns
    -------
    lat, lon : ndarray, shape ``(12 nside**2,)``, float64
        **Radians**: ``lat`` in :math:`(-\\pi/2, \\pi/2)`, ``lon`` in :math:`(-\\pi, \\pi]`
        (:mod:`meshcnn.geometry.coords`).
    """
    z, one_minus_abs_z, phi = healpix_ring_centres(nside)
    sin_theta = np.sqrt(one_minus_abs_z * (1.0 + np.abs(z)))  # sqrt(1 - z^2), accurate near the poles
    lat = np.arctan2(z, sin_theta)
    lon = np.where(phi > np.pi, phi - 2.0 * np.pi, phi)
    if nest:
        order = _nest_to_ring(check_nside(nside))
        lat, lon = lat[order], lon[order]
    return lat, lon


def healpix_children(pixels: np.ndarray | int) -> np.ndarray:
    """NESTED indices of the 4 children (at ``2 nside``) of NESTED pixels: ``4p .. 4p + 3``.

    Parameters
    ----------
    pixels : int or array_like of int, shape ``S``

    Returns
    -------
    ndarray, shape ``S + (4,)``, int64
    """
    pixels = np.asarray(pixels, dtype=np.int64)
    return 4 * pixels[..., None] + np.arange(4, dtype=np.int64)


class HealpixGrid:
    r"""A HEALPix grid (:class:`~meshcnn.grids.base.Grid`): ``12 nside**2`` equal-area pixels.

    Parameters
    ----------
    nside : int
        A power of 2 (``ValueError`` otherwise).
    nest : bool
        NESTED (default) or RING pixel order; a field's values are in this order.

    Notes
    -----
    Cell areas are exactly :math:`4\pi / (12 N_{side}^2)`; :attr:`mesh` triangulates the
    pixel centres (for the layers and the regridders); :meth:`hierarchy` is the
    quadtree of the NESTED scheme.
    """

    def __init__(self, nside: int, nest: bool = True) -> None:
        self.nside = check_nside(nside)
        self.nest = bool(nest)

    def __repr__(self) -> str:
        return f"HealpixGrid(nside={self.nside}, nest={self.nest})"

    @property
    def npix(self) -> int:
        """:math:`12\\,N_{side}^2`."""
        return 12 * self.nside * self.nside

    @property
    def shape(self) -> tuple[int]:
        """``(12 nside**2,)``."""
        return (self.npix,)

    @property
    def name(self) -> str:
        """``"healpix{nside}n"`` (NESTED) or ``"healpix{nside}r"`` (RING): the name of :attr:`mesh`."""
        return f"healpix{self.nside}{'n' if self.nest else 'r'}"

    @functools.cached_property
    def _latlon(self) -> tuple[np.ndarray, np.ndarray]:
        lat, lon = healpix_centres(self.nside, self.nest)
        lat.setflags(write=False)
        lon.setflags(write=False)
        return lat, lon

    @property
    def lat(self) -> np.ndarray:
        """Latitude of each pixel centre, **degrees**, ``(npix,)``."""
        return np.rad2deg(self._latlon[0])

    @property
    def lon(self) -> np.ndarray:
        """Longitude of each pixel centre, **degrees** in ``(-180, 180]``, ``(npix,)``."""
        return np.rad2deg(self._latlon[1])

    def points(self) -> np.ndarray:
        """Unit vectors of the pixel centres, ``(npix, 3)``, in the grid's order."""
        return latlon_to_xyz(*self._latlon)

    @property
    def pixel_area(self) -> float:
        """:math:`4\\pi / (12\\,N_{side}^2)`, steradians."""
        return 4.0 * np.pi / self.npix

    def cell_areas(self) -> np.ndarray:
        """The pixel areas, all :attr:`pixel_area`, ``(npix,)``, summing to :math:`4\\pi`."""
        return np.full(self.npix, self.pixel_area)

    @property
    def cell_weights(self) -> np.ndarray:
        """``1 / npix`` for every pixel, ``(npix,)``."""
        return np.full(self.npix, 1.0 / self.npix)

    def nest_to_ring(self) -> np.ndarray:
        """RING index of each NESTED pixel (:func:`healpix_nest_to_ring`)."""
        return healpix_nest_to_ring(self.nside)

    @functools.cached_property
    def mesh(self) -> Mesh:
        """The Delaunay triangulation of the pixel centres
        (:meth:`Mesh.from_points <meshcnn.geometry.Mesh.from_points>`), named :attr:`name`; vertex ``k``
        is pixel ``k`` of the grid's order. Built once per instance, with ``polar_symmetry=4``: the
        pixel centres are invariant under quarter turns about the polar axis, but cocircular
        centres (the four around each pole, for one) leave the triangulation choices that break
        that symmetry, so the operators are averaged over the quarter turns and every layer on
        the mesh is exactly equivariant to them. Its lumped ``vertex_areas`` are close to (not
        equal to) the exact pixel area; the grid's :meth:`cell_areas` stay the exact ones."""
        return Mesh.from_points(self.points(), name=self.name, polar_symmetry=4)

    def restriction(self) -> sp.csr_matrix:
        """``(npix / 4, npix)`` fine -> coarse (``nside / 2``, same order) mean over the 4 children.

        Exact for the pixels' area integrals: the children tile the parent in 4 equal areas.
        ``ValueError`` at ``nside = 1``.
        """
        if self.nside == 1:
            raise ValueError("nside = 1 has no coarser HEALPix grid")
        coarse_nside = self.nside // 2
        n_coarse = 12 * coarse_nside * coarse_nside
        parents_nest = np.repeat(np.arange(n_coarse, dtype=np.int64), 4)  # parent of nested child 4p + k
        children_nest = np.arange(self.npix, dtype=np.int64)
        if self.nest:
            rows, cols = parents_nest, children_nest
        else:
            rows = healpix_nest_to_ring(coarse_nside)[parents_nest]
            cols = healpix_nest_to_ring(self.nside)[children_nest]
        return sp.csr_matrix((np.full(self.npix, 0.25), (rows, cols)), shape=(n_coarse, self.npix))

    def hierarchy(self, min_nside: int = 1) -> MeshHierarchy:
        """The :class:`~meshcnn.geometry.MeshHierarchy` ``nside, nside / 2, ..., min_nside``.

        Meshes are the :attr:`mesh` of each grid (same ``nest`` ordering); restrictions the
        exact means over the 4 nested children (:meth:`restriction`, rows sum to 1);
        prolongations left to :class:`~meshcnn.geometry.MeshHierarchy` (barycentric
        interpolation of the fine centres in the coarse mesh). The grids are not nested as
        point sets (``nested=False``): a parent's centre is not one of its children's.
        RING order gives the same hierarchy with every level's vertices in RING order.

        Parameters
        ----------
        min_nside : int
            The coarsest level, a power of 2 within ``1 .. nside`` (default 1: the 12 base pixels,
            a valid mesh of 20 triangles; there is no minimum beyond that).
        """
        min_nside = check_nside(min_nside)
        if min_nside > self.nside:
            raise ValueError(f"min_nside={min_nside} is above nside={self.nside}")
        grids = [self]
        while grids[-1].nside > min_nside:
            grids.append(HealpixGrid(grids[-1].nside // 2, self.nest))
        return MeshHierarchy(
            [g.mesh for g in grids],
            restrictions=[g.restriction() for g in grids[:-1]],
            prolongations=None,
            name=f"{self.name}-{min_nside}",
        )
