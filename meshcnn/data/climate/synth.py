r"""Synthetic ClimateNet data: physically plausible fields with labels from the generating process.

The real ClimateNet data (CAM5 0.25-degree runs, tens of GB) cannot be downloaded
everywhere; this module writes files in exactly its netCDF layout so the whole
pipeline (:mod:`meshcnn.data.climate`, the climate segmentation experiment) runs
end to end on them, and measures that they look like what they claim
(:func:`verify_synthetic`). Use it through ``python -m meshcnn.data.climate synth``.

Units are CAM5's (K, Pa, m, m/s, kg/m^2, kg/kg); latitude/longitude in degrees in
files, radians inside.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..._progress import progress_bar
from ...io import atomic_write, save_json
from ...geometry.mesh import EARTH_RADIUS_KM
from .reader import (NUM_CLASSES, UNITS, VARIABLES, ClimateFileError, _add_checksum_trailer, _netcdf4, read_latlon,
                      synth_listed_files)

__all__ = ["synthesize_sample", "write_climatenet", "default_grid", "generate_synthetic", "remove_synthetic",
           "verify_synthetic"]

_OMEGA = 7.292e-5      # Earth's rotation rate, 1/s
_G = 9.81              # m/s^2
_RHO = 1.15            # near-surface air density, kg/m^3
_RD = 287.0            # dry-air gas constant, J/(kg K)
_KM_PER_RAD = EARTH_RADIUS_KM


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Unit vectors ``(..., 3)`` of latitude/longitude in radians."""
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


class _Grid:
    """Precomputed geometry of a lat-lon grid (radians)."""

    def __init__(self, lat_deg: np.ndarray, lon_deg: np.ndarray) -> None:
        self.lat_deg, self.lon_deg = lat_deg, lon_deg
        self.lat, self.lon = np.meshgrid(np.deg2rad(lat_deg), np.deg2rad(lon_deg), indexing="ij")
        self.xyz = _unit(self.lat, self.lon)
        self.east = np.stack([-np.sin(self.lon), np.cos(self.lon), np.zeros_like(self.lon)], -1)
        self.north = np.stack([-np.sin(self.lat) * np.cos(self.lon), -np.sin(self.lat) * np.sin(self.lon),
                               np.cos(self.lat)], -1)
        self.shape = self.lat.shape

    def distance_km(self, center: np.ndarray) -> np.ndarray:
        """Great-circle distance from a unit vector ``center`` to every grid point, km."""
        return np.arccos(np.clip(self.xyz @ center, -1.0, 1.0)) * _KM_PER_RAD

    def tangent_components(self, vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Eastward and northward components of a 3-D vector field ``(..., 3)``."""
        return np.einsum("...k,...k->...", vec, self.east), np.einsum("...k,...k->...", vec, self.north)

    def vortex_directions(self, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit outward radial ``a`` and counter-clockwise tangential ``p x a`` vectors around ``center``."""
        p = self.xyz
        a = p * (p @ center)[..., None] - center
        a /= np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
        return a, np.cross(p, a)


def _smooth_field(rng: np.random.Generator, grid: _Grid, terms: int = 12, max_m: int = 10) -> np.ndarray:
    """A random smooth field of unit-order amplitude: sum of products of zonal and meridional waves
    that are continuous across the poles (meridional factor built from ``cos(lat)`` powers)."""
    out = np.zeros(grid.shape)
    for _ in range(terms):
        m = int(rng.integers(0, max_m + 1))
        n = int(rng.integers(1, max_m + 1))
        phase, phase2 = rng.uniform(0, 2 * np.pi, 2)
        amp = rng.normal() / np.sqrt(terms) / (1 + 0.2 * (m + n))
        out += amp * np.cos(grid.lat) ** min(m, 4) * np.cos(m * grid.lon + phase) * np.cos(n * grid.lat + phase2)
    return out / max(np.abs(out).max(), 1e-12)


def _ddx_ddy(field: np.ndarray, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """Eastward and northward derivatives (per metre) by centred differences, periodic in longitude."""
    dlon = np.deg2rad(grid.lon_deg[1] - grid.lon_deg[0])
    radius = _KM_PER_RAD * 1000.0
    dx = (np.roll(field, -1, 1) - np.roll(field, 1, 1)) / (2 * dlon * radius * np.maximum(np.cos(grid.lat), 1e-3))
    dy = np.gradient(field, np.deg2rad(grid.lat_deg) * radius, axis=0)
    return dx, dy


def _sat_humidity(temp_k: np.ndarray, pressure_pa: np.ndarray) -> np.ndarray:
    """Saturation specific humidity (Bolton 1980), kg/kg."""
    es = 611.2 * np.exp(17.67 * (temp_k - 273.15) / (temp_k - 29.65))
    return 0.622 * es / np.maximum(pressure_pa - 0.378 * es, 1.0)


def _orography(seed: int, grid: _Grid) -> np.ndarray:
    """Fixed surface height (m) of the synthetic world: a few Gaussian mountain ranges, same for all samples."""
    rng = np.random.default_rng([seed, 7919])
    z = np.zeros(grid.shape)
    for _ in range(6):
        center = _unit(np.arcsin(rng.uniform(-0.8, 0.9)), rng.uniform(-np.pi, np.pi))
        d = grid.distance_km(center)
        z += rng.uniform(800, 3500) * np.exp(-(d / rng.uniform(400, 1200)) ** 2)
    return z


def _season(date: _dt.date) -> float:
    """Solar declination in degrees (positive in northern summer)."""
    day = date.timetuple().tm_yday
    return 23.44 * np.sin(2 * np.pi * (day - 80) / 365.25)


def synthesize_sample(seed: int, index: int, lat: np.ndarray, lon: np.ndarray,
                      date: _dt.date | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    r"""One synthetic ClimateNet time step, deterministic in ``(seed, index)``.

    Background: zonal means that depend on the season (surface temperature falling
    poleward from ~301 K, precipitable water following Clausius-Clapeyron, trade
    winds and mid-latitude westerlies, subtropical highs and subpolar lows around
    1013 hPa), fixed orography (``PS`` < ``PSL`` over mountains), mid-latitude
    Rossby waves in geostrophic balance and unlabeled extratropical cyclones and
    tropical convective clusters as distractors.

    Tropical cyclones (label 1): warm-core Holland vortices (central pressure drop
    15-70 hPa, radius of maximum wind 60-150 km) centred at 6-32 degrees latitude,
    counter-clockwise in the northern hemisphere and clockwise in the southern,
    with surface inflow, high TMQ/QREFHT/PRECT. The label is the disc where the
    gradient wind exceeds gale force (17 m/s), clipped to 250-700 km.

    Atmospheric rivers (label 2): moisture filaments 2500-8000 km long and
    400-900 km wide that start in the subtropics (15-32 degrees) and run poleward
    and eastward along a gently curving path, some into polar latitudes, with a
    low-level jet along the axis. The label is the filament's tapered core.

    Returns ``fields`` (name -> float32 ``(nlat, nlon)``), ``labels`` int64
    ``(nlat, nlon)`` and ``events`` (JSON-able description of the TCs and ARs).
    """
    rng = np.random.default_rng([seed, index])
    grid = _Grid(np.asarray(lat, np.float64), np.asarray(lon, np.float64))
    date = date or (_dt.date(2000, 1, 1) + _dt.timedelta(days=2 * index))
    decl = _season(date)
    phi = grid.lat
    sphi = np.sin(phi)
    abs_deg = np.abs(np.rad2deg(phi))
    itcz = np.deg2rad(0.3 * decl)
    topo = _orography(seed, grid)

    # ---- zonal-mean background ---------------------------------------------------------------
    ts = 301.0 - 48.0 * np.sin(phi - itcz) ** 2 + 8.0 * sphi * (decl / 23.44)
    ts += 2.0 * _smooth_field(rng, grid) - 0.0065 * topo
    t500 = 268.0 - 30.0 * np.sin(phi - itcz) ** 2 + 4.0 * sphi * (decl / 23.44) + 1.5 * _smooth_field(rng, grid)
    t200 = 213.0 + 9.0 * np.exp(-((abs_deg - 50.0) / 22.0) ** 2) + 1.0 * _smooth_field(rng, grid)
    winter = 1.0 - 0.35 * sphi * (decl / 23.44)  # stronger subpolar lows / jets in the winter hemisphere
    psl = (101325.0 + 900.0 * np.exp(-((abs_deg - 32.0) / 10.0) ** 2)
           - 1500.0 * winter * np.exp(-((abs_deg - 62.0) / 9.0) ** 2) - 400.0 * np.exp(-(np.rad2deg(phi - itcz) / 8.0) ** 2))
    u850 = (-7.0 * np.exp(-((abs_deg - 13.0) / 10.0) ** 2) + 11.0 * winter * np.exp(-((abs_deg - 46.0) / 11.0) ** 2))
    v850 = -2.5 * np.sin(2 * (phi - itcz)) * np.exp(-(np.rad2deg(phi - itcz) / 25.0) ** 2)  # Hadley inflow to the ITCZ
    rh = 0.78 - 0.25 * np.exp(-((abs_deg - 25.0) / 8.0) ** 2) + 0.08 * _smooth_field(rng, grid)
    prect = 4e-8 * (0.3 + 3.0 * np.exp(-(np.rad2deg(phi - itcz) / 7.0) ** 2)
                    + 1.0 * np.exp(-((abs_deg - 50.0) / 12.0) ** 2)) * np.exp(0.8 * _smooth_field(rng, grid))

    # ---- mid-latitude Rossby waves, geostrophic ---------------------------------------------
    z1000_wave = np.zeros(grid.shape)
    for hemi in (1, -1):
        jet = rng.uniform(40, 52)
        env = np.exp(-((hemi * np.rad2deg(phi) - jet) / 12.0) ** 2) * (hemi * phi > 0)
        for m in rng.choice(np.arange(3, 9), size=3, replace=False):
            z1000_wave += env * rng.uniform(30, 70) * np.cos(m * grid.lon - rng.uniform(0, 2 * np.pi)
                                                             + rng.uniform(-2, 2) * phi)
    f_cor = 2 * _OMEGA * np.where(sphi >= 0, 1.0, -1.0) * np.maximum(np.abs(sphi), np.sin(np.deg2rad(20.0)))
    dzdx, dzdy = _ddx_ddy(z1000_wave, grid)
    ug, vg = -_G / f_cor * dzdy, _G / f_cor * dzdx
    u850 += 1.3 * ug
    v850 += 1.3 * vg
    psl += _RHO * _G * z1000_wave
    t500 += 0.03 * z1000_wave
    # poleward flow is moist and rainy (warm conveyor belts), equatorward flow is dry
    poleward = np.tanh(vg * np.sign(sphi) / 10.0)
    rh = np.clip(rh + 0.12 * poleward, 0.2, 0.95)
    prect *= np.exp(0.8 * poleward)

    fields = {
        "TS": ts, "T500": t500, "T200": t200, "PSL": psl, "U850": u850, "V850": v850,
        "PRECT": prect, "TMQ": np.zeros(grid.shape), "QREFHT": np.zeros(grid.shape),
        "Z200_anom": np.zeros(grid.shape), "UBOT_extra": np.zeros(grid.shape), "VBOT_extra": np.zeros(grid.shape),
    }
    tmq_extra = np.zeros(grid.shape)
    q_extra = np.zeros(grid.shape)
    labels = np.zeros(grid.shape, dtype=np.int64)
    events: dict[str, Any] = {"date": date.isoformat(), "declination_deg": round(float(decl), 3),
                              "tropical_cyclones": [], "atmospheric_rivers": [], "extratropical_cyclones": 0}

    def add_vortex(center: np.ndarray, hemi: float, dp: float, rmax: float, outer: float, bmod: float,
                   inflow_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """Holland vortex: adds to PSL and winds; returns (distance km, tangential wind m/s)."""
        r = np.maximum(grid.distance_km(center), 1.0)
        x = (rmax / r) ** bmod
        taper = np.exp(-(r / outer) ** 4)
        fields["PSL"] -= dp * (1 - np.exp(-x)) * taper
        vt = np.sqrt(bmod * dp / _RHO * x * np.exp(-x)) * taper
        radial, tangential = grid.vortex_directions(center)
        ue, vn = grid.tangent_components(hemi * tangential)   # cyclonic: ccw in NH, cw in SH
        re_, rn = grid.tangent_components(radial)
        fields["U850"] += 0.85 * vt * ue
        fields["V850"] += 0.85 * vt * vn
        alpha = np.deg2rad(inflow_deg)
        fields["UBOT_extra"] += vt * (np.cos(alpha) * ue - np.sin(alpha) * re_) - 0.7 * 0.85 * vt * ue
        fields["VBOT_extra"] += vt * (np.cos(alpha) * vn - np.sin(alpha) * rn) - 0.7 * 0.85 * vt * vn
        return r, vt

    # ---- extratropical cyclones (unlabeled distractors) --------------------------------------
    n_etc = int(rng.integers(2, 6))
    for _ in range(n_etc):
        hemi = rng.choice([-1.0, 1.0])
        center = _unit(np.deg2rad(hemi * rng.uniform(38, 68)), rng.uniform(-np.pi, np.pi))
        r, _ = add_vortex(center, hemi, rng.uniform(800, 2500), rng.uniform(300, 600), 1800.0, 1.0, 30.0)
        blob = np.exp(-(r / 900.0) ** 2)
        fields["T500"] -= rng.uniform(1, 4) * blob
        fields["PRECT"] += rng.uniform(5e-8, 2e-7) * np.exp(-(r / 500.0) ** 2)
        tmq_extra += rng.uniform(2, 6) * blob
    events["extratropical_cyclones"] = n_etc

    # ---- tropical convective clusters (unlabeled distractors) --------------------------------
    for _ in range(int(rng.integers(2, 7))):
        center = _unit(np.deg2rad(np.rad2deg(itcz) + rng.normal(0, 7)), rng.uniform(-np.pi, np.pi))
        r = grid.distance_km(center)
        size = rng.uniform(300, 800)
        tmq_extra += rng.uniform(5, 12) * np.exp(-(r / size) ** 2)
        fields["PRECT"] += rng.uniform(2e-7, 8e-7) * np.exp(-(r / (0.6 * size)) ** 2)

    # ---- atmospheric rivers (label 2) ---------------------------------------------------------
    n_ar = int(min(8, 2 + rng.poisson(2.5)))
    for _ in range(n_ar):
        hemi = 1.0 if rng.uniform() < 0.5 + 0.15 * (-decl / 23.44) else -1.0  # more in the winter hemisphere
        lat0 = np.deg2rad(hemi * rng.uniform(15, 32))
        lon0 = rng.uniform(-np.pi, np.pi)
        length = rng.uniform(2500, 8000)
        half_width = rng.uniform(200, 450)
        # bearing measured from north, clockwise: north-east in the NH, south-east in the SH
        bearing = np.deg2rad(rng.uniform(25, 65)) if hemi > 0 else np.deg2rad(rng.uniform(115, 155))
        turn = rng.normal(0, 0.25) / 1000.0  # rad per km of path
        step = 40.0
        pts, tangents = [], []
        p = _unit(lat0, lon0)
        for _k in range(int(length / step) + 1):
            lat_p, lon_p = np.arcsin(np.clip(p[2], -1, 1)), np.arctan2(p[1], p[0])
            east = np.array([-np.sin(lon_p), np.cos(lon_p), 0.0])
            north = np.array([-np.sin(lat_p) * np.cos(lon_p), -np.sin(lat_p) * np.sin(lon_p), np.cos(lat_p)])
            t = np.sin(bearing) * east + np.cos(bearing) * north
            pts.append(p)
            tangents.append(t)
            ang = step / _KM_PER_RAD
            p = np.cos(ang) * p + np.sin(ang) * t
            p /= np.linalg.norm(p)
            # turn gently, bend eastward at high latitudes (they wrap around the lows), and keep
            # heading poleward: bearing within 10-85 degrees (NH) or 95-170 degrees (SH)
            bearing += turn * step + hemi * 0.15 * step / 1000.0 * max(0.0, abs(np.rad2deg(lat_p)) - 45) / 20
            bearing = float(np.clip(bearing, *(np.deg2rad([10.0, 85.0]) if hemi > 0 else np.deg2rad([95.0, 170.0]))))
        pts_a, tan_a = np.array(pts), np.array(tangents)
        s = np.linspace(0, 1, len(pts_a))
        width_along = half_width * np.sqrt(np.clip(np.sin(np.pi * s), 0, 1)) + 1e-3
        mid = pts_a[len(pts_a) // 2]
        near = grid.xyz @ mid > np.cos((length / 2 + 2 * half_width) / _KM_PER_RAD)
        idx = np.nonzero(near)
        cos_d = grid.xyz[idx] @ pts_a.T                               # (N, P)
        nearest = np.argmax(cos_d, axis=1)
        dist = np.arccos(np.clip(cos_d[np.arange(len(nearest)), nearest], -1, 1)) * _KM_PER_RAD
        rel = dist / width_along[nearest]
        profile = np.exp(-rel**2 * np.log(2) * 1.5) * np.sqrt(np.clip(np.sin(np.pi * s[nearest]), 0, 1))
        amp = rng.uniform(15, 30)
        moisture = np.zeros(grid.shape)
        moisture[idx] = profile
        tmq_extra += amp * moisture
        q_extra += 0.004 * moisture
        fields["PRECT"] += rng.uniform(1e-7, 5e-7) * moisture
        fields["T500"] += 1.5 * moisture
        jet = rng.uniform(10, 20) * profile
        axis = tan_a[nearest]                                         # (N, 3) path direction
        fields["U850"][idx] += jet * np.einsum("nk,nk->n", axis, grid.east[idx])
        fields["V850"][idx] += jet * np.einsum("nk,nk->n", axis, grid.north[idx])
        core = np.zeros(grid.shape, dtype=bool)
        core[idx] = (rel < 1.0) & (s[nearest] > 0.02) & (s[nearest] < 0.98)
        labels[core & (labels == 0)] = 2
        lats_path = np.rad2deg(np.arcsin(np.clip(pts_a[:, 2], -1, 1)))
        events["atmospheric_rivers"].append({
            "start_lat": round(float(lats_path[0]), 2), "end_lat": round(float(lats_path[-1]), 2),
            "max_abs_lat": round(float(np.abs(lats_path).max()), 2), "length_km": round(float(length), 1),
            "width_km": round(float(2 * half_width), 1)})

    # ---- tropical cyclones (label 1) ----------------------------------------------------------
    n_tc = int(min(6, rng.poisson(2.0)))
    centers: list[np.ndarray] = []
    for _ in range(n_tc):
        for _try in range(20):
            hemi = 1.0 if rng.uniform() < 0.5 + 0.35 * decl / 23.44 else -1.0  # summer hemisphere
            lat_c, lon_c = hemi * rng.uniform(6, 32), rng.uniform(-np.pi, np.pi)
            center = _unit(np.deg2rad(lat_c), lon_c)
            if all(np.arccos(np.clip(center @ c, -1, 1)) * _KM_PER_RAD > 1800 for c in centers):
                break
        else:
            continue
        centers.append(center)
        dp, rmax, bmod = rng.uniform(1500, 7000), rng.uniform(60, 150), rng.uniform(1.2, 1.8)
        r, vt = add_vortex(center, hemi, dp, rmax, 1200.0, bmod, 20.0)
        # label radius: where the gradient wind falls to gale force (17 m/s)
        radii = np.linspace(rmax, 1500, 2000)
        xr_ = (rmax / radii) ** bmod
        v_prof = np.sqrt(bmod * dp / _RHO * xr_ * np.exp(-xr_)) * np.exp(-(radii / 1200.0) ** 4)
        r_gale = float(radii[np.argmax(v_prof < 17.0)]) if np.any(v_prof < 17.0) else 700.0
        r_label = float(np.clip(r_gale, 250, 700))
        warm = rng.uniform(2, 6)
        fields["T500"] += warm * np.exp(-(r / (3 * rmax)) ** 2)
        fields["T200"] += 0.6 * warm * np.exp(-(r / (4 * rmax)) ** 2)
        fields["Z200_anom"] += 8.0 * warm * np.exp(-(r / (4 * rmax)) ** 2)
        fields["TS"] -= 1.0 * np.exp(-(r / 300.0) ** 2)  # cold wake
        tmq_extra += rng.uniform(18, 30) * np.exp(-(r / (0.8 * r_label)) ** 2)
        q_extra += 0.004 * np.exp(-(r / (0.8 * r_label)) ** 2)
        fields["PRECT"] += rng.uniform(1e-6, 4e-6) * np.exp(-(r / (2.5 * rmax)) ** 2)
        labels[r < r_label] = 1
        events["tropical_cyclones"].append({
            "lat": round(float(lat_c), 3), "lon": round(float(np.rad2deg(lon_c)) % 360.0, 3), "hemisphere": "N" if hemi > 0 else "S",
            "pressure_drop_hpa": round(float(dp / 100), 1), "rmax_km": round(float(rmax), 1),
            "label_radius_km": round(r_label, 1), "max_wind_ms": round(float(vt.max()), 1)})

    # ---- derived fields ----------------------------------------------------------------------
    psl = fields["PSL"]
    ts = fields["TS"]
    trefht = ts - 0.8 - 0.3 * _smooth_field(rng, grid)
    ps = psl * np.exp(-_G * topo / (_RD * (trefht + 0.00325 * topo)))
    qsat = _sat_humidity(trefht, ps)
    qrefht = rh * qsat + q_extra
    tmq = 52.0 * np.exp(0.07 * (ts - 301.0)) * (rh / 0.78) + tmq_extra
    z1000 = (psl - 100000.0) / (_RHO * _G)
    mean_t = 0.25 * trefht + 0.5 * fields["T500"] + 0.25 * fields["T200"]
    z200 = z1000 + _RD * mean_t / _G * np.log(1000.0 / 200.0) + fields["Z200_anom"]
    ubot = 0.7 * fields["U850"] + fields["UBOT_extra"]
    vbot = 0.7 * fields["V850"] + fields["VBOT_extra"]
    # friction turns the surface wind towards low pressure: counter-clockwise in the NH, clockwise in the SH
    alpha = np.deg2rad(15.0) * np.sign(sphi)
    ubot, vbot = ubot * np.cos(alpha) - vbot * np.sin(alpha), ubot * np.sin(alpha) + vbot * np.cos(alpha)
    zbot = _RD * trefht / _G * np.log(1.0 / 0.9925)
    out = {
        "TMQ": tmq, "U850": fields["U850"], "V850": fields["V850"], "UBOT": ubot, "VBOT": vbot,
        "QREFHT": qrefht, "PS": ps, "PSL": psl, "T200": fields["T200"], "T500": fields["T500"],
        "PRECT": np.maximum(fields["PRECT"], 0.0), "TS": ts, "TREFHT": trefht, "Z1000": z1000,
        "Z200": z200, "ZBOT": zbot,
    }
    return {k: v.astype(np.float32) for k, v in out.items()}, labels, events


def write_climatenet(path: str | os.PathLike, fields: dict[str, np.ndarray], labels: np.ndarray,
                     lat: np.ndarray, lon: np.ndarray, date: _dt.date | None = None,
                     attrs: dict[str, Any] | None = None) -> None:
    """Write one time step in the ClimateNet netCDF layout (atomically).

    Fields as ``float32 (time=1, lat, lon)`` with CAM5 units, ``LABELS`` as
    ``int64 (lat, lon)``, coordinates ``lat``/``lon`` in degrees and ``time``. A
    trailer after the HDF5 data holds the SHA-256 of the file (other netCDF readers
    ignore it) and every variable has an HDF5 Fletcher-32 checksum, so a damaged file
    fails to read (:class:`ClimateFileError`) instead of giving wrong values.
    """
    netCDF4 = _netcdf4()

    ds = netCDF4.Dataset("inmemory.nc", "w", format="NETCDF4", memory=1 << 20)
    ds.createDimension("time", 1)
    ds.createDimension("lat", len(lat))
    ds.createDimension("lon", len(lon))
    v = ds.createVariable("lat", "f8", ("lat",), fletcher32=True)
    v[:] = lat
    v.units, v.long_name = "degrees_north", "latitude"
    v = ds.createVariable("lon", "f8", ("lon",), fletcher32=True)
    v[:] = lon
    v.units, v.long_name = "degrees_east", "longitude"
    v = ds.createVariable("time", "f8", ("time",), fletcher32=True)
    v.units, v.calendar = "days since 2000-01-01 00:00:00", "noleap"
    v[:] = (date - _dt.date(2000, 1, 1)).days if date is not None else 0.0
    for name in VARIABLES:
        v = ds.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True, complevel=1, fletcher32=True)
        v.units, v.long_name = UNITS[name]
        v[0] = fields[name]
    v = ds.createVariable("LABELS", "i8", ("lat", "lon"), zlib=True, complevel=1, fletcher32=True)
    v.long_name = "0 background, 1 tropical cyclone, 2 atmospheric river"
    v[:] = labels
    for key, value in (attrs or {}).items():
        ds.setncattr(key, value)
    buf = _add_checksum_trailer(bytes(ds.close()))
    with atomic_write(path) as f:
        f.write(buf)


def default_grid(nlat: int, nlon: int) -> tuple[np.ndarray, np.ndarray]:
    """ClimateNet's grid layout: ``nlat`` latitudes from -90 to 90 inclusive, ``nlon`` longitudes from 0."""
    if nlat < 3 or nlon < 4:
        raise ValueError(f"grid too small: nlat={nlat}, nlon={nlon} (need nlat >= 3, nlon >= 4)")
    return np.linspace(-90.0, 90.0, nlat), np.arange(nlon) * (360.0 / nlon)


def _synth_one(args: tuple[int, int, int, int, str]) -> dict[str, Any]:
    seed, index, nlat, nlon, out = args
    lat, lon = default_grid(nlat, nlon)
    date = _dt.date(2000, 1, 1) + _dt.timedelta(days=2 * index)
    fields, labels, events = synthesize_sample(seed, index, lat, lon, date)
    name = f"data-{date.isoformat()}-01-1_{index}.nc"
    write_climatenet(Path(out) / name, fields, labels, lat, lon, date,
                     attrs={"source": "meshcnn synthetic ClimateNet generator", "seed": seed, "index": index})
    grid_w = np.cos(np.deg2rad(lat))[:, None] * np.ones(nlon)
    frac = np.bincount(labels.ravel(), weights=grid_w.ravel(), minlength=NUM_CLASSES) / grid_w.sum()
    return {"file": name, "class_fraction": frac.tolist(), **events}


def remove_synthetic(out: str | os.PathLike) -> list[Path]:
    """Remove exactly the files a previous :func:`generate_synthetic` wrote into ``out`` (as its
    ``synth.json`` lists them) and ``synth.json`` itself; other files are kept. Returns the removed paths."""
    out = Path(out)
    listed = synth_listed_files(out)
    if listed is None:
        return []
    removed = []
    for path in listed + [out / "synth.json"]:
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def generate_synthetic(out: str | os.PathLike, num: int = 200, nlat: int = 192, nlon: int = 288, seed: int = 0,
                       progress: bool = True, workers: int = 1, overwrite: bool = False) -> list[Path]:
    """Write ``num`` synthetic ClimateNet files ``data-YYYY-MM-DD-01-1_<i>.nc`` (2 days apart from
    2000-01-01, so a set covers the seasons) and ``synth.json`` describing every event.
    Deterministic for ``seed``; file ``i`` depends only on ``(seed, i, nlat, nlon)``.

    ``out`` must be empty or new (``FileExistsError`` otherwise), so that no stale
    files mix with the new set; ``overwrite=True`` first removes exactly the files a
    previous call wrote there (:func:`remove_synthetic`, from its ``synth.json``).
    """
    if num < 1:
        raise ValueError(f"num must be positive, got {num}")
    default_grid(nlat, nlon)  # validates the size
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if overwrite:
        remove_synthetic(out)
    elif out.is_dir() and any(out.iterdir()):
        entries = sorted(p.name for p in out.iterdir())
        raise FileExistsError(
            f"{out}: output folder is not empty ({len(entries)} entries, e.g. {entries[0]!r}); choose an empty "
            "folder, or pass --overwrite (overwrite=True) to replace the files of a previous synthetic set")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, i, nlat, nlon, str(out)) for i in range(num)]
    if workers > 1:
        from multiprocessing import Pool

        with Pool(workers) as pool:
            records = list(progress_bar(pool.imap(_synth_one, jobs), enabled=progress, total=num,
                                        desc="synthesizing", unit="file"))
    else:
        records = [_synth_one(j) for j in progress_bar(jobs, enabled=progress, desc="synthesizing", unit="file")]
    fractions = np.array([r["class_fraction"] for r in records])
    summary = {
        "seed": seed, "num": num, "nlat": nlat, "nlon": nlon,
        "class_fraction_mean": fractions.mean(0).tolist(),
        "num_tropical_cyclones": int(sum(len(r["tropical_cyclones"]) for r in records)),
        "num_atmospheric_rivers": int(sum(len(r["atmospheric_rivers"]) for r in records)),
        "files": records,
    }
    save_json(out / "synth.json", summary)
    return [out / r["file"] for r in records]


def ensure_synthetic(out: str | os.PathLike, num: int = 200, nlat: int = 192, nlon: int = 288, seed: int = 0,
                     progress: bool = True, workers: int = 1) -> bool:
    """:func:`generate_synthetic` unless ``out/synth.json`` already describes a set of these
    ``num, nlat, nlon, seed``; returns whether it wrote the set."""
    wanted = {"seed": seed, "num": num, "nlat": nlat, "nlon": nlon}
    summary = Path(out) / "synth.json"
    if summary.is_file():
        with open(summary) as f:
            if {k: v for k, v in json.load(f).items() if k in wanted} == wanted:
                return False
    generate_synthetic(out, num, nlat, nlon, seed, progress=progress, workers=workers, overwrite=summary.is_file())
    return True


def _region_shapes(mask: np.ndarray, grid: _Grid, max_points: int = 400) -> list[tuple[float, float]]:
    """``(length, mean width)`` in km of each connected region of a lat-lon mask (periodic in longitude),
    ignoring fragments under 2.5 grid spacings.

    Length: the largest great-circle distance between two of its grid points (a
    subsample of ``max_points``); mean width: area / length.
    """
    from scipy import ndimage

    regions, n = ndimage.label(mask)
    if n == 0:
        return []
    parent = np.arange(n + 1)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(regions[:, 0], regions[:, -1]):  # join regions across the dateline
        if a and b:
            parent[find(a)] = find(b)
    roots = np.array([find(i) for i in range(n + 1)])
    regions = roots[regions]
    dlat = np.deg2rad(np.abs(np.gradient(grid.lat_deg)))[:, None]
    dlon = np.deg2rad(360.0 / grid.shape[1])
    cell_km2 = _KM_PER_RAD**2 * np.cos(grid.lat) * dlat * dlon
    rng = np.random.default_rng(0)
    min_km = 2.5 * float(np.deg2rad(np.abs(np.diff(grid.lat_deg)).max())) * _KM_PER_RAD
    shapes = []
    for r in np.unique(regions[regions > 0]):
        idx = np.nonzero(regions == r)
        pts = grid.xyz[idx]
        if len(pts) > max_points:
            pts = pts[rng.choice(len(pts), max_points, replace=False)]
        length = float(np.arccos(np.clip(pts @ pts.T, -1, 1)).max() * _KM_PER_RAD)
        if length > min_km:  # skip fragments of a cell or two (e.g. a tip cut off by the pole row)
            shapes.append((length, float(cell_km2[idx].sum()) / length))
    return shapes


def _nanmean(values: list[float]) -> float:
    """Mean of the finite values, NaN (without a warning) if there are none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def verify_synthetic(folder: str | os.PathLike, progress: bool = True) -> dict[str, Any]:
    r"""Measure, from the files themselves, that a synthetic set has the intended physics.

    Reads ``folder/synth.json`` (written by :func:`generate_synthetic`) for the event
    positions and every file's fields and labels, and returns:

    * ``class_fraction``: area-weighted label fractions (background, TC, AR);
    * ``tc_cyclonic_fraction``: fraction of TCs whose mean 850 hPa relative vorticity
      :math:`\zeta = \partial_x v - \partial_y u` within 300 km of the centre has the
      hemisphere's cyclonic sign (positive north, negative south), with the mean
      vorticity per hemisphere; ``tc_warm_core_k``: mean T500 at the centre minus its
      mean 1500-2000 km away; ``tc_pressure_drop_hpa``: mean PSL drop over the same;
      ``tc_abs_lat_range``;
    * ``ar_length_km``/``ar_width_km`` ranges, ``ar_polar_fraction`` (ARs reaching
      beyond 60 degrees) and ``ar_poleward_fraction`` (ending poleward of their start, same
      hemisphere) as drawn by the generator; ``ar_label_length_km_p10_p50_p90`` and
      ``ar_label_width_km_p10_p50_p90`` measured on the connected AR label regions
      (length = largest extent, width = area / length; touching rivers merge into one
      region); ``tmq_ar_over_background``: mean TMQ on AR labels over mean
      TMQ of background points at 20-60 degrees.

    Any grid :func:`generate_synthetic` accepts works: on a grid coarser than the
    300 km TC core the nearest grid point stands for the core, and a measure that
    has no points to measure on is NaN. ``FileNotFoundError`` (naming it) without
    ``synth.json``; :class:`ClimateFileError` for a malformed one or a bad file.
    """
    folder = Path(folder)
    summary_path = folder / "synth.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path}: not found; verify measures a set written by "
                                f"'python -m meshcnn.data.climate synth --out {folder}'")
    try:
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        for record in summary["files"]:
            record["file"], record["tropical_cyclones"], record["atmospheric_rivers"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClimateFileError(summary_path, f"unreadable synthetic-set description ({type(exc).__name__}: {exc})"
                               ) from exc
    area_counts = np.zeros(NUM_CLASSES)
    vort = {"N": [], "S": []}
    warm, drop, tc_lats = [], [], []
    tmq_ar, tmq_bg = [], []
    ar_shapes: list[tuple[float, float]] = []
    grid = None
    for record in progress_bar(summary["files"], enabled=progress, desc="verifying", unit="file"):
        fields, labels, lat, lon = read_latlon(folder / record["file"])
        if grid is None:
            grid = _Grid(lat, lon)
            w = np.cos(np.deg2rad(lat))[:, None] * np.ones(len(lon))
        area_counts += np.bincount(labels.ravel(), weights=w.ravel(), minlength=NUM_CLASSES)
        u, v = fields[VARIABLES.index("U850")].astype(np.float64), fields[VARIABLES.index("V850")].astype(np.float64)
        dvdx, _ = _ddx_ddy(v, grid)
        _, dudy = _ddx_ddy(u, grid)
        zeta = dvdx - dudy
        for tc in record["tropical_cyclones"]:
            r = grid.distance_km(_unit(np.deg2rad(tc["lat"]), np.deg2rad(tc["lon"])))
            # the core: within 300 km, or the nearest grid point(s) on a grid coarser than that
            core, ring = r <= max(300.0, float(r.min())), (r > 1500) & (r < 2000)
            vort[tc["hemisphere"]].append(float(zeta[core].mean()))
            t500, psl = fields[VARIABLES.index("T500")], fields[VARIABLES.index("PSL")]
            warm.append(float(t500[r < 150].mean() - t500[ring].mean())
                        if np.any(r < 150) and np.any(ring) else float("nan"))
            drop.append(float(psl[ring].mean() - psl[core].min()) / 100 if np.any(ring) else float("nan"))
            tc_lats.append(abs(tc["lat"]))
        tmq = fields[VARIABLES.index("TMQ")]
        band = (np.abs(grid.lat_deg)[:, None] > 20) & (np.abs(grid.lat_deg)[:, None] < 60) & np.ones(len(lon), bool)
        if np.any(labels == 2):
            tmq_ar.append(float(tmq[labels == 2].mean()))
            ar_shapes += _region_shapes(labels == 2, grid)
        if np.any(band & (labels == 0)):
            tmq_bg.append(float(tmq[band & (labels == 0)].mean()))
    ars = [a for r in summary["files"] for a in r["atmospheric_rivers"]]
    signs = [z > 0 for z in vort["N"]] + [z < 0 for z in vort["S"]]
    return {
        "num_files": len(summary["files"]),
        "class_fraction": (area_counts / area_counts.sum()).tolist(),
        "num_tc": len(signs), "num_tc_north": len(vort["N"]), "num_tc_south": len(vort["S"]),
        "tc_cyclonic_fraction": float(np.mean(signs)) if signs else float("nan"),
        "tc_mean_vorticity_north": float(np.mean(vort["N"])) if vort["N"] else float("nan"),
        "tc_mean_vorticity_south": float(np.mean(vort["S"])) if vort["S"] else float("nan"),
        "tc_warm_core_k": _nanmean(warm),
        "tc_pressure_drop_hpa": _nanmean(drop),
        "tc_abs_lat_range": [float(min(tc_lats)), float(max(tc_lats))] if tc_lats else [],
        "num_ar": len(ars),
        "ar_length_km": [min(a["length_km"] for a in ars), max(a["length_km"] for a in ars)] if ars else [],
        "ar_width_km": [min(a["width_km"] for a in ars), max(a["width_km"] for a in ars)] if ars else [],
        "ar_start_abs_lat": [min(abs(a["start_lat"]) for a in ars), max(abs(a["start_lat"]) for a in ars)] if ars else [],
        "ar_polar_fraction": float(np.mean([a["max_abs_lat"] > 60 for a in ars])) if ars else float("nan"),
        "ar_poleward_fraction": float(np.mean([abs(a["end_lat"]) > abs(a["start_lat"]) and a["end_lat"] * a["start_lat"] > 0
                                               for a in ars])) if ars else float("nan"),
        "tmq_ar_over_background": float(np.mean(tmq_ar) / np.mean(tmq_bg)) if tmq_ar and tmq_bg else float("nan"),
        "ar_label_regions": len(ar_shapes),
        "ar_label_length_km_p10_p50_p90": np.percentile([a for a, _ in ar_shapes], [10, 50, 90]).round(0).tolist()
        if ar_shapes else [],
        "ar_label_width_km_p10_p50_p90": np.percentile([b for _, b in ar_shapes], [10, 50, 90]).round(0).tolist()
        if ar_shapes else [],
    }
