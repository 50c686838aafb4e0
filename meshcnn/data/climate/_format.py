"""The ClimateNet file format: variables, classes, units, the checksum trailer and the file error.

Shared by the reader (:mod:`.reader`), the dataset (:mod:`.dataset`) and the synthetic
generator (:mod:`.synth`), so that none of them imports another for these.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["VARIABLES", "NORTHWARD_VARIABLES", "CLASSES", "NUM_CLASSES", "UNITS", "ClimateFileError"]

#: The 16 ClimateNet input fields, in channel order.
VARIABLES: tuple[str, ...] = (
    "TMQ", "U850", "V850", "UBOT", "VBOT", "QREFHT", "PS", "PSL",
    "T200", "T500", "PRECT", "TS", "TREFHT", "Z1000", "Z200", "ZBOT",
)
#: The northward (meridional) wind components among :data:`VARIABLES`: what
#: :func:`meshcnn.hemisphere_flip` turns into poleward components.
NORTHWARD_VARIABLES: tuple[str, ...] = ("V850", "VBOT")
#: Label values: index = value of ``LABELS``.
CLASSES: tuple[str, ...] = ("background", "tropical_cyclone", "atmospheric_river")
NUM_CLASSES = len(CLASSES)
#: CAM5 units and long names (written by the synthetic generator, shown in plots).
UNITS: dict[str, tuple[str, str]] = {
    "TMQ": ("kg/m2", "total (vertically integrated) precipitable water"),
    "U850": ("m/s", "zonal wind at 850 mbar pressure surface"),
    "V850": ("m/s", "meridional wind at 850 mbar pressure surface"),
    "UBOT": ("m/s", "lowest level zonal wind"),
    "VBOT": ("m/s", "lowest model level meridional wind"),
    "QREFHT": ("kg/kg", "reference height humidity"),
    "PS": ("Pa", "surface pressure"),
    "PSL": ("Pa", "sea level pressure"),
    "T200": ("K", "temperature at 200 mbar pressure surface"),
    "T500": ("K", "temperature at 500 mbar pressure surface"),
    "PRECT": ("m/s", "total (convective and large-scale) precipitation rate (liq + ice)"),
    "TS": ("K", "surface temperature (radiative)"),
    "TREFHT": ("K", "reference height temperature"),
    "Z1000": ("m", "geopotential Z at 1000 mbar pressure surface"),
    "Z200": ("m", "geopotential Z at 200 mbar pressure surface"),
    "ZBOT": ("m", "lowest model level height"),
}

class ClimateFileError(ValueError):
    """A data file that cannot be used; the message names the file (and variable)."""

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)


def _netcdf4() -> Any:
    """The netCDF4 module, or an ImportError that names the optional extra."""
    try:
        import netCDF4
    except ImportError as exc:
        raise ImportError("reading ClimateNet netCDF files needs netCDF4; install the optional extra: "
                          "pip install 'meshcnn[climate]'") from exc
    return netCDF4


#: Files written by :func:`meshcnn.data.climate.write_climatenet` end with a trailer
#: ``b"\nmeshcnn-sha256:" + 64 hex digits + b"\n"`` after the HDF5 data (HDF5, netCDF4 and xarray
#: ignore bytes past the end of the file they describe): the SHA-256 of everything before it.
#: The reader checks it before netCDF4/HDF5 parse the file, so a damaged file is refused instead
#: of read wrongly (a damaged chunk address reads as fill values) or hanging inside HDF5.
_CHECKSUM_TRAILER = re.compile(rb"\nmeshcnn-sha256:([0-9a-f]{64})\n\Z")
_TRAILER_SIZE = 81


def _add_checksum_trailer(content: bytes) -> bytes:
    """``content`` followed by the checksum trailer (see :data:`_CHECKSUM_TRAILER`)."""
    return content + b"\nmeshcnn-sha256:" + hashlib.sha256(content).hexdigest().encode() + b"\n"


def _verified_content(path: Path) -> bytes | None:
    """The verified bytes (trailer removed) of a file with a checksum trailer; ``None`` for a file
    without one (it is then opened from disk, as before)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - _TRAILER_SIZE, 0))
            if _CHECKSUM_TRAILER.search(f.read()) is None:
                return None
            f.seek(0)
            content = f.read()
    except OSError as exc:
        raise ClimateFileError(path, f"unreadable file ({exc})") from exc
    return _strip_checksum_trailer(path, content)


def _strip_checksum_trailer(path: Path, content: bytes) -> bytes:
    """The file's bytes without its checksum trailer, verified (files without a trailer are returned as is)."""
    match = _CHECKSUM_TRAILER.search(content, max(len(content) - _TRAILER_SIZE, 0))
    if match is None:
        return content
    body = content[:match.start()]
    if hashlib.sha256(body).hexdigest().encode() != match.group(1):
        raise ClimateFileError(path, "damaged file: its SHA-256 checksum does not match (altered since it was "
                                     "written)")
    return body


def _existing_file(path: str | os.PathLike, what: str = "ClimateNet file") -> Path:
    """``Path(path)`` if it is a file; ``FileNotFoundError`` if nothing is there, ``ClimateFileError`` for a folder."""
    path = Path(path)
    if path.is_dir():
        raise ClimateFileError(path, f"is a folder, not a {what}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    return path
