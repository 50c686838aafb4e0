r"""The synthetic background weather: zonal means, Rossby waves, unlabeled distractors.

A sample (:func:`meshcnn.data.climate.sample.synthesize_sample`) is built in steps, each a
function of the sample state (:class:`_Sample`): seasonal zonal means and Rossby waves
(:func:`_background`, :func:`_rossby_waves`), unlabeled distractors (extratropical cyclones,
convective clusters, here), the labelled events (:mod:`.storms`), then the derived fields.
The random stream is consumed in this fixed order.

Units are CAM5's (K, Pa, m, m/s, kg/m^2, kg/kg); latitude/longitude in degrees in
files, radians inside.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...geometry.coords import EARTH_RADIUS_KM, latlon_to_xyz
from ...grids import LatLonGrid

__all__: list[str] = []  # private building blocks of .sample and .storms

_OMEGA = 7.292e-5  # Earth's rotation rate, 1/s
_G = 9.81  # m/s^2
_RHO = 1.15  # near-surface air density, kg/m^3
_RD = 287.0  # dry-air gas constant, J/(kg K)


def _smooth_field(rng: np.random.Generator, grid: LatLonGrid, terms: int = 12, max_m: int = 10) -> np.ndarray:
    """A random smooth field of unit-order amplitude: sum of products of zonal and meridional waves
    that are continuous across the poles (meridional factor built from ``cos(lat)`` powers)."""
    out = np.zeros(grid.shape)
    for _ in range(terms):
        m = int(rng.integers(0, max_m + 1))
        n = int(rng.integers(1, max_m + 1))
        phase, phase2 = rng.uniform(0, 2 * np.pi, 2)
        amp = rng.normal() / np.sqrt(terms) / (1 + 0.2 * (m + n))
        lat, lon = grid.lat_rad, grid.lon_rad
        out += amp * np.cos(lat) ** min(m, 4) * np.cos(m * lon + phase) * np.cos(n * lat + phase2)
    return out / max(np.abs(out).max(), 1e-12)


def _ddx_ddy(field: np.ndarray, grid: LatLonGrid) -> tuple[np.ndarray, np.ndarray]:
    """Eastward and northward derivatives (per metre) by centred differences, periodic in longitude."""
    dlon = np.deg2rad(grid.lon[1] - grid.lon[0])
    radius = EARTH_RADIUS_KM * 1000.0
    dx = (np.roll(field, -1, 1) - np.roll(field, 1, 1)) / (2 * dlon * radius * np.maximum(np.cos(grid.lat_rad), 1e-3))
    dy = np.gradient(field, np.deg2rad(grid.lat) * radius, axis=0)
    return dx, dy


def _sat_humidity(temp_k: np.ndarray, pressure_pa: np.ndarray) -> np.ndarray:
    """Saturation specific humidity (Bolton 1980), kg/kg."""
    es = 611.2 * np.exp(17.67 * (temp_k - 273.15) / (temp_k - 29.65))
    return 0.622 * es / np.maximum(pressure_pa - 0.378 * es, 1.0)


def _orography(seed: int, grid: LatLonGrid) -> np.ndarray:
    """Fixed surface height (m) of the synthetic world: a few Gaussian mountain ranges, same for all samples."""
    rng = np.random.default_rng([seed, 7919])
    z = np.zeros(grid.shape)
    for _ in range(6):
        center = latlon_to_xyz(np.arcsin(rng.uniform(-0.8, 0.9)), rng.uniform(-np.pi, np.pi))
        d = grid.distance_km(center)
        z += rng.uniform(800, 3500) * np.exp(-((d / rng.uniform(400, 1200)) ** 2))
    return z


def _season(date: _dt.date) -> float:
    """Solar declination in degrees (positive in northern summer)."""
    day = date.timetuple().tm_yday
    return 23.44 * np.sin(2 * np.pi * (day - 80) / 365.25)


@dataclass
class _Sample:
    """The state of one sample while its weather systems are added: the grid, the random stream,
    the fields being built (name -> ``(nlat, nlon)`` float64), labels and the event record."""

    grid: LatLonGrid
    rng: np.random.Generator
    decl: float
    topo: np.ndarray
    fields: dict[str, np.ndarray]
    rh: np.ndarray
    labels: np.ndarray
    events: dict[str, Any]
    tmq_extra: np.ndarray = field(init=False)
    q_extra: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.tmq_extra = np.zeros(self.grid.shape)
        self.q_extra = np.zeros(self.grid.shape)

    @property
    def phi(self) -> np.ndarray:
        return self.grid.lat_rad

    @property
    def itcz(self) -> float:
        return np.deg2rad(0.3 * self.decl)


def _background(grid: LatLonGrid, rng: np.random.Generator, decl: float, topo: np.ndarray) -> dict[str, np.ndarray]:
    """Seasonal zonal means: ``TS``, ``T500``, ``T200``, ``PSL``, ``U850``, ``V850``, ``PRECT`` and ``rh``."""
    phi = grid.lat_rad
    sphi = np.sin(phi)
    abs_deg = np.abs(np.rad2deg(phi))
    itcz = np.deg2rad(0.3 * decl)
    ts = 301.0 - 48.0 * np.sin(phi - itcz) ** 2 + 8.0 * sphi * (decl / 23.44)
    ts += 2.0 * _smooth_field(rng, grid) - 0.0065 * topo
    t500 = 268.0 - 30.0 * np.sin(phi - itcz) ** 2 + 4.0 * sphi * (decl / 23.44) + 1.5 * _smooth_field(rng, grid)
    t200 = 213.0 + 9.0 * np.exp(-(((abs_deg - 50.0) / 22.0) ** 2)) + 1.0 * _smooth_field(rng, grid)
    winter = 1.0 - 0.35 * sphi * (decl / 23.44)  # stronger subpolar lows / jets in the winter hemisphere
    psl = (
        101325.0
        + 900.0 * np.exp(-(((abs_deg - 32.0) / 10.0) ** 2))
        - 1500.0 * winter * np.exp(-(((abs_deg - 62.0) / 9.0) ** 2))
        - 400.0 * np.exp(-((np.rad2deg(phi - itcz) / 8.0) ** 2))
    )
    u850 = -7.0 * np.exp(-(((abs_deg - 13.0) / 10.0) ** 2)) + 11.0 * winter * np.exp(-(((abs_deg - 46.0) / 11.0) ** 2))
    v850 = (
        -2.5 * np.sin(2 * (phi - itcz)) * np.exp(-((np.rad2deg(phi - itcz) / 25.0) ** 2))
    )  # Hadley inflow to the ITCZ
    rh = 0.78 - 0.25 * np.exp(-(((abs_deg - 25.0) / 8.0) ** 2)) + 0.08 * _smooth_field(rng, grid)
    prect = (
        4e-8
        * (0.3 + 3.0 * np.exp(-((np.rad2deg(phi - itcz) / 7.0) ** 2)) + 1.0 * np.exp(-(((abs_deg - 50.0) / 12.0) ** 2)))
        * np.exp(0.8 * _smooth_field(rng, grid))
    )
    return {"TS": ts, "T500": t500, "T200": t200, "PSL": psl, "U850": u850, "V850": v850, "PRECT": prect, "rh": rh}


def _rossby_waves(grid: LatLonGrid, rng: np.random.Generator, bg: dict[str, np.ndarray]) -> None:
    """Mid-latitude Rossby waves in geostrophic balance, added to ``bg`` in place; poleward flow
    is moist and rainy (warm conveyor belts), equatorward flow dry."""
    phi = grid.lat_rad
    sphi = np.sin(phi)
    z1000_wave = np.zeros(grid.shape)
    for hemi in (1, -1):
        jet = rng.uniform(40, 52)
        env = np.exp(-(((hemi * np.rad2deg(phi) - jet) / 12.0) ** 2)) * (hemi * phi > 0)
        for m in rng.choice(np.arange(3, 9), size=3, replace=False):
            z1000_wave += (
                env
                * rng.uniform(30, 70)
                * np.cos(m * grid.lon_rad - rng.uniform(0, 2 * np.pi) + rng.uniform(-2, 2) * phi)
            )
    f_cor = 2 * _OMEGA * np.where(sphi >= 0, 1.0, -1.0) * np.maximum(np.abs(sphi), np.sin(np.deg2rad(20.0)))
    dzdx, dzdy = _ddx_ddy(z1000_wave, grid)
    ug, vg = -_G / f_cor * dzdy, _G / f_cor * dzdx
    bg["U850"] += 1.3 * ug
    bg["V850"] += 1.3 * vg
    bg["PSL"] += _RHO * _G * z1000_wave
    bg["T500"] += 0.03 * z1000_wave
    poleward = np.tanh(vg * np.sign(sphi) / 10.0)
    bg["rh"] = np.clip(bg["rh"] + 0.12 * poleward, 0.2, 0.95)
    bg["PRECT"] *= np.exp(0.8 * poleward)


def _add_vortex(
    sample: _Sample,
    center: np.ndarray,
    hemi: float,
    dp: float,
    rmax: float,
    outer: float,
    bmod: float,
    inflow_deg: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Holland vortex: adds to PSL and winds; returns (distance km, tangential wind m/s)."""
    grid, fields = sample.grid, sample.fields
    r = np.maximum(grid.distance_km(center), 1.0)
    x = (rmax / r) ** bmod
    taper = np.exp(-((r / outer) ** 4))
    fields["PSL"] -= dp * (1 - np.exp(-x)) * taper
    vt = np.sqrt(bmod * dp / _RHO * x * np.exp(-x)) * taper
    radial, tangential = grid.vortex_directions(center)
    ue, vn = grid.tangent_components(hemi * tangential)  # cyclonic: ccw in NH, cw in SH
    re_, rn = grid.tangent_components(radial)
    fields["U850"] += 0.85 * vt * ue
    fields["V850"] += 0.85 * vt * vn
    alpha = np.deg2rad(inflow_deg)
    fields["UBOT_extra"] += vt * (np.cos(alpha) * ue - np.sin(alpha) * re_) - 0.7 * 0.85 * vt * ue
    fields["VBOT_extra"] += vt * (np.cos(alpha) * vn - np.sin(alpha) * rn) - 0.7 * 0.85 * vt * vn
    return r, vt


def _extratropical_cyclones(sample: _Sample) -> None:
    """Unlabeled distractors: 2-5 mid-latitude lows with a cold, moist, rainy core."""
    rng, fields = sample.rng, sample.fields
    n_etc = int(rng.integers(2, 6))
    for _ in range(n_etc):
        hemi = rng.choice([-1.0, 1.0])
        center = latlon_to_xyz(np.deg2rad(hemi * rng.uniform(38, 68)), rng.uniform(-np.pi, np.pi))
        r, _ = _add_vortex(sample, center, hemi, rng.uniform(800, 2500), rng.uniform(300, 600), 1800.0, 1.0, 30.0)
        blob = np.exp(-((r / 900.0) ** 2))
        fields["T500"] -= rng.uniform(1, 4) * blob
        fields["PRECT"] += rng.uniform(5e-8, 2e-7) * np.exp(-((r / 500.0) ** 2))
        sample.tmq_extra += rng.uniform(2, 6) * blob
    sample.events["extratropical_cyclones"] = n_etc


def _convective_clusters(sample: _Sample) -> None:
    """Unlabeled distractors: 2-6 moist, rainy blobs along the ITCZ."""
    rng = sample.rng
    for _ in range(int(rng.integers(2, 7))):
        center = latlon_to_xyz(np.deg2rad(np.rad2deg(sample.itcz) + rng.normal(0, 7)), rng.uniform(-np.pi, np.pi))
        r = sample.grid.distance_km(center)
        size = rng.uniform(300, 800)
        sample.tmq_extra += rng.uniform(5, 12) * np.exp(-((r / size) ** 2))
        sample.fields["PRECT"] += rng.uniform(2e-7, 8e-7) * np.exp(-((r / (0.6 * size)) ** 2))
