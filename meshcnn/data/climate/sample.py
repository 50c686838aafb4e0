r"""One synthetic ClimateNet time step: :func:`synthesize_sample`."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

from ...grids import LatLonGrid
from .storms import _atmospheric_rivers, _tropical_cyclones
from .weather import (
    _G,
    _RD,
    _RHO,
    _background,
    _convective_clusters,
    _extratropical_cyclones,
    _orography,
    _rossby_waves,
    _Sample,
    _sat_humidity,
    _season,
    _smooth_field,
)

__all__ = ["synthesize_sample"]


def synthesize_sample(
    seed: int, index: int, lat: np.ndarray, lon: np.ndarray, date: _dt.date | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
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

    Parameters
    ----------
    seed, index : int
        The sample's identity; the result depends only on them and the grid.
    lat, lon : 1-D arrays
        The grid, degrees.
    date : datetime.date, optional
        Sets the season; default: ``index * 2`` days after 2000-01-01.

    Returns
    -------
    fields : dict of str to (nlat, nlon) float32 array
    labels : (nlat, nlon) int64 array
    events : dict
        JSON-able description of the TCs and ARs.
    """
    rng = np.random.default_rng([seed, index])
    grid = LatLonGrid(lat, lon)
    date = date or (_dt.date(2000, 1, 1) + _dt.timedelta(days=2 * index))
    decl = _season(date)
    topo = _orography(seed, grid)
    bg = _background(grid, rng, decl, topo)
    _rossby_waves(grid, rng, bg)
    rh = bg.pop("rh")
    fields = {
        **bg,
        "TMQ": np.zeros(grid.shape),
        "QREFHT": np.zeros(grid.shape),
        "Z200_anom": np.zeros(grid.shape),
        "UBOT_extra": np.zeros(grid.shape),
        "VBOT_extra": np.zeros(grid.shape),
    }
    events: dict[str, Any] = {
        "date": date.isoformat(),
        "declination_deg": round(float(decl), 3),
        "tropical_cyclones": [],
        "atmospheric_rivers": [],
        "extratropical_cyclones": 0,
    }
    sample = _Sample(grid, rng, decl, topo, fields, rh, np.zeros(grid.shape, dtype=np.int64), events)
    _extratropical_cyclones(sample)
    _convective_clusters(sample)
    _atmospheric_rivers(sample)
    _tropical_cyclones(sample)
    return _derived_fields(sample), sample.labels, sample.events


def _derived_fields(sample: _Sample) -> dict[str, np.ndarray]:
    """The 16 output fields, float32: surface pressure, humidity, precipitable water, heights and
    surface winds derived from the fields built so far."""
    grid, rng, fields, topo, rh = sample.grid, sample.rng, sample.fields, sample.topo, sample.rh
    sphi = np.sin(grid.lat_rad)
    psl = fields["PSL"]
    ts = fields["TS"]
    trefht = ts - 0.8 - 0.3 * _smooth_field(rng, grid)
    ps = psl * np.exp(-_G * topo / (_RD * (trefht + 0.00325 * topo)))
    qsat = _sat_humidity(trefht, ps)
    qrefht = rh * qsat + sample.q_extra
    tmq = 52.0 * np.exp(0.07 * (ts - 301.0)) * (rh / 0.78) + sample.tmq_extra
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
        "TMQ": tmq,
        "U850": fields["U850"],
        "V850": fields["V850"],
        "UBOT": ubot,
        "VBOT": vbot,
        "QREFHT": qrefht,
        "PS": ps,
        "PSL": psl,
        "T200": fields["T200"],
        "T500": fields["T500"],
        "PRECT": np.maximum(fields["PRECT"], 0.0),
        "TS": ts,
        "TREFHT": trefht,
        "Z1000": z1000,
        "Z200": z200,
        "ZBOT": zbot,
    }
    return {k: v.astype(np.float32) for k, v in out.items()}
