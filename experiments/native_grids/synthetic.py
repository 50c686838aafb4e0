r"""Synthetic labelled weather evaluated analytically at any points on the sphere (no grid, no regridding).

A sample is 4 fields and a label per point, for points given as unit vectors ``(N, 3)``
(the cell centres of a native grid):

* ``psl_anomaly`` (hPa): Holland vortices (the labelled tropical cyclones and weaker,
  unlabelled mid-latitude lows) on a smooth random background;
* ``moisture`` (kg/m^2): a zonal profile (moist tropics), the cyclones' moist cores, the
  atmospheric rivers' filaments and unlabelled moist blobs;
* ``u_wind``, ``v_wind`` (m/s, east and north components): the vortices' cyclonic winds
  and the rivers' low-level jets.

Labels: 0 background, 1 tropical cyclone (the disc where the vortex's gradient wind exceeds
gale force), 2 atmospheric river (the filament's core). The events are drawn with the
building blocks of the ClimateNet generator (:mod:`meshcnn.data.climate.storms`: cyclone
centres at 6-32 degrees latitude apart from each other, the gale radius of a Holland vortex,
rivers' curving poleward paths), and every field is a closed-form function of the point,
so a sample is the same physical state on any grid: on an ICON-like and an MPAS-like grid
it differs only by where it is evaluated. Distances in km on the Earth
(:data:`meshcnn.geometry.EARTH_RADIUS_KM`).
"""

from __future__ import annotations

import numpy as np

from meshcnn.data.climate.storms import _cyclone_center, _gale_radius, _river_path
from meshcnn.geometry import EARTH_RADIUS_KM, latlon_to_xyz
from meshcnn.geometry.coords import east_north

CHANNELS = ("psl_anomaly", "moisture", "u_wind", "v_wind")
CLASSES = ("background", "tropical cyclone", "atmospheric river")
_RHO = 1.15  # air density, kg/m^3 (Holland's gradient wind)


class PointFrame:
    """The points and their east/north unit vectors (zero where undefined: at the poles)."""

    def __init__(self, points: np.ndarray) -> None:
        self.xyz = np.asarray(points, dtype=np.float64)
        east, north = east_north(self.xyz)
        self.east, self.north = np.nan_to_num(east), np.nan_to_num(north)
        self.lat = np.arcsin(np.clip(self.xyz[:, 2], -1, 1))

    def distance_km(self, center: np.ndarray) -> np.ndarray:
        """Great-circle distance to ``center``, km, ``(N,)``."""
        return np.arccos(np.clip(self.xyz @ center, -1.0, 1.0)) * EARTH_RADIUS_KM

    def components(self, vec: np.ndarray, at: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """East and north components of tangent vectors ``(M, 3)`` at the points ``at`` (default: all)."""
        return np.einsum("nk,nk->n", vec, self.east[at]), np.einsum("nk,nk->n", vec, self.north[at])


def _smooth(rng: np.random.Generator, xyz: np.ndarray, terms: int = 8) -> np.ndarray:
    """A random smooth field of order-one amplitude: plane waves of wavenumber 2-6 restricted to the sphere."""
    k = rng.normal(size=(terms, 3))
    k *= rng.uniform(2, 6, size=(terms, 1)) / np.linalg.norm(k, axis=1, keepdims=True)
    out = (rng.normal(size=terms) * np.sin(xyz @ k.T + rng.uniform(0, 2 * np.pi, terms))).sum(1)
    return out / np.sqrt(terms)


def _vortex(
    frame: PointFrame, center: np.ndarray, hemi: float, dp: float, rmax: float, bmod: float, outer: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Holland vortex: distance (km), pressure drop (Pa) and the cyclonic wind's east/north components (m/s)."""
    r = np.maximum(frame.distance_km(center), 1.0)
    x = (rmax / r) ** bmod
    taper = np.exp(-((r / outer) ** 4))
    drop = dp * (1 - np.exp(-x)) * taper
    speed = np.sqrt(bmod * dp / _RHO * x * np.exp(-x)) * taper
    p = frame.xyz
    radial = p * (p @ center)[:, None] - center
    radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-12)
    u, v = frame.components(hemi * np.cross(p, radial))  # counter-clockwise in the NH, clockwise in the SH
    return r, drop, speed * u, speed * v


def make_sample(points: np.ndarray, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One sample at ``points``.

    Parameters
    ----------
    points : ndarray, shape ``(N, 3)``
        Unit vectors.
    seed, index : int
        The sample's identity: the events depend only on them, not on the points.

    Returns
    -------
    fields : ndarray, shape ``(4, N)``, float32
        :data:`CHANNELS`, physical units (see the module docstring).
    labels : ndarray, shape ``(N,)``, int64
        Indices into :data:`CLASSES`.
    """
    frame = PointFrame(points)
    rng = np.random.default_rng([seed, index])
    n = len(frame.xyz)
    psl = 3.0 * _smooth(rng, frame.xyz)
    moisture = 45.0 * np.cos(frame.lat) ** 3 + 4.0 * _smooth(rng, frame.xyz)
    u, v = 6.0 * _smooth(rng, frame.xyz), 3.0 * _smooth(rng, frame.xyz)
    labels = np.zeros(n, dtype=np.int64)
    decl = rng.uniform(-23.44, 23.44)
    centers: list[np.ndarray] = []
    for _ in range(int(rng.integers(2, 6))):  # tropical cyclones (label 1)
        found = _cyclone_center(rng, decl, centers)
        if found is None:
            continue
        hemi, _, _, center = found
        centers.append(center)
        dp, rmax, bmod = rng.uniform(2000, 7000), rng.uniform(80, 150), rng.uniform(1.2, 1.8)
        r, drop, du, dv = _vortex(frame, center, hemi, dp, rmax, bmod, 1200.0)
        r_label = _gale_radius(dp, rmax, bmod)
        psl -= drop / 100.0
        u, v = u + du, v + dv
        moisture += rng.uniform(15, 30) * np.exp(-((r / (0.8 * r_label)) ** 2))
        labels[r < r_label] = 1
    for _ in range(int(rng.integers(2, 5))):  # mid-latitude lows: unlabelled distractors
        hemi = rng.choice([-1.0, 1.0])
        center = latlon_to_xyz(np.deg2rad(hemi * rng.uniform(38, 68)), rng.uniform(-np.pi, np.pi))
        r, drop, du, dv = _vortex(frame, center, hemi, rng.uniform(800, 2500), rng.uniform(300, 600), 1.0, 1800.0)
        psl -= drop / 100.0
        u, v = u + 0.6 * du, v + 0.6 * dv
        moisture += rng.uniform(2, 8) * np.exp(-((r / 900.0) ** 2))
    for _ in range(int(rng.integers(2, 6))):  # atmospheric rivers (label 2)
        hemi = rng.choice([-1.0, 1.0])
        length, half_width = rng.uniform(2500, 7000), rng.uniform(250, 450)
        path, tangents = _river_path(
            rng, hemi, np.deg2rad(hemi * rng.uniform(15, 32)), rng.uniform(-np.pi, np.pi), length
        )
        reach = np.cos((length / 2 + 2 * half_width) / EARTH_RADIUS_KM)
        near = np.flatnonzero(frame.xyz @ path[len(path) // 2] > reach)
        cos_d = frame.xyz[near] @ path.T
        nearest = np.argmax(cos_d, axis=1)
        s = np.linspace(0, 1, len(path))[nearest]
        dist = np.arccos(np.clip(cos_d[np.arange(len(near)), nearest], -1, 1)) * EARTH_RADIUS_KM
        shape = np.sqrt(np.clip(np.sin(np.pi * s), 0, 1))
        rel = dist / (half_width * shape + 1e-3)
        profile = np.exp(-(rel**2) * np.log(2) * 1.5) * shape
        moisture[near] += rng.uniform(15, 30) * profile
        du, dv = frame.components(tangents[nearest], near)
        jet = rng.uniform(10, 20) * profile
        u[near] += jet * du
        v[near] += jet * dv
        core = (rel < 1.0) & (s > 0.02) & (s < 0.98) & (labels[near] == 0)
        labels[near[core]] = 2
    for _ in range(int(rng.integers(2, 6))):  # moist convective blobs near the equator: unlabelled distractors
        center = latlon_to_xyz(np.deg2rad(rng.normal(0.3 * decl, 7)), rng.uniform(-np.pi, np.pi))
        moisture += rng.uniform(8, 20) * np.exp(-((frame.distance_km(center) / rng.uniform(300, 700)) ** 2))
    return np.stack([psl, moisture, u, v]).astype(np.float32), labels
