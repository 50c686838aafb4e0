r"""The labelled events of a synthetic sample: atmospheric rivers (label 2) and tropical cyclones (label 1).

Atmospheric rivers: moisture filaments 2500-8000 km long and 400-900 km wide that start
in the subtropics (15-32 degrees) and run poleward and eastward along a gently curving
path, some into polar latitudes, with a low-level jet along the axis; the label is the
filament's tapered core. Tropical cyclones: warm-core Holland vortices centred at 6-32
degrees latitude, cyclonic; the label is the disc where the gradient wind exceeds gale
force (17 m/s), clipped to 250-700 km. Distances in km on the Earth
(:data:`meshcnn.geometry.EARTH_RADIUS_KM`).
"""

from __future__ import annotations

import numpy as np

from ...geometry.coords import EARTH_RADIUS_KM, latlon_to_xyz, xyz_to_latlon
from .weather import _RHO, _add_vortex, _Sample

__all__: list[str] = []  # private building blocks of .sample

_PATH_STEP_KM = 40.0


def _river_path(
    rng: np.random.Generator, hemi: float, lat0: float, lon0: float, length: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(P, 3)`` and unit tangents ``(P, 3)`` of a river's path, ``_PATH_STEP_KM`` apart.

    The bearing (from north, clockwise) starts north-east in the NH, south-east in the SH,
    turns gently, bends eastward at high latitudes (rivers wrap around the lows) and keeps
    heading poleward: within 10-85 degrees (NH) or 95-170 degrees (SH).
    """
    bearing = np.deg2rad(rng.uniform(25, 65)) if hemi > 0 else np.deg2rad(rng.uniform(115, 155))
    turn = rng.normal(0, 0.25) / 1000.0  # rad per km of path
    step = _PATH_STEP_KM
    limits = np.deg2rad([10.0, 85.0]) if hemi > 0 else np.deg2rad([95.0, 170.0])
    pts, tangents = [], []
    p = latlon_to_xyz(lat0, lon0)
    for _k in range(int(length / step) + 1):
        lat_p, lon_p = xyz_to_latlon(p)
        east = np.array([-np.sin(lon_p), np.cos(lon_p), 0.0])
        north = np.array([-np.sin(lat_p) * np.cos(lon_p), -np.sin(lat_p) * np.sin(lon_p), np.cos(lat_p)])
        t = np.sin(bearing) * east + np.cos(bearing) * north
        pts.append(p)
        tangents.append(t)
        ang = step / EARTH_RADIUS_KM
        p = np.cos(ang) * p + np.sin(ang) * t
        p /= np.linalg.norm(p)
        bearing += turn * step + hemi * 0.15 * step / 1000.0 * max(0.0, abs(np.rad2deg(lat_p)) - 45) / 20
        bearing = float(np.clip(bearing, *limits))
    return np.array(pts), np.array(tangents)


def _add_river(sample: _Sample, pts: np.ndarray, tangents: np.ndarray, length: float, half_width: float) -> None:
    """Moisture, rain, warmth, a low-level jet and label 2 along the path ``pts``."""
    grid, rng, fields = sample.grid, sample.rng, sample.fields
    s = np.linspace(0, 1, len(pts))
    width_along = half_width * np.sqrt(np.clip(np.sin(np.pi * s), 0, 1)) + 1e-3
    mid = pts[len(pts) // 2]
    near = grid.xyz @ mid > np.cos((length / 2 + 2 * half_width) / EARTH_RADIUS_KM)
    idx = np.nonzero(near)
    cos_d = grid.xyz[idx] @ pts.T  # (N, P)
    nearest = np.argmax(cos_d, axis=1)
    dist = np.arccos(np.clip(cos_d[np.arange(len(nearest)), nearest], -1, 1)) * EARTH_RADIUS_KM
    rel = dist / width_along[nearest]
    profile = np.exp(-(rel**2) * np.log(2) * 1.5) * np.sqrt(np.clip(np.sin(np.pi * s[nearest]), 0, 1))
    amp = rng.uniform(15, 30)
    moisture = np.zeros(grid.shape)
    moisture[idx] = profile
    sample.tmq_extra += amp * moisture
    sample.q_extra += 0.004 * moisture
    fields["PRECT"] += rng.uniform(1e-7, 5e-7) * moisture
    fields["T500"] += 1.5 * moisture
    jet = rng.uniform(10, 20) * profile
    axis = tangents[nearest]  # (N, 3) path direction
    fields["U850"][idx] += jet * np.einsum("nk,nk->n", axis, grid.east[idx])
    fields["V850"][idx] += jet * np.einsum("nk,nk->n", axis, grid.north[idx])
    core = np.zeros(grid.shape, dtype=bool)
    core[idx] = (rel < 1.0) & (s[nearest] > 0.02) & (s[nearest] < 0.98)
    sample.labels[core & (sample.labels == 0)] = 2


def _atmospheric_rivers(sample: _Sample) -> None:
    """2-8 rivers, more in the winter hemisphere (see the module docstring)."""
    rng = sample.rng
    n_ar = int(min(8, 2 + rng.poisson(2.5)))
    for _ in range(n_ar):
        hemi = 1.0 if rng.uniform() < 0.5 + 0.15 * (-sample.decl / 23.44) else -1.0
        lat0 = np.deg2rad(hemi * rng.uniform(15, 32))
        lon0 = rng.uniform(-np.pi, np.pi)
        length = rng.uniform(2500, 8000)
        half_width = rng.uniform(200, 450)
        pts, tangents = _river_path(rng, hemi, lat0, lon0, length)
        _add_river(sample, pts, tangents, length, half_width)
        lats_path = np.rad2deg(np.arcsin(np.clip(pts[:, 2], -1, 1)))
        sample.events["atmospheric_rivers"].append(
            {
                "start_lat": round(float(lats_path[0]), 2),
                "end_lat": round(float(lats_path[-1]), 2),
                "max_abs_lat": round(float(np.abs(lats_path).max()), 2),
                "length_km": round(float(length), 1),
                "width_km": round(float(2 * half_width), 1),
            }
        )


def _gale_radius(dp: float, rmax: float, bmod: float) -> float:
    """Label radius of a Holland vortex, km: where the gradient wind falls to gale force (17 m/s),
    clipped to 250-700 km."""
    radii = np.linspace(rmax, 1500, 2000)
    xr_ = (rmax / radii) ** bmod
    v_prof = np.sqrt(bmod * dp / _RHO * xr_ * np.exp(-xr_)) * np.exp(-((radii / 1200.0) ** 4))
    r_gale = float(radii[np.argmax(v_prof < 17.0)]) if np.any(v_prof < 17.0) else 700.0
    return float(np.clip(r_gale, 250, 700))


def _cyclone_center(
    rng: np.random.Generator, decl: float, centers: list[np.ndarray]
) -> tuple[float, float, float, np.ndarray] | None:
    """``(hemi, lat degrees, lon radians, unit vector)`` of a new cyclone more than 1800 km from the
    others (mostly in the summer hemisphere), or ``None`` after 20 tries."""
    for _try in range(20):
        hemi = 1.0 if rng.uniform() < 0.5 + 0.35 * decl / 23.44 else -1.0
        lat_c, lon_c = hemi * rng.uniform(6, 32), rng.uniform(-np.pi, np.pi)
        center = latlon_to_xyz(np.deg2rad(lat_c), lon_c)
        if all(np.arccos(np.clip(center @ c, -1, 1)) * EARTH_RADIUS_KM > 1800 for c in centers):
            return hemi, lat_c, lon_c, center
    return None


def _tropical_cyclones(sample: _Sample) -> None:
    """Up to 6 tropical cyclones (see the module docstring)."""
    rng, fields = sample.rng, sample.fields
    n_tc = int(min(6, rng.poisson(2.0)))
    centers: list[np.ndarray] = []
    for _ in range(n_tc):
        found = _cyclone_center(rng, sample.decl, centers)
        if found is None:
            continue
        hemi, lat_c, lon_c, center = found
        centers.append(center)
        dp, rmax, bmod = rng.uniform(1500, 7000), rng.uniform(60, 150), rng.uniform(1.2, 1.8)
        r, vt = _add_vortex(sample, center, hemi, dp, rmax, 1200.0, bmod, 20.0)
        r_label = _gale_radius(dp, rmax, bmod)
        warm = rng.uniform(2, 6)
        fields["T500"] += warm * np.exp(-((r / (3 * rmax)) ** 2))
        fields["T200"] += 0.6 * warm * np.exp(-((r / (4 * rmax)) ** 2))
        fields["Z200_anom"] += 8.0 * warm * np.exp(-((r / (4 * rmax)) ** 2))
        fields["TS"] -= 1.0 * np.exp(-((r / 300.0) ** 2))  # cold wake
        sample.tmq_extra += rng.uniform(18, 30) * np.exp(-((r / (0.8 * r_label)) ** 2))
        sample.q_extra += 0.004 * np.exp(-((r / (0.8 * r_label)) ** 2))
        fields["PRECT"] += rng.uniform(1e-6, 4e-6) * np.exp(-((r / (2.5 * rmax)) ** 2))
        sample.labels[r < r_label] = 1
        sample.events["tropical_cyclones"].append(
            {
                "lat": round(float(lat_c), 3),
                "lon": round(float(np.rad2deg(lon_c)) % 360.0, 3),
                "hemisphere": "N" if hemi > 0 else "S",
                "pressure_drop_hpa": round(float(dp / 100), 1),
                "rmax_km": round(float(rmax), 1),
                "label_radius_km": round(r_label, 1),
                "max_wind_ms": round(float(vt.max()), 1),
            }
        )
